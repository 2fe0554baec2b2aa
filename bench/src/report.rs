//! The bench's figures: computed from raw measurements, printed as a table or as JSON.

use serde::Serialize;
use std::time::Duration;

/// The shape of one audit, the same in both runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Shape {
    /// Steps of the configuration (one step child each).
    pub steps: u32,
    /// Recordings per fiche (one transcription child each).
    pub recordings: u32,
    /// Steps run at once.
    pub step_parallelism: u32,
}

/// How an audit of a [`Shape`] runs in Temporal: the two forms of `AuditWorkflow`, before
/// and after its `audit-fewer-round-trips` patch. The project's new audits always take
/// the lean form; the bare baseline takes either (`--bare-shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// One transcription child per recording, every database activity a normal one.
    Children,
    /// Transcriptions as activities of the parent, start and finalize local activities.
    Lean,
}

impl Shape {
    /// Parent + one child per step, + one child per recording in the `Children` form.
    pub fn workflow_executions(&self, form: Form) -> u32 {
        match form {
            Form::Children => 1 + self.recordings + self.steps,
            Form::Lean => 1 + self.steps,
        }
    }

    /// start + ensure fiche + one per recording + one per step + finalize, local ones
    /// included.
    pub fn activities(&self) -> u32 {
        3 + self.recordings + self.steps
    }

    /// Of which local activities (start and finalize in the `Lean` form).
    pub fn local_activities(&self, form: Form) -> u32 {
        match form {
            Form::Children => 0,
            Form::Lean => 2,
        }
    }
}

/// What one run measured, before any arithmetic.
#[derive(Debug, Clone)]
pub struct Measured {
    /// From the first submission to the last completion.
    pub wall: Duration,
    /// Per audit, from its submission to its observed completion.
    pub latencies: Vec<Duration>,
    /// Worker CPU seconds spent during the batch.
    pub worker_cpu_s: f64,
    /// Worker peak RSS (whole life of the process), bytes.
    pub worker_peak_rss_bytes: u64,
    /// Temporal server CPU seconds during the batch, when its pid is known.
    pub temporal_cpu_s: Option<f64>,
    /// CPU seconds of this process (api + simulators + driver) during the batch.
    pub bench_process_cpu_s: f64,
    /// Of which the simulators' threads (project run).
    pub simulators_cpu_s: Option<f64>,
    /// CPU seconds of the local Postgres backends serving the run's database.
    pub postgres_cpu_s: Option<f64>,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    /// The form its audits took.
    pub form: Form,
    /// Audits completed.
    pub audits: usize,
    /// Batch wall time, s.
    pub wall_s: f64,
    /// Audits completed per second of wall time.
    pub audits_per_s: f64,
    /// Workflow executions (parents + children) completed per second.
    pub workflow_executions_per_s: f64,
    /// Activities completed per second.
    pub activities_per_s: f64,
    /// Median latency per audit, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest audit, ms.
    pub max_ms: f64,
    /// Worker peak resident memory, MiB.
    pub worker_peak_rss_mib: f64,
    /// Worker CPU seconds per audit.
    pub worker_cpu_s_per_audit: f64,
    /// Temporal server CPU seconds per audit (when `--temporal-pid` is given).
    pub temporal_cpu_s_per_audit: Option<f64>,
    /// CPU seconds per audit of the bench process (api + simulators + driver).
    pub bench_process_cpu_s_per_audit: f64,
    /// Of which the simulators (upstream vendors: not ours, but on the same cores).
    pub simulators_cpu_s_per_audit: Option<f64>,
    /// CPU seconds per audit of the Postgres backends of the run's database (project run,
    /// local Postgres only).
    pub postgres_cpu_s_per_audit: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0, 1)
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

