//! Evidence gating, told as sentences.

use super::*;
use crate::analysis::Conformite;
use crate::scoring::score_step;
use crate::transcript::Word;
use crate::transcript::join_words;

/// Builds a transcript from `(speaker, start_s, sentence)` turns, 0.4 s per word.
fn transcript(recording_id: &str, turns: &[(&str, f64, &str)]) -> Transcript {
    let mut words = Vec::new();
    for (speaker, start, sentence) in turns {
        for (i, w) in sentence.split_whitespace().enumerate() {
            let start_s = start + 0.4 * i as f64;
            words.push(Word {
                text: w.to_string(),
                start_s,
                end_s: start_s + 0.35,
                speaker: Some(speaker.to_string()),
            });
        }
    }
    let text = join_words(words.iter().map(|w| w.text.as_str()));
    Transcript {
        recording_id: recording_id.to_string(),
        language: Some("fr".into()),
        text,
        words,
    }
}

fn call_1() -> Transcript {
    transcript(
        "rec-1",
        &[
            (
                "speaker_0",
                0.0,
                "Bonjour, je suis Marc de la société Assurup, je vous appelle au sujet de votre mutuelle santé.",
            ),
            ("speaker_1", 8.0, "Oui, bonjour."),
            (
                "speaker_0",
                10.0,
                "Cet appel est enregistré pour des raisons de qualité. Est-ce que vous êtes d'accord ?",
            ),
            ("speaker_1", 18.0, "Daccord, pas de souci."),
            (
                "speaker_0",
                21.0,
                "Alors la cotisation mensuel est de 29,90 € et je vous envoie le contrat par mail.",
            ),
            ("speaker_1", 30.0, "Oui, merci."),
            (
                "speaker_0",
                31.0,
                "Vous pouvez résilier à tout moment, sans frais.",
            ),
            ("speaker_1", 36.0, "Très bien, merci. Oui, merci."),
        ],
    )
}

fn call_2() -> Transcript {
    transcript(
        "rec-2",
        &[
            (
                "speaker_0",
                0.0,
                "Bonjour madame, c'est encore Marc d'Assurup.",
            ),
            (
                "speaker_0",
                4.0,
                "Je vous confirme la résiliation de votre ancien contrat auprès de votre banque.",
            ),
            ("speaker_1", 12.0, "Parfait, merci beaucoup."),
        ],
    )
}

fn fiche() -> Vec<Transcript> {
    vec![call_1(), call_2()]
}

fn cite(quote: &str, recording_id: &str, start_s: Option<f64>, speaker: Option<&str>) -> Citation {
    Citation {
        quote: quote.to_string(),
        recording_id: recording_id.to_string(),
        start_s,
        speaker: speaker.map(str::to_string),
    }
}

fn check(c: Citation) -> CitationCheck {
    check_citation(&c, &fiche(), &GatingOptions::default())
}

fn claim(
    index: usize,
    statut: ControlPointStatus,
    citations: Vec<Citation>,
) -> ControlPointVerdict {
    ControlPointVerdict {
        index,
        point: format!("Point de contrôle n°{index}"),
        statut,
        commentaire: "Selon l'analyse.".into(),
        citations,
        evidence_unverified: false,
        evidence_reason: None,
        claimed_statut: None,
        citation_checks: vec![],
        review: None,
    }
}

fn gate_one(point: ControlPointVerdict) -> ControlPointVerdict {
    let analysis = StepAnalysis {
        points_controle: vec![point],
        commentaire: String::new(),
    };
    let mut gated = gate_step(analysis, &fiche(), &GatingOptions::default());
    gated.points_controle.remove(0)
}

const FABRICATED: &str = "Je vous garantis un remboursement intégral de vos lunettes dès demain";
const PARAPHRASE: &str = "je vais vous envoyer le contrat par mail";

