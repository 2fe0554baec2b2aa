//! Timing of the indexed search on a long generated call (ignored: run in release with
//! `cargo test --release -p callaudit-domain evidence::tests::timing -- --ignored
//! --nocapture`). `callaudit gate-bench` is the bench; this is its quicker cousin.

use std::time::{Duration, Instant};

use super::super::indexed::{find_accepted, search};
use super::super::matching::RecordingIndex;
use super::super::myers::Pattern;
use super::super::synthetic::{citations, fiche};
use super::*;

fn minutes() -> f64 {
    std::env::var("TIMING_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(330.0)
}

#[test]
#[ignore = "timing: run in release with --ignored --nocapture"]
fn timing_of_the_indexed_search_on_a_long_call() {
    let minutes = minutes();
    let transcripts = fiche(minutes, 1);
    let cites = citations(minutes, 1, 36);
    let started = Instant::now();
    let index = TranscriptIndex::new(&transcripts);
    println!("build {:?}", started.elapsed());
    let opts = GatingOptions::default();
    let main = RecordingIndex::anchored(&transcripts[0]);
    println!("chars {} tokens {}", main.chars.len(), main.tokens.len());
    let mut times: Vec<Duration> = Vec::new();
    for (kind, c) in &cites {
        // Warm up once, then take the best of three.
        let mut best = Duration::MAX;
        let mut check = check_citation_indexed(c, &index, &opts);
        for _ in 0..3 {
            let started = Instant::now();
            check = std::hint::black_box(check_citation_indexed(c, &index, &opts));
            best = best.min(started.elapsed());
        }
        times.push(best);
        let quote: Vec<char> = normalize(&c.quote).chars().collect();
        let pattern = Pattern::new(&quote, &main.alphabet, main.alphabet.len());
        let mut pass = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            std::hint::black_box(pattern.min_distances(&main.codes));
            pass = pass.min(started.elapsed());
        }
        let mut single = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let mut last = 0;
            pattern.scan(
                &main.codes,
                super::super::myers::Mode::SemiGlobal,
                |_, d| {
                    last += d;
                    true
                },
            );
            std::hint::black_box(last);
            single = single.min(started.elapsed());
        }
        print!("single {:.3} ", single.as_secs_f64() * 1e3);
        let started = Instant::now();
        let (_, figures, k) = (
            0,
            super::super::figures::quote_figures(&c.quote),
            normalize(&c.quote).split(' ').count(),
        );
        std::hint::black_box(search(&main, &quote, &figures, k, 0.85, true));
        let scan = started.elapsed();
        let started = Instant::now();
        let acc = find_accepted(&main, &quote, &pattern, &figures, k, 0.85);
        let anchors = started.elapsed();
        print!(
            "anchors {:>6.3} ({:?}) ",
            anchors.as_secs_f64() * 1e3,
            acc.map(|a| a.len())
        );
        println!(
            "{:>8.3} ms  pass {:>6.3} search {:>6.3}  {:<15} {:<16} {:.3} m={} {:?}",
            best.as_secs_f64() * 1e3,
            pass.as_secs_f64() * 1e3,
            scan.as_secs_f64() * 1e3,
            format!("{kind:?}"),
            check.verdict.as_str(),
            check.similarity,
            quote.len(),
            c.quote
        );
    }
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "p50 {:?} p90 {:?} max {:?}",
        at(0.5),
        at(0.9),
        times[times.len() - 1]
    );
}
