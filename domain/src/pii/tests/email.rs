use super::*;

#[test]
fn a_written_address_is_found_in_lower_case() {
    let (span, value) = only(
        PiiKind::Email,
        "écrivez à Jean.Dupont@Gmail.com s'il vous plaît",
    );
    assert_eq!(span, "Jean.Dupont@Gmail.com");
    assert_eq!(value, "jean.dupont@gmail.com");
}

#[test]
fn a_spoken_address_is_found_with_its_signs() {
    let text = "alors c'est jean point dupont arobase gmail point com";
    let (span, value) = only(PiiKind::Email, text);
    assert_eq!(span, "jean point dupont arobase gmail point com");
    assert_eq!(value, "jean.dupont@gmail.com");
    assert_eq!(
        only(
            PiiKind::Email,
            "marie tiret bas martin arrobase orange point fr"
        )
        .1,
        "marie_martin@orange.fr"
    );
    assert_eq!(
        only(
            PiiKind::Email,
            "p tiret durand quatre-vingt-neuf at free point fr"
        )
        .1,
        "p-durand89@free.fr"
    );
    assert_eq!(
        only(PiiKind::Email, "c'est lucas.bernard arobase laposte.net").1,
        "lucas.bernard@laposte.net"
    );
}

#[test]
fn an_address_at_the_end_of_a_sentence_leaves_the_full_stop() {
    let (span, _) = only(PiiKind::Email, "Mon adresse est paul.leroy@sfr.fr.");
    assert_eq!(span, "paul.leroy@sfr.fr");
}

#[test]
fn words_like_point_without_an_at_sign_are_not_an_address() {
    assert!(nothing_in(
        "c'est un point important, on fait le point demain"
    ));
    assert!(nothing_in("allez sur notre site point com"));
    assert!(nothing_in("arobase"));
}