#[test]
fn an_exact_quote_is_verified_with_its_time_and_text() {
    let r = check(cite(
        "je vous envoie le contrat par mail",
        "rec-1",
        Some(27.0),
        Some("speaker_0"),
    ));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert_eq!(r.similarity, 1.0);
    assert_eq!(
        r.matched_text.as_deref(),
        Some("je vous envoie le contrat par mail.")
    );
    let start = r.matched_start_s.unwrap_or(f64::NAN);
    // "je" is the 10th word of the turn starting at 21 s.
    assert!((start - (21.0 + 0.4 * 9.0)).abs() < 1e-9, "start {start}");
    assert!(r.reason.contains("rec-1"));
}

#[test]
fn a_quote_with_missing_accents_is_verified() {
    let r = check(cite("Marc de la societe Assurup", "rec-1", None, None));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert_eq!(r.similarity, 1.0);
    let r = check(cite("tres bien merci", "rec-1", None, Some("speaker_1")));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
}

#[test]
fn a_quote_with_different_punctuation_and_case_is_verified() {
    let r = check(cite(
        "CET APPEL EST ENREGISTRÉ pour des raisons de qualité... Est ce que vous êtes d’accord?",
        "rec-1",
        Some(10.0),
        Some("speaker_0"),
    ));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert_eq!(r.similarity, 1.0);
}

#[test]
fn an_asr_near_miss_is_verified() {
    // The transcript says "mensuel" (ASR dropped "le"): one-letter difference.
    let r = check(cite(
        "la cotisation mensuelle est de 29,90 €",
        "rec-1",
        None,
        Some("speaker_0"),
    ));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert!(
        r.similarity < 1.0 && r.similarity >= 0.85,
        "similarity {}",
        r.similarity
    );
    // "d'accord" quoted, "Daccord" transcribed.
    let r = check(cite(
        "D'accord, pas de souci.",
        "rec-1",
        Some(18.0),
        Some("speaker_1"),
    ));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert_eq!(r.matched_text.as_deref(), Some("Daccord, pas de souci."));
}

#[test]
fn a_quote_with_an_extra_small_word_is_verified() {
    let r = check(cite(
        "Vous pouvez donc résilier à tout moment",
        "rec-1",
        Some(31.0),
        None,
    ));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert!(r.similarity >= 0.85 && r.similarity < 1.0);
}

#[test]
fn a_totally_fabricated_quote_is_not_found() {
    let r = check(cite(FABRICATED, "rec-1", None, Some("speaker_0")));
    assert_eq!(r.verdict, CitationVerdict::NotFound, "{}", r.reason);
    assert!(r.similarity < 0.6);
    assert!(
        r.reason
            .starts_with("quote not found in recording rec-1 (best similarity 0."),
        "{}",
        r.reason
    );
    assert_eq!(r.matched_text, None);
}

#[test]
fn a_close_paraphrase_is_close() {
    let r = check(cite(PARAPHRASE, "rec-1", None, Some("speaker_0")));
    assert_eq!(r.verdict, CitationVerdict::Close, "{}", r.reason);
    assert!(
        r.similarity >= 0.6 && r.similarity < 0.85,
        "similarity {}",
        r.similarity
    );
    assert!(
        r.matched_text
            .as_deref()
            .is_some_and(|t| t.contains("envoie le contrat"))
    );
}

#[test]
fn a_quote_from_the_other_speaker_is_wrong_speaker() {
    let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_0")));
    assert_eq!(r.verdict, CitationVerdict::WrongSpeaker, "{}", r.reason);
    assert!(
        r.reason.contains("spoken by speaker_1, not speaker_0"),
        "{}",
        r.reason
    );
    let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("Speaker_1")));
    assert_eq!(
        r.verdict,
        CitationVerdict::Verified,
        "speaker labels compare normalised: {}",
        r.reason
    );
}

