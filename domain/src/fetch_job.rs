//! Progressive fiche fetch jobs: a date range fetched from the CRM day by day. The api
//! stores the job (`fiche_fetch_jobs`, one `fiche_fetch_job_days` row per day) and starts
//! `ProgressiveFetchWorkflow` (`fiche-fetch-job:{job_id}`), which runs one
//! `DayFetchWorkflow` child per day in a sliding window and is the only writer of the
//! job's row while it runs (each day's outcome, then the finalisation). Long ranges
//! continue as new every [`DAYS_PER_RUN`] days, carrying the cursor and the totals.
//!
//! Here: the statuses, the range rules, the workflow and activity inputs and outputs
//! (ids, dates and counts only) and the events of a job's stream.

use crate::events::{DomainEvent, StreamEnd};
use crate::status::named_enum;
use crate::workflow_io::ids;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest range a job may cover, in days (three years).
pub const MAX_RANGE_DAYS: u32 = 3 * 366;
/// Days fetched at once by a job (children of `ProgressiveFetchWorkflow` in flight).
pub const DAY_WINDOW: u32 = 5;
/// Detail fetches a day runs at once (its `fiche.ensure_details` activities in flight;
/// the global `FICHE_FETCH_CONCURRENCY` cap still applies across everything).
pub const FICHE_WINDOW: u32 = 3;
/// Days one run of `ProgressiveFetchWorkflow` processes before it continues as new
/// (about a dozen history events per day: a run stays near 1,200 events).
pub const DAYS_PER_RUN: u32 = 100;

named_enum! {
    /// Where a job stands (`fiche_fetch_jobs.status`).
    FetchJobStatus {
        /// Stored, workflow starting.
        Pending = "pending",
        /// The workflow runs (first run or a retry).
        Running = "running",
        /// Every day fetched.
        Completed = "completed",
        /// Finished with some days failed (listed; `POST …/retry` redoes them).
        Partial = "partial",
        /// Every day failed, or the workflow failed or was stopped.
        Failed = "failed",
    }
}

impl FetchJobStatus {
    /// Whether the job (its latest attempt) has reached an end state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Partial | Self::Failed)
    }

    /// The end state of an attempt after which `days_done` days are fetched and
    /// `days_failed` failed: completed, partial, or failed when nothing was fetched.
    pub fn settled(days_done: u32, days_failed: u32) -> Self {
        match (days_done, days_failed) {
            (_, 0) => Self::Completed,
            (0, _) => Self::Failed,
            _ => Self::Partial,
        }
    }
}

named_enum! {
    /// Where one day of a job stands (`fiche_fetch_job_days.status`).
    FetchDayStatus {
        /// Waiting for its attempt's child.
        Pending = "pending",
        /// Being fetched (not recorded by the workflow; kept for the schema).
        Running = "running",
        /// Fetched; its counts are recorded.
        Completed = "completed",
        /// Failed after its retries (the reason is recorded).
        Failed = "failed",
    }
}

/// Why a range is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// `to` is before `from`.
    #[error("`to` ({to}) is before `from` ({from})")]
    Reversed {
        /// Start.
        from: NaiveDate,
        /// End.
        to: NaiveDate,
    },
    /// The range is longer than [`MAX_RANGE_DAYS`].
    #[error("the range covers {days} days; at most {max} (three years) are allowed")]
    TooLong {
        /// Days asked for.
        days: i64,
        /// Days allowed.
        max: u32,
    },
}

/// The number of days from `from` to `to`, both included, when the range is allowed.
pub fn range_days(from: NaiveDate, to: NaiveDate) -> Result<u32, RangeError> {
    if to < from {
        return Err(RangeError::Reversed { from, to });
    }
    let days = (to - from).num_days() + 1;
    match u32::try_from(days) {
        Ok(n) if n <= MAX_RANGE_DAYS => Ok(n),
        _ => Err(RangeError::TooLong {
            days,
            max: MAX_RANGE_DAYS,
        }),
    }
}

/// Whether a fiche of `groupe` is selected by `groupes` (empty: every fiche).
pub fn selects(groupes: &[String], groupe: Option<&str>) -> bool {
    groupes.is_empty() || groupe.is_some_and(|g| groupes.iter().any(|s| s == g))
}

