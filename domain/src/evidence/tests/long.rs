//! The indexed search against the exhaustive one (every window scored, as gating did
//! before the index) on long generated calls: every check — verdict, similarity, matched
//! words and time, reason — must be the same.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::super::indexed::{MAX_ANCHOR_POSTINGS, best_of, find_accepted, max_distance, search};
use super::super::matching::{RecordingIndex, search_exhaustive};
use super::super::myers::Pattern;
use super::super::synthetic::{CitationKind, citations, fiche};
use super::*;

/// Checks every citation with both indexes; returns the verdicts seen by kind.
fn assert_same_checks(
    transcripts: &[Transcript],
    cites: &[(CitationKind, Citation)],
    opts: &GatingOptions,
) -> HashMap<(CitationKind, CitationVerdict), usize> {
    let new = TranscriptIndex::new(transcripts);
    let old = TranscriptIndex::exhaustive(transcripts);
    let mut seen = HashMap::new();
    for (kind, c) in cites {
        let indexed = check_citation_indexed(c, &new, opts);
        let exhaustive = check_citation_indexed(c, &old, opts);
        assert_eq!(indexed, exhaustive, "{kind:?}: {:?}", c.quote);
        *seen.entry((*kind, indexed.verdict)).or_insert(0) += 1;
    }
    seen
}

/// The quote as the search takes it.
fn prepared(quote: &str) -> (Vec<char>, Vec<String>, usize) {
    let normalized = normalize(quote);
    (
        normalized.chars().collect(),
        super::super::figures::quote_figures(quote),
        normalized.split(' ').count(),
    )
}

#[test]
fn indexed_checks_equal_exhaustive_checks_on_generated_calls() {
    let mut seen: HashMap<(CitationKind, CitationVerdict), usize> = HashMap::new();
    for (minutes, seed) in [(2.0, 1), (12.0, 2), (30.0, 3)] {
        let transcripts = fiche(minutes, seed);
        let cites = citations(minutes, seed, 40);
        for (key, n) in assert_same_checks(&transcripts, &cites, &GatingOptions::default()) {
            *seen.entry(key).or_insert(0) += n;
        }
    }
    // The generated citations reach every outcome gating has for a found recording.
    let verdicts: HashSet<CitationVerdict> = seen.keys().map(|(_, v)| *v).collect();
    for wanted in [
        CitationVerdict::Verified,
        CitationVerdict::WrongSpeaker,
        CitationVerdict::WrongTime,
        CitationVerdict::WrongRecording,
        CitationVerdict::FiguresDiffer,
        CitationVerdict::NotFound,
    ] {
        assert!(verdicts.contains(&wanted), "no {wanted}: {seen:?}");
    }
    assert!(
        verdicts.contains(&CitationVerdict::Close),
        "no paraphrase or noisy quote judged CLOSE: {seen:?}"
    );
}

#[test]
fn indexed_checks_equal_exhaustive_checks_with_other_thresholds() {
    let transcripts = fiche(8.0, 11);
    let cites = citations(8.0, 11, 27);
    for (accept, close, tolerance) in [
        (0.95, 0.7, 5.0),
        (0.7, 0.5, 15.0),
        (1.0, 0.9, 0.0),
        // Too low to bound the distance: the recording is scanned.
        (0.2, 0.1, 15.0),
        (0.0, 0.0, 15.0),
    ] {
        let opts = GatingOptions {
            accept_similarity: accept,
            close_similarity: close,
            time_tolerance_s: tolerance,
        };
        assert_same_checks(&transcripts, &cites, &opts);
    }
}

#[test]
fn search_results_equal_the_exhaustive_ones_window_for_window() {
    let transcripts = fiche(10.0, 5);
    let t = &transcripts[0];
    let plain = RecordingIndex::new(t);
    let anchored = RecordingIndex::anchored(t);
    let mut quotes: Vec<String> = citations(10.0, 5, 45)
        .into_iter()
        .map(|(_, c)| c.quote)
        .collect();
    quotes.extend(
        [
            "oui merci",
            "oui d'accord",
            "alors je",
            "le contrat",
            "votre dossier par mail demain",
            "pour 29,90 euros par mois",
            "pour 39,90 euros par mois",
            "zzzz qqqq xxxx",
            "à quatre-vingts pour cent",
        ]
        .map(String::from),
    );
    for quote in &quotes {
        let (q, figures, k) = prepared(quote);
        if q.is_empty() {
            continue;
        }
        let exhaustive = search_exhaustive(&plain, &q, &figures, k, 0.85);
        for need_best in [true, false] {
            let indexed = search(&anchored, &q, &figures, k, 0.85, need_best);
            assert_eq!(indexed.accepted, exhaustive.accepted, "{quote:?}");
            if need_best && exhaustive.accepted.is_empty() {
                assert_eq!(indexed.best, exhaustive.best, "{quote:?}");
                assert_eq!(
                    indexed.figures_differ, exhaustive.figures_differ,
                    "{quote:?}"
                );
            }
        }
    }
}