#[test]
fn a_quote_cited_far_from_its_time_is_wrong_time() {
    let r = check(cite(
        "je vous envoie le contrat par mail",
        "rec-1",
        Some(300.0),
        Some("speaker_0"),
    ));
    assert_eq!(r.verdict, CitationVerdict::WrongTime, "{}", r.reason);
    assert!(r.reason.contains("300.0s"), "{}", r.reason);
    // The quote starts at 24.6 s; 39.0 is within 15 s, 40.0 is not.
    let r = check(cite(
        "je vous envoie le contrat par mail",
        "rec-1",
        Some(39.0),
        None,
    ));
    assert_eq!(
        r.verdict,
        CitationVerdict::Verified,
        "within the tolerance: {}",
        r.reason
    );
    let r = check(cite(
        "je vous envoie le contrat par mail",
        "rec-1",
        Some(40.0),
        None,
    ));
    assert_eq!(r.verdict, CitationVerdict::WrongTime, "{}", r.reason);
}

#[test]
fn a_repeated_quote_is_verified_against_the_occurrence_matching_speaker_and_time() {
    // "Oui, merci." is said by speaker_1 at 30 s and in "Très bien, merci. Oui, merci."
    // around 37 s.
    let r = check(cite("Oui, merci", "rec-1", Some(37.0), Some("speaker_1")));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert!(
        r.matched_start_s.is_some_and(|t| t > 36.0),
        "{:?}",
        r.matched_start_s
    );
    let r = check(cite("Oui, merci", "rec-1", Some(30.0), Some("speaker_1")));
    assert_eq!(r.verdict, CitationVerdict::Verified);
    assert_eq!(r.matched_start_s, Some(30.0));
    let r = check(cite("Oui, merci", "rec-1", Some(200.0), Some("speaker_1")));
    assert_eq!(r.verdict, CitationVerdict::WrongTime);
}

#[test]
fn a_quote_from_another_recording_is_wrong_recording() {
    let r = check(cite(
        "Je vous confirme la résiliation de votre ancien contrat",
        "rec-1",
        None,
        None,
    ));
    assert_eq!(r.verdict, CitationVerdict::WrongRecording, "{}", r.reason);
    assert!(r.reason.contains("rec-2"), "{}", r.reason);
    assert_eq!(r.recording_id, "rec-1");
    assert_eq!(r.matched_start_s, Some(4.0));
}

#[test]
fn a_citation_of_an_unknown_recording_is_unknown_recording() {
    let r = check(cite(
        "je vous envoie le contrat par mail",
        "rec-404",
        None,
        None,
    ));
    assert_eq!(r.verdict, CitationVerdict::UnknownRecording);
    assert!(r.reason.contains("rec-404"));
    let r = check_citation(
        &cite("Oui, bonjour.", "rec-1", None, None),
        &[],
        &GatingOptions::default(),
    );
    assert_eq!(r.verdict, CitationVerdict::UnknownRecording);
}

#[test]
fn an_empty_quote_is_empty() {
    for quote in ["", "   ", "… ?!"] {
        let r = check(cite(quote, "rec-1", None, None));
        assert_eq!(r.verdict, CitationVerdict::Empty, "{quote:?}");
        assert_eq!(r.similarity, 0.0);
    }
}

#[test]
fn a_transcript_without_words_is_searched_by_its_text() {
    let t = Transcript {
        recording_id: "rec-txt".into(),
        language: None,
        text: "Bonjour, je vous appelle pour votre contrat d'assurance habitation.".into(),
        words: vec![],
    };
    let r = check_citation(
        &cite(
            "votre contrat d'assurance habitation",
            "rec-txt",
            Some(500.0),
            Some("speaker_0"),
        ),
        std::slice::from_ref(&t),
        &GatingOptions::default(),
    );
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
    assert_eq!(r.matched_start_s, None);
    assert_eq!(
        r.matched_text.as_deref(),
        Some("votre contrat d assurance habitation")
    );
}

