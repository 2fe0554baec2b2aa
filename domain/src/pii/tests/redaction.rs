use super::*;

#[test]
fn an_utterance_with_several_kinds_gets_one_placeholder_each() {
    let mut redactor = Redactor::new();
    let text = "Je suis née le 14 juin 1989, mon portable c'est le 06 12 34 56 78, \
                mon mail marie.durand@gmail.com et mon IBAN FR76 3000 6000 0112 3456 7890 189.";
    let redacted = redactor.redact(text);
    assert_eq!(
        redacted.text,
        "Je suis née le [DATE_NAISSANCE_1], mon portable c'est le [TELEPHONE_1], \
         mon mail [EMAIL_1] et mon IBAN [IBAN_1]."
    );
    assert_eq!(redacted.findings.len(), 4);
    assert!(!contains_known_value(
        &redacted.text,
        &[
            "06 12 34 56 78",
            "marie.durand@gmail.com",
            "FR76 3000 6000 0112 3456 7890 189",
            "1989-06-14"
        ]
    ));
}

#[test]
fn the_same_value_keeps_its_placeholder_across_the_texts_of_a_fiche() {
    let mut redactor = Redactor::new();
    let first = redactor.redact("appelez le 06 12 34 56 78 ou le 01 45 67 89 10");
    let second = redactor.redact("je redis : +33 6 12 34 56 78");
    assert_eq!(first.text, "appelez le [TELEPHONE_1] ou le [TELEPHONE_2]");
    assert_eq!(second.text, "je redis : [TELEPHONE_1]");
    assert_eq!(
        redactor.placeholders(),
        vec![
            ("[TELEPHONE_1]", "+33612345678"),
            ("[TELEPHONE_2]", "+33145678910")
        ]
    );
    assert_eq!(redactor.value_of("[TELEPHONE_2]"), Some("+33145678910"));
}

#[test]
fn placeholders_are_numbered_per_kind_in_order_of_first_appearance() {
    let mut redactor = Redactor::new();
    let redacted = redactor.redact(
        "FR76 3000 6000 0112 3456 7890 189 puis DE89 3704 0044 0532 0130 00, \
         écrivez à a.b@c.fr, et encore FR76 3000 6000 0112 3456 7890 189",
    );
    assert_eq!(
        redacted.text,
        "[IBAN_1] puis [IBAN_2], écrivez à [EMAIL_1], et encore [IBAN_1]"
    );
}

#[test]
fn a_text_without_personal_data_is_unchanged() {
    let mut redactor = Redactor::new();
    let text = "Bonjour madame, je vous appelle au sujet de votre mutuelle à 29,90 € par mois.";
    assert_eq!(redactor.redact(text).text, text);
    assert!(redactor.placeholders().is_empty());
}

#[test]
fn a_known_value_is_recognised_however_it_is_written() {
    assert!(contains_known_value(
        "le zéro six douze trente-quatre cinquante-six soixante-dix-huit",
        &["06 12 34 56 78"]
    ));
    assert!(contains_known_value("+33 6 12 34 56 78", &["0612345678"]));
    assert!(contains_known_value(
        "fr76-3000-6000-0112-3456-7890-189",
        &["FR7630006000011234567890189"]
    ));
    assert!(contains_known_value(
        "JEAN POINT DUPONT AROBASE GMAIL POINT COM",
        &["jean.dupont@gmail.com"]
    ));
    assert!(contains_known_value("né le 14/06/1989", &["1989-06-14"]));
    assert!(!contains_known_value("06 12 34 56 79", &["06 12 34 56 78"]));
    assert!(!contains_known_value(
        "rien de personnel",
        &["06 12 34 56 78", "x@y.fr"]
    ));
}
