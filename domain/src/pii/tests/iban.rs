use super::*;

const FR: &str = "FR7630006000011234567890189";

#[test]
fn a_french_iban_in_groups_of_four_is_found_with_its_value_without_spaces() {
    let (span, value) = only(
        PiiKind::Iban,
        "mon IBAN c'est FR76 3000 6000 0112 3456 7890 189, voilà",
    );
    assert_eq!(span, "FR76 3000 6000 0112 3456 7890 189");
    assert_eq!(value, FR);
}

#[test]
fn an_iban_in_one_block_in_lower_case_or_with_dashes_is_the_same_iban() {
    for text in [
        "FR7630006000011234567890189",
        "fr76 3000 6000 0112 3456 7890 189",
        "FR76-3000-6000-0112-3456-7890-189",
        "Fr76.3000.6000.0112.3456.7890.189",
    ] {
        assert_eq!(only(PiiKind::Iban, text).1, FR, "{text}");
    }
}

#[test]
fn an_iban_spelled_out_by_speech_to_text_is_found() {
    for text in [
        "F R 7 6 3 0 0 0 6 0 0 0 0 1 1 2 3 4 5 6 7 8 9 0 1 8 9",
        "F. R. 76 30 00 60 00 01 12 34 56 78 90 189",
        "effe erre soixante-seize trois mille, six mille, zéro cent douze, trente-quatre cinquante-six, soixante-dix-huit quatre-vingt-dix, cent quatre-vingt-neuf",
        "F comme François R comme Robert 76 3000 6000 0112 3456 7890 189",
        "FR76 3000 euh 6000 0112 3456 7890 189",
    ] {
        assert_eq!(only(PiiKind::Iban, text).1, FR, "{text}");
    }
}

#[test]
fn ibans_of_other_countries_are_checked_at_their_own_length() {
    assert_eq!(
        only(PiiKind::Iban, "DE89 3704 0044 0532 0130 00").1,
        "DE89370400440532013000"
    );
    assert_eq!(
        only(PiiKind::Iban, "GB29 NWBK 6016 1331 9268 19").1,
        "GB29NWBK60161331926819"
    );
    assert_eq!(
        only(PiiKind::Iban, "BE68 5390 0754 7034").1,
        "BE68539007547034"
    );
    assert_eq!(
        only(PiiKind::Iban, "IT60 X054 2811 1010 0000 0123 456").1,
        "IT60X0542811101000000123456"
    );
    assert_eq!(
        only(
            PiiKind::Iban,
            "un compte français avec une lettre FR14 2004 1010 0505 0001 3M02 606"
        )
        .1,
        "FR1420041010050500013M02606"
    );
}

#[test]
fn an_iban_read_out_twice_is_found_twice() {
    let text = "FR76 3000 6000 0112 3456 7890 189, je répète, FR76 3000 6000 0112 3456 7890 189";
    let ibans = found_of(PiiKind::Iban, text);
    assert_eq!(ibans.len(), 2, "{ibans:?}");
    assert!(ibans.iter().all(|(_, v)| v == FR));
}

#[test]
fn an_iban_with_a_wrong_check_is_not_an_iban() {
    // One digit changed: mod 97 fails.
    assert!(found_of(PiiKind::Iban, "FR76 3000 6000 0112 3456 7890 188").is_empty());
    // Too short for France.
    assert!(found_of(PiiKind::Iban, "FR76 3000 6000 0112 3456 7890").is_empty());
    // Not a country with IBANs.
    assert!(found_of(PiiKind::Iban, "ZZ76 3000 6000 0112 3456 7890 189").is_empty());
}

#[test]
fn the_mod_97_check_accepts_valid_ibans_only() {
    assert!(super::super::iban::mod97_ok(FR));
    assert!(super::super::iban::mod97_ok("GB29NWBK60161331926819"));
    assert!(!super::super::iban::mod97_ok("GB28NWBK60161331926819"));
    assert!(!super::super::iban::mod97_ok("FR76"));
}
