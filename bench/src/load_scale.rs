//! `callaudit bench worker` and `callaudit bench scale`: the real stack (api and worker
//! as child processes, Postgres, the simulators at zero latency) auditing distinct
//! generated fiches with a fixed number of audits in flight, each followed on its SSE
//! stream to `audit.completed`. Every level gets a fresh database, api and worker, so the
//! worker's peak RSS (`VmHWM`) is that level's.

use crate::BenchArgs;
use crate::load_args::{ScaleLoadArgs, WorkerLoadArgs};
use crate::load_machine::{Machine, mib, percentile_ms, round};
use crate::load_stack::{Client, CpuWindow, Services};
use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The `i`-th generated fiche of the simulator (from 1).
pub(crate) fn fiche_id(i: usize) -> String {
    format!("FICHE-GEN-{i}")
}

/// The figures of one level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelFigures {
    /// Audits in flight at once.
    pub in_flight: usize,
    /// Audits completed.
    pub audits: usize,
    /// First submission → last completion, s.
    pub wall_s: f64,
    /// Audits per second of wall time.
    pub audits_per_s: f64,
    /// Median audit latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worker CPU seconds per audit.
    pub worker_cpu_s_per_audit: f64,
    /// Worker peak resident memory, MiB.
    pub worker_peak_rss_mib: f64,
    /// api CPU seconds per audit.
    pub api_cpu_s_per_audit: f64,
    /// Temporal server CPU seconds per audit (with `--temporal-pid`).
    pub temporal_cpu_s_per_audit: Option<f64>,
    /// Postgres backends of the run's database, CPU seconds per audit.
    pub postgres_cpu_s_per_audit: f64,
}

/// What `bench worker` and `bench scale` print.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// Where it ran.
    pub machine: Machine,
    /// Steps analysed at once per audit.
    pub step_parallelism: u32,
    /// One row per level.
    pub levels: Vec<LevelFigures>,
    /// `bench worker`: the peak RSS target, MiB.
    pub worker_rss_target_mib: Option<f64>,
    /// Whether every level met it.
    pub worker_rss_target_met: Option<bool>,
}

/// Worker peak RSS target with 200 audits in flight (issue 12).
pub const WORKER_RSS_TARGET_MIB: f64 = 150.0;

pub(crate) async fn worker(
    parent: &BenchArgs,
    admin_url: &str,
    args: &WorkerLoadArgs,
) -> anyhow::Result<ScaleReport> {
    let mut machine = Machine::now();
    let audits = args.audits.unwrap_or(args.in_flight);
    let level = level(parent, admin_url, args.in_flight, audits).await?;
    machine.finish();
    let met = level.worker_peak_rss_mib < WORKER_RSS_TARGET_MIB;
    Ok(ScaleReport {
        machine,
        step_parallelism: parent.step_parallelism,
        levels: vec![level],
        worker_rss_target_mib: Some(WORKER_RSS_TARGET_MIB),
        worker_rss_target_met: Some(met),
    })
}

pub(crate) async fn scale(
    parent: &BenchArgs,
    admin_url: &str,
    args: &ScaleLoadArgs,
) -> anyhow::Result<ScaleReport> {
    let mut machine = Machine::now();
    let mut levels = Vec::new();
    for &in_flight in &args.levels {
        let audits = args.audits.unwrap_or((2 * in_flight).max(20));
        levels.push(level(parent, admin_url, in_flight, audits).await?);
    }
    machine.finish();
    Ok(ScaleReport {
        machine,
        step_parallelism: parent.step_parallelism,
        levels,
        worker_rss_target_mib: None,
        worker_rss_target_met: None,
    })
}

