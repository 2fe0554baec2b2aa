//! `callaudit bench sse`: many event streams on one api replica.
//!
//! `--topics` pending audit rows are stored directly (nothing runs them) and
//! `--subscribers` clients open `GET /api/audits/{id}/events`, subscriber i on audit
//! i mod topics. Once every stream has received a first event, the bench commits events
//! at `--rate` per second for `--seconds`, round robin over the audits, each in its own
//! transaction as the worker's are (insert + `pg_notify`). A client's delay for an event
//! is its arrival time minus the event's `created_at` (the inserting transaction's
//! start, so the delay includes the commit). Every subscriber must receive every event of
//! its audit: a missing delivery fails the run. With a `--poll-ms` longer than the
//! 30 s the bench waits for deliveries, only LISTEN/NOTIFY can deliver them in time.

use crate::BenchArgs;
use crate::load_args::SseLoadArgs;
use crate::load_machine::{Machine, mib, percentile_ms, round};
use crate::load_stack::{Client, CpuSplit, CpuWindow, Services, create_audit_rows};
use anyhow::{Context, bail};
use callaudit_domain::workflow_io::ids;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What `bench sse` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SseLoadReport {
    /// Where it ran.
    pub machine: Machine,
    /// Open event streams.
    pub subscribers: usize,
    /// Audits they follow.
    pub topics: usize,
    /// Events committed.
    pub events: usize,
    /// Events committed per second (measured).
    pub events_per_s: f64,
    /// Deliveries expected (each event × the subscribers of its audit) and received.
    pub deliveries: usize,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Commit → client delay, median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Cores used by each process while publishing.
    pub cpu: CpuSplit,
    /// api resident memory with every stream open, MiB.
    pub api_rss_mib: f64,
    /// api peak resident memory, MiB.
    pub api_peak_rss_mib: f64,
    /// Target on the p99 delay, ms.
    pub p99_target_ms: f64,
    /// Whether it is met.
    pub p99_target_met: bool,
}

/// The p99 target of the delivery delay (issue 12).
pub const P99_TARGET_MS: f64 = 100.0;

