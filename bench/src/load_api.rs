//! `callaudit bench api`: how fast one api replica answers under concurrent clients.
//!
//! 1. The worker audits `--fiches` fiches to completion: their CRM details are then
//!    cached, and their audits are what the GET phase reads.
//! 2. The worker stops. `--clients` clients send `--posts` `POST /api/audits/run` in all
//!    (back to back, or with `--think-ms` between two): each checks the configuration,
//!    finds the fiche in the cache (the simulated CRM must see no detail request), stores
//!    the audit and starts its workflow on the Temporal server. Nothing executes them: the
//!    latency is the api's and the server's start, not the contention with running audits.
//!    They are terminated afterwards.
//! 3. The same clients read `GET /api/audits/{id}` of the completed audits (six steps,
//!    citations, cost) for `--get-seconds`.
//!
//! Latencies are per request (send → body read); CPU is split by process over each phase.

use crate::BenchArgs;
use crate::load_args::ApiLoadArgs;
use crate::load_machine::{Machine, mib, percentile_ms, round};
use crate::load_stack::{Client, CpuSplit, CpuWindow, Services};
use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Latency and rate of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    /// Requests answered with the expected status.
    pub requests: usize,
    /// Of them per second of the phase's wall time.
    pub requests_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Cores used by each process during the phase.
    pub cpu: CpuSplit,
}

/// What `bench api` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ApiLoadReport {
    /// Where it ran.
    pub machine: Machine,
    /// Concurrent clients.
    pub clients: usize,
    /// Pause between two requests of a client, ms.
    pub think_ms: u64,
    /// `POST /api/audits/run`.
    pub post: PhaseFigures,
    /// CRM detail requests the simulator saw during the POST phase (0: served from cache).
    pub crm_detail_requests_during_posts: u64,
    /// `GET /api/audits/{id}`.
    pub get: PhaseFigures,
    /// api resident memory at the end, MiB.
    pub api_rss_mib: f64,
    /// api peak resident memory, MiB.
    pub api_peak_rss_mib: f64,
    /// Target on the POST p99, ms.
    pub post_p99_target_ms: f64,
    /// Whether it is met.
    pub post_p99_target_met: bool,
}

/// The p99 target of `POST /api/audits/run` (issue 12).
pub const POST_P99_TARGET_MS: f64 = 50.0;

pub(crate) async fn run(
    parent: &BenchArgs,
    admin_url: &str,
    args: &ApiLoadArgs,
) -> anyhow::Result<ApiLoadReport> {
    if args.clients == 0 || args.posts == 0 || args.fiches == 0 {
        bail!("--clients, --posts and --fiches must be at least 1");
    }
    let mut machine = Machine::now();
    let sim = callaudit_sim::SimState::with_generated_fiches(
        callaudit_sim::SimConfig::default(),
        args.fiches,
    );
    let services = Services::start(
        admin_url,
        &parent.temporal_address,
        &parent.temporal_namespace,
        sim.clone(),
    )
    .await?;
    let api = services.api(parent.step_parallelism, 1000, vec![]).await?;
    let client = Client::login(&api, &services).await?;
    let config = client.sample_config().await?;
    client
        .wait_until_events_flow(&services.db.url, config)
        .await?;

    eprintln!(
        "bench api: auditing {} fiches to completion (cache, GET targets)",
        args.fiches
    );
    let worker = services.worker(parent.step_parallelism).await?;
    let timeout = Duration::from_secs(parent.timeout_s);
    let completed: Vec<String> = tokio::time::timeout(
        timeout,
        futures::stream::iter(1..=args.fiches)
            .map(|i| {
                let client = &client;
                async move {
                    client
                        .audit(config, &crate::load_scale::fiche_id(i), false)
                        .await
                        .map(|(id, _)| id)
                }
            })
            .buffer_unordered(10)
            .collect::<Vec<_>>(),
    )
    .await
    .context("the warm-up audits did not finish in time")?
    .into_iter()
    .collect::<anyhow::Result<_>>()?;
    worker.stop().await?;

    let pids = [
        ("api", Some(api.pid)),
        ("temporal", parent.temporal_pid),
        ("bench (clients, simulators)", Some(std::process::id())),
    ];
    eprintln!(
        "bench api: {} POST /api/audits/run, {} clients",
        args.posts, args.clients
    );
    let crm_before = sim.stats().crm_detail_requests;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let window = CpuWindow::start(&pids, Some(&services.db.name));
    let started = Instant::now();
    let think = Duration::from_millis(args.think_ms);
    let per_client = futures::future::join_all((0..args.clients).map(|_| {
        let client = &client;
        let next = &next;
        async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= args.posts {
                    return Ok::<_, anyhow::Error>(out);
                }
                let fiche = crate::load_scale::fiche_id(1 + i % args.fiches);
                let t0 = Instant::now();
                let id = client.start_audit(config, &fiche, false).await?;
                out.push((t0.elapsed(), id));
                if !think.is_zero() {
                    tokio::time::sleep(think).await;
                }
            }
        }
    }));
    let results = tokio::time::timeout(timeout, per_client)
        .await
        .context("the POST phase did not finish in time")?;
    let wall = started.elapsed();
    let cpu = window.finish();
    let crm_detail_requests_during_posts = sim.stats().crm_detail_requests - crm_before;
    let mut latencies = Vec::new();
    let mut started_ids = Vec::new();
    for r in results {
        for (d, id) in r? {
            latencies.push(d);
            started_ids.push(id);
        }
    }
    let post = figures(latencies, wall, cpu);
    terminate(&services, &started_ids).await;

    eprintln!(
        "bench api: GET /api/audits/{{id}} for {} s, {} clients",
        args.get_seconds, args.clients
    );
    let window = CpuWindow::start(&pids, Some(&services.db.name));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.get_seconds.max(0.1));
    let per_client = futures::future::join_all((0..args.clients).map(|c| {
        let client = &client;
        let completed = &completed;
        async move {
            let mut out = Vec::new();
            let mut i = c;
            while Instant::now() < until {
                let id = &completed[i % completed.len()];
                i += 1;
                let t0 = Instant::now();
                let (status, body) = client
                    .call(client.http.get(format!("{}/api/audits/{id}", client.base)))
                    .await?;
                if status != 200 || body["steps"].as_array().map_or(0, Vec::len) == 0 {
                    bail!("GET /api/audits/{id}: {status} {body}");
                }
                out.push(t0.elapsed());
                if !think.is_zero() {
                    tokio::time::sleep(think).await;
                }
            }
            Ok::<_, anyhow::Error>(out)
        }
    }));
    let results = per_client.await;
    let wall = started.elapsed();
    let cpu = window.finish();
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    let get = figures(latencies, wall, cpu);

    let api_rss_mib = mib(crate::load_machine::rss_bytes(api.pid));
    let api_peak_rss_mib = mib(crate::procstat::sample(api.pid)?.peak_rss_bytes);
    api.stop().await?;
    drop(services);
    machine.finish();
    Ok(ApiLoadReport {
        machine,
        clients: args.clients,
        think_ms: args.think_ms,
        post_p99_target_met: post.p99_ms < POST_P99_TARGET_MS,
        post,
        crm_detail_requests_during_posts,
        get,
        api_rss_mib,
        api_peak_rss_mib,
        post_p99_target_ms: POST_P99_TARGET_MS,
    })
}

