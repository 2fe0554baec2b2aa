//! French numbers in words, read token by token: "vingt-neuf" is 29, "quatre-vingt-dix"
//! 90, "soixante et onze" 71, "deux mille vingt-quatre" 2024, "dix-neuf cent
//! quatre-vingt-dix" 1990. Shared by the evidence figures (`evidence::figures`) and the
//! personal-data detector (`pii`), each of which decides where a number starts and ends
//! (an article "un", "et" between tens and "un", punctuation).
//!
//! Tokens are [`crate::text::normalize`]d words: lower case, no accents, hyphens split.

/// A word of a French number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberWord {
    Zero,
    /// "un", "une": a figure only inside a number.
    Un,
    /// 2 to 9.
    Unit(u64),
    /// 10 to 16.
    Teen(u64),
    /// 20, 30, …, 90.
    Tens(u64),
    Cent,
    Mille,
    Million,
    Milliard,
    /// "premier", "première": 1, a figure on its own.
    Premier,
}

/// The number word of a token, and whether it is an ordinal (which ends the number).
pub(crate) fn number_word(token: &str) -> Option<(NumberWord, bool)> {
    use NumberWord::*;
    let cardinal = |w| Some((w, false));
    let ordinal = |w| Some((w, true));
    match token {
        "zero" => cardinal(Zero),
        "un" | "une" => cardinal(Un),
        "deux" => cardinal(Unit(2)),
        "trois" => cardinal(Unit(3)),
        "quatre" => cardinal(Unit(4)),
        "cinq" => cardinal(Unit(5)),
        "six" => cardinal(Unit(6)),
        "sept" => cardinal(Unit(7)),
        "huit" => cardinal(Unit(8)),
        "neuf" => cardinal(Unit(9)),
        "dix" => cardinal(Teen(10)),
        "onze" => cardinal(Teen(11)),
        "douze" => cardinal(Teen(12)),
        "treize" => cardinal(Teen(13)),
        "quatorze" => cardinal(Teen(14)),
        "quinze" => cardinal(Teen(15)),
        "seize" => cardinal(Teen(16)),
        "vingt" | "vingts" => cardinal(Tens(20)),
        "trente" => cardinal(Tens(30)),
        "quarante" => cardinal(Tens(40)),
        "cinquante" => cardinal(Tens(50)),
        "soixante" => cardinal(Tens(60)),
        "septante" => cardinal(Tens(70)),
        "huitante" | "octante" => cardinal(Tens(80)),
        "nonante" => cardinal(Tens(90)),
        "cent" | "cents" => cardinal(Cent),
        "mille" | "mil" => cardinal(Mille),
        "million" | "millions" => cardinal(Million),
        "milliard" | "milliards" => cardinal(Milliard),
        "premier" | "premiere" | "premiers" | "premieres" => ordinal(Premier),
        "unieme" => ordinal(Un),
        "deuxieme" => ordinal(Unit(2)),
        "troisieme" => ordinal(Unit(3)),
        "quatrieme" => ordinal(Unit(4)),
        "cinquieme" => ordinal(Unit(5)),
        "sixieme" => ordinal(Unit(6)),
        "septieme" => ordinal(Unit(7)),
        "huitieme" => ordinal(Unit(8)),
        "neuvieme" => ordinal(Unit(9)),
        "dixieme" => ordinal(Teen(10)),
        "onzieme" => ordinal(Teen(11)),
        "douzieme" => ordinal(Teen(12)),
        "treizieme" => ordinal(Teen(13)),
        "quatorzieme" => ordinal(Teen(14)),
        "quinzieme" => ordinal(Teen(15)),
        "seizieme" => ordinal(Teen(16)),
        "vingtieme" => ordinal(Tens(20)),
        "trentieme" => ordinal(Tens(30)),
        "quarantieme" => ordinal(Tens(40)),
        "cinquantieme" => ordinal(Tens(50)),
        "soixantieme" => ordinal(Tens(60)),
        "centieme" => ordinal(Cent),
        "millieme" => ordinal(Mille),
        _ => None,
    }
}

/// A number in words being read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InWords {
    pub(crate) first: usize,
    pub(crate) last: usize,
    /// Millions, thousands… already read.
    pub(crate) total: u64,
    /// The part below a thousand being read.
    pub(crate) chunk: u64,
    pub(crate) previous: NumberWord,
    /// After "et", "cent", "mille"…: "un" continues the number.
    pub(crate) links_un: bool,
}

impl InWords {
    /// Starts a number with `word` at token `i`.
    pub(crate) fn start(i: usize, word: NumberWord) -> Self {
        let (total, chunk) = match word {
            NumberWord::Zero => (0, 0),
            NumberWord::Un | NumberWord::Premier => (0, 1),
            NumberWord::Unit(v) | NumberWord::Teen(v) | NumberWord::Tens(v) => (0, v),
            NumberWord::Cent => (0, 100),
            NumberWord::Mille => (1_000, 0),
            NumberWord::Million => (1_000_000, 0),
            NumberWord::Milliard => (1_000_000_000, 0),
        };
        Self {
            first: i,
            last: i,
            total,
            chunk,
            previous: word,
            links_un: matches!(
                word,
                NumberWord::Cent | NumberWord::Mille | NumberWord::Million | NumberWord::Milliard
            ),
        }
    }

    /// Adds `word` at token `i` when it continues the number; false when it cannot.
    pub(crate) fn extend(&mut self, i: usize, word: NumberWord) -> bool {
        let low = self.chunk % 100;
        let multiplier = self.chunk.max(1);
        let ok = match word {
            NumberWord::Zero | NumberWord::Premier => false,
            NumberWord::Un => {
                if self.links_un && low.is_multiple_of(10) {
                    self.chunk += 1;
                    true
                } else {
                    false
                }
            }
            NumberWord::Unit(v) => {
                if low.is_multiple_of(10) {
                    self.chunk += v;
                    true
                } else {
                    false
                }
            }
            NumberWord::Teen(v) => {
                if matches!(low, 0 | 60 | 80) {
                    self.chunk += v;
                    true
                } else {
                    false
                }
            }
            NumberWord::Tens(20) if self.previous == NumberWord::Unit(4) && low == 4 => {
                // quatre-vingt(s)
                self.chunk += 76;
                true
            }
            NumberWord::Tens(v) => {
                if low == 0 {
                    self.chunk += v;
                    true
                } else {
                    false
                }
            }
            NumberWord::Cent => {
                if self.chunk < 100 {
                    self.chunk = multiplier * 100;
                    true
                } else {
                    false
                }
            }
            NumberWord::Mille => {
                if self.total.is_multiple_of(1_000_000) {
                    self.total = self.total.saturating_add(multiplier * 1_000);
                    self.chunk = 0;
                    true
                } else {
                    false
                }
            }
            NumberWord::Million => {
                if self.total.is_multiple_of(1_000_000_000) {
                    self.total = self.total.saturating_add(multiplier * 1_000_000);
                    self.chunk = 0;
                    true
                } else {
                    false
                }
            }
            NumberWord::Milliard => {
                if self.total == 0 {
                    self.total = multiplier * 1_000_000_000;
                    self.chunk = 0;
                    true
                } else {
                    false
                }
            }
        };
        if ok {
            self.last = i;
            self.previous = word;
            self.links_un = matches!(
                word,
                NumberWord::Cent | NumberWord::Mille | NumberWord::Million | NumberWord::Milliard
            );
        }
        ok
    }

    /// The value read so far.
    pub(crate) fn value(&self) -> u64 {
        self.total.saturating_add(self.chunk)
    }
}