pub(crate) async fn run(
    parent: &BenchArgs,
    admin_url: &str,
    args: &SseLoadArgs,
) -> anyhow::Result<SseLoadReport> {
    if args.subscribers == 0 || args.topics == 0 || args.rate <= 0.0 {
        bail!("--subscribers, --topics and --rate must be positive");
    }
    let topics_n = args.topics.min(args.subscribers);
    // One socket each side per stream, the pools, the listener: room for all.
    crate::load_machine::raise_open_files(u64::try_from(args.subscribers)? * 2 + 512)?;
    let mut machine = Machine::now();
    let services = Services::start(
        admin_url,
        &parent.temporal_address,
        &parent.temporal_namespace,
        callaudit_sim::SimState::new(callaudit_sim::SimConfig::default()),
    )
    .await?;
    let api = services
        .api(
            parent.step_parallelism,
            args.subscribers + 16,
            vec![("API_SSE_POLL_MS", args.poll_ms.to_string())],
        )
        .await?;
    let client = Client::login(&api, &services).await?;
    let config = client.sample_config().await?;
    client
        .wait_until_events_flow(&services.db.url, config)
        .await?;
    let audits = create_audit_rows(&services.db.url, config, "FICHE-SSE", topics_n).await?;

    eprintln!(
        "bench sse: opening {} streams on {} audits",
        args.subscribers, topics_n
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let greeted = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::with_capacity(args.subscribers);
    for s in 0..args.subscribers {
        let audit = audits[s % topics_n].clone();
        let client = client.clone();
        let tx = tx.clone();
        let greeted = greeted.clone();
        streams.push(tokio::spawn(async move {
            subscriber(&client, &audit, &tx, &greeted).await
        }));
        // Bursts of connections beyond the listen backlog would be refused.
        if s % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    drop(tx);

    // Each stream is live once it has seen a greeting of its audit.
    let mut conn = callaudit_db::establish(&services.db.url).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while greeted.load(Ordering::Acquire) < args.subscribers {
        for audit in &audits {
            callaudit_db::events::publish(
                &mut conn,
                &ids::audit_topic(audit),
                "bench.hello",
                &json!({}),
                None,
            )
            .await?;
        }
        if let Some(failed) = streams
            .iter()
            .position(tokio::task::JoinHandle::is_finished)
        {
            bail!("stream {failed} ended before the measurement");
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {} streams were live after 60 s",
                greeted.load(Ordering::Acquire),
                args.subscribers
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let api_rss_mib = mib(crate::load_machine::rss_bytes(api.pid));

    eprintln!("bench sse: {} events/s for {} s", args.rate, args.seconds);
    let pids = [
        ("api", Some(api.pid)),
        ("bench (clients, publisher)", Some(std::process::id())),
    ];
    let window = CpuWindow::start(&pids, Some(&services.db.name));
    let started = Instant::now();
    let every = Duration::from_secs_f64(1.0 / args.rate);
    let total = ((args.rate * args.seconds).round() as usize).max(1);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0..total {
        tick.tick().await;
        callaudit_db::events::publish(
            &mut conn,
            &ids::audit_topic(&audits[n % topics_n]),
            "bench.tick",
            &json!({ "n": n }),
            None,
        )
        .await?;
    }
    let publish_wall = started.elapsed();
    // Subscribers per audit: the first `subscribers mod topics` audits have one more.
    let expected: usize = (0..total)
        .map(|n| {
            let t = n % topics_n;
            args.subscribers / topics_n + usize::from(t < args.subscribers % topics_n)
        })
        .sum();
    let mut delays = Vec::with_capacity(expected);
    let drain = tokio::time::timeout(Duration::from_secs(30), async {
        while delays.len() < expected {
            match rx.recv().await {
                Some(d) => delays.push(d),
                None => break,
            }
        }
    })
    .await;
    let wall = started.elapsed();
    let cpu = window.finish();
    let api_peak_rss_mib = mib(crate::procstat::sample(api.pid)?.peak_rss_bytes);
    for s in &streams {
        s.abort();
    }
    if drain.is_err() || delays.len() < expected {
        bail!(
            "{} of {expected} deliveries arrived within 30 s of the last commit",
            delays.len()
        );
    }
    api.stop().await?;
    drop(services);
    machine.finish();
    delays.sort();
    let p99_ms = percentile_ms(&delays, 99.0);
    Ok(SseLoadReport {
        machine,
        subscribers: args.subscribers,
        topics: topics_n,
        events: total,
        events_per_s: round(total as f64 / publish_wall.as_secs_f64().max(1e-9), 1),
        deliveries: delays.len(),
        deliveries_per_s: round(delays.len() as f64 / wall.as_secs_f64().max(1e-9), 1),
        p50_ms: percentile_ms(&delays, 50.0),
        p95_ms: percentile_ms(&delays, 95.0),
        p99_ms,
        max_ms: percentile_ms(&delays, 100.0),
        cpu,
        api_rss_mib,
        api_peak_rss_mib,
        p99_target_ms: P99_TARGET_MS,
        p99_target_met: p99_ms < P99_TARGET_MS,
    })
}

/// Follows one audit's stream: counts the first greeting, sends the delay of every tick.
async fn subscriber(
    client: &Client,
    audit: &str,
    tx: &tokio::sync::mpsc::UnboundedSender<Duration>,
    greeted: &AtomicUsize,
) -> anyhow::Result<()> {
    let mut resp = client.events(audit).await?;
    let mut sse = callaudit_api::sse::SseDecoder::default();
    let mut hello = false;
    while let Some(chunk) = resp.chunk().await.context("reading a stream")? {
        let now = chrono::Utc::now();
        for event in sse.push(&chunk) {
            match event.event.as_deref() {
                Some("bench.hello") if !hello => {
                    hello = true;
                    greeted.fetch_add(1, Ordering::AcqRel);
                }
                Some("bench.tick") => {
                    let data: serde_json::Value = serde_json::from_str(&event.data)?;
                    let created: chrono::DateTime<chrono::Utc> = data["created_at"]
                        .as_str()
                        .context("an event without created_at")?
                        .parse()?;
                    let delay = (now - created).to_std().unwrap_or_default();
                    let _ = tx.send(delay);
                }
                _ => {}
            }
        }
    }
    bail!("the stream of audit {audit} ended")
}

impl SseLoadReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "callaudit bench sse: {} event streams on one api replica, following {} audits",
            self.subscribers, self.topics
        );
        let _ = writeln!(out, "{}", self.machine.line());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "events committed             {} ({:.1}/s)",
            self.events, self.events_per_s
        );
        let _ = writeln!(
            out,
            "deliveries                   {} ({:.1}/s), none missing",
            self.deliveries, self.deliveries_per_s
        );
        let _ = writeln!(
            out,
            "commit → client delay ms     p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
            self.p50_ms, self.p95_ms, self.p99_ms, self.max_ms
        );
        let _ = writeln!(out, "cores used while publishing  {}", self.cpu.line());
        let _ = writeln!(
            out,
            "api RSS                      {:.1} MiB with every stream open (peak {:.1} MiB)",
            self.api_rss_mib, self.api_peak_rss_mib
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "p99 {:.1} ms — target < {:.0} ms: {}",
            self.p99_ms,
            self.p99_target_ms,
            if self.p99_target_met {
                "MET"
            } else {
                "NOT MET"
            }
        );
        out
    }
}
