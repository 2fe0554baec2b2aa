//! Timestamped, speaker-labelled transcripts of recordings (as produced by speech-to-text)
//! and their grouping into utterances.

use serde::{Deserialize, Serialize};

/// Speaker label used for words that carry no speaker.
pub const UNKNOWN_SPEAKER: &str = "unknown";

/// A speaker's run is split at a sentence end once it would exceed this many words.
pub const UTTERANCE_SOFT_MAX_WORDS: usize = 40;

/// A speaker's run with no sentence end at all is split after this many words.
pub const UTTERANCE_HARD_MAX_WORDS: usize = 3 * UTTERANCE_SOFT_MAX_WORDS;

/// One recognised word with its timing and (when diarised) its speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    /// The word as recognised; may carry attached punctuation (`"Bonjour,"`).
    pub text: String,
    /// Start time in seconds from the beginning of the recording.
    pub start_s: f64,
    /// End time in seconds from the beginning of the recording.
    pub end_s: f64,
    /// Speaker label (e.g. `"speaker_0"`), when known.
    #[serde(default)]
    pub speaker: Option<String>,
}

impl Word {
    /// The word's speaker label, or [`UNKNOWN_SPEAKER`] when it has none (or a blank one).
    pub fn speaker_label(&self) -> &str {
        match self.speaker.as_deref().map(str::trim) {
            Some(label) if !label.is_empty() => label,
            _ => UNKNOWN_SPEAKER,
        }
    }
}

/// The transcript of one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Identifier of the recording this transcript belongs to.
    pub recording_id: String,
    /// Detected or requested language code (e.g. `"fr"`), when known.
    #[serde(default)]
    pub language: Option<String>,
    /// Full text of the transcript.
    pub text: String,
    /// Recognised words in chronological order.
    pub words: Vec<Word>,
}

/// A contiguous stretch of speech by one speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// Speaker label ([`UNKNOWN_SPEAKER`] when the words carry none).
    pub speaker: String,
    /// Start time of the first word, in seconds.
    pub start_s: f64,
    /// End time of the last word, in seconds.
    pub end_s: f64,
    /// The words joined with single spaces (punctuation-only words attach to the
    /// previous word).
    pub text: String,
}

impl Transcript {
    /// Groups consecutive words of the same speaker into utterances.
    ///
    /// Words with blank text are skipped. A speaker's run that would exceed
    /// [`UTTERANCE_SOFT_MAX_WORDS`] is split after its last sentence end (`.`, `?`, `!`,
    /// `…`); if it has none yet, it is split at the next sentence end, or after
    /// [`UTTERANCE_HARD_MAX_WORDS`] words if none comes.
    pub fn utterances(&self) -> Vec<Utterance> {
        let mut out = Vec::new();
        let mut run: Vec<&Word> = Vec::new();
        for word in &self.words {
            if word.text.trim().is_empty() {
                continue;
            }
            if run
                .first()
                .is_some_and(|first| first.speaker_label() != word.speaker_label())
            {
                flush(&mut out, &mut run);
            }
            run.push(word);
            if run.len() > UTTERANCE_SOFT_MAX_WORDS {
                let body_len = run.len() - 1;
                let last_sentence_end =
                    run[..body_len].iter().rposition(|w| ends_sentence(&w.text));
                if let Some(pos) = last_sentence_end {
                    let rest = run.split_off(pos + 1);
                    flush(&mut out, &mut run);
                    run = rest;
                } else if run.last().is_some_and(|w| ends_sentence(&w.text))
                    || run.len() >= UTTERANCE_HARD_MAX_WORDS
                {
                    flush(&mut out, &mut run);
                }
            }
        }
        flush(&mut out, &mut run);
        out
    }
}

/// Emits `run` as one utterance (if non-empty) and clears it.
fn flush(out: &mut Vec<Utterance>, run: &mut Vec<&Word>) {
    if let (Some(first), Some(last)) = (run.first(), run.last()) {
        out.push(Utterance {
            speaker: first.speaker_label().to_string(),
            start_s: first.start_s,
            end_s: last.end_s,
            text: join_words(run.iter().map(|w| w.text.as_str())),
        });
    }
    run.clear();
}

/// Joins word texts with single spaces; punctuation-only words (`","`, `"."`, `"…"`)
/// attach to the previous word, and a word following an elided article (`"l'"`) attaches
/// to it.
pub(crate) fn join_words<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for raw in words {
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        let attach = out.is_empty()
            || out.ends_with(['\'', '’'])
            || text
                .chars()
                .all(|c| matches!(c, ',' | '.' | '…' | ')' | ']' | '}'));
        if !attach {
            out.push(' ');
        }
        out.push_str(text);
    }
    out
}

