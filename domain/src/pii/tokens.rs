//! The text as the detectors read it: tokens with their byte spans, grouped into items
//! (a number in digits or in words, a spelled letter, a code, a word) that know whether
//! the text between them continues a number.

use unicode_normalization::char::is_combining_mark;

use crate::numbers::{InWords, NumberWord, number_word};
use crate::text::normalize;

/// A maximal run of letters and digits of the text.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    /// The token as written.
    pub(super) raw: &'a str,
    /// Lower case, accents folded ([`normalize`]), without spaces.
    pub(super) norm: String,
    /// Byte offset of its first character.
    pub(super) start: usize,
    /// Byte offset just past its last character.
    pub(super) end: usize,
}

/// The tokens of `text`: runs of alphanumeric characters (combining accents included);
/// everything else (spaces, punctuation, apostrophes, hyphens) separates them.
pub(super) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let inside = c.is_alphanumeric() || (start.is_some() && is_combining_mark(c));
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(token(text, s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(token(text, s, text.len()));
    }
    out
}

fn token(text: &str, start: usize, end: usize) -> Token<'_> {
    let raw = &text[start..end];
    Token {
        raw,
        norm: normalize(raw).replace(' ', ""),
        start,
        end,
    }
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    /// Digits as written, or a number said in words as its decimal value ("zéro" is its
    /// own item "0", so "zéro six" is "0" then "6").
    Number,
    /// One spelled letter: "F", "f", a letter's name ("erre", "effe"), "F comme François".
    Letter,
    /// Letters and digits in one token ("FR76", "2A"), or a short word in capitals ("NWBK").
    Alnum,
    /// Any other word.
    Word,
    /// A hesitation ("euh", "hum"), skipped inside a number.
    Filler,
}

/// One unit of the text for the detectors.
#[derive(Debug, Clone)]
pub(super) struct Item {
    /// What it is.
    pub(super) kind: ItemKind,
    /// Digits for a number, the capital letter for a letter, capitals for a code, the
    /// normalised word otherwise.
    pub(super) text: String,
    /// Byte offset of its first character.
    pub(super) start: usize,
    /// Byte offset just past its last character.
    pub(super) end: usize,
    /// Byte range of the text between the previous item and this one.
    pub(super) gap: (usize, usize),
    /// That text.
    pub(super) gap_text: String,
    /// Whether that text lets a number go on (spaces, a dash, a dot, a comma, brackets).
    pub(super) joined: bool,
    /// Its first token as written, lower-cased, accents kept (tells "né" from the
    /// negation "ne").
    pub(super) raw_lower: String,
}

/// Words before a number that make it a reference (an order, a file, a contract, a
/// company), not a telephone or a card.
const REFERENCE_WORDS: &[&str] = &[
    "commande",
    "reference",
    "ref",
    "dossier",
    "contrat",
    "facture",
    "colis",
    "suivi",
    "police",
    "transaction",
    "ticket",
    "serie",
    "siret",
    "siren",
    "adherent",
    "sinistre",
];

/// Words that say a telephone number is coming.
const PHONE_WORDS: &[&str] = &[
    "telephone",
    "tel",
    "portable",
    "mobile",
    "fixe",
    "joindre",
    "joignable",
    "rappeler",
    "rappelez",
    "appeler",
    "appelez",
    "whatsapp",
];

/// Whether the words just before item `i` name a reference: the nearest of a
/// reference word and a telephone word, within four items, decides.
pub(super) fn named_as_reference(items: &[Item], i: usize) -> bool {
    for it in items[i.saturating_sub(4)..i].iter().rev() {
        if it.kind != ItemKind::Word {
            continue;
        }
        if PHONE_WORDS.contains(&it.text.as_str()) {
            return false;
        }
        if REFERENCE_WORDS.contains(&it.text.as_str()) {
            return true;
        }
    }
    false
}

/// Hesitations that do not interrupt a number being read out.
const FILLERS: &[&str] = &["euh", "heu", "hum", "hmm", "euhm", "bah"];

