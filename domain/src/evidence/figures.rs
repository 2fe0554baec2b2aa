//! Figures in normalised text: the numbers a quote states. ASR tolerance covers letters,
//! never figures, so a window of the transcript matches a quote only when both state the
//! same figures in the same order ("39 euros" never verifies "29 euros", whatever the
//! similarity).
//!
//! A figure is one of:
//! - a run of digits, leading zeros dropped ("05" and "5" are the same figure); a token
//!   mixing letters and digits gives one figure per run ("14h30" is 14 then 30, "fr76"
//!   is 76, "1er" is 1);
//! - French thousands groups: an all-digit token of one to three digits followed by
//!   all-digit tokens of exactly three ("1 000" is 1000); other groups stay apart
//!   ("29,90" is 29 then 90, IBAN groups "3000 6000" are 3000 then 6000);
//! - a French number in words, as its value ("vingt-neuf" is 29, "quatre-vingt-dix"
//!   90, "soixante et onze" 71, "deux mille vingt-quatre" 2024, "premier" and
//!   "deuxième" 1 and 2), so "29,90 €" and "vingt-neuf euros quatre-vingt-dix" agree;
//! - a digit figure followed by "mille", "million(s)" or "milliard(s)", multiplied
//!   ("2 millions" is 2000000, like "deux millions").
//!
//! Choices, each erring towards fewer false figures:
//! - "un"/"une" alone are articles far more often than numbers: they are a figure only
//!   inside a number ("vingt et un", "cent un") or before "million(s)"/"milliard(s)".
//!   So "1 mois" and "un mois" differ, while "un mois" and "le mois" do not.
//! - "pour cent" is the percent sign: "cinq pour cent" is 5, like "5 %".
//! - A number in words ends at a phrase boundary (punctuation after a word, a change of
//!   speaker) or where the next word cannot continue it: "deux trois" is 2 then 3,
//!   "vingt-neuf quatre-vingt-dix" 29 then 90.
//! - Months, fractions ("demi", "quart") and "second(e)" are not figures.

use crate::numbers::{InWords, NumberWord, number_word};

/// A figure and the tokens it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Figure {
    /// Canonical decimal value (no leading zeros).
    pub(super) value: String,
    /// First token of the figure.
    pub(super) first: usize,
    /// Last token of the figure (inclusive).
    pub(super) last: usize,
    /// For a figure made of all-digit tokens only, the digit count of its last group
    /// (a following group of three continues it when this is at most three).
    digit_group: Option<usize>,
}

/// One token of normalised text.
#[derive(Debug, Clone, Copy)]
pub(super) struct FigureToken<'a> {
    /// The normalised token.
    pub(super) text: &'a str,
    /// Whether a phrase boundary (punctuation, a change of speaker) precedes it.
    pub(super) boundary: bool,
}

/// Whether the raw text of a word ends a phrase (its last character is punctuation).
pub(super) fn ends_phrase(raw: &str) -> bool {
    raw.trim_end()
        .chars()
        .last()
        .is_some_and(|c| matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '…'))
}

/// The figures of a quote, from its raw text: phrase boundaries come from the
/// punctuation ending each whitespace-separated piece.
pub(super) fn quote_figures(raw: &str) -> Vec<String> {
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut boundary = false;
    for piece in raw.split_whitespace() {
        let normalized = crate::text::normalize(piece);
        for (i, token) in normalized.split(' ').filter(|t| !t.is_empty()).enumerate() {
            pieces.push((token.to_string(), i == 0 && boundary));
        }
        boundary = ends_phrase(piece);
    }
    let tokens: Vec<FigureToken<'_>> = pieces
        .iter()
        .map(|(text, boundary)| FigureToken {
            text,
            boundary: *boundary,
        })
        .collect();
    figures(&tokens).into_iter().map(|f| f.value).collect()
}

/// The figure of a number in words.
fn figure_of(words: &InWords) -> Figure {
    Figure {
        value: words.value().to_string(),
        first: words.first,
        last: words.last,
        digit_group: None,
    }
}

