use super::*;

const MOBILE: &str = "+33612345678";

#[test]
fn a_french_mobile_number_in_every_written_form_has_one_value() {
    for text in [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "06-12-34-56-78",
        "0612345678",
        "+33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "0033 6 12 34 56 78",
        "+33612345678",
    ] {
        assert_eq!(
            only(PiiKind::Phone, text),
            (text, MOBILE.to_string()),
            "{text}"
        );
    }
}

#[test]
fn a_phone_number_said_in_pairs_of_words_is_found() {
    let text = "c'est le zéro six douze trente-quatre cinquante-six soixante-dix-huit";
    let (span, value) = only(PiiKind::Phone, text);
    assert_eq!(
        span,
        "zéro six douze trente-quatre cinquante-six soixante-dix-huit"
    );
    assert_eq!(value, MOBILE);
    assert_eq!(
        only(
            PiiKind::Phone,
            "plus trente-trois six, douze, trente-quatre, cinquante-six, soixante-dix-huit"
        )
        .1,
        MOBILE
    );
    assert_eq!(
        only(PiiKind::Phone, "zéro un quarante-cinq 67 89 10").1,
        "+33145678910"
    );
}

#[test]
fn international_numbers_keep_their_country_code() {
    assert_eq!(only(PiiKind::Phone, "+44 20 7946 0958").1, "+442079460958");
    assert_eq!(only(PiiKind::Phone, "+1 415 555 0100").1, "+14155550100");
    assert_eq!(only(PiiKind::Phone, "00 32 470 12 34 56").1, "+32470123456");
    assert_eq!(only(PiiKind::Phone, "+41 79 123 45 67").1, "+41791234567");
}

#[test]
fn a_number_read_twice_in_one_run_gives_two_phones() {
    let phones = found_of(PiiKind::Phone, "06 12 34 56 78, 06 12 34 56 78");
    assert_eq!(phones.len(), 2, "{phones:?}");
}

#[test]
fn short_numbers_prices_and_postal_codes_are_not_phones() {
    assert!(nothing_in("ça fait 29,90 euros par mois pendant 12 mois"));
    assert!(nothing_in("j'habite au 12 rue des Lilas, 75011 Paris"));
    assert!(nothing_in("06 12 34 56"));
}

#[test]
fn ten_digits_named_as_a_reference_are_not_a_phone() {
    assert!(nothing_in("votre numéro de commande est le 0612345678"));
    assert!(nothing_in("le dossier 01 23 45 67 89 est clos"));
    assert_eq!(
        only(
            PiiKind::Phone,
            "pour la commande, rappelez-moi au 06 12 34 56 78"
        )
        .1,
        MOBILE
    );
}
