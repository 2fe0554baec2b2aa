//! The command line of the load modes: `callaudit bench api | sse | worker | scale | long`.
//! The connection flags (`--database-url`, `--temporal-address`, `--temporal-pid`) and
//! `--json`, `--timeout-s` are the parent command's (global).

use clap::{Args, Subcommand};

/// A load mode instead of the throughput comparison.
#[derive(Debug, Clone, Subcommand)]
pub enum LoadMode {
    /// `POST /api/audits/run` latency at N concurrent clients (the CRM pre-check served
    /// from cache) and `GET /api/audits/{id}` requests/s, on one api replica.
    Api(ApiLoadArgs),
    /// N concurrent SSE subscribers on one api replica: delay from an event's commit to
    /// its delivery, api CPU and memory.
    Sse(SseLoadArgs),
    /// Worker peak memory with N audits in flight.
    Worker(WorkerLoadArgs),
    /// Audits/s and worker CPU per audit at several numbers of audits in flight.
    Scale(ScaleLoadArgs),
    /// One long call (2 hours by default): prompt mode vs transcript-tools mode, tokens
    /// and time.
    Long(LongLoadArgs),
}

/// `bench api`.
#[derive(Debug, Clone, Args)]
pub struct ApiLoadArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// `POST /api/audits/run` requests in all.
    #[arg(long, default_value_t = 1000)]
    pub posts: usize,
    /// Fiches (audited once to completion first: their CRM details are cached, and their
    /// audits are what the GET phase reads).
    #[arg(long, default_value_t = 10)]
    pub fiches: usize,
    /// Seconds of `GET /api/audits/{id}`.
    #[arg(long, default_value_t = 10.0)]
    pub get_seconds: f64,
    /// Pause of each client between two requests, ms (0: back to back, the replica's
    /// capacity; e.g. 1000: N clients at about one request per second each).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
}

/// `bench sse`.
#[derive(Debug, Clone, Args)]
pub struct SseLoadArgs {
    /// Concurrent event streams.
    #[arg(long, default_value_t = 500)]
    pub subscribers: usize,
    /// Audits they follow (subscriber i follows audit i mod topics): 1 is the widest
    /// fan-out, `subscribers` one stream per audit.
    #[arg(long, default_value_t = 50)]
    pub topics: usize,
    /// Events committed per second, round robin over the audits.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// The api's `API_SSE_POLL_MS` (its default: 5000).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub poll_ms: u64,
}

/// `bench worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerLoadArgs {
    /// Audits in flight at once.
    #[arg(long, default_value_t = 200)]
    pub in_flight: usize,
    /// Audits in all (default: as many as in flight).
    #[arg(long)]
    pub audits: Option<usize>,
}

/// `bench scale`.
#[derive(Debug, Clone, Args)]
pub struct ScaleLoadArgs {
    /// Audits in flight, one level after the other.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50,200")]
    pub levels: Vec<usize>,
    /// Audits per level (default: twice the level, at least 20).
    #[arg(long)]
    pub audits: Option<usize>,
}

/// `bench long`.
#[derive(Debug, Clone, Args)]
pub struct LongLoadArgs {
    /// Length of the generated call, minutes (its transcript recombines the built-in
    /// calls end to end).
    #[arg(long, default_value_t = 120)]
    pub minutes: u32,
    /// Audits of each mode (one at a time).
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
}