#[test]
fn window_search_agrees_with_brute_force() {
    let t = call_1();
    let index = RecordingIndex::new(&t);
    let anchored = RecordingIndex::anchored(&t);
    for quote in [
        PARAPHRASE,
        FABRICATED,
        "oui merci",
        "la cotisation mensuelle",
        "enregistre pour raisons",
        "cotisation mensuelle de 29,90",
        "cotisation mensuelle de 39,90",
    ] {
        let q: Vec<char> = normalize(quote).chars().collect();
        let k = normalize(quote).split(' ').count();
        let figures = super::figures::quote_figures(quote);
        let found = matching::search_exhaustive(&index, &q, &figures, k, 0.85);
        let mut brute: f64 = 0.0;
        for first in 0..index.tokens.len() {
            for len in k.saturating_sub(2).max(1)..=k + 2 {
                let w = Window {
                    first,
                    len,
                    similarity: 0.0,
                };
                if first + len > index.tokens.len() || !index.window_figures_match(&w, &figures) {
                    continue;
                }
                let (s, e) = index.window_char_range(&w);
                brute = brute.max(crate::text::similarity_chars(&q, &index.chars[s..e]));
            }
        }
        let best = found.best.map_or(0.0, |b| b.similarity);
        assert!((best - brute).abs() < 1e-12, "{quote}: {best} vs {brute}");
        // The indexed search finds the same windows.
        let indexed = indexed::search(&anchored, &q, &figures, k, 0.85, true);
        assert_eq!(indexed.accepted, found.accepted, "{quote}");
        if found.accepted.is_empty() {
            assert_eq!(indexed.best, found.best, "{quote}");
            assert_eq!(indexed.figures_differ, found.figures_differ, "{quote}");
        }
    }
}

#[test]
fn a_long_transcript_is_checked_quickly() {
    let filler = "alors euh oui donc je regarde votre dossier et je vois que tout est en ordre pour le moment";
    let mut turns: Vec<(&str, f64, &str)> = Vec::new();
    for i in 0..550 {
        let speaker = if i % 2 == 0 { "speaker_0" } else { "speaker_1" };
        turns.push((speaker, i as f64 * 8.0, filler));
    }
    turns.push((
        "speaker_0",
        4400.0,
        "Je vous confirme que le contrat prend effet le premier du mois.",
    ));
    let t = transcript("rec-long", &turns);
    assert!(t.words.len() > 10_000);
    let started = std::time::Instant::now();
    let ok = check_citation(
        &cite(
            "le contrat prend effet le premier du mois",
            "rec-long",
            Some(4402.0),
            Some("speaker_0"),
        ),
        std::slice::from_ref(&t),
        &GatingOptions::default(),
    );
    let ko = check_citation(
        &cite(FABRICATED, "rec-long", None, None),
        std::slice::from_ref(&t),
        &GatingOptions::default(),
    );
    assert_eq!(ok.verdict, CitationVerdict::Verified, "{}", ok.reason);
    assert_eq!(ko.verdict, CitationVerdict::NotFound, "{}", ko.reason);
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_present_claim_with_a_verified_citation_stays_present() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![
            cite(FABRICATED, "rec-1", None, None),
            cite(
                "Cet appel est enregistré",
                "rec-1",
                Some(10.0),
                Some("speaker_0"),
            ),
        ],
    ));
    assert_eq!(p.statut, ControlPointStatus::Present);
    assert!(!p.evidence_unverified);
    assert_eq!(p.evidence_reason, None);
    assert_eq!(p.claimed_statut, None);
    assert_eq!(p.citation_checks.len(), 2);
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::NotFound);
    assert_eq!(p.citation_checks[1].verdict, CitationVerdict::Verified);
}

#[test]
fn a_present_claim_with_a_fabricated_quote_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite(FABRICATED, "rec-1", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert!(p.evidence_unverified);
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
    let reason = p.evidence_reason.unwrap_or_default();
    assert!(
        reason.contains("quote not found in recording rec-1"),
        "{reason}"
    );
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::NotFound);
}

#[test]
fn a_present_claim_with_a_close_paraphrase_becomes_partiel() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite(PARAPHRASE, "rec-1", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert!(p.evidence_unverified);
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::Close);
}

