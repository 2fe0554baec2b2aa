//! `callaudit bench long`: what one long call costs, in prompt mode (the transcript in
//! every step's prompt) and in transcript-tools mode (`use_rlm`: the model searches and
//! reads chunks through `searchTranscript` / `getTranscriptChunks`).
//!
//! The simulator gets one more fiche, `FICHE-LONG-1`: FICHE-1001's customer file with a
//! single recording whose transcript is the built-in calls end to end, repeated until it
//! lasts `--minutes`. A short built-in fiche (FICHE-1001, two calls) is measured the same
//! way for comparison. Each fiche is audited once first (it transcribes the recordings;
//! not counted), then `--repeats` times in each mode, one audit at a time: time is
//! submission → `audit.completed`, worker CPU is the worker's during that audit, tokens
//! and LLM requests are the audit's own usage (`GET /api/audits/{id}`, `cost`).

use crate::BenchArgs;
use crate::load_args::LongLoadArgs;
use crate::load_machine::{Machine, round};
use crate::load_stack::{Client, CpuWindow, Services};
use anyhow::{Context, bail};
use callaudit_sim::{Dataset, Recording, Utterance};
use serde::Serialize;
use std::time::Duration;

/// The generated long fiche.
pub const LONG_FICHE: &str = "FICHE-LONG-1";
/// The short fiche it is compared with.
pub const SHORT_FICHE: &str = "FICHE-1001";

/// One audit of one fiche in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct LongRow {
    /// Fiche.
    pub fiche_id: String,
    /// Minutes of audio of its recordings.
    pub audio_minutes: f64,
    /// Words of its transcripts.
    pub words: usize,
    /// `prompt` or `tools`.
    pub mode: &'static str,
    /// Submission → `audit.completed`, s.
    pub time_s: f64,
    /// Worker CPU seconds during the audit.
    pub worker_cpu_s: f64,
    /// Chat completion requests.
    pub llm_requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Tool calls the model made (the simulator's count).
    pub tool_calls: u64,
    /// The audit's score.
    pub score: Option<f64>,
}

/// What `bench long` prints.
#[derive(Debug, Clone, Serialize)]
pub struct LongReport {
    /// Where it ran.
    pub machine: Machine,
    /// One row per measured audit.
    pub rows: Vec<LongRow>,
}

/// The built-in dataset plus [`LONG_FICHE`], whose one recording lasts at least
/// `minutes`.
pub fn long_dataset(minutes: u32) -> anyhow::Result<Dataset> {
    let mut data = callaudit_sim::dataset().clone();
    let sources: Vec<Recording> = data
        .fiches
        .iter()
        .flat_map(|f| f.recordings.iter().cloned())
        .collect();
    let mut fiche = data
        .fiche(SHORT_FICHE)
        .with_context(|| format!("the simulator has no {SHORT_FICHE}"))?
        .clone();
    let target = f64::from(minutes) * 60.0;
    let mut utterances: Vec<Utterance> = Vec::new();
    let mut offset = 0.0_f64;
    while offset < target {
        for src in &sources {
            utterances.extend(src.utterances.iter().map(|u| Utterance {
                start_s: round(u.start_s + offset, 2),
                end_s: round(u.end_s + offset, 2),
                ..u.clone()
            }));
            offset = round(offset + src.duration_s, 2);
            if offset >= target {
                break;
            }
        }
    }
    let first = fiche
        .recordings
        .first()
        .context("the short fiche has no recording")?
        .clone();
    fiche.fiche_id = LONG_FICHE.to_string();
    fiche.recordings = vec![Recording {
        recording_id: "REC-LONG-1".into(),
        duration_s: offset,
        utterances,
        ..first
    }];
    data.fiches.push(fiche);
    Ok(data)
}

