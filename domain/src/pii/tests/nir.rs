use super::*;

#[test]
fn a_social_security_number_in_groups_with_its_key_is_a_nir() {
    let (span, value) = only(
        PiiKind::Nir,
        "mon numéro de sécu c'est le 1 89 06 75 116 001 73",
    );
    assert_eq!(span, "1 89 06 75 116 001 73");
    assert_eq!(value, "189067511600173");
}

#[test]
fn a_nir_in_one_block_is_a_nir() {
    assert_eq!(only(PiiKind::Nir, "275021305512350").1, "275021305512350");
}

#[test]
fn a_nir_born_in_corsica_is_checked_with_2a_as_19_and_2b_as_18() {
    assert_eq!(
        only(PiiKind::Nir, "1 68 03 2A 123 456 58").1,
        "168032A12345658"
    );
    assert_eq!(
        only(PiiKind::Nir, "2 89 10 2B 031 024 79").1,
        "289102B03102479"
    );
    assert_eq!(
        only(PiiKind::Nir, "un soixante-huit zéro trois deux A cent vingt-trois quatre cent cinquante-six cinquante-huit").1,
        "168032A12345658"
    );
}

#[test]
fn a_nir_said_in_words_with_cle_before_its_key_is_a_nir() {
    let text = "un, quatre-vingt-neuf, zéro six, soixante-quinze, cent seize, zéro zéro un, clé soixante-treize";
    assert_eq!(only(PiiKind::Nir, text).1, "189067511600173");
}

#[test]
fn a_nir_with_a_wrong_key_is_not_a_nir() {
    assert!(found_of(PiiKind::Nir, "1 89 06 75 116 001 74").is_empty());
}

#[test]
fn a_nir_with_an_impossible_month_or_sex_is_not_a_nir() {
    assert!(!super::super::nir::nir_ok("189157511600100"));
    assert!(!super::super::nir::nir_ok("589067511600173"));
    assert!(super::super::nir::nir_ok("189067511600173"));
}
