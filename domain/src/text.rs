//! Text normalisation and string similarity used to compare quoted evidence with
//! transcripts.
//!
//! [`normalize`] folds case, accents, ligatures, punctuation and whitespace so that
//! `"Ça coûte 29,90 € !"` and `"ca coute 29 90"` compare equal; [`similarity`] is a
//! character-level Levenshtein ratio in `[0, 1]`.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises text for comparison: Unicode compatibility decomposition (NFKD, a superset
/// of NFD), combining marks stripped, lowercased, `œ`→`oe`, `æ`→`ae` and `ß`→`ss`, every
/// non-alphanumeric character (apostrophes, punctuation, symbols such as `€`) turned into
/// a space, whitespace collapsed to single spaces and trimmed.
///
/// The result is a sequence of tokens separated by exactly one space (or the empty
/// string).
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // True when the last thing pushed is a separator (or nothing has been pushed yet),
    // so separators collapse and leading ones are dropped.
    let mut pending_space = false;
    for decomposed in s.nfkd() {
        for c in decomposed.to_lowercase() {
            if is_combining_mark(c) {
                continue;
            }
            let folded: &[char] = match c {
                'œ' => &['o', 'e'],
                'æ' => &['a', 'e'],
                'ß' => &['s', 's'],
                _ => &[],
            };
            if !folded.is_empty() {
                push_token_chars(&mut out, &mut pending_space, folded.iter().copied());
            } else if c.is_alphanumeric() {
                push_token_chars(&mut out, &mut pending_space, std::iter::once(c));
            } else {
                pending_space = true;
            }
        }
    }
    out
}

fn push_token_chars(out: &mut String, pending_space: &mut bool, chars: impl Iterator<Item = char>) {
    if *pending_space && !out.is_empty() {
        out.push(' ');
    }
    *pending_space = false;
    out.extend(chars);
}

/// Levenshtein edit distance (insertions, deletions, substitutions, each costing 1)
/// between two character slices, in O(|a|·|b|) time and O(min(|a|,|b|)) memory.
pub fn levenshtein(a: &[char], b: &[char]) -> usize {
    // Keep the shorter slice as the row to minimise memory.
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.len();
    }
    let mut prev: Vec<usize> = (0..=short.len()).collect();
    let mut cur: Vec<usize> = vec![0; short.len() + 1];
    for (i, &lc) in long.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &sc) in short.iter().enumerate() {
            let substitution = prev[j] + usize::from(lc != sc);
            let deletion = prev[j + 1] + 1;
            let insertion = cur[j] + 1;
            cur[j + 1] = substitution.min(deletion).min(insertion);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[short.len()]
}

/// Character-level similarity `1 − levenshtein(a, b) / max(len(a), len(b))`, in `[0, 1]`
/// (lengths in `char`s). Two empty strings are identical (`1.0`). The inputs are compared
/// as given; call [`normalize`] first for accent/case/punctuation-insensitive comparison.
pub fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    similarity_chars(&a, &b)
}

/// [`similarity`] on character slices.
pub fn similarity_chars(a: &[char], b: &[char]) -> f64 {
    let max_len = a.len().max(b.len());
    if max_len == 0 {
        return 1.0;
    }
    let distance = levenshtein(a, b);
    (1.0 - distance as f64 / max_len as f64).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_accents_case_currency_and_punctuation() {
        assert_eq!(normalize("Ça coûte 29,90 € !"), "ca coute 29 90");
    }

    #[test]
    fn normalize_turns_apostrophes_into_token_boundaries() {
        assert_eq!(normalize("D'accord, c'est noté."), "d accord c est note");
        assert_eq!(normalize("Aujourd’hui l’offre"), "aujourd hui l offre");
    }

    #[test]
    fn normalize_folds_ligatures() {
        assert_eq!(normalize("Le cœur de l'Œuvre"), "le coeur de l oeuvre");
        assert_eq!(normalize("Æquo et æquo"), "aequo et aequo");
    }

    #[test]
    fn normalize_collapses_and_trims_whitespace() {
        assert_eq!(normalize("  Très   bien,\n\tmerci  ! "), "tres bien merci");
        assert_eq!(
            normalize("Est-ce que vous êtes d’accord ?"),
            "est ce que vous etes d accord"
        );
    }

    #[test]
    fn normalize_of_only_punctuation_is_empty() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("   "), "");
        assert_eq!(normalize("… ?! « » — €"), "");
    }

    #[test]
    fn normalize_handles_compatibility_characters() {
        // Non-breaking spaces, superscripts and typographic ligatures fold too.
        assert_eq!(normalize("le 1ᵉʳ\u{a0}mois, ﬁn"), "le 1er mois fin");
    }

    #[test]
    fn similarity_of_identical_strings_is_one() {
        assert_eq!(similarity("bonjour madame", "bonjour madame"), 1.0);
        assert_eq!(similarity("", ""), 1.0);
    }

    #[test]
    fn similarity_against_an_empty_string_is_zero() {
        assert_eq!(similarity("bonjour", ""), 0.0);
        assert_eq!(similarity("", "bonjour"), 0.0);
    }

    #[test]
    fn similarity_counts_edits_relative_to_the_longer_string() {
        // One insertion over five characters.
        assert!((similarity("chat", "chats") - 0.8).abs() < 1e-12);
        // One substitution over eight characters, symmetric.
        assert!((similarity("daccord", "dacord") - (1.0 - 1.0 / 7.0)).abs() < 1e-12);
        assert_eq!(
            similarity("contrat", "contrar"),
            similarity("contrar", "contrat")
        );
    }

    #[test]
    fn similarity_counts_characters_not_bytes() {
        // "é" vs "e" is one substitution among four characters.
        assert!((similarity("été!", "ete!") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn levenshtein_matches_known_distances() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&c("kitten"), &c("sitting")), 3);
        assert_eq!(levenshtein(&c(""), &c("abc")), 3);
        assert_eq!(levenshtein(&c("mutuelle"), &c("mutuelle")), 0);
    }
}
