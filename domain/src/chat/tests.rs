//! Chat prompts and quote checks, told as sentences.

use super::*;
use crate::analysis::ControlPointVerdict;
use crate::transcript::{Word, join_words};

/// A transcript from `(speaker, start_s, sentence)` turns, 0.4 s per word.
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
    Transcript {
        recording_id: recording_id.to_string(),
        language: Some("fr".into()),
        text: join_words(words.iter().map(|w| w.text.as_str())),
        words,
    }
}

fn calls() -> Vec<Transcript> {
    vec![
        transcript(
            "rec-1",
            &[
                (
                    "speaker_0",
                    0.0,
                    "Bonjour, je suis Marc de la société Assurup.",
                ),
                ("speaker_1", 4.0, "Oui, bonjour."),
            ],
        ),
        transcript(
            "rec-2",
            &[
                (
                    "speaker_0",
                    0.0,
                    "La cotisation mensuelle est de 29,90 euros, prélevée le cinq du mois.",
                ),
                (
                    "speaker_1",
                    6.0,
                    "Et je peux me rétracter pendant quatorze jours ?",
                ),
            ],
        ),
    ]
}

fn conversation(n: usize) -> Vec<PromptMessage> {
    (1..=n)
        .map(|i| {
            let role = if i % 2 == 1 {
                ChatRole::User
            } else {
                ChatRole::Assistant
            };
            PromptMessage::new(role, format!("message {i}"))
        })
        .collect()
}

#[test]
fn a_conversation_of_sixty_messages_sends_the_last_fifty_oldest_first_then_the_question() {
    let sent = prompt_messages("contexte".into(), &conversation(60), "question 61");
    assert_eq!(sent.len(), 52);
    assert_eq!(sent[0], PromptMessage::new(ChatRole::System, "contexte"));
    assert_eq!(sent[1], PromptMessage::new(ChatRole::User, "message 11"));
    assert_eq!(
        sent[50],
        PromptMessage::new(ChatRole::Assistant, "message 60")
    );
    assert_eq!(sent[51], PromptMessage::new(ChatRole::User, "question 61"));
}

#[test]
fn a_short_conversation_is_sent_whole_and_a_new_one_is_the_context_and_the_question() {
    assert_eq!(
        prompt_messages("c".into(), &conversation(3), "q").len(),
        1 + 3 + 1
    );
    assert_eq!(
        prompt_messages("c".into(), &[], "q"),
        vec![
            PromptMessage::new(ChatRole::System, "c"),
            PromptMessage::new(ChatRole::User, "q")
        ]
    );
}

#[test]
fn failed_answers_and_stored_system_messages_are_not_part_of_the_conversation() {
    let mut earlier = conversation(50);
    earlier.insert(10, PromptMessage::new(ChatRole::Assistant, "  "));
    earlier.insert(20, PromptMessage::new(ChatRole::System, "old context"));
    let sent = prompt_messages("c".into(), &earlier, "q");
    assert_eq!(sent.len(), 52);
    assert_eq!(sent[1].content, "message 1");
    assert!(sent[1..].iter().all(|m| m.role != ChatRole::System));
}

#[test]
fn quotes_between_guillemets_curly_and_straight_quotes_are_found_in_order_once() {
    let answer = "Le conseiller dit «\u{a0}Bonjour, je suis Marc\u{a0}» puis “La cotisation \
                  mensuelle” ; le client répond \"Oui, bonjour.\" et encore « bonjour je suis \
                  MARC ».";
    assert_eq!(
        extract_quotes(answer),
        vec![
            "Bonjour, je suis Marc",
            "La cotisation mensuelle",
            "Oui, bonjour."
        ]
    );
}

#[test]
fn one_word_spans_and_unbalanced_marks_quote_nothing() {
    assert!(extract_quotes("Le point est « conforme » selon l'audit.").is_empty());
    assert!(extract_quotes("Il a dit « bonjour à tous sans jamais fermer").is_empty());
    assert!(extract_quotes("Pas de citation ici.").is_empty());
}

#[test]
fn at_most_twenty_quotes_of_an_answer_are_checked() {
    let answer: String = (0..30).map(|i| format!("« mot numéro {i} » ")).collect();
    let quotes = extract_quotes(&answer);
    assert_eq!(quotes.len(), MAX_QUOTES);
    assert_eq!(quotes[19], "mot numéro 19");
}

#[test]
fn a_real_quote_verifies_in_the_recording_that_says_it_and_an_invented_one_is_not_found() {
    let checks = check_quotes(
        &[
            "je peux me rétracter pendant quatorze jours".to_string(),
            "Je vous garantis un remboursement intégral".to_string(),
        ],
        &calls(),
        &GatingOptions::default(),
    );
    assert_eq!(checks[0].verdict, CitationVerdict::Verified);
    assert_eq!(checks[0].recording_id.as_deref(), Some("rec-2"));
    assert_eq!(checks[0].matched_start_s, Some(6.4));
    assert_eq!(checks[1].verdict, CitationVerdict::NotFound);
    assert_eq!(checks[1].recording_id, None);
}

