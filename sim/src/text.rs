//! Text helpers used by the simulated auditor: French normalisation, keyword
//! extraction and fuzzy word matching.

/// French words (and words describing the auditor's expectations rather than
/// what is said on the phone) that never count as evidence keywords.
const STOPWORDS: &[&str] = &[
    // grammatical words of four letters or more
    "avec",
    "dans",
    "pour",
    "vous",
    "votre",
    "notre",
    "nous",
    "leur",
    "leurs",
    "elle",
    "elles",
    "sont",
    "etre",
    "avoir",
    "cette",
    "ceci",
    "cela",
    "celle",
    "celui",
    "ceux",
    "comme",
    "mais",
    "plus",
    "moins",
    "tout",
    "tous",
    "toute",
    "toutes",
    "tres",
    "bien",
    "aussi",
    "fait",
    "faire",
    "sans",
    "sous",
    "chez",
    "entre",
    "donc",
    "alors",
    "quand",
    "quel",
    "quelle",
    "quels",
    "quelles",
    "dont",
    "meme",
    "encore",
    "ainsi",
    "avant",
    "apres",
    "depuis",
    "pendant",
    "lors",
    "afin",
    "selon",
    "vers",
    "voici",
    "voila",
    "parce",
    "puis",
    "deja",
    "avez",
    "avons",
    "suis",
    "etes",
    "sommes",
    "etait",
    "sera",
    "peut",
    "faut",
    "leurs",
    "lequel",
    "laquelle",
    "auquel",
    "echeant",
    "notamment",
    "bonjour",
    "merci",
    "oui",
    "accord",
    // meta words: how the control point is phrased, not what is said
    "conseiller",
    "conseillere",
    "client",
    "cliente",
    "clients",
    "prospect",
    "souscripteur",
    "annonce",
    "annoncer",
    "precise",
    "preciser",
    "mentionne",
    "mentionner",
    "indique",
    "indiquer",
    "explique",
    "expliquer",
    "informe",
    "informer",
    "interroge",
    "interroger",
    "identifie",
    "identifier",
    "appelant",
];

/// Lower-cases, strips French accents and turns everything that is not a letter
/// or a digit into a single space.
pub(crate) fn normalize(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut last_space = true;
    for c in input.chars() {
        let folded: &str = match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' | 'å' | 'À' | 'Â' | 'Ä' | 'Á' | 'Ã' | 'Å' => {
                "a"
            }
            'ç' | 'Ç' => "c",
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => "e",
            'î' | 'ï' | 'í' | 'ì' | 'Î' | 'Ï' | 'Í' | 'Ì' => "i",
            'ô' | 'ö' | 'ó' | 'ò' | 'õ' | 'Ô' | 'Ö' | 'Ó' | 'Ò' | 'Õ' => "o",
            'ù' | 'û' | 'ü' | 'ú' | 'Ù' | 'Û' | 'Ü' | 'Ú' => "u",
            'ÿ' | 'Ÿ' => "y",
            'ñ' | 'Ñ' => "n",
            'œ' | 'Œ' => "oe",
            'æ' | 'Æ' => "ae",
            _ => "",
        };
        if !folded.is_empty() {
            out.push_str(folded);
            last_space = false;
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Normalised words of a text.
pub(crate) fn words(input: &str) -> Vec<String> {
    normalize(input)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Whether a normalised word is a stopword.
fn is_stopword(word: &str) -> bool {
    STOPWORDS.contains(&word)
}

/// Content words of a control point: normalised words of at least four letters
/// that are not stopwords, without duplicates, in order of appearance.
pub(crate) fn keywords(point: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in words(point) {
        if w.chars().count() >= 4
            && !is_stopword(&w)
            && !w.chars().all(|c| c.is_ascii_digit())
            && !out.iter().any(|k| word_matches(k, &w))
        {
            out.push(w);
        }
    }
    out
}

/// The keywords of a control point in their original spelling (accents kept),
/// as a human (or a language model) would type them into a search box.
pub(crate) fn keyword_query(point: &str) -> String {
    let keys = keywords(point);
    let mut seen: Vec<String> = Vec::new();
    let mut out: Vec<String> = Vec::new();
    for raw in point.split(|c: char| !c.is_alphanumeric()) {
        if raw.is_empty() {
            continue;
        }
        let n = normalize(raw);
        if keys.contains(&n) && !seen.contains(&n) {
            seen.push(n);
            out.push(raw.to_lowercase());
        }
    }
    out.join(" ")
}

/// Fuzzy equality of two normalised words: equal, sharing a prefix of six
/// letters or more (enregistré / enregistrement), or one being a prefix of the
/// other with at least five letters (donne / donnez, garantie / garanties).
pub(crate) fn word_matches(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let shortest = a.chars().count().min(b.chars().count());
    common >= 6 || (common == shortest && shortest >= 5)
}

/// The keywords (indices into `keys`) found among `text_words`.
pub(crate) fn matched_keywords(keys: &[String], text_words: &[String]) -> Vec<usize> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| text_words.iter().any(|w| word_matches(k, w)))
        .map(|(i, _)| i)
        .collect()
}

/// Splits a text into sentences; every returned slice is an exact, trimmed
/// substring of the input.
pub(crate) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (pos, &(i, c)) in chars.iter().enumerate() {
        let at_end = pos + 1 == chars.len();
        let next_is_space = chars.get(pos + 1).is_some_and(|(_, n)| n.is_whitespace());
        if matches!(c, '.' | '?' | '!' | '…') && (at_end || next_is_space) {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Whether `needle` occurs in `haystack` once both are normalised.
#[cfg(test)]
pub(crate) fn contains_normalized(haystack: &str, needle: &str) -> bool {
    let n = normalize(needle);
    !n.is_empty() && normalize(haystack).contains(&n)
}

/// Cuts a string to at most `max` characters, on a character boundary.
pub(crate) fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_strips_accents_case_and_punctuation() {
        assert_eq!(
            normalize("Cet appel est ENREGISTRÉ, d'accord ?"),
            "cet appel est enregistre d accord"
        );
        assert_eq!(normalize("  «Œuvre»  "), "oeuvre");
    }

    #[test]
    fn keywords_skip_stopwords_meta_words_and_short_words() {
        assert_eq!(
            keywords(
                "Le conseiller annonce l'enregistrement de la conversation à des fins de qualité"
            ),
            vec!["enregistrement", "conversation", "fins", "qualite"]
        );
        assert_eq!(
            keyword_query("Le conseiller précise la date d'effet du contrat"),
            "date effet contrat"
        );
    }

    #[test]
    fn fuzzy_matching_accepts_inflections_but_not_unrelated_words() {
        assert!(word_matches("enregistre", "enregistrement"));
        assert!(word_matches("donne", "donnez"));
        assert!(word_matches("garanties", "garantie"));
        assert!(!word_matches("consentement", "conseiller"));
        assert!(!word_matches("jours", "journee"));
        assert!(!word_matches("pres", "presente"));
    }

    #[test]
    fn sentences_are_exact_substrings() {
        let t = "Merci. Je dois vérifier votre identité : votre nom ? Très bien";
        let s = sentences(t);
        assert_eq!(
            s,
            vec![
                "Merci.",
                "Je dois vérifier votre identité : votre nom ?",
                "Très bien"
            ]
        );
        assert!(s.iter().all(|x| t.contains(x)));
    }
}