#[test]
fn wrong_speaker_and_wrong_time_count_as_close() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite("Oui, bonjour.", "rec-1", None, Some("speaker_0"))],
    ));
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::WrongSpeaker);
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite(
            "Vous pouvez résilier à tout moment",
            "rec-1",
            Some(400.0),
            None,
        )],
    ));
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::WrongTime);
}

#[test]
fn a_present_claim_quoting_another_recording_of_the_fiche_becomes_partiel_and_says_where() {
    // Said verbatim in rec-2, cited as rec-1: the words were said, only elsewhere.
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite(
            "Je vous confirme la résiliation de votre ancien contrat",
            "rec-1",
            None,
            None,
        )],
    ));
    assert_eq!(
        p.citation_checks[0].verdict,
        CitationVerdict::WrongRecording
    );
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert!(p.evidence_unverified);
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
    let reason = p.evidence_reason.unwrap_or_default();
    assert!(
        reason.contains("but found in recording rec-2 at 4.0s"),
        "{reason}"
    );
}

#[test]
fn a_partiel_claim_quoting_another_recording_of_the_fiche_stays_partiel() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Partiel,
        vec![cite(
            "Parfait, merci beaucoup.",
            "rec-1",
            Some(12.0),
            Some("speaker_1"),
        )],
    ));
    assert_eq!(
        p.citation_checks[0].verdict,
        CitationVerdict::WrongRecording
    );
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert!(p.evidence_unverified);
    assert_eq!(p.claimed_statut, None);
}

#[test]
fn a_present_claim_citing_an_unknown_recording_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite("Oui, bonjour.", "rec-9", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert_eq!(
        p.citation_checks[0].verdict,
        CitationVerdict::UnknownRecording
    );
    assert!(p.evidence_unverified);
}

#[test]
fn a_present_claim_without_citation_becomes_absent() {
    let p = gate_one(claim(0, ControlPointStatus::Present, vec![]));
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert!(p.evidence_unverified);
    assert_eq!(p.evidence_reason.as_deref(), Some("no citation"));
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
    assert!(p.citation_checks.is_empty());
}

#[test]
fn a_claim_with_only_an_empty_quote_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite("  ", "rec-1", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::Empty);
}

#[test]
fn a_partiel_claim_with_a_close_citation_stays_partiel_but_unverified() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Partiel,
        vec![cite(PARAPHRASE, "rec-1", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Partiel);
    assert!(p.evidence_unverified);
    assert!(p.evidence_reason.is_some());
    assert_eq!(
        p.claimed_statut, None,
        "status unchanged, so no claimed_statut"
    );
}

#[test]
fn a_partiel_claim_without_close_citation_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Partiel,
        vec![cite(FABRICATED, "rec-1", None, None)],
    ));
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Partiel));
}

#[test]
fn a_partiel_claim_with_a_verified_citation_stays_partiel() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Partiel,
        vec![cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_1"))],
    ));
    assert_eq!(
        p.statut,
        ControlPointStatus::Partiel,
        "gating never upgrades"
    );
    assert!(!p.evidence_unverified);
}

#[test]
fn non_applicable_claims_are_untouched() {
    let original = claim(
        0,
        ControlPointStatus::NonApplicable,
        vec![cite(FABRICATED, "rec-404", None, None)],
    );
    assert_eq!(gate_one(original.clone()), original);
}

#[test]
fn absent_claims_are_untouched() {
    let original = claim(
        0,
        ControlPointStatus::Absent,
        vec![cite(FABRICATED, "rec-1", None, None)],
    );
    assert_eq!(gate_one(original.clone()), original);
    let bare = claim(1, ControlPointStatus::Absent, vec![]);
    assert_eq!(gate_one(bare.clone()), bare);
}