#[test]
fn quotes_of_common_words_fall_back_to_the_scan_and_stay_exact() {
    // A call repeating the same sentences over and over: every 4-gram of the filler has
    // over a thousand postings, too many for the anchors to bound the search.
    let filler = "alors je regarde votre dossier et tout est en ordre pour le moment";
    let mut turns: Vec<(&str, f64, &str)> = Vec::new();
    for i in 0..1500 {
        turns.push(("speaker_0", i as f64 * 9.0, filler));
        turns.push(("speaker_1", i as f64 * 9.0 + 6.0, "Oui, merci."));
    }
    let t = transcript("rec-main", &turns);
    let anchored = RecordingIndex::anchored(&t);
    let plain = RecordingIndex::new(&t);
    for (quote, weak) in [
        // Every 4-gram and 2-gram of it has over a thousand postings: counted, they
        // exceed the budget, and so do the pigeonhole's pieces.
        (filler, Some(true)),
        // Shorter quotes of the same words: the 2-gram count may still bound them.
        ("tout est en ordre pour le moment", None),
        ("je regarde votre dossier et tout est en ordre", None),
        // Two 4-grams of 1500 postings each: still under the bound.
        ("Oui, merci.", Some(false)),
    ] {
        let (q, figures, k) = prepared(quote);
        let pattern = Pattern::new(&q, &anchored.alphabet, anchored.alphabet.len());
        let anchors = find_accepted(&anchored, &q, &pattern, &figures, k, 0.85);
        if let Some(weak) = weak {
            assert_eq!(
                anchors.is_none(),
                weak,
                "{quote}: the anchors give up past {MAX_ANCHOR_POSTINGS} postings"
            );
        }
        let exhaustive = search_exhaustive(&plain, &q, &figures, k, 0.85);
        let indexed = search(&anchored, &q, &figures, k, 0.85, true);
        assert!(exhaustive.accepted.len() >= 1500, "{quote}");
        assert_eq!(indexed.accepted, exhaustive.accepted, "{quote}");
    }
    let cites: Vec<(CitationKind, Citation)> = [
        ("Oui, merci.", Some(6006.0), "speaker_1"),
        ("Oui, merci.", Some(6006.0), "speaker_0"),
        (
            "tout est en ordre pour le moment",
            Some(99_000.0),
            "speaker_0",
        ),
        ("tout est en ordre pour la journée", Some(4.0), "speaker_0"),
    ]
    .iter()
    .map(|(q, at, who)| {
        (
            CitationKind::CommonWords,
            cite(q, "rec-main", *at, Some(who)),
        )
    })
    .collect();
    let seen = assert_same_checks(std::slice::from_ref(&t), &cites, &GatingOptions::default());
    let verdicts: HashSet<CitationVerdict> = seen.keys().map(|(_, v)| *v).collect();
    assert!(verdicts.contains(&CitationVerdict::Verified), "{seen:?}");
    assert!(verdicts.contains(&CitationVerdict::WrongTime), "{seen:?}");
}

#[test]
fn a_transcript_without_words_is_searched_the_same_way() {
    let mut transcripts = fiche(6.0, 4);
    for t in &mut transcripts {
        t.words.clear();
    }
    let cites: Vec<(CitationKind, Citation)> = citations(6.0, 4, 18)
        .into_iter()
        .map(|(kind, mut c)| {
            c.start_s = None;
            (kind, c)
        })
        .collect();
    assert_same_checks(&transcripts, &cites, &GatingOptions::default());
}

#[test]
fn the_distance_bound_covers_every_window_the_threshold_accepts() {
    for m in 1..90 {
        for threshold in [0.3, 0.5, 0.6, 0.7, 0.85, 0.9, 0.95, 1.0] {
            let k = max_distance(m, threshold).unwrap_or(usize::MAX);
            for width in 0..=(3 * m + 4) {
                for d in width.abs_diff(m)..=width.max(m) {
                    let s = (1.0 - d as f64 / width.max(m) as f64).clamp(0.0, 1.0);
                    assert!(
                        s < threshold || d <= k,
                        "m {m}, threshold {threshold}: width {width} at distance {d} is accepted, bound {k}"
                    );
                }
            }
        }
    }
    assert_eq!(max_distance(40, 0.2), None);
}

