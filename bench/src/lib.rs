//! `callaudit bench`: how fast audits go through the real stack, next to what Temporal
//! alone costs for the same shape. Not part of the production code: the `callaudit` binary
//! only calls into this crate for its `bench` and `bench-bare-worker` subcommands.
//!
//! Two runs against one running Temporal server (an in-memory dev server: see
//! `temporal-dev/bench.sh`), each with its own task queue and its own worker **child
//! process** (so its peak RSS and CPU time can be read from `/proc` before it is stopped):
//!
//! * **bare**: `BareAuditWorkflow` — a parent, one child per recording, one child per step
//!   in a sliding window, the same activities with the same options — on no-op activities,
//!   started directly with the Temporal client, no database (`callaudit
//!   bench-bare-worker`);
//! * **project**: audits submitted through the real api (in this process, real HTTP) to a
//!   real `callaudit worker`, Postgres (a database created for the run and dropped after)
//!   and the simulators (in this process, zero latency), one distinct fiche per audit.
//!
//! Both submit N audits with the same bounded concurrency and time each from submission to
//! completion (the project's audits are followed on their SSE stream, as a UI would; the
//! bare ones with the client's long poll on the result); throughput is N over the batch's
//! wall time. The baseline runs before **and** after the project run and the ratio uses
//! its mean: an in-memory server slows down as its history grows, which must favour
//! neither side.
//!
//! Layout: `bare` (the baseline's workflows: deterministic, linted by `clippy.toml` like
//! `callaudit-workflows`), `bare_worker` (its no-op activities), `run` (the command),
//! `stack` (the simulators, the in-process api and the worker processes of a run),
//! `report` (the figures), `procstat` (`/proc` readings), `args` (its command line).
//!
//! Load modes (`callaudit bench api | sse | worker | scale | long`, issue 12): `load_args`
//! (their command lines), `load_run` (dispatch and printing), `load_stack` (a database,
//! the simulators, the api and the worker as child processes, an api client),
//! `load_machine` (the machine described), one `load_*` file per mode.

mod args;
pub mod bare;
pub mod bare_worker;
pub mod procstat;
pub mod report;
// The driver and the processes it runs, not workflow code: they time batches on the wall
// clock, spawn tasks and draw random run ids, which `clippy.toml` forbids to the
// workflows in `bare`.
#[allow(clippy::disallowed_methods)]
mod run;
#[allow(clippy::disallowed_methods)]
mod stack;
// The load modes (issue 12): drivers too, timed on the wall clock.
#[allow(clippy::disallowed_methods)]
pub mod load_api;
mod load_args;
#[allow(clippy::disallowed_methods)]
pub mod load_long;
pub mod load_machine;
mod load_run;
#[allow(clippy::disallowed_methods)]
pub mod load_scale;
#[allow(clippy::disallowed_methods)]
pub mod load_sse;
#[allow(clippy::disallowed_methods)]
mod load_stack;

pub use args::BenchArgs;
pub use load_args::{
    ApiLoadArgs, LoadMode, LongLoadArgs, ScaleLoadArgs, SseLoadArgs, WorkerLoadArgs,
};
pub use load_run::run as run_load;
pub use run::run;