/// Whether a word ends a sentence (`.`, `?`, `!`, `…`), ignoring closing quotes and
/// brackets.
fn ends_sentence(text: &str) -> bool {
    text.trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, '»' | '"' | '\'' | '’' | ')' | ']')
    })
    .ends_with(['.', '?', '!', '…'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_s: f64, speaker: Option<&str>) -> Word {
        Word {
            text: text.to_string(),
            start_s,
            end_s: start_s + 0.3,
            speaker: speaker.map(str::to_string),
        }
    }

    fn words_of(sentence: &str, start_s: f64, speaker: Option<&str>) -> Vec<Word> {
        sentence
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| word(w, start_s + 0.4 * i as f64, speaker))
            .collect()
    }

    fn transcript(words: Vec<Word>) -> Transcript {
        let text = join_words(words.iter().map(|w| w.text.as_str()));
        Transcript {
            recording_id: "rec-1".into(),
            language: Some("fr".into()),
            text,
            words,
        }
    }

    #[test]
    fn consecutive_words_of_the_same_speaker_form_one_utterance() {
        let mut words = words_of(
            "Bonjour, je suis Marc de la société Assurup.",
            0.0,
            Some("speaker_0"),
        );
        words.extend(words_of("Oui, bonjour.", 4.0, Some("speaker_1")));
        words.extend(words_of(
            "Je vous appelle au sujet de votre mutuelle.",
            6.0,
            Some("speaker_0"),
        ));
        let utterances = transcript(words).utterances();
        assert_eq!(utterances.len(), 3);
        assert_eq!(utterances[0].speaker, "speaker_0");
        assert_eq!(
            utterances[0].text,
            "Bonjour, je suis Marc de la société Assurup."
        );
        assert_eq!(utterances[0].start_s, 0.0);
        assert!((utterances[0].end_s - (0.0 + 0.4 * 7.0 + 0.3)).abs() < 1e-9);
        assert_eq!(utterances[1].speaker, "speaker_1");
        assert_eq!(utterances[1].text, "Oui, bonjour.");
        assert_eq!(utterances[1].start_s, 4.0);
        assert_eq!(
            utterances[2].text,
            "Je vous appelle au sujet de votre mutuelle."
        );
    }

    #[test]
    fn words_without_a_speaker_are_grouped_under_unknown() {
        let mut words = words_of("Allô ? Vous m'entendez ?", 0.0, None);
        words.push(word("Oui.", 2.0, Some("  ")));
        let utterances = transcript(words).utterances();
        assert_eq!(utterances.len(), 1);
        assert_eq!(utterances[0].speaker, UNKNOWN_SPEAKER);
        assert_eq!(utterances[0].text, "Allô ? Vous m'entendez ? Oui.");
    }

    #[test]
    fn punctuation_only_words_attach_to_the_previous_word() {
        let words = vec![
            word("Bonjour", 0.0, Some("speaker_0")),
            word(",", 0.3, Some("speaker_0")),
            word(" ", 0.35, Some("speaker_0")),
            word("c'est", 0.4, Some("speaker_0")),
            word("l'", 0.8, Some("speaker_0")),
            word("agence", 1.0, Some("speaker_0")),
            word(".", 1.3, Some("speaker_0")),
            word("D'accord", 1.6, Some("speaker_0")),
            word("?", 2.0, Some("speaker_0")),
        ];
        let utterances = transcript(words).utterances();
        assert_eq!(utterances.len(), 1);
        assert_eq!(utterances[0].text, "Bonjour, c'est l'agence. D'accord ?");
    }

    #[test]
    fn a_long_run_is_split_at_the_last_sentence_end_before_forty_words() {
        // 30 words ending a sentence, then 20 more words ending a sentence: 50 words.
        let first = format!("{} fin.", vec!["mot"; 29].join(" "));
        let second = format!("{} voilà.", vec!["encore"; 19].join(" "));
        let mut words = words_of(&first, 0.0, Some("speaker_0"));
        words.extend(words_of(&second, 20.0, Some("speaker_0")));
        let utterances = transcript(words).utterances();
        assert_eq!(utterances.len(), 2);
        assert_eq!(utterances[0].text.split_whitespace().count(), 30);
        assert!(utterances[0].text.ends_with("fin."));
        assert_eq!(utterances[1].text.split_whitespace().count(), 20);
        assert_eq!(utterances[1].start_s, 20.0);
        assert!(utterances.iter().all(|u| u.speaker == "speaker_0"));
    }

    #[test]
    fn a_long_run_without_early_sentence_end_is_split_at_the_next_one() {
        let sentence = format!("{} terminé.", vec!["blabla"; 44].join(" "));
        let mut words = words_of(&sentence, 0.0, Some("speaker_1"));
        words.extend(words_of("Et ensuite ?", 30.0, Some("speaker_1")));
        let utterances = transcript(words).utterances();
        assert_eq!(utterances.len(), 2);
        assert_eq!(utterances[0].text.split_whitespace().count(), 45);
        assert_eq!(utterances[1].text, "Et ensuite ?");
    }

    #[test]
    fn a_run_without_any_punctuation_is_capped() {
        let sentence = vec!["euh"; UTTERANCE_HARD_MAX_WORDS + 10].join(" ");
        let utterances = transcript(words_of(&sentence, 0.0, Some("speaker_0"))).utterances();
        assert_eq!(utterances.len(), 2);
        assert_eq!(
            utterances[0].text.split_whitespace().count(),
            UTTERANCE_HARD_MAX_WORDS
        );
        assert_eq!(utterances[1].text.split_whitespace().count(), 10);
    }

    #[test]
    fn an_empty_transcript_has_no_utterances() {
        assert!(transcript(Vec::new()).utterances().is_empty());
    }

    #[test]
    fn transcript_json_uses_the_documented_names_and_defaults() {
        let json = r#"{"recording_id":"rec-1","text":"Bonjour.","words":[{"text":"Bonjour.","start_s":0.5,"end_s":0.9}]}"#;
        let t: Transcript = serde_json::from_str(json).expect("valid transcript json");
        assert_eq!(t.language, None);
        assert_eq!(t.words[0].speaker, None);
        let back = serde_json::to_value(&t).expect("serializable");
        assert_eq!(back["recording_id"], "rec-1");
        assert_eq!(back["words"][0]["start_s"], 0.5);
        assert_eq!(back["words"][0]["end_s"], 0.9);
        let again: Transcript = serde_json::from_value(back).expect("round trip");
        assert_eq!(again, t);
    }
}
