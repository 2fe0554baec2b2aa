use super::*;

#[test]
fn a_card_number_in_groups_of_four_passing_luhn_is_a_card() {
    let (span, value) = only(
        PiiKind::Card,
        "le numéro de carte c'est 4970 1012 3456 7893 et la date d'expiration 12/27",
    );
    assert_eq!(span, "4970 1012 3456 7893");
    assert_eq!(value, "4970101234567893");
}

#[test]
fn a_card_number_read_digit_by_digit_or_in_pairs_is_a_card() {
    let text =
        "quatre neuf sept zéro, un zéro un deux, trois quatre cinq six, sept huit neuf trois";
    assert_eq!(only(PiiKind::Card, text).1, "4970101234567893");
    let text = "quarante-neuf soixante-dix dix douze trente-quatre cinquante-six soixante-dix-huit quatre-vingt-treize";
    assert_eq!(only(PiiKind::Card, text).1, "4970101234567893");
    assert_eq!(
        only(PiiKind::Card, "5130123456789017").1,
        "5130123456789017"
    );
}

#[test]
fn an_amex_number_of_fifteen_digits_is_a_card() {
    assert_eq!(
        only(PiiKind::Card, "3782 822463 10005").1,
        "378282246310005"
    );
}

#[test]
fn a_long_number_failing_luhn_is_not_a_card() {
    assert!(nothing_in(
        "votre numéro de commande est le 4970 1012 3456 7894"
    ));
    assert!(nothing_in("la référence 2024 0318 7765 4410"));
}

#[test]
fn digits_of_a_card_length_that_no_network_issues_are_not_a_card() {
    // Luhn-valid, but starting with 9.
    assert!(found_of(PiiKind::Card, "9000 0000 0000 0008").is_empty());
}

#[test]
fn the_luhn_check_doubles_every_second_digit_from_the_right() {
    assert!(super::super::card::luhn_ok("79927398713"));
    assert!(!super::super::card::luhn_ok("79927398710"));
}