#[test]
fn gating_twice_gives_the_same_result() {
    let analysis = StepAnalysis {
        points_controle: vec![
            claim(
                0,
                ControlPointStatus::Present,
                vec![cite(PARAPHRASE, "rec-1", None, None)],
            ),
            claim(
                1,
                ControlPointStatus::Present,
                vec![cite(FABRICATED, "rec-1", None, None)],
            ),
            claim(
                2,
                ControlPointStatus::Present,
                vec![cite("Oui, bonjour.", "rec-1", None, None)],
            ),
        ],
        commentaire: "Étape de présentation.".into(),
    };
    let once = gate_step(analysis, &fiche(), &GatingOptions::default());
    let twice = gate_step(once.clone(), &fiche(), &GatingOptions::default());
    assert_eq!(once, twice);
    assert_eq!(
        twice.points_controle[0].claimed_statut,
        Some(ControlPointStatus::Present)
    );
}

#[test]
fn gate_point_gates_a_single_control_point() {
    let p = gate_point(
        claim(
            4,
            ControlPointStatus::Present,
            vec![cite(FABRICATED, "rec-2", None, None)],
        ),
        &fiche(),
        &GatingOptions::default(),
    );
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert_eq!(p.index, 4);
}

#[test]
fn gated_step_then_score_step_gives_the_expected_verdict() {
    let analysis = StepAnalysis {
        points_controle: vec![
            // Verified: stays PRESENT.
            claim(
                0,
                ControlPointStatus::Present,
                vec![cite(
                    "Cet appel est enregistré",
                    "rec-1",
                    Some(10.0),
                    Some("speaker_0"),
                )],
            ),
            // Fabricated: PRESENT → ABSENT.
            claim(
                1,
                ControlPointStatus::Present,
                vec![cite(FABRICATED, "rec-1", None, None)],
            ),
            // Paraphrase: PRESENT → PARTIEL.
            claim(
                2,
                ControlPointStatus::Present,
                vec![cite(PARAPHRASE, "rec-1", Some(25.0), None)],
            ),
            // Untouched.
            claim(3, ControlPointStatus::NonApplicable, vec![]),
        ],
        commentaire: "Étape de présentation.".into(),
    };
    let claimed = score_step(10.0, &analysis.points_controle);
    assert_eq!(claimed.conforme, Conformite::Conforme);
    let gated = gate_step(analysis, &fiche(), &GatingOptions::default());
    let statuses: Vec<ControlPointStatus> =
        gated.points_controle.iter().map(|p| p.statut).collect();
    assert_eq!(
        statuses,
        vec![
            ControlPointStatus::Present,
            ControlPointStatus::Absent,
            ControlPointStatus::Partiel,
            ControlPointStatus::NonApplicable
        ]
    );
    let score = score_step(10.0, &gated.points_controle);
    assert!(
        (score.score - 5.0).abs() < 1e-12,
        "(1 + 0.5) / 3 × 10, got {}",
        score.score
    );
    assert_eq!(score.conforme, Conformite::Partiel);
    assert_eq!(gated.commentaire, "Étape de présentation.");
}

#[test]
fn non_finite_options_fall_back_to_defaults() {
    let opts = GatingOptions {
        accept_similarity: f64::NAN,
        close_similarity: f64::INFINITY,
        time_tolerance_s: -5.0,
    };
    let r = check_citation(
        &cite("Oui, bonjour.", "rec-1", Some(8.0), None),
        &fiche(),
        &opts,
    );
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
}