#[test]
fn a_quote_with_another_figure_is_flagged_as_such() {
    let checks = check_quotes(
        &["La cotisation mensuelle est de 39,90 euros".to_string()],
        &calls(),
        &GatingOptions::default(),
    );
    assert_eq!(checks[0].verdict, CitationVerdict::FiguresDiffer);
    assert_eq!(checks[0].recording_id.as_deref(), Some("rec-2"));
}

#[test]
fn without_transcripts_every_quote_is_not_found() {
    let checks = check_quotes(
        &["Bonjour, je suis Marc".to_string()],
        &[],
        &GatingOptions::default(),
    );
    assert_eq!(checks[0].verdict, CitationVerdict::NotFound);
    assert!(checks[0].reason.contains("no transcript"), "{checks:?}");
}

#[test]
fn the_fiche_context_lists_each_utterance_timestamped_and_speaker_labelled() {
    let context = fiche_context("FICHE-1", &calls());
    assert!(context.contains("Fiche FICHE-1 : 2 enregistrement(s) transcrit(s)."));
    assert!(context.contains("\nEnregistrement rec-2 :\n"));
    assert!(
        context.contains("\n[0.0 s] speaker_0 : Bonjour, je suis Marc de la société Assurup.\n")
    );
    assert!(
        context
            .contains("\n[6.0 s] speaker_1 : Et je peux me rétracter pendant quatorze jours ?\n")
    );
    assert!(!context.contains("omis"));
}

#[test]
fn a_long_fiche_context_is_cut_at_its_bound_and_says_how_much_was_left_out() {
    let long: Vec<(&str, f64, String)> = (0..2_000)
        .map(|i| {
            (
                "speaker_0",
                i as f64 * 10.0,
                format!("Phrase numéro {i} de l'appel. "),
            )
        })
        .collect();
    let turns: Vec<(&str, f64, &str)> = long
        .iter()
        .enumerate()
        .map(|(i, (s, t, x))| (if i % 2 == 0 { *s } else { "speaker_1" }, *t, x.as_str()))
        .collect();
    let context = fiche_context("FICHE-1", &[transcript("rec-1", &turns)]);
    assert!(context.chars().count() <= MAX_CONTEXT_CHARS + 100);
    let tail = context.lines().last().expect("a last line");
    assert!(
        tail.starts_with("[… ") && tail.ends_with("omis : contexte limité à 60000 caractères]"),
        "{tail}"
    );
    assert!(context.contains("Phrase numéro 0 de l'appel."));
    assert!(!context.contains("Phrase numéro 1999 "));
}

#[test]
fn the_audit_context_gives_each_step_its_verdict_and_each_point_its_statut_comment_and_citations() {
    let spec = StepSpec {
        position: 1,
        name: "Ouverture".into(),
        instructions: String::new(),
        weight: 10.0,
        critical: true,
        control_points: vec!["Le conseiller se présente".into()],
    };
    let analysis = StepAnalysis {
        points_controle: vec![
            serde_json::from_value::<ControlPointVerdict>(serde_json::json!({
                "index": 0,
                "point": "Le conseiller se présente",
                "statut": "PRESENT",
                "commentaire": "Il donne son nom.",
                "citations": [{"quote": "Bonjour, je suis Marc", "recording_id": "rec-1",
                               "start_s": 0.0, "speaker": "speaker_0"}],
            }))
            .expect("a verdict"),
        ],
        commentaire: "Étape conforme.".into(),
    };
    let unanalysed = StepSpec {
        position: 2,
        name: "Découverte".into(),
        control_points: vec!["Besoins".into()],
        ..spec.clone()
    };
    let context = audit_context(
        &AuditFacts {
            audit_id: "a-1",
            fiche_id: "FICHE-1",
            config_name: "Vente",
            status: "completed",
            score: Some(100.0),
            niveau: Some(Niveau::Excellent),
            critical: Some(false),
        },
        &[
            StepFacts {
                spec: &spec,
                result: Some(StepOutcomeFacts {
                    score: 10.0,
                    conforme: Conformite::Conforme,
                    analysis: &analysis,
                }),
            },
            StepFacts {
                spec: &unanalysed,
                result: None,
            },
        ],
    );
    for line in [
        "Audit a-1 de la fiche FICHE-1, configuration « Vente » : statut completed, score 100/100, niveau EXCELLENT, échec critique : non.",
        "Étape 1 « Ouverture » (poids 10, critique : oui) : CONFORME, score 10/10. Étape conforme.",
        "  Point 0 « Le conseiller se présente » : PRESENT — Il donne son nom.",
        "    Citation (rec-1, 0.0 s, speaker_0) : « Bonjour, je suis Marc »",
        "Étape 2 « Découverte » (poids 10, critique : oui) : pas encore analysée.",
        "  Point 0 « Besoins »",
    ] {
        assert!(context.contains(line), "{line:?} not in\n{context}");
    }
}
