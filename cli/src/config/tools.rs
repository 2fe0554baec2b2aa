//! The arguments of the tool commands: the simulators, the demo, the gate and its bench,
//! the personal-data evaluation, and the bench's bare worker.

use super::{TemporalArgs, secret};
use callaudit_domain::secret::Secret;
use clap::Args;

/// `sim` arguments.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Listen address.
    #[arg(long, env = "SIM_ADDR", default_value = "127.0.0.1:9090")]
    pub sim_addr: String,
    /// Extra generated fiches (FICHE-GEN-n) besides the built-in ones.
    #[arg(long, default_value_t = 0)]
    pub generated_fiches: usize,
}

/// `demo` arguments.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Base URL of a running api.
    #[arg(long, env = "DEMO_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// Admin e-mail to log in with.
    #[arg(
        long,
        env = "AUTH_SEED_ADMIN_EMAIL",
        default_value = "admin@callaudit.local"
    )]
    pub email: String,
    /// Admin password.
    #[arg(long, env = "AUTH_SEED_ADMIN_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub password: Option<Secret>,
    /// Fiche to audit.
    #[arg(long, default_value = "FICHE-1001")]
    pub fiche_id: String,
    /// Audit in transcript-tools mode (the LLM reads the transcripts through tool calls).
    #[arg(long)]
    pub use_rlm: bool,
    /// Then run a batch audit of FICHE-1003, FICHE-1004 and FICHE-1005 (simulated CRM)
    /// and print its progress as it streams.
    #[arg(long)]
    pub batch: bool,
    /// Then create an automation schedule (MDP sales of the simulated CRM, two fiches),
    /// run it now, follow its run and read its Temporal Schedule back from Temporal.
    #[arg(long)]
    pub automation: bool,
    /// Temporal UI base URL.
    #[arg(long, env = "TEMPORAL_UI_URL", default_value = "http://localhost:8233")]
    pub temporal_ui_url: String,
    /// Temporal frontend address (with `--automation`: the schedule is read back there).
    #[arg(long, env = "TEMPORAL_ADDRESS", default_value = "127.0.0.1:7233")]
    pub temporal_address: String,
    /// Temporal namespace.
    #[arg(long, env = "TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
}

/// `gate` arguments.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Transcript JSON file(s): one transcript object or an array of them.
    #[arg(long, required = true)]
    pub transcript: Vec<std::path::PathBuf>,
    /// Analysis JSON file (the LLM's answer for one step).
    #[arg(long)]
    pub analysis: std::path::PathBuf,
    /// Step weight, to print the recomputed score.
    #[arg(long, default_value_t = 1.0)]
    pub weight: f64,
}

/// `gate-bench` arguments.
#[derive(Debug, Clone, Args)]
pub struct GateBenchArgs {
    /// Call lengths to generate, in minutes.
    #[arg(long, value_delimiter = ',', default_values_t = [16.0, 83.0, 120.0, 330.0])]
    pub minutes: Vec<f64>,
    /// Citations checked per call.
    #[arg(long, default_value_t = 36)]
    pub citations: usize,
    /// Seed of the generated calls and citations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Measure the indexed search only (the exhaustive one takes seconds on long calls).
    #[arg(long)]
    pub new_only: bool,
    /// Print each citation's kind, verdict and quote.
    #[arg(long)]
    pub verbose: bool,
}

/// `pii-eval` arguments.
#[derive(Debug, Clone, Args)]
pub struct PiiEvalArgs {
    /// Labelled set(s) in JSON lines to measure instead of the committed one.
    #[arg(long)]
    pub file: Vec<std::path::PathBuf>,
    /// Print the figures only, not each mistake.
    #[arg(long)]
    pub quiet: bool,
}

/// `bench` arguments (the bench's own crate owns its command line).
pub use callaudit_bench::BenchArgs;

/// `bench-bare-worker` arguments.
#[derive(Debug, Clone, Args)]
pub struct BareWorkerArgs {
    /// Max activities running at once (as `callaudit worker`).
    #[arg(long, env = "WORKER_MAX_CONCURRENT_ACTIVITIES", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub worker_max_concurrent_activities: u64,
    /// Seconds in-flight activities get to finish on SIGTERM.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub worker_shutdown_grace_s: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub temporal: TemporalArgs,
}