fn figures(mut latencies: Vec<Duration>, wall: Duration, cpu: CpuSplit) -> PhaseFigures {
    latencies.sort();
    PhaseFigures {
        requests: latencies.len(),
        requests_per_s: round(latencies.len() as f64 / wall.as_secs_f64().max(1e-9), 1),
        p50_ms: percentile_ms(&latencies, 50.0),
        p95_ms: percentile_ms(&latencies, 95.0),
        p99_ms: percentile_ms(&latencies, 99.0),
        max_ms: percentile_ms(&latencies, 100.0),
        cpu,
    }
}

/// Ends the workflows the POST phase started (no worker runs them).
async fn terminate(services: &Services, audit_ids: &[String]) {
    let Ok(client) =
        callaudit_api::temporal::connect(&services.temporal, Duration::from_secs(10)).await
    else {
        eprintln!("bench api: could not connect to Temporal to end the started workflows");
        return;
    };
    futures::stream::iter(audit_ids)
        .for_each_concurrent(20, |id| {
            let client = client.clone();
            async move {
                let _ = client
                    .get_workflow_handle::<temporalio_common::UntypedWorkflow>(
                        callaudit_domain::workflow_io::ids::audit(id),
                    )
                    .terminate(Default::default())
                    .await;
            }
        })
        .await;
}

impl ApiLoadReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "callaudit bench api: one api replica, {} clients, {} ms between two requests of \
             a client",
            self.clients, self.think_ms
        );
        let _ = writeln!(out, "{}", self.machine.line());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}  cores used",
            "", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for (label, p) in [
            ("POST /api/audits/run", &self.post),
            ("GET /api/audits/{id}", &self.get),
        ] {
            let _ = writeln!(
                out,
                "{:<28} {:>9} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}  {}",
                label,
                p.requests,
                p.requests_per_s,
                p.p50_ms,
                p.p95_ms,
                p.p99_ms,
                p.max_ms,
                p.cpu.line()
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "CRM detail requests during the POST phase: {} (0: the pre-check was served from \
             cache)",
            self.crm_detail_requests_during_posts
        );
        let _ = writeln!(
            out,
            "api RSS {:.1} MiB (peak {:.1} MiB)",
            self.api_rss_mib, self.api_peak_rss_mib
        );
        let _ = writeln!(
            out,
            "POST p99 {:.1} ms — target < {:.0} ms: {}",
            self.post.p99_ms,
            self.post_p99_target_ms,
            if self.post_p99_target_met {
                "MET"
            } else {
                "NOT MET"
            }
        );
        out
    }
}
