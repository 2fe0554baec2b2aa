//! `callaudit gate-bench`: evidence gating on long calls, indexed against exhaustive.
//!
//! For each call length it generates a fiche (`evidence::synthetic`: the same seed
//! always gives the same transcripts and citations), then measures the exhaustive
//! search (every window scored, as gating did before the index) and the indexed one:
//! time to build each index, time per citation (p50, p90, max), and whether every
//! check — verdict, similarity, matched words and time, reason — is the same.

use std::time::{Duration, Instant};

use callaudit_domain::evidence::{
    CitationCheck, GatingOptions, TranscriptIndex, check_citation_indexed,
    synthetic::{self, CitationKind},
};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// Times each citation's check; returns the checks and the sorted durations.
fn run(
    index: &TranscriptIndex,
    citations: &[(CitationKind, callaudit_domain::analysis::Citation)],
    opts: &GatingOptions,
) -> (Vec<CitationCheck>, Vec<Duration>) {
    let mut checks = Vec::with_capacity(citations.len());
    let mut times = Vec::with_capacity(citations.len());
    for (_, c) in citations {
        let started = Instant::now();
        let check = check_citation_indexed(c, index, opts);
        times.push(started.elapsed());
        checks.push(std::hint::black_box(check));
    }
    times.sort();
    (checks, times)
}

pub(crate) fn run_bench(args: crate::config::GateBenchArgs) -> anyhow::Result<()> {
    let opts = GatingOptions::default();
    println!(
        "evidence gating, {} citations per call (seed {}), times in ms",
        args.citations, args.seed
    );
    println!(
        "{:>8} {:>7} | {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} {:>5}",
        "call",
        "words",
        "build old",
        "build new",
        "old p50",
        "old p90",
        "old max",
        "new p50",
        "new p90",
        "new max",
        "speedup",
        "equal"
    );
    let mut all_equal = true;
    for &minutes in &args.minutes {
        let transcripts = synthetic::fiche(minutes, args.seed);
        let citations = synthetic::citations(minutes, args.seed, args.citations);
        let words: usize = transcripts.iter().map(|t| t.words.len()).sum();

        let started = Instant::now();
        let old_index = TranscriptIndex::exhaustive(&transcripts);
        let build_old = started.elapsed();
        let started = Instant::now();
        let new_index = TranscriptIndex::new(&transcripts);
        let build_new = started.elapsed();

        let (new_checks, new_times) = run(&new_index, &citations, &opts);
        let (old_checks, old_times) = if args.new_only {
            (new_checks.clone(), Vec::new())
        } else {
            run(&old_index, &citations, &opts)
        };
        let equal = old_checks == new_checks;
        all_equal &= equal;
        let total = |t: &[Duration]| t.iter().sum::<Duration>();
        let speedup = if new_times.is_empty() || old_times.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.0}x",
                total(&old_times).as_secs_f64() / total(&new_times).as_secs_f64().max(1e-9)
            )
        };
        println!(
            "{:>6.0}min {:>7} | {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>7} {:>5}",
            minutes,
            words,
            ms(build_old),
            ms(build_new),
            ms(percentile(&old_times, 0.5)),
            ms(percentile(&old_times, 0.9)),
            ms(old_times.last().copied().unwrap_or_default()),
            ms(percentile(&new_times, 0.5)),
            ms(percentile(&new_times, 0.9)),
            ms(new_times.last().copied().unwrap_or_default()),
            speedup,
            if args.new_only {
                "-"
            } else if equal {
                "yes"
            } else {
                "NO"
            }
        );
        if args.verbose {
            for ((kind, c), check) in citations.iter().zip(&new_checks) {
                println!(
                    "    {:<15} {:<16} {:.2} {:?}",
                    format!("{kind:?}"),
                    check.verdict.as_str(),
                    check.similarity,
                    c.quote
                );
            }
        }
        let mut by_verdict: std::collections::BTreeMap<&str, usize> = Default::default();
        for check in &new_checks {
            *by_verdict.entry(check.verdict.as_str()).or_default() += 1;
        }
        let summary: Vec<String> = by_verdict.iter().map(|(v, n)| format!("{v} {n}")).collect();
        println!("{:>18} verdicts: {}", "", summary.join(", "));
    }
    if !all_equal {
        anyhow::bail!("the indexed and exhaustive searches disagree on some citation");
    }
    Ok(())
}