#[test]
fn a_step_is_gated_the_same_through_the_cache() {
    let transcripts = fiche(5.0, 21);
    let cites = citations(5.0, 21, 12);
    let analysis = StepAnalysis {
        points_controle: cites
            .chunks(3)
            .enumerate()
            .map(|(i, chunk)| {
                claim(
                    i,
                    ControlPointStatus::Present,
                    chunk.iter().map(|(_, c)| c.clone()).collect(),
                )
            })
            .collect(),
        commentaire: String::new(),
    };
    let cache = TranscriptIndexCache::new(2);
    let direct = gate_step(analysis.clone(), &transcripts, &GatingOptions::default());
    let first = cache.get(&transcripts);
    let second = cache.get(&transcripts);
    assert!(
        Arc::ptr_eq(&first, &second),
        "the second step reuses the index"
    );
    assert_eq!(cache.stats(), (1, 1));
    let cached = gate_step_indexed(analysis.clone(), &second, &GatingOptions::default());
    assert_eq!(cached, direct);
    let point = gate_point_indexed(
        analysis.points_controle[0].clone(),
        &second,
        &GatingOptions::default(),
    );
    assert_eq!(point, direct.points_controle[0]);

    // Other content is another entry; the least recently used one goes first.
    let mut changed = transcripts.clone();
    changed[1].words[0].text = "Rebonjour".into();
    let other = cache.get(&changed);
    assert!(!Arc::ptr_eq(&other, &first));
    assert!(other.indexes(&changed) && !other.indexes(&transcripts));
    let third = fiche(1.0, 22);
    cache.get(&transcripts);
    cache.get(&third);
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats(), (2, 3));
    // `changed` was the least recently used: evicted, so it is built again.
    cache.get(&changed);
    assert_eq!(cache.stats(), (2, 4));
    assert!(Arc::ptr_eq(&cache.get(&changed), &cache.get(&changed)));
}

#[test]
fn short_quotes_figures_and_ties_are_searched_the_same_way() {
    // Quotes that take the other paths: too short for 4-grams (2-grams count them),
    // figures the call never states (no best at all) or states (windows around them
    // only), words repeated so that windows tie, lower and higher thresholds (anchors
    // at the floor, scans).
    let transcripts = fiche(20.0, 9);
    let t = &transcripts[0];
    let plain = RecordingIndex::new(t);
    let anchored = RecordingIndex::anchored(t);
    let quotes = [
        "Ah bon ?",
        "Oui oui",
        "Hmm ok",
        "bon ben",
        "zz",
        "euros euros",
        "pour 99 euros par mois",
        "pour 29,90 euros",
        "le 15 mars",
        "le 16 mars",
        "à hauteur de 150 %",
        "au numéro 06 12 34 56 78",
        "au numéro 06 12 34 56 79",
        "sous quarante-huit heures",
        "sous quarante-neuf heures",
        "vous envoie le devis par mail demain",
        "le devis le devis le devis",
        "Votre ancienne mutuelle sera résiliée automatiquement par nos soins ce soir",
    ];
    for accept in [0.85, 0.7, 0.95, 0.5] {
        for quote in quotes {
            let (q, figures, k) = prepared(quote);
            let exhaustive = search_exhaustive(&plain, &q, &figures, k, accept);
            let indexed = search(&anchored, &q, &figures, k, accept, true);
            assert_eq!(
                indexed.accepted, exhaustive.accepted,
                "{quote:?} at {accept}"
            );
            if exhaustive.accepted.is_empty() {
                assert_eq!(indexed.best, exhaustive.best, "{quote:?} at {accept}");
                assert_eq!(
                    indexed.figures_differ, exhaustive.figures_differ,
                    "{quote:?} at {accept}"
                );
                let lazy = search(&anchored, &q, &figures, k, accept, false);
                assert_eq!(lazy.figures_differ, exhaustive.figures_differ, "{quote:?}");
                assert_eq!(
                    best_of(&anchored, &q, &figures, k, accept, &lazy),
                    exhaustive.best,
                    "{quote:?} at {accept}"
                );
            }
        }
    }
    let cites: Vec<(CitationKind, Citation)> = quotes
        .iter()
        .enumerate()
        .map(|(i, q)| {
            (
                CitationKind::CommonWords,
                cite(q, "rec-main", Some(i as f64 * 60.0), Some("speaker_0")),
            )
        })
        .collect();
    assert_same_checks(&transcripts, &cites, &GatingOptions::default());
    let low = GatingOptions {
        accept_similarity: 0.7,
        close_similarity: 0.4,
        time_tolerance_s: 30.0,
    };
    assert_same_checks(&transcripts, &cites, &low);
}