/// The days an attempt fetches: the whole range (first attempt), or the days a retry
/// redoes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum FetchDays {
    /// Every day from `from` to `to`, both included.
    Range {
        /// First day.
        from: NaiveDate,
        /// Last day.
        to: NaiveDate,
    },
    /// These days, in order.
    Listed(Vec<NaiveDate>),
}

impl FetchDays {
    /// How many days.
    pub fn len(&self) -> u32 {
        match self {
            Self::Range { from, to } => range_days(*from, *to).unwrap_or(0),
            Self::Listed(days) => u32::try_from(days.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether there is no day at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th day (from 0).
    pub fn day(&self, i: u32) -> Option<NaiveDate> {
        if i >= self.len() {
            return None;
        }
        match self {
            Self::Range { from, .. } => from.checked_add_days(chrono::Days::new(u64::from(i))),
            Self::Listed(days) => days.get(usize::try_from(i).ok()?).copied(),
        }
    }
}

/// What a job has processed so far (carried across continue-as-new).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FetchTotals {
    /// Days fetched.
    pub days_done: u32,
    /// Days failed.
    pub days_failed: u32,
    /// Sales found (matching `groupes`).
    pub found: u32,
    /// Fiche details stored.
    pub fetched: u32,
    /// Fiche detail fetches that failed.
    pub failed: u32,
}

impl FetchTotals {
    /// Adds one day's outcome.
    pub fn add(&mut self, outcome: &DayOutcome) {
        match outcome {
            DayOutcome::Completed(c) => {
                self.days_done += 1;
                self.found += c.found;
                self.fetched += c.fetched;
                self.failed += c.failed;
            }
            DayOutcome::Failed { .. } => self.days_failed += 1,
        }
    }
}

/// Input of `ProgressiveFetchWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgressiveFetchInput {
    /// `fiche_fetch_jobs.id`.
    pub job_id: String,
    /// 1 for the first run of the job, n for its (n-1)-th retry.
    pub attempt: u32,
    /// The days this attempt fetches.
    pub days: FetchDays,
    /// Only fiches of these groups (empty: all).
    pub groupes: Vec<String>,
    /// Fetch details again even when cached (at most once per cooldown per fiche).
    pub force_refresh: bool,
    /// Days fetched at once ([`DAY_WINDOW`]).
    pub day_window: u32,
    /// Detail fetches per day at once ([`FICHE_WINDOW`]).
    pub fiche_window: u32,
    /// Days per run before continuing as new ([`DAYS_PER_RUN`]).
    pub days_per_run: u32,
    /// Days of `days` processed by the earlier runs of this attempt.
    pub cursor: u32,
    /// What those runs processed.
    pub totals: FetchTotals,
}

/// Output of `ProgressiveFetchWorkflow` (its last run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgressiveFetchOutput {
    /// Job id.
    pub job_id: String,
    /// Attempt.
    pub attempt: u32,
    /// How the job ended.
    pub status: FetchJobStatus,
    /// What the attempt processed.
    pub totals: FetchTotals,
}

/// Where an attempt stands (the `progress` query of `ProgressiveFetchWorkflow`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FetchProgress {
    /// Attempt.
    pub attempt: u32,
    /// Days of the attempt.
    pub days_total: u32,
    /// Days whose child has been started (all runs).
    pub days_started: u32,
    /// Outcomes recorded on the job row (all runs).
    pub totals: FetchTotals,
}

/// Input of `DayFetchWorkflow`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DayFetchInput {
    /// Job id.
    pub job_id: String,
    /// Attempt of the job.
    pub attempt: u32,
    /// The day.
    pub day: NaiveDate,
    /// Only fiches of these groups (empty: all).
    pub groupes: Vec<String>,
    /// Fetch details again even when cached.
    pub force_refresh: bool,
    /// Detail fetches at once.
    pub fiche_window: u32,
}

/// What one day processed (output of `DayFetchWorkflow`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DayCounts {
    /// The day.
    pub day: NaiveDate,
    /// Sales with calls found that day (matching `groupes`).
    pub found: u32,
    /// Their details stored.
    pub fetched: u32,
    /// Detail fetches that failed after their retries.
    pub failed: u32,
}