/// A run of digits without its leading zeros ("0" for zeros only).
fn canonical_digits(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The figures of a token sequence, in order (see the module doc).
pub(super) fn figures(tokens: &[FigureToken<'_>]) -> Vec<Figure> {
    let mut out: Vec<Figure> = Vec::new();
    let mut words: Option<InWords> = None;
    let flush = |words: &mut Option<InWords>, out: &mut Vec<Figure>| {
        if let Some(w) = words.take() {
            out.push(figure_of(&w));
        }
    };
    let next_is = |i: usize, candidates: &[&str]| {
        tokens
            .get(i + 1)
            .is_some_and(|t| !t.boundary && candidates.contains(&t.text))
    };
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        if token.boundary {
            flush(&mut words, &mut out);
        }
        // The all-digit figure just before this token, when nothing separates them.
        let adjacent_digits = |out: &Vec<Figure>, words: &Option<InWords>| {
            out.last()
                .filter(|f| f.last + 1 == i && !token.boundary && words.is_none())
                .and_then(|f| f.digit_group)
        };

        if token.text.chars().any(|c| c.is_ascii_digit()) {
            flush(&mut words, &mut out);
            let all_digits = token.text.chars().all(|c| c.is_ascii_digit());
            let group = adjacent_digits(&out, &words);
            match out.last_mut() {
                Some(previous)
                    if all_digits && token.text.len() == 3 && group.is_some_and(|g| g <= 3) =>
                {
                    previous.value = canonical_digits(&format!("{}{}", previous.value, token.text));
                    previous.last = i;
                    previous.digit_group = Some(3);
                }
                _ if all_digits => out.push(Figure {
                    value: canonical_digits(token.text),
                    first: i,
                    last: i,
                    digit_group: Some(token.text.len()),
                }),
                _ => {
                    for run in token
                        .text
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|r| !r.is_empty())
                    {
                        out.push(Figure {
                            value: canonical_digits(run),
                            first: i,
                            last: i,
                            digit_group: None,
                        });
                    }
                }
            }
            i += 1;
            continue;
        }

        let Some((word, is_ordinal)) = number_word(token.text) else {
            if token.text == "et"
                && words.is_some_and(|w| matches!(w.chunk % 100, 20 | 30 | 40 | 50 | 60))
                && next_is(i, &["un", "une", "onze", "unieme"])
            {
                // "vingt et un", "soixante et onze": the number goes on.
                if let Some(w) = words.as_mut() {
                    w.last = i;
                    w.links_un = true;
                }
            } else if token.text == "pour" && next_is(i, &["cent", "cents"]) {
                // "pour cent" is the percent sign, not a hundred.
                flush(&mut words, &mut out);
                i += 1;
            } else {
                flush(&mut words, &mut out);
            }
            i += 1;
            continue;
        };

        let zeros = match word {
            NumberWord::Mille => Some("000"),
            NumberWord::Million => Some("000000"),
            NumberWord::Milliard => Some("000000000"),
            _ => None,
        };
        if let Some(zeros) = zeros
            && adjacent_digits(&out, &words).is_some()
            && let Some(previous) = out.last_mut()
        {
            // "2 millions" is "deux millions".
            if previous.value != "0" {
                previous.value.push_str(zeros);
            }
            previous.last = i;
            previous.digit_group = None;
            i += 1;
            continue;
        }

        if word == NumberWord::Premier {
            flush(&mut words, &mut out);
            out.push(figure_of(&InWords::start(i, word)));
            i += 1;
            continue;
        }
        let extended = words.as_mut().is_some_and(|w| w.extend(i, word));
        if !extended {
            flush(&mut words, &mut out);
            let starts = word != NumberWord::Un
                || next_is(i, &["million", "millions", "milliard", "milliards"]);
            if starts {
                words = Some(InWords::start(i, word));
            }
        }
        if is_ordinal {
            flush(&mut words, &mut out);
        }
        i += 1;
    }
    flush(&mut words, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures of a quote, as strings.
    fn of(text: &str) -> Vec<String> {
        quote_figures(text)
    }

    fn values(expected: &[&str]) -> Vec<String> {
        expected.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn text_without_numbers_has_no_figures() {
        assert!(of("Bonjour, je vous appelle au sujet de votre mutuelle").is_empty());
        assert!(of("").is_empty());
    }

    #[test]
    fn digits_are_figures_without_their_leading_zeros() {
        assert_eq!(of("39 euros"), values(&["39"]));
        assert_eq!(of("le 05/03/2024"), values(&["5", "3", "2024"]));
        assert_eq!(of("06 12 34 56 78"), values(&["6", "12", "34", "56", "78"]));
    }

    #[test]
    fn a_price_with_cents_is_two_figures_in_digits_and_in_words() {
        assert_eq!(of("29,90 €"), values(&["29", "90"]));
        assert_eq!(
            of("vingt-neuf euros quatre-vingt-dix"),
            values(&["29", "90"])
        );
        assert_eq!(of("cinquante-huit euros quarante"), values(&["58", "40"]));
    }

    #[test]
    fn french_number_words_read_as_their_values() {
        for (words, value) in [
            ("zéro", "0"),
            ("deux", "2"),
            ("dix-sept", "17"),
            ("vingt et un", "21"),
            ("trente-neuf", "39"),
            ("soixante et onze", "71"),
            ("soixante-dix-neuf", "79"),
            ("quatre-vingts", "80"),
            ("quatre-vingt-quinze", "95"),
            ("cent douze", "112"),
            ("trois cents", "300"),
            ("quatre cent cinquante", "450"),
            ("mille", "1000"),
            ("cinq mille", "5000"),
            ("deux mille vingt-quatre", "2024"),
            ("dix-neuf cent quatre-vingt-dix", "1990"),
            ("un million deux cent mille", "1200000"),
            ("septante-cinq", "75"),
        ] {
            assert_eq!(of(words), values(&[value]), "{words}");
        }
    }

    #[test]
    fn ordinals_are_figures() {
        assert_eq!(of("le premier décembre"), values(&["1"]));
        assert_eq!(of("le 1er décembre"), values(&["1"]));
        assert_eq!(of("la deuxième année"), values(&["2"]));
        assert_eq!(of("la vingt et unième année"), values(&["21"]));
    }

    #[test]
    fn un_and_une_alone_are_articles_not_figures() {
        assert!(of("je vous envoie un mail et une brochure").is_empty());
        assert_eq!(of("un million d'euros"), values(&["1000000"]));
        assert_eq!(of("un mois"), Vec::<String>::new());
        assert_eq!(of("1 mois"), values(&["1"]));
    }

    #[test]
    fn pour_cent_is_the_percent_sign() {
        assert_eq!(of("cinq pour cent"), of("5 %"));
        assert_eq!(of("remboursé à trois cents pour cent"), values(&["300"]));
        assert_eq!(of("le cent pour cent santé"), values(&["100"]));
        assert_eq!(of("3,5 %"), values(&["3", "5"]));
    }

    #[test]
    fn thousands_groups_join_but_iban_groups_do_not() {
        assert_eq!(of("1 000 euros"), values(&["1000"]));
        assert_eq!(of("12 500 €"), values(&["12500"]));
        assert_eq!(of("1 000 000"), values(&["1000000"]));
        assert_eq!(
            of("FR76 3000 6000 0112 3456 7890 189"),
            values(&["76", "3000", "6000", "112", "3456", "7890", "189"])
        );
    }

    #[test]
    fn a_digit_figure_before_mille_or_millions_is_multiplied() {
        assert_eq!(of("2 millions"), values(&["2000000"]));
        assert_eq!(of("2 millions"), of("deux millions"));
        assert_eq!(of("4 mille euros"), of("quatre mille euros"));
    }

    #[test]
    fn times_and_codes_mixing_letters_and_digits_give_each_digit_run() {
        assert_eq!(of("à 14h30"), values(&["14", "30"]));
        assert_eq!(of("à quatorze heures trente"), values(&["14", "30"]));
    }

    #[test]
    fn numbers_in_words_end_where_no_word_can_continue_them() {
        assert_eq!(of("deux trois jours"), values(&["2", "3"]));
        assert_eq!(of("vingt-neuf quatre-vingt-dix"), values(&["29", "90"]));
        assert_eq!(of("deux adultes et deux enfants"), values(&["2", "2"]));
    }

    #[test]
    fn punctuation_ends_a_number_in_words() {
        assert_eq!(of("vingt. Neuf heures"), values(&["20", "9"]));
        assert_eq!(of("vingt neuf heures"), values(&["29"]));
    }

    #[test]
    fn figures_remember_the_tokens_they_span() {
        let tokens: Vec<FigureToken<'_>> = ["coute", "1", "000", "euros", "vingt", "neuf"]
            .iter()
            .map(|text| FigureToken {
                text,
                boundary: false,
            })
            .collect();
        let found = figures(&tokens);
        assert_eq!(
            found
                .iter()
                .map(|f| (f.value.as_str(), f.first, f.last))
                .collect::<Vec<_>>(),
            [("1000", 1, 2), ("29", 4, 5)]
        );
    }
}
