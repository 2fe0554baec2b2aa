use super::*;
use crate::pii::eval::{Case, Expected, embedded_cases, evaluate, parse_cases, target};

fn case(id: &str, text: &str, pii: &[(PiiKind, &str)]) -> Case {
    Case {
        id: id.to_string(),
        text: text.to_string(),
        pii: pii
            .iter()
            .map(|(kind, text)| Expected {
                kind: *kind,
                text: text.to_string(),
            })
            .collect(),
    }
}

#[test]
fn a_finding_counts_when_its_kind_matches_and_its_span_overlaps() {
    let report = evaluate(&[
        // The label covers a bit more than the finding: still a match.
        case(
            "a",
            "appelez le 06 12 34 56 78 merci",
            &[(PiiKind::Phone, "le 06 12 34 56 78")],
        ),
        // Missed: nothing there is a card.
        case("b", "le 1234", &[(PiiKind::Card, "1234")]),
        // Found but not expected.
        case("c", "écrivez à a.b@c.fr", &[]),
    ]);
    let of = |kind: PiiKind| {
        report
            .kinds
            .iter()
            .find(|k| k.kind == kind)
            .unwrap()
            .clone()
    };
    let phone = of(PiiKind::Phone);
    assert_eq!(
        (
            phone.cases,
            phone.true_positives,
            phone.false_positives,
            phone.false_negatives
        ),
        (1, 1, 0, 0)
    );
    let card = of(PiiKind::Card);
    assert_eq!(
        (card.cases, card.true_positives, card.false_negatives),
        (1, 0, 1)
    );
    assert_eq!(card.recall(), 0.0);
    let email = of(PiiKind::Email);
    assert_eq!((email.false_positives, email.precision()), (1, 0.0));
    assert_eq!(report.negative_cases, 1);
    assert_eq!(report.mistakes.len(), 2);
    assert!(!report.passes());
}

#[test]
fn the_nth_label_of_a_repeated_value_is_its_nth_occurrence() {
    let text = "06 12 34 56 78 et encore 06 12 34 56 78";
    let report = evaluate(&[case(
        "twice",
        text,
        &[
            (PiiKind::Phone, "06 12 34 56 78"),
            (PiiKind::Phone, "06 12 34 56 78"),
        ],
    )]);
    let phone = report
        .kinds
        .iter()
        .find(|k| k.kind == PiiKind::Phone)
        .unwrap();
    assert_eq!((phone.true_positives, phone.false_negatives), (2, 0));
}

#[test]
fn a_label_that_does_not_occur_in_its_text_is_refused() {
    let err = parse_cases(
        "x.jsonl",
        r#"{"id":"a","text":"bonjour","pii":[{"kind":"PHONE","text":"06"}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("x.jsonl line 1"), "{err}");
    assert!(
        parse_cases(
            "x.jsonl",
            r#"{"id":"a","text":"bonjour","pii":[{"kind":"FAX","text":"b"}]}"#
        )
        .is_err()
    );
}

#[test]
fn the_committed_set_meets_every_target() {
    let cases = embedded_cases().expect("the committed set parses");
    assert!(cases.len() >= 250, "{} cases", cases.len());
    let report = evaluate(&cases);
    for k in &report.kinds {
        let t = target(k.kind);
        assert!(
            k.recall() >= t.recall && k.precision() >= t.precision,
            "{}: recall {:.3} (target {}), precision {:.3} (target {}); mistakes: {:#?}",
            k.kind,
            k.recall(),
            t.recall,
            k.precision(),
            t.precision,
            report
                .mistakes
                .iter()
                .filter(|m| m.kind == k.kind)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
#[ignore = "prints the figures of the committed set"]
fn print_the_figures_of_the_committed_set() {
    let report = evaluate(&embedded_cases().unwrap());
    println!("{}\n{}", report.table(), report.mistakes_list());
}
