//! The automation reconciler: a sweep the worker runs at start and then on every minute
//! `AUTOMATION_SCHEDULER_CRON` matches (UTC; default every minute). Each sweep runs
//! [`callaudit_api::automation::mirror::reconcile`]: the table is the truth, the Temporal
//! Schedules are brought in line (missing ones created, changed or paused ones repaired,
//! orphans deleted). A sweep rather than a Temporal-scheduled workflow: it needs a
//! Temporal client, which the worker has and the activities do not; every worker runs
//! it, and the repair is idempotent, so any number of them agree.
//!
//! The cron is read here, not by Temporal: five fields (minute, hour, day of month,
//! month, day of week 0–7), each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`,
//! or a list of those.

use chrono::{DateTime, Datelike, Timelike, Utc};
use std::time::Duration;

/// A parsed five-field cron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    fields: [Vec<u32>; 5],
}

const BOUNDS: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];

impl Cron {
    /// Parses `expr`.
    pub fn parse(expr: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        anyhow::ensure!(
            parts.len() == 5,
            "a cron has 5 fields, not {}: {expr:?}",
            parts.len()
        );
        let mut fields: [Vec<u32>; 5] = Default::default();
        for (i, part) in parts.iter().enumerate() {
            let (lo, hi) = BOUNDS[i];
            for item in part.split(',') {
                let (range, step) = match item.split_once('/') {
                    Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)),
                    None => (item, Some(1)),
                };
                let step = step.ok_or_else(|| anyhow::anyhow!("bad step in {item:?}"))?;
                let (a, b) = match range {
                    "*" => (lo, hi),
                    r => match r.split_once('-') {
                        Some((a, b)) => (a.parse()?, b.parse()?),
                        None => {
                            let v: u32 = r.parse()?;
                            (v, if item.contains('/') { hi } else { v })
                        }
                    },
                };
                anyhow::ensure!(lo <= a && a <= b && b <= hi, "{item:?} is out of {lo}-{hi}");
                fields[i].extend((a..=b).step_by(step as usize));
            }
        }
        // Sunday is 0 or 7.
        if fields[4].contains(&7) {
            fields[4].push(0);
        }
        Ok(Self { fields })
    }

    /// Whether the minute of `t` matches.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let [m, h, dom, mon, dow] = &self.fields;
        m.contains(&t.minute())
            && h.contains(&t.hour())
            && dom.contains(&t.day())
            && mon.contains(&t.month())
            && dow.contains(&t.weekday().num_days_from_sunday())
    }
}

/// Runs the reconciler until the process ends: once now, then on every matching minute.
pub async fn run_reconciler(
    cron: Cron,
    database_url: String,
    client: temporalio_client::Client,
    task_queue: String,
) {
    let pool = match callaudit_db::connect_pool(&database_url, 2) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "automation reconciler: no database pool; not running");
            return;
        }
    };
    let sweep = async || match callaudit_db::pool::get(&pool).await {
        Ok(mut conn) => {
            match callaudit_api::automation::mirror::reconcile(&mut conn, &client, &task_queue)
                .await
            {
                Ok(report) => tracing::info!(?report, "automation schedules reconciled"),
                Err(e) => tracing::warn!(error = %e, "automation reconciliation failed"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "automation reconciler: no connection"),
    };
    sweep().await;
    loop {
        let now = Utc::now();
        let into_minute = u64::from(now.second()) * 1000 + u64::from(now.timestamp_subsec_millis());
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute.min(59_999))).await;
        if cron.matches(Utc::now() + chrono::Duration::seconds(1)) {
            sweep().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn crons_match_their_minutes() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 6, h, m, 0).unwrap(); // a Sunday
        assert!(Cron::parse("* * * * *").unwrap().matches(at(4, 17)));
        let every5 = Cron::parse("*/5 * * * *").unwrap();
        assert!(every5.matches(at(4, 15)) && !every5.matches(at(4, 16)));
        let weekdays = Cron::parse("30 6,18 * * 1-5").unwrap();
        assert!(!weekdays.matches(at(6, 30)));
        assert!(Cron::parse("30 6 * * 7").unwrap().matches(at(6, 30)));
        assert!(Cron::parse("0-10/5 4 6 12 *").unwrap().matches(at(4, 10)));
        for bad in [
            "* * * *",
            "61 * * * *",
            "*/0 * * * *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }
}