/// Input of `fetch_job.search_day`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SearchDayInput {
    /// Job id (logs).
    pub job_id: String,
    /// The day searched.
    pub day: NaiveDate,
    /// Only fiches of these groups (empty: all).
    pub groupes: Vec<String>,
}

/// What `fetch_job.search_day` returns: the sales of the day selected by `groupes`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DaySales {
    /// The day.
    pub day: NaiveDate,
    /// Sales with calls the CRM listed (every group; all stored as partial fiches).
    pub listed: u32,
    /// Ids of those selected by `groupes`, in CRM order.
    pub fiche_ids: Vec<String>,
}

/// How one day of an attempt ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum DayOutcome {
    /// Fetched.
    Completed(DayCounts),
    /// Failed after its retries.
    Failed {
        /// The day.
        day: NaiveDate,
        /// Why (root cause; sanitised).
        error: String,
    },
}

impl DayOutcome {
    /// The day.
    pub fn day(&self) -> NaiveDate {
        match self {
            Self::Completed(c) => c.day,
            Self::Failed { day, .. } => *day,
        }
    }
}

/// Input of `fetch_job.record_day`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordDayInput {
    /// Job id.
    pub job_id: String,
    /// Attempt.
    pub attempt: u32,
    /// The day's outcome.
    pub outcome: DayOutcome,
}

/// An attempt of a job (`fetch_job.start`, `fetch_job.finish`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobAttempt {
    /// Job id.
    pub job_id: String,
    /// Attempt.
    pub attempt: u32,
}

/// What `fetch_job.finish` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FetchJobFinished {
    /// How the job ended.
    pub status: FetchJobStatus,
    /// Days still failed (all attempts).
    pub failed_days: Vec<NaiveDate>,
}

/// Input of `fetch_job.fail`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FetchJobFailure {
    /// Job id.
    pub job_id: String,
    /// Attempt.
    pub attempt: u32,
    /// Why (sanitised).
    pub error: String,
}

/// Counts of a job as its events report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Days of the range.
    pub days_total: u32,
    /// Days fetched.
    pub days_done: u32,
    /// Days failed.
    pub days_failed: u32,
    /// Sales found.
    pub found: u32,
    /// Details stored.
    pub fetched: u32,
    /// Detail fetches failed.
    pub failed: u32,
}

impl JobCounts {
    fn json(&self) -> Value {
        json!({
            "days_total": self.days_total,
            "days_done": self.days_done,
            "days_failed": self.days_failed,
            "fiches_found": self.found,
            "fiches_fetched": self.fetched,
            "fiches_failed": self.failed,
        })
    }
}

/// The events of a job's stream (topic `fetch-job:{job_id}`).
#[derive(Debug, Clone, PartialEq)]
pub enum FetchJobEvent {
    /// `fetch_job.started`: an attempt began (the first run, or a retry of failed days).
    Started {
        /// Job id.
        job_id: String,
        /// Attempt (1, then 2… for retries).
        attempt: u32,
        /// First day of the job.
        from: NaiveDate,
        /// Last day of the job.
        to: NaiveDate,
        /// Days this attempt fetches.
        days: u32,
    },
    /// `fetch_job.day.completed`: a day was fetched.
    DayCompleted {
        /// Job id.
        job_id: String,
        /// Attempt.
        attempt: u32,
        /// What the day processed.
        counts: DayCounts,
    },
    /// `fetch_job.day.failed`: a day failed after its retries.
    DayFailed {
        /// Job id.
        job_id: String,
        /// Attempt.
        attempt: u32,
        /// The day.
        day: NaiveDate,
        /// Why.
        error: String,
    },
    /// `fetch_job.completed`: the attempt ended, `completed` or `partial` (terminal).
    Completed {
        /// Job id.
        job_id: String,
        /// Attempt.
        attempt: u32,
        /// `completed` or `partial`.
        status: FetchJobStatus,
        /// The job's counts.
        counts: JobCounts,
        /// Days still failed.
        failed_days: Vec<NaiveDate>,
    },
    /// `fetch_job.failed`: the attempt ended failed — every day failed, or its workflow
    /// failed or was stopped (terminal).
    Failed {
        /// Job id.
        job_id: String,
        /// Attempt.
        attempt: u32,
        /// Why.
        error: String,
        /// The job's counts.
        counts: JobCounts,
        /// Days still failed.
        failed_days: Vec<NaiveDate>,
    },
}