/// Names of letters as speech-to-text writes them when a letter is spelled out, in raw
/// lower case (accents matter: "dé" is D, "de" is a word).
const LETTER_NAMES: &[(&str, char)] = &[
    ("bé", 'B'),
    ("cé", 'C'),
    ("dé", 'D'),
    ("effe", 'F'),
    ("ef", 'F'),
    ("gé", 'G'),
    ("ache", 'H'),
    ("ji", 'J'),
    ("ka", 'K'),
    ("emme", 'M'),
    ("enne", 'N'),
    ("pé", 'P'),
    ("ku", 'Q'),
    ("erre", 'R'),
    ("er", 'R'),
    ("esse", 'S'),
    ("té", 'T'),
    ("vé", 'V'),
    ("ixe", 'X'),
    ("zède", 'Z'),
];

/// The items of a text, in order.
pub(super) fn items(text: &str, tokens: &[Token<'_>]) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (kind, value, last) = classify(text, tokens, i);
        let gap_start = out.last().map_or(0, |p| p.end);
        let gap = (gap_start, tokens[i].start);
        let after_letter = out.last().is_some_and(|p| p.kind == ItemKind::Letter);
        out.push(Item {
            kind,
            text: value,
            start: tokens[i].start,
            end: tokens[last].end,
            gap,
            gap_text: text[gap.0..gap.1].to_string(),
            joined: !out.is_empty() && number_gap(&text[gap.0..gap.1], after_letter),
            raw_lower: tokens[i].raw.to_lowercase(),
        });
        i = last + 1;
    }
    out
}

/// Whether the text between two items lets a number go on: spaces, dashes, brackets and
/// at most one dot or comma. A full stop followed by a space ends the sentence (unless it
/// follows a spelled letter: "F. R. 76").
fn number_gap(gap: &str, after_letter: bool) -> bool {
    let mut stops = 0;
    for c in gap.chars() {
        match c {
            c if c.is_whitespace() => {}
            '-' | '–' | '‑' | '(' | ')' => {}
            '.' | ',' => stops += 1,
            _ => return false,
        }
    }
    let sentence_end = gap
        .split_once('.')
        .is_some_and(|(_, after)| after.starts_with(char::is_whitespace));
    stops <= 1 && (!sentence_end || after_letter)
}

/// Whether the text between two tokens keeps a number in words going (spaces, a hyphen).
fn word_gap(gap: &str) -> bool {
    gap.chars()
        .all(|c| c.is_whitespace() || c == '-' || c == '‑')
}

/// The kind and text of the item starting at token `i`, and its last token.
fn classify(text: &str, tokens: &[Token<'_>], i: usize) -> (ItemKind, String, usize) {
    let t = &tokens[i];
    let norm = t.norm.as_str();
    if !norm.is_empty() && norm.bytes().all(|b| b.is_ascii_digit()) {
        return (ItemKind::Number, norm.to_string(), i);
    }
    if let Some((value, last)) = number_in_words(text, tokens, i) {
        return (ItemKind::Number, value, last);
    }
    if FILLERS.contains(&norm) {
        return (ItemKind::Filler, norm.to_string(), i);
    }
    let raw_lower = t.raw.to_lowercase();
    let mut chars = norm.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && c.is_ascii_alphabetic()
    {
        // "F comme François": the letter and its example word.
        let last = match (tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(comme), Some(example))
                if comme.norm == "comme" && example.norm.starts_with(c) =>
            {
                i + 2
            }
            _ => i,
        };
        return (ItemKind::Letter, c.to_ascii_uppercase().to_string(), last);
    }
    if let Some((_, letter)) = LETTER_NAMES.iter().find(|(name, _)| *name == raw_lower) {
        return (ItemKind::Letter, letter.to_string(), i);
    }
    let has_digit = norm.bytes().any(|b| b.is_ascii_digit());
    let all_ascii_alnum = norm.bytes().all(|b| b.is_ascii_alphanumeric());
    let capitals = t.raw.chars().all(|c| c.is_ascii_uppercase()) && (2..=4).contains(&t.raw.len());
    if all_ascii_alnum && (has_digit || capitals) {
        return (ItemKind::Alnum, norm.to_ascii_uppercase(), i);
    }
    (ItemKind::Word, norm.to_string(), i)
}