pub(crate) async fn run(
    parent: &BenchArgs,
    admin_url: &str,
    args: &LongLoadArgs,
) -> anyhow::Result<LongReport> {
    if args.minutes == 0 || args.repeats == 0 {
        bail!("--minutes and --repeats must be at least 1");
    }
    let mut machine = Machine::now();
    let data = long_dataset(args.minutes)?;
    let sim = callaudit_sim::SimState::with_dataset(callaudit_sim::SimConfig::default(), data);
    let services = Services::start(
        admin_url,
        &parent.temporal_address,
        &parent.temporal_namespace,
        sim.clone(),
    )
    .await?;
    let api = services.api(parent.step_parallelism, 64, vec![]).await?;
    let worker = services.worker(parent.step_parallelism).await?;
    let client = Client::login(&api, &services).await?;
    let config = client.sample_config().await?;
    client
        .wait_until_events_flow(&services.db.url, config)
        .await?;
    let timeout = Duration::from_secs(parent.timeout_s);

    let mut rows = Vec::new();
    for fiche_id in [SHORT_FICHE, LONG_FICHE] {
        let fiche = sim
            .dataset()
            .fiche(fiche_id)
            .with_context(|| format!("no fiche {fiche_id}"))?
            .clone();
        let audio_minutes = round(
            fiche.recordings.iter().map(|r| r.duration_s).sum::<f64>() / 60.0,
            1,
        );
        let words: usize = fiche
            .recordings
            .iter()
            .flat_map(|r| &r.utterances)
            .map(|u| u.text.split_whitespace().count())
            .sum();
        eprintln!("bench long: {fiche_id} ({audio_minutes} min, {words} words): transcribing");
        tokio::time::timeout(timeout, client.audit(config, fiche_id, false))
            .await
            .context("the first audit did not finish in time")??;
        for _ in 0..args.repeats {
            for (mode, use_rlm) in [("prompt", false), ("tools", true)] {
                eprintln!("bench long: {fiche_id}, {mode} mode");
                let tools_before = sim.stats().llm_tool_calls;
                let window = CpuWindow::start(&[("worker", Some(worker.pid))], None);
                let (audit_id, took) =
                    tokio::time::timeout(timeout, client.audit(config, fiche_id, use_rlm))
                        .await
                        .context("the audit did not finish in time")??;
                let cpu = window.finish();
                let (status, body) = client
                    .call(
                        client
                            .http
                            .get(format!("{}/api/audits/{audit_id}", client.base)),
                    )
                    .await?;
                if status != 200 {
                    bail!("GET /api/audits/{audit_id}: {status} {body}");
                }
                let cost = &body["cost"];
                rows.push(LongRow {
                    fiche_id: fiche_id.to_string(),
                    audio_minutes,
                    words,
                    mode,
                    time_s: round(took.as_secs_f64(), 2),
                    worker_cpu_s: cpu
                        .cores
                        .first()
                        .and_then(|(_, c)| *c)
                        .map_or(0.0, |c| round(c * cpu.wall_s, 3)),
                    llm_requests: cost["llm_requests"].as_u64().unwrap_or(0),
                    prompt_tokens: cost["prompt_tokens"].as_i64().unwrap_or(0),
                    completion_tokens: cost["completion_tokens"].as_i64().unwrap_or(0),
                    tool_calls: sim.stats().llm_tool_calls - tools_before,
                    score: body["score"].as_f64(),
                });
            }
        }
    }
    worker.stop().await?;
    api.stop().await?;
    drop(services);
    machine.finish();
    Ok(LongReport { machine, rows })
}

impl LongReport {
    /// The human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "callaudit bench long: one audit at a time, 6-step sample configuration; prompt \
             mode vs transcript-tools mode (use_rlm)"
        );
        let _ = writeln!(out, "{}", self.machine.line());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<13} {:>9} {:>7} {:>7} {:>8} {:>11} {:>9} {:>14} {:>12} {:>6} {:>6}",
            "fiche",
            "audio min",
            "words",
            "mode",
            "time s",
            "worker CPU s",
            "LLM reqs",
            "prompt tokens",
            "completion",
            "tools",
            "score"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<13} {:>9.1} {:>7} {:>7} {:>8.2} {:>11.3} {:>9} {:>14} {:>12} {:>6} {:>6}",
                r.fiche_id,
                r.audio_minutes,
                r.words,
                r.mode,
                r.time_s,
                r.worker_cpu_s,
                r.llm_requests,
                r.prompt_tokens,
                r.completion_tokens,
                r.tool_calls,
                r.score.map_or_else(|| "-".into(), |s| format!("{s:.1}"))
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_fiche_lasts_the_asked_minutes_with_ordered_utterances() {
        let data = long_dataset(120).expect("dataset");
        let fiche = data.fiche(LONG_FICHE).expect("long fiche");
        let rec = &fiche.recordings[0];
        assert!(rec.duration_s >= 7200.0, "{}", rec.duration_s);
        assert!(rec.duration_s < 7200.0 + 600.0, "{}", rec.duration_s);
        assert!(rec.utterances.windows(2).all(|w| w[0].end_s < w[1].start_s));
        assert!(rec.duration_s > rec.utterances.last().expect("utterances").end_s);
        assert!(data.fiche(SHORT_FICHE).is_some());
    }
}