impl FetchJobEvent {
    /// `fetch_job.started`.
    pub const STARTED: &'static str = "fetch_job.started";
    /// `fetch_job.day.completed`.
    pub const DAY_COMPLETED: &'static str = "fetch_job.day.completed";
    /// `fetch_job.day.failed`.
    pub const DAY_FAILED: &'static str = "fetch_job.day.failed";
    /// `fetch_job.completed`.
    pub const COMPLETED: &'static str = "fetch_job.completed";
    /// `fetch_job.failed`.
    pub const FAILED: &'static str = "fetch_job.failed";

    fn ids(&self) -> (&str, u32) {
        match self {
            Self::Started {
                job_id, attempt, ..
            }
            | Self::DayCompleted {
                job_id, attempt, ..
            }
            | Self::DayFailed {
                job_id, attempt, ..
            }
            | Self::Completed {
                job_id, attempt, ..
            }
            | Self::Failed {
                job_id, attempt, ..
            } => (job_id, *attempt),
        }
    }
}

/// Types that end an attempt of a job.
pub const FETCH_JOB_TERMINAL: &[&str] = &[FetchJobEvent::COMPLETED, FetchJobEvent::FAILED];

/// When a job's stream ends: once every attempt it started has ended (a retry started
/// after the first end reopens it).
pub const FETCH_JOB_STREAM_END: StreamEnd = StreamEnd {
    terminal: FETCH_JOB_TERMINAL,
    opens: &[FetchJobEvent::STARTED],
    closes: FETCH_JOB_TERMINAL,
};

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn days(ds: &[NaiveDate]) -> Vec<String> {
    ds.iter().copied().map(day).collect()
}