/// A French number in words starting at token `i`: its decimal value and last token.
/// "zéro" is a number on its own; "un"/"une" start one (inside a sequence of figures
/// "un" is a digit, and an article alone is too short to matter); ordinals are not
/// numbers here. The number stops at punctuation, and where French would not go on
/// (so that digits read in pairs stay apart): "dix" takes only 7 to 9 after it, a
/// plural "vingts"/"cents" only "mille", and "cent" multiplies only a digit or a teen
/// ("dix-neuf cent" is 1900, "soixante-quinze cent" is 75 then 100).
fn number_in_words(text: &str, tokens: &[Token<'_>], i: usize) -> Option<(String, usize)> {
    let (word, ordinal) = number_word(&tokens[i].norm)?;
    if ordinal || word == NumberWord::Premier {
        return None;
    }
    if word == NumberWord::Zero {
        return Some(("0".to_string(), i));
    }
    let mut number = InWords::start(i, word);
    let mut j = i + 1;
    while j < tokens.len() && word_gap(&text[tokens[j - 1].end..tokens[j].start]) {
        let norm = tokens[j].norm.as_str();
        if norm == "et"
            && matches!(number.chunk % 100, 20 | 30 | 40 | 50 | 60)
            && tokens
                .get(j + 1)
                .is_some_and(|n| matches!(n.norm.as_str(), "un" | "une" | "onze"))
        {
            number.last = j;
            number.links_un = true;
            j += 1;
            continue;
        }
        // "quatre-vingt-un" is 81 without "et".
        if matches!(norm, "un" | "une") && number.chunk % 100 == 80 && tokens[j - 1].norm == "vingt"
        {
            number.links_un = true;
        }
        // "quatre-vingts", "trois cents": the plural ends the number but for "mille"…
        let plural_before = matches!(tokens[j - 1].norm.as_str(), "vingts" | "cents");
        match number_word(norm) {
            Some((next, false))
                if next != NumberWord::Zero
                    && next != NumberWord::Premier
                    && !after_dix_only_seven_to_nine(&number, next)
                    && !(next == NumberWord::Cent && number.chunk >= 20)
                    && (!plural_before
                        || matches!(
                            next,
                            NumberWord::Mille | NumberWord::Million | NumberWord::Milliard
                        ))
                    && number.extend(j, next) => {}
            _ => break,
        }
        j += 1;
    }
    Some((number.value().to_string(), number.last))
}

/// "dix-sept", "dix-huit", "dix-neuf" (and "soixante-dix-sept"…) are numbers, but
/// "dix quatre" is ten then four: a digit read after "dix" is another figure (in a
/// number read out in pairs, "dix, quatre-vingt-deux" is 10 then 82, not 14 then 22).
fn after_dix_only_seven_to_nine(number: &InWords, next: NumberWord) -> bool {
    matches!(number.previous, NumberWord::Teen(10)) && matches!(next, NumberWord::Unit(v) if v < 7)
}

/// The items after `i` that continue the number it starts: each one joined to the one
/// before, hesitations skipped.
pub(super) fn run_after(items: &[Item], i: usize) -> impl Iterator<Item = usize> + '_ {
    let mut j = i + 1;
    std::iter::from_fn(move || {
        while let Some(item) = items.get(j) {
            if !item.joined {
                return None;
            }
            j += 1;
            if item.kind != ItemKind::Filler {
                return Some(j - 1);
            }
        }
        None
    })
}

impl Item {
    /// Whether the text before it holds `c`.
    pub(super) fn gap_has(&self, c: char) -> bool {
        self.gap_text.contains(c)
    }
}

/// Whether item `i` goes on a number begun before it (joined to a number item, past
/// hesitations).
pub(super) fn continues_number(items: &[Item], i: usize) -> bool {
    let mut j = i;
    while j > 0 && items[j].joined {
        j -= 1;
        match items[j].kind {
            ItemKind::Filler => continue,
            ItemKind::Number => return true,
            _ => return false,
        }
    }
    false
}