#[test]
fn citation_check_serializes_with_screaming_snake_case_verdicts() {
    for (verdict, name) in [
        (CitationVerdict::Verified, "VERIFIED"),
        (CitationVerdict::Close, "CLOSE"),
        (CitationVerdict::NotFound, "NOT_FOUND"),
        (CitationVerdict::WrongSpeaker, "WRONG_SPEAKER"),
        (CitationVerdict::WrongTime, "WRONG_TIME"),
        (CitationVerdict::UnknownRecording, "UNKNOWN_RECORDING"),
        (CitationVerdict::WrongRecording, "WRONG_RECORDING"),
        (CitationVerdict::Empty, "EMPTY"),
        (CitationVerdict::TooShort, "TOO_SHORT"),
        (CitationVerdict::FiguresDiffer, "FIGURES_DIFFER"),
    ] {
        assert_eq!(
            serde_json::to_value(verdict).ok(),
            Some(serde_json::Value::String(name.into()))
        );
        assert_eq!(verdict.as_str(), name);
    }
    let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_1")));
    let value = serde_json::to_value(&r).expect("serializable");
    for key in [
        "quote",
        "recording_id",
        "verdict",
        "similarity",
        "matched_text",
        "matched_start_s",
        "reason",
    ] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    assert_eq!(value["verdict"], "VERIFIED");
    let back: CitationCheck = serde_json::from_value(value).expect("round trip");
    assert_eq!(back, r);
    let minimal: CitationCheck = serde_json::from_str(
        r#"{"quote":"oui","recording_id":"rec-1","verdict":"NOT_FOUND","similarity":0.2,"reason":"quote not found"}"#,
    )
    .expect("optional fields default");
    assert_eq!(minimal.matched_text, None);
    assert_eq!(minimal.matched_start_s, None);
}

#[test]
fn default_gating_options_match_the_design() {
    let d = GatingOptions::default();
    assert_eq!(
        (d.accept_similarity, d.close_similarity, d.time_tolerance_s),
        (0.85, 0.6, 15.0)
    );
}

/// A call full of figures: a price in words, a percentage, an IBAN, a date.
fn call_with_figures() -> Vec<Transcript> {
    vec![transcript(
        "rec-3",
        &[
            (
                "speaker_0",
                0.0,
                "La cotisation est de vingt-neuf euros par mois, prélevée le cinq de chaque mois.",
            ),
            (
                "speaker_0",
                10.0,
                "Vos lunettes sont remboursées à quatre-vingts pour cent.",
            ),
            (
                "speaker_1",
                16.0,
                "Mon IBAN commence par FR76 3000 6000 0112.",
            ),
            (
                "speaker_0",
                22.0,
                "Le contrat prend effet le 1er mars 2025, pour 39 euros les frais de dossier.",
            ),
        ],
    )]
}

fn check_figures(quote: &str) -> CitationCheck {
    check_citation(
        &cite(quote, "rec-3", None, None),
        &call_with_figures(),
        &GatingOptions::default(),
    )
}

#[test]
fn quotes_stating_the_transcripts_figures_are_verified() {
    for quote in [
        "La cotisation est de vingt-neuf euros par mois",
        "remboursées à quatre-vingts pour cent",
        "Mon IBAN commence par FR76 3000 6000 0112",
        "Le contrat prend effet le 1er mars 2025",
        // An ASR-sized difference in letters, none in figures.
        "La cotisation est de vingt-neuf euro par mois",
    ] {
        let r = check_figures(quote);
        assert_eq!(
            r.verdict,
            CitationVerdict::Verified,
            "{quote}: {}",
            r.reason
        );
    }
}

#[test]
fn a_quote_whose_price_differs_from_the_transcript_is_never_verified() {
    // One character away from the transcript (similarity above 0.97), but 39,90 is not
    // 29,90.
    let r = check(cite(
        "la cotisation mensuel est de 39,90 €",
        "rec-1",
        None,
        Some("speaker_0"),
    ));
    assert_eq!(r.verdict, CitationVerdict::FiguresDiffer, "{}", r.reason);
    assert!(r.similarity >= 0.85, "similarity {}", r.similarity);
    assert!(
        r.reason
            .contains("but with other figures (transcript: 29, 90; quote: 39, 90)"),
        "{}",
        r.reason
    );
    assert_eq!(
        r.matched_text.as_deref(),
        Some("la cotisation mensuel est de 29,90")
    );
}