impl RunFigures {
    /// Figures of a run of audits of `shape` in `form`.
    pub fn from_measured(shape: Shape, form: Form, m: &Measured) -> Self {
        let n = m.latencies.len();
        let mut sorted = m.latencies.clone();
        sorted.sort();
        let wall_s = m.wall.as_secs_f64().max(1e-9);
        let per_audit = |x: f64| round(x / n.max(1) as f64, 4);
        RunFigures {
            form,
            audits: n,
            wall_s: round(wall_s, 2),
            audits_per_s: round(n as f64 / wall_s, 3),
            workflow_executions_per_s: round(
                (n * shape.workflow_executions(form) as usize) as f64 / wall_s,
                2,
            ),
            activities_per_s: round((n * shape.activities() as usize) as f64 / wall_s, 2),
            p50_ms: ms(percentile(&sorted, 50.0)),
            p95_ms: ms(percentile(&sorted, 95.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            max_ms: ms(sorted.last().copied().unwrap_or_default()),
            worker_peak_rss_mib: round(m.worker_peak_rss_bytes as f64 / (1024.0 * 1024.0), 1),
            worker_cpu_s_per_audit: per_audit(m.worker_cpu_s),
            temporal_cpu_s_per_audit: m.temporal_cpu_s.map(per_audit),
            bench_process_cpu_s_per_audit: per_audit(m.bench_process_cpu_s),
            simulators_cpu_s_per_audit: m.simulators_cpu_s.map(per_audit),
            postgres_cpu_s_per_audit: m.postgres_cpu_s.map(per_audit),
        }
    }
}

/// Everything `callaudit bench` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Audits per run.
    pub audits: usize,
    /// Audits in flight at once.
    pub concurrency: usize,
    /// The audit shape.
    pub shape: Shape,
    /// Parent + children per audit, project run (the lean form).
    pub workflow_executions_per_audit: u32,
    /// Activities per audit (local ones included).
    pub activities_per_audit: u32,
    /// Of which local activities, project run.
    pub local_activities_per_audit: u32,
    /// The form the bare runs took (`--bare-shape`), when one ran.
    pub bare_form: Option<Form>,
    /// Parent + children per audit, bare runs.
    pub bare_workflow_executions_per_audit: Option<u32>,
    /// Local activities per audit, bare runs.
    pub bare_local_activities_per_audit: Option<u32>,
    /// Temporal frontend used.
    pub temporal_address: String,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// The real thing: api, worker, Postgres, simulators.
    pub project: Option<RunFigures>,
    /// Same shape, no-op activities, no database: the run before the project's.
    pub bare: Option<RunFigures>,
    /// The same baseline again, after the project's run (unless `--single-baseline`).
    pub bare_after: Option<RunFigures>,
    /// Baseline throughput: the mean audits/s of the bare runs, so a server that slows
    /// down as its in-memory history grows favours neither side.
    pub baseline_audits_per_s: Option<f64>,
    /// project audits/s ÷ baseline audits/s.
    pub ratio: Option<f64>,
    /// The ratio the project must reach.
    pub target_ratio: f64,
    /// Whether it does.
    pub target_met: Option<bool>,
}

/// Project throughput must be at least this fraction of the bare one.
pub const TARGET_RATIO: f64 = 0.8;

impl BenchReport {
    /// Assembles the report; the ratio needs the project run and a bare one.
    pub fn new(
        audits: usize,
        concurrency: usize,
        shape: Shape,
        temporal_address: String,
        project: Option<RunFigures>,
        bare: Option<RunFigures>,
        bare_after: Option<RunFigures>,
    ) -> Self {
        let baselines: Vec<f64> = [&bare, &bare_after]
            .into_iter()
            .flatten()
            .map(|b| b.audits_per_s)
            .collect();
        let baseline_audits_per_s = (!baselines.is_empty())
            .then(|| round(baselines.iter().sum::<f64>() / baselines.len() as f64, 3));
        let bare_form = bare.as_ref().or(bare_after.as_ref()).map(|b| b.form);
        let ratio = match (&project, baseline_audits_per_s) {
            (Some(p), Some(b)) if b > 0.0 => Some(round(p.audits_per_s / b, 3)),
            _ => None,
        };
        BenchReport {
            audits,
            concurrency,
            shape,
            workflow_executions_per_audit: shape.workflow_executions(Form::Lean),
            activities_per_audit: shape.activities(),
            local_activities_per_audit: shape.local_activities(Form::Lean),
            bare_form,
            bare_workflow_executions_per_audit: bare_form.map(|f| shape.workflow_executions(f)),
            bare_local_activities_per_audit: bare_form.map(|f| shape.local_activities(f)),
            temporal_address,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            project,
            bare,
            bare_after,
            baseline_audits_per_s,
            ratio,
            target_ratio: TARGET_RATIO,
            target_met: ratio.map(|r| r >= TARGET_RATIO),
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "callaudit bench: {} audits per run, {} in flight, {} steps ({} at once) + {} \
             recordings per audit = {} activities; project: {} workflow executions, {} of \
             the activities local; bare ({} form): {} workflow executions, {} local; \
             Temporal {}; {} CPUs",
            self.audits,
            self.concurrency,
            self.shape.steps,
            self.shape.step_parallelism,
            self.shape.recordings,
            self.activities_per_audit,
            self.workflow_executions_per_audit,
            self.local_activities_per_audit,
            self.bare_form
                .map_or("-", |f| if f == Form::Lean { "lean" } else { "children" }),
            self.bare_workflow_executions_per_audit
                .map_or("-".into(), |n| n.to_string()),
            self.bare_local_activities_per_audit
                .map_or("-".into(), |n| n.to_string()),
            self.temporal_address,
            self.cpus
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<34} {:>12} {:>12} {:>12}",
            "", "project", "bare", "bare after"
        );
        /// One row: a label and how to print a run's value (None: not measured).
        type Row = (&'static str, fn(&RunFigures) -> Option<String>);
        let rows: [Row; 14] = [
            ("audits", |r| Some(r.audits.to_string())),
            ("wall s", |r| Some(format!("{:.2}", r.wall_s))),
            ("audits/s", |r| Some(format!("{:.3}", r.audits_per_s))),
            ("workflow executions/s", |r| {
                Some(format!("{:.2}", r.workflow_executions_per_s))
            }),
            ("activities/s", |r| {
                Some(format!("{:.2}", r.activities_per_s))
            }),
            ("p50 ms per audit", |r| Some(format!("{:.0}", r.p50_ms))),
            ("p95 ms per audit", |r| Some(format!("{:.0}", r.p95_ms))),
            ("p99 ms per audit", |r| Some(format!("{:.0}", r.p99_ms))),
            ("worker peak RSS MiB", |r| {
                Some(format!("{:.1}", r.worker_peak_rss_mib))
            }),
            ("worker CPU s/audit", |r| {
                Some(format!("{:.4}", r.worker_cpu_s_per_audit))
            }),
            ("Temporal server CPU s/audit", |r| {
                r.temporal_cpu_s_per_audit.map(|c| format!("{c:.4}"))
            }),
            ("api + driver CPU s/audit (1)", |r| {
                let sim = r.simulators_cpu_s_per_audit.unwrap_or(0.0);
                Some(format!("{:.4}", r.bench_process_cpu_s_per_audit - sim))
            }),
            ("simulators CPU s/audit", |r| {
                r.simulators_cpu_s_per_audit.map(|c| format!("{c:.4}"))
            }),
            ("Postgres backends CPU s/audit", |r| {
                r.postgres_cpu_s_per_audit.map(|c| format!("{c:.4}"))
            }),
        ];
        let cell = |run: &Option<RunFigures>, f: fn(&RunFigures) -> Option<String>| {
            run.as_ref().and_then(f).unwrap_or_else(|| "-".into())
        };
        for (label, f) in rows {
            let _ = writeln!(
                out,
                "{:<34} {:>12} {:>12} {:>12}",
                label,
                cell(&self.project, f),
                cell(&self.bare, f),
                cell(&self.bare_after, f)
            );
        }
        let _ = writeln!(out);
        match (self.ratio, self.target_met, self.baseline_audits_per_s) {
            (Some(r), Some(met), Some(b)) => {
                let _ = writeln!(
                    out,
                    "ratio project/bare (audits/s, baseline {b:.3} = mean of the bare runs): \
                     {r:.3} — target ≥ {:.2}: {}",
                    self.target_ratio,
                    if met { "MET" } else { "NOT MET" }
                );
            }
            _ => {
                let _ = writeln!(out, "ratio project/bare: - (one run was skipped)");
            }
        }
        let _ = writeln!(
            out,
            "(1) in the bench process; bare: the driver (Temporal client) only."
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|ms| Duration::from_millis(*ms)).collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted = secs(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 95.0), Duration::from_millis(95));
        assert_eq!(percentile(&sorted, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&secs(&[7]), 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn an_audit_of_six_steps_and_two_recordings_is_nine_executions_and_eleven_activities() {
        let shape = Shape {
            steps: 6,
            recordings: 2,
            step_parallelism: 3,
        };
        assert_eq!(shape.workflow_executions(Form::Children), 9);
        assert_eq!(shape.local_activities(Form::Children), 0);
        // Lean: no transcription children; start and finalize local.
        assert_eq!(shape.workflow_executions(Form::Lean), 7);
        assert_eq!(shape.local_activities(Form::Lean), 2);
        assert_eq!(shape.activities(), 11);
    }

    #[test]
    fn the_ratio_compares_audits_per_second_and_checks_the_target() {
        let shape = Shape {
            steps: 6,
            recordings: 2,
            step_parallelism: 3,
        };
        let run = |wall_s: u64| {
            RunFigures::from_measured(
                shape,
                Form::Children,
                &Measured {
                    wall: Duration::from_secs(wall_s),
                    latencies: secs(&[100; 10]),
                    worker_cpu_s: 1.0,
                    worker_peak_rss_bytes: 64 << 20,
                    temporal_cpu_s: None,
                    bench_process_cpu_s: 0.5,
                    simulators_cpu_s: None,
                    postgres_cpu_s: None,
                },
            )
        };
        let project = run(10);
        assert_eq!(project.audits_per_s, 1.0);
        assert_eq!(project.workflow_executions_per_s, 9.0);
        assert_eq!(project.worker_peak_rss_mib, 64.0);
        assert_eq!(project.worker_cpu_s_per_audit, 0.1);
        let report = BenchReport::new(
            10,
            2,
            shape,
            "x".into(),
            Some(project),
            Some(run(8)),
            Some(run(12)),
        );
        // baseline: mean of 1.25 and 0.833… audits/s
        assert_eq!(report.baseline_audits_per_s, Some(1.042));
        assert_eq!(report.ratio, Some(0.96));
        assert_eq!(report.target_met, Some(true));
        assert_eq!(report.bare_form, Some(Form::Children));
        assert_eq!(report.bare_workflow_executions_per_audit, Some(9));
        assert!(report.table().contains("MET"));
        let alone = BenchReport::new(10, 2, shape, "x".into(), None, Some(run(8)), None);
        assert_eq!((alone.ratio, alone.target_met), (None, None));
    }
}