async fn level(
    parent: &BenchArgs,
    admin_url: &str,
    in_flight: usize,
    audits: usize,
) -> anyhow::Result<LevelFigures> {
    if in_flight == 0 || audits == 0 {
        bail!("audits in flight and audits must be at least 1");
    }
    eprintln!("bench: {audits} audits, {in_flight} in flight");
    crate::load_machine::raise_open_files(u64::try_from(in_flight)? * 4 + 512)?;
    let sim =
        callaudit_sim::SimState::with_generated_fiches(callaudit_sim::SimConfig::default(), audits);
    let services = Services::start(
        admin_url,
        &parent.temporal_address,
        &parent.temporal_namespace,
        sim.clone(),
    )
    .await?;
    let api = services
        .api(parent.step_parallelism, in_flight + 64, vec![])
        .await?;
    let worker = services.worker(parent.step_parallelism).await?;
    let client = Client::login(&api, &services).await?;
    let config = client.sample_config().await?;
    client
        .wait_until_events_flow(&services.db.url, config)
        .await?;

    let window = CpuWindow::start(
        &[
            ("worker", Some(worker.pid)),
            ("api", Some(api.pid)),
            ("temporal", parent.temporal_pid),
        ],
        Some(&services.db.name),
    );
    let started = Instant::now();
    let batch = futures::stream::iter(1..=audits)
        .map(|i| {
            let client = &client;
            async move {
                client
                    .audit(config, &fiche_id(i), false)
                    .await
                    .map(|(_, d)| d)
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<Duration>>();
    let result = tokio::time::timeout(Duration::from_secs(parent.timeout_s), batch).await;
    let wall = started.elapsed();
    let cpu = window.finish();
    let peak = crate::procstat::sample(worker.pid).map(|s| s.peak_rss_bytes);
    let tail = worker.tail();
    let stopped = worker.stop().await;
    let mut latencies = result
        .map_err(|_| anyhow::anyhow!("the batch did not finish within {} s", parent.timeout_s))?
        .with_context(|| format!("worker log (last lines):\n{tail}"))?;
    stopped?;
    api.stop().await?;
    drop(services);

    latencies.sort();
    let n = latencies.len();
    let per_audit = |label: &str| {
        cpu.cores
            .iter()
            .find(|(l, _)| l == label)
            .and_then(|(_, c)| *c)
            .map(|cores| round(cores * cpu.wall_s / n as f64, 4))
    };
    Ok(LevelFigures {
        in_flight,
        audits: n,
        wall_s: round(wall.as_secs_f64(), 2),
        audits_per_s: round(n as f64 / wall.as_secs_f64().max(1e-9), 3),
        p50_ms: percentile_ms(&latencies, 50.0),
        p99_ms: percentile_ms(&latencies, 99.0),
        worker_cpu_s_per_audit: per_audit("worker").unwrap_or(0.0),
        worker_peak_rss_mib: mib(peak?),
        api_cpu_s_per_audit: per_audit("api").unwrap_or(0.0),
        temporal_cpu_s_per_audit: per_audit("temporal"),
        postgres_cpu_s_per_audit: per_audit("postgres backends").unwrap_or(0.0),
    })
}

impl ScaleReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "callaudit bench scale: the real stack, 6-step sample configuration, 2 recordings \
             per fiche, {} steps at once per audit",
            self.step_parallelism
        );
        let _ = writeln!(out, "{}", self.machine.line());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>11} {:>11}",
            "in flight",
            "audits",
            "wall s",
            "audits/s",
            "p50 ms",
            "p99 ms",
            "worker CPU",
            "worker RSS",
            "api CPU",
            "Temporal",
            "Postgres"
        );
        let _ = writeln!(
            out,
            "{:>9} {:>7} {:>8} {:>9} {:>9} {:>9} {:>11} {:>10} {:>10} {:>11} {:>11}",
            "", "", "", "", "", "", "s/audit", "peak MiB", "s/audit", "CPU s/audit", "CPU s/audit"
        );
        for l in &self.levels {
            let _ = writeln!(
                out,
                "{:>9} {:>7} {:>8.2} {:>9.3} {:>9.0} {:>9.0} {:>11.4} {:>10.1} {:>10.4} {:>11} {:>11.4}",
                l.in_flight,
                l.audits,
                l.wall_s,
                l.audits_per_s,
                l.p50_ms,
                l.p99_ms,
                l.worker_cpu_s_per_audit,
                l.worker_peak_rss_mib,
                l.api_cpu_s_per_audit,
                l.temporal_cpu_s_per_audit
                    .map_or_else(|| "-".into(), |c| format!("{c:.4}")),
                l.postgres_cpu_s_per_audit
            );
        }
        if let (Some(target), Some(met)) = (self.worker_rss_target_mib, self.worker_rss_target_met)
        {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "worker peak RSS — target < {target:.0} MiB: {}",
                if met { "MET" } else { "NOT MET" }
            );
        }
        out
    }
}
