//! The command line of `callaudit bench`.

use clap::Args;

/// `bench` arguments.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Audits per run (distinct fiches, 2 recordings each, the 6-step sample configuration).
    #[arg(short = 'n', long = "audits", default_value_t = 50)]
    pub audits: usize,
    /// Audits in flight at once (submission concurrency, the same for both runs).
    #[arg(short = 'c', long, env = "BENCH_CONCURRENCY", default_value_t = 10)]
    pub concurrency: usize,
    /// Steps analysed at once per audit, in both runs (as the api's AUDIT_STEP_PARALLELISM).
    #[arg(long, env = "AUDIT_STEP_PARALLELISM", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50), global = true)]
    pub step_parallelism: u32,
    /// Server-level Postgres URL: the bench creates its own database there and drops it.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// Temporal frontend (an in-memory dev server: see temporal-dev/bench.sh).
    #[arg(
        long,
        env = "TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233",
        global = true
    )]
    pub temporal_address: String,
    /// Namespace.
    #[arg(
        long,
        env = "TEMPORAL_NAMESPACE",
        default_value = "default",
        global = true
    )]
    pub temporal_namespace: String,
    /// Pid of the Temporal server, to report its CPU per audit too (Linux /proc).
    #[arg(long, env = "BENCH_TEMPORAL_PID", global = true)]
    pub temporal_pid: Option<u32>,
    /// Skip the bare baseline (no ratio).
    #[arg(long)]
    pub skip_bare: bool,
    /// Skip the project run (baseline only, no ratio).
    #[arg(long, conflicts_with = "skip_bare")]
    pub skip_project: bool,
    /// The baseline's form: `children`, the audit's shape before its
    /// `audit-fewer-round-trips` patch (one transcription child per recording, normal
    /// database activities: issue 12's target is measured against it), or `lean`, the
    /// shape the project's audits take now (what Temporal costs for them).
    #[arg(long, value_enum, default_value_t = crate::report::Form::Children)]
    pub bare_shape: crate::report::Form,
    /// Run the baseline once, before the project run (default: before and after).
    #[arg(long)]
    pub single_baseline: bool,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600, global = true)]
    pub timeout_s: u64,
    /// Print the figures as JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// A load mode (issue 12) instead of the throughput comparison. Of the flags above it
    /// takes the connection ones, `--step-parallelism`, `--json` and `--timeout-s`.
    #[command(subcommand)]
    pub load: Option<crate::LoadMode>,
}