#[test]
fn number_words_that_differ_are_never_a_match() {
    let r = check_figures("La cotisation est de trente-neuf euros par mois");
    assert_eq!(r.verdict, CitationVerdict::FiguresDiffer, "{}", r.reason);
    assert!(
        r.reason.contains("(transcript: 29; quote: 39)"),
        "{}",
        r.reason
    );
    let r = check_figures("remboursées à quatre-vingt-dix pour cent");
    assert_eq!(r.verdict, CitationVerdict::FiguresDiffer, "{}", r.reason);
    assert!(
        r.reason.contains("(transcript: 80; quote: 90)"),
        "{}",
        r.reason
    );
}

#[test]
fn a_date_an_iban_group_or_a_fee_that_differs_is_never_a_match() {
    for (quote, figures) in [
        (
            "Le contrat prend effet le 1er mars 2026",
            "(transcript: 1, 2025; quote: 1, 2026)",
        ),
        (
            "Mon IBAN commence par FR76 3000 6000 0113",
            "(transcript: 76, 3000, 6000, 112; quote: 76, 3000, 6000, 113)",
        ),
        (
            "pour 29 euros les frais de dossier",
            "(transcript: 39; quote: 29)",
        ),
    ] {
        let r = check_figures(quote);
        assert_eq!(
            r.verdict,
            CitationVerdict::FiguresDiffer,
            "{quote}: {}",
            r.reason
        );
        assert!(r.reason.contains(figures), "{quote}: {}", r.reason);
    }
}

#[test]
fn a_quote_cutting_a_number_in_words_states_another_figure() {
    // "neuf euros par mois" occurs letter for letter, but the call says 29, not 9.
    let r = check_figures("neuf euros par mois, prélevée");
    assert_eq!(r.verdict, CitationVerdict::FiguresDiffer, "{}", r.reason);
}

#[test]
fn a_quote_leaving_out_a_figure_of_the_transcript_is_not_a_match() {
    // The call says "le cinq de chaque mois": a quote without the 5 states one figure
    // fewer, however similar its letters.
    let r =
        check_figures("La cotisation est de vingt-neuf euros par mois, prélevée le de chaque mois");
    assert_eq!(r.verdict, CitationVerdict::FiguresDiffer, "{}", r.reason);
    assert!(
        r.reason.contains("(transcript: 29, 5; quote: 29)"),
        "{}",
        r.reason
    );
}

#[test]
fn a_present_claim_whose_figures_differ_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite(
            "la cotisation mensuel est de 39,90 €",
            "rec-1",
            Some(21.0),
            Some("speaker_0"),
        )],
    ));
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::FiguresDiffer);
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert_eq!(p.claimed_statut, Some(ControlPointStatus::Present));
    assert!(
        p.evidence_reason
            .unwrap_or_default()
            .contains("other figures"),
    );
}

#[test]
fn a_one_word_quote_verifies_nothing() {
    for quote in ["Oui", "oui !", "  Bonjour,  ", "D'accord.", "l'offre"] {
        let r = check(cite(quote, "rec-1", Some(8.0), Some("speaker_1")));
        assert_eq!(r.verdict, CitationVerdict::TooShort, "{quote:?}");
        assert_eq!(r.reason, "a one-word quote is not evidence");
        assert_eq!(r.matched_text, None);
    }
    // Two words are a quote.
    let r = check(cite("Oui, bonjour.", "rec-1", Some(8.0), Some("speaker_1")));
    assert_eq!(r.verdict, CitationVerdict::Verified, "{}", r.reason);
}

#[test]
fn a_present_claim_backed_by_a_one_word_quote_becomes_absent() {
    let p = gate_one(claim(
        0,
        ControlPointStatus::Present,
        vec![cite("Oui.", "rec-1", Some(8.0), Some("speaker_1"))],
    ));
    assert_eq!(p.citation_checks[0].verdict, CitationVerdict::TooShort);
    assert_eq!(p.statut, ControlPointStatus::Absent);
    assert!(p.evidence_unverified);
    assert!(
        p.evidence_reason
            .unwrap_or_default()
            .contains("a one-word quote is not evidence")
    );
}

mod long;
mod timing;
