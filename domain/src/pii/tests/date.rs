use super::*;

#[test]
fn a_full_date_of_birth_in_digits_is_a_birth_date() {
    for text in [
        "14/06/1989",
        "14-06-1989",
        "14.06.1989",
        "1989-06-14",
        "14/06/89",
    ] {
        assert_eq!(
            only(PiiKind::BirthDate, text),
            (text, "1989-06-14".to_string()),
            "{text}"
        );
    }
}

#[test]
fn a_spoken_date_of_birth_is_a_birth_date() {
    assert_eq!(
        only(PiiKind::BirthDate, "je suis né le 14 juin 1989").1,
        "1989-06-14"
    );
    assert_eq!(
        only(
            PiiKind::BirthDate,
            "quatorze juin mille neuf cent quatre-vingt-neuf"
        )
        .1,
        "1989-06-14"
    );
    assert_eq!(only(PiiKind::BirthDate, "né le 3 mars 75").1, "1975-03-03");
    assert_eq!(
        only(
            PiiKind::BirthDate,
            "née le premier avril dix-neuf cent quatre-vingt-dix"
        )
        .1,
        "1990-04-01"
    );
    assert_eq!(
        only(PiiKind::BirthDate, "ma date de naissance, le 1er mai 2001").1,
        "2001-05-01"
    );
}

#[test]
fn a_day_and_month_without_year_is_a_birth_date_only_under_a_birth_word() {
    assert_eq!(
        only(PiiKind::BirthDate, "elle est née le quatorze juin").1,
        "--06-14"
    );
    assert!(nothing_in("on se rappelle le quatorze juin"));
    assert!(nothing_in("le contrat démarre le 1er décembre"));
}

#[test]
fn a_date_of_another_event_is_not_a_birth_date() {
    assert!(nothing_in("le contrat démarre le 1er décembre 2024"));
    assert!(nothing_in("date d'effet au 01/01/2025"));
    assert!(nothing_in("vous êtes client depuis le 3 mars 2005"));
    assert!(nothing_in(
        "le prélèvement aura lieu le 5 de chaque mois, premier le 05/02/2025"
    ));
}

#[test]
fn a_recent_full_date_without_context_is_not_a_birth_date() {
    assert!(nothing_in("on a reçu votre courrier du 15 janvier 2025"));
    assert!(nothing_in("le 12 mars 2026 à 14 heures"));
}

#[test]
fn the_nearest_context_word_decides() {
    let text =
        "votre date de naissance, le 3 mars 1975, et le contrat démarre le 1er décembre 1999";
    let dates = found_of(PiiKind::BirthDate, text);
    assert_eq!(dates, vec![("3 mars 1975", "1975-03-03".to_string())]);
}

#[test]
fn impossible_dates_are_not_dates() {
    assert!(nothing_in("31/02/1989"));
    assert!(nothing_in("né le 32 juin 1989"));
}

#[test]
fn digits_with_spaces_are_a_birth_date_only_under_a_birth_word() {
    assert_eq!(
        only(PiiKind::BirthDate, "date de naissance 14 06 1989").1,
        "1989-06-14"
    );
    assert!(nothing_in("14 06 1989"));
}

#[test]
fn a_word_of_another_event_just_after_a_full_date_makes_it_not_a_birth_date() {
    assert!(nothing_in("le 14 juin 1989 on a signé chez le notaire"));
    assert_eq!(
        only(
            PiiKind::BirthDate,
            "le 14 juin 1989 à Lyon, c'est ma naissance"
        )
        .1,
        "1989-06-14"
    );
}