impl DomainEvent for FetchJobEvent {
    fn kind(&self) -> &'static str {
        match self {
            Self::Started { .. } => Self::STARTED,
            Self::DayCompleted { .. } => Self::DAY_COMPLETED,
            Self::DayFailed { .. } => Self::DAY_FAILED,
            Self::Completed { .. } => Self::COMPLETED,
            Self::Failed { .. } => Self::FAILED,
        }
    }

    fn topic(&self) -> String {
        ids::fetch_job_topic(self.ids().0)
    }

    fn dedupe_key(&self) -> String {
        let (id, attempt) = self.ids();
        let fact = match self {
            Self::Started { .. } => "started".to_string(),
            Self::DayCompleted { counts, .. } => format!("day:{}", day(counts.day)),
            Self::DayFailed { day: d, .. } => format!("day:{}", day(*d)),
            Self::Completed { .. } | Self::Failed { .. } => "ended".to_string(),
        };
        format!("fetch-job:{id}:attempt:{attempt}:{fact}")
    }

    fn payload(&self) -> Value {
        match self {
            Self::Started {
                job_id,
                attempt,
                from,
                to,
                days,
            } => json!({
                "job_id": job_id, "attempt": attempt, "from": day(*from), "to": day(*to),
                "days": days,
            }),
            Self::DayCompleted {
                job_id,
                attempt,
                counts,
            } => json!({
                "job_id": job_id, "attempt": attempt, "day": day(counts.day),
                "found": counts.found, "fetched": counts.fetched, "failed": counts.failed,
            }),
            Self::DayFailed {
                job_id,
                attempt,
                day: d,
                error,
            } => json!({"job_id": job_id, "attempt": attempt, "day": day(*d), "error": error}),
            Self::Completed {
                job_id,
                attempt,
                status,
                counts,
                failed_days,
            } => json!({
                "job_id": job_id, "attempt": attempt, "status": status,
                "counts": counts.json(), "failed_days": days(failed_days),
            }),
            Self::Failed {
                job_id,
                attempt,
                error,
                counts,
                failed_days,
            } => json!({
                "job_id": job_id, "attempt": attempt, "status": FetchJobStatus::Failed,
                "error": error, "counts": counts.json(), "failed_days": days(failed_days),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::StreamTally;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_range_counts_both_ends_and_is_refused_reversed_or_longer_than_three_years() {
        assert_eq!(range_days(d("2026-11-01"), d("2026-11-10")), Ok(10));
        assert_eq!(range_days(d("2026-11-01"), d("2026-11-01")), Ok(1));
        assert_eq!(range_days(d("2024-01-01"), d("2027-01-01")), Ok(1097));
        assert_eq!(range_days(d("2024-01-01"), d("2027-01-02")), Ok(1098));
        assert_eq!(
            range_days(d("2024-01-01"), d("2027-01-03")),
            Err(RangeError::TooLong {
                days: 1099,
                max: 1098
            })
        );
        assert_eq!(
            range_days(d("2026-11-10"), d("2026-11-01")),
            Err(RangeError::Reversed {
                from: d("2026-11-10"),
                to: d("2026-11-01")
            })
        );
    }

    #[test]
    fn the_days_of_a_range_or_a_list_are_taken_in_order() {
        let range = FetchDays::Range {
            from: d("2026-02-27"),
            to: d("2026-03-02"),
        };
        assert_eq!(range.len(), 4);
        assert_eq!(range.day(2), Some(d("2026-03-01")));
        assert_eq!(range.day(4), None);
        let listed = FetchDays::Listed(vec![d("2026-11-04"), d("2026-11-09")]);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed.day(1), Some(d("2026-11-09")));
        assert!(FetchDays::Listed(vec![]).is_empty());
    }

    #[test]
    fn an_attempt_ends_completed_partial_or_failed_and_groupes_select_fiches() {
        assert_eq!(FetchJobStatus::settled(10, 0), FetchJobStatus::Completed);
        assert_eq!(FetchJobStatus::settled(9, 1), FetchJobStatus::Partial);
        assert_eq!(FetchJobStatus::settled(0, 3), FetchJobStatus::Failed);
        assert_eq!(FetchJobStatus::settled(0, 0), FetchJobStatus::Completed);
        let nca = vec!["NCA".to_string()];
        assert!(selects(&[], None));
        assert!(selects(&nca, Some("NCA")));
        assert!(!selects(&nca, Some("MDP")));
        assert!(!selects(&nca, None));
    }

    #[test]
    fn a_job_stream_ends_once_every_started_attempt_ended() {
        let end = FETCH_JOB_STREAM_END;
        let mut t = StreamTally::default();
        end.count(&mut t, FetchJobEvent::STARTED);
        end.count(&mut t, FetchJobEvent::DAY_COMPLETED);
        assert!(!t.settled());
        end.count(&mut t, FetchJobEvent::COMPLETED);
        assert!(t.settled(), "first attempt ended");
        end.count(&mut t, FetchJobEvent::STARTED);
        assert!(!t.settled(), "a retry reopened it");
        end.count(&mut t, FetchJobEvent::FAILED);
        assert!(t.settled(), "the retry ended");
    }

    #[test]
    fn each_fact_of_an_attempt_has_one_key_on_the_job_topic() {
        let e = FetchJobEvent::DayCompleted {
            job_id: "j1".into(),
            attempt: 2,
            counts: DayCounts {
                day: d("2026-11-04"),
                found: 3,
                fetched: 2,
                failed: 1,
            },
        };
        assert_eq!(e.kind(), "fetch_job.day.completed");
        assert_eq!(e.topic(), "fetch-job:j1");
        assert_eq!(e.dedupe_key(), "fetch-job:j1:attempt:2:day:2026-11-04");
        assert_eq!(e.payload()["day"], "2026-11-04");
        assert_eq!(e.payload()["fetched"], 2);
        let done = FetchJobEvent::Completed {
            job_id: "j1".into(),
            attempt: 1,
            status: FetchJobStatus::Partial,
            counts: JobCounts {
                days_total: 10,
                days_done: 9,
                days_failed: 1,
                ..JobCounts::default()
            },
            failed_days: vec![d("2026-11-04")],
        };
        assert_eq!(done.dedupe_key(), "fetch-job:j1:attempt:1:ended");
        assert_eq!(done.payload()["status"], "partial");
        assert_eq!(done.payload()["failed_days"][0], "2026-11-04");
        assert_eq!(done.payload()["counts"]["days_failed"], 1);
    }
}
