//! The transcript tools of transcript-tools mode (`use_rlm`): instead of reading whole
//! transcripts in its prompt, the LLM calls [`SEARCH_TRANSCRIPT`] and
//! [`GET_TRANSCRIPT_CHUNKS`] (OpenAI function calling) to find and read the utterances it
//! quotes as evidence.
//!
//! Both tools work on the utterances of [`Transcript::utterances`], the same units prompt
//! mode shows, addressed by `recording_id` and a per-recording `index`. Every returned
//! text is an utterance verbatim, so a quote copied from a tool result passes evidence
//! gating like a quote copied from a prompt. Each result is bounded (number of utterances
//! and characters of text) and says when it was cut; malformed arguments and unknown
//! recordings come back as an `error` the model can read and correct, never a panic.
//!
//! The tools are built once per fiche and kept with the gating's index
//! ([`crate::evidence::TranscriptIndex::tools`], cached per worker): a search looks its
//! terms up in each recording's vocabulary of distinct words, so its cost follows the
//! vocabulary and the matches, not the number of words of a long call.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::text::normalize;
use crate::transcript::{Transcript, Utterance};

/// Name of the search tool.
pub const SEARCH_TRANSCRIPT: &str = "searchTranscript";

/// Name of the tool that reads consecutive utterances.
pub const GET_TRANSCRIPT_CHUNKS: &str = "getTranscriptChunks";

/// Matches returned by a search when `max_results` is not given.
pub const DEFAULT_SEARCH_RESULTS: usize = 8;

/// Upper bound on `max_results`.
pub const MAX_SEARCH_RESULTS: usize = 20;

/// Utterances returned by one `getTranscriptChunks` call, at most.
pub const MAX_CHUNK_UTTERANCES: usize = 40;

/// Characters of utterance text returned by one tool call, at most (a single utterance
/// longer than this is still returned whole, alone, so that it can be quoted verbatim).
pub const MAX_RESULT_TEXT_CHARS: usize = 8_000;

/// French function words that never narrow a search (they occur in nearly every
/// utterance), as normalised by [`normalize`].
const STOPWORDS: &[&str] = &[
    "a", "au", "aux", "avec", "ce", "ces", "cette", "d", "dans", "de", "des", "du", "elle", "en",
    "est", "et", "il", "j", "je", "l", "la", "le", "les", "leur", "ma", "mes", "mon", "n", "ne",
    "nos", "notre", "nous", "on", "ou", "par", "pas", "pour", "qu", "que", "qui", "s", "sa", "se",
    "ses", "son", "sur", "t", "un", "une", "vos", "votre", "vous", "y",
];

/// Bounds of one tool-calling conversation: the step prompt states them and the LLM
/// client enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLoopLimits {
    /// Answers with tool calls the model may give; after that the final answer is forced.
    pub max_tool_rounds: u32,
    /// Characters of tool results the model may read in all; a result that would go past
    /// it is withheld and the final answer is forced.
    pub max_tool_chars: usize,
}

impl Default for ToolLoopLimits {
    fn default() -> Self {
        Self {
            max_tool_rounds: 8,
            max_tool_chars: 60_000,
        }
    }
}

/// Arguments of [`SEARCH_TRANSCRIPT`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SearchArgs {
    /// Words to look for (any order; accents, case and punctuation are ignored).
    pub query: String,
    /// Restrict the search to this recording (`null` or absent: all recordings).
    #[serde(default)]
    pub recording_id: Option<String>,
    /// How many matches to return (default [`DEFAULT_SEARCH_RESULTS`], at most
    /// [`MAX_SEARCH_RESULTS`]).
    #[serde(default)]
    pub max_results: Option<u64>,
}

/// Arguments of [`GET_TRANSCRIPT_CHUNKS`]: a range of utterance indexes (inclusive), or
/// else a time window, or else the beginning of the recording.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChunkArgs {
    /// The recording to read.
    pub recording_id: String,
    /// First utterance index (inclusive).
    #[serde(default)]
    pub from_index: Option<u64>,
    /// Last utterance index (inclusive).
    #[serde(default)]
    pub to_index: Option<u64>,
    /// Start of a time window, seconds (used when no index is given).
    #[serde(default)]
    pub start_s: Option<f64>,
    /// End of a time window, seconds (used when no index is given).
    #[serde(default)]
    pub end_s: Option<f64>,
}

/// One utterance as the tools return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSegment {
    /// Recording the utterance belongs to.
    pub recording_id: String,
    /// Position of the utterance in its recording (from 0).
    pub index: usize,
    /// Speaker label, as citations must give it.
    pub speaker: String,
    /// Start time, seconds (two decimals).
    pub start_s: f64,
    /// End time, seconds (two decimals).
    pub end_s: f64,
    /// The utterance, verbatim.
    pub text: String,
}

/// Result of [`SEARCH_TRANSCRIPT`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// The query as received.
    pub query: String,
    /// Best matches first: utterances containing more of the query's words (or the whole
    /// query as a phrase) come first, ties in transcript order.
    pub matches: Vec<ToolSegment>,
    /// How many utterances matched in all.
    pub total_matches: usize,
    /// Whether matches were left out (by `max_results` or the text bound).
    pub truncated: bool,
    /// Why the search could not run, for the model to correct its call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Result of [`GET_TRANSCRIPT_CHUNKS`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunksResult {
    /// The recording read.
    pub recording_id: String,
    /// Number of utterances of the recording (valid indexes are `0..utterance_count`).
    pub utterance_count: usize,
    /// The utterances read, in order.
    pub chunks: Vec<ToolSegment>,
    /// Index to continue from when the range was cut by the bounds.
    pub next_index: Option<usize>,
    /// Whether the requested range was cut by the bounds.
    pub truncated: bool,
    /// Why the call could not be served, for the model to correct its call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A recording as listed in a transcript-tools prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingOverview {
    /// Recording id, as tools and citations take it.
    pub recording_id: String,
    /// End time of the last word, seconds.
    pub duration_s: f64,
    /// Number of utterances (valid indexes are `0..utterance_count`).
    pub utterance_count: usize,
    /// Speaker labels, in order of first appearance.
    pub speakers: Vec<String>,
}

struct IndexedRecording {
    recording_id: String,
    duration_s: f64,
    utterances: Vec<Utterance>,
    /// Each distinct normalised word of the recording → the utterances holding it, in
    /// order: a search looks its terms up in the vocabulary, not in every utterance.
    vocabulary: HashMap<String, Vec<usize>>,
    /// Normalised text of each utterance, padded with one space on each side.
    padded: Vec<String>,
}

/// The tools over the transcripts of one fiche (utterances are computed and normalised
/// once).
pub struct TranscriptTools {
    recordings: Vec<IndexedRecording>,
}

impl std::fmt::Debug for TranscriptTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptTools")
            .field("recordings", &self.recordings.len())
            .finish()
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn segment(rec: &IndexedRecording, index: usize) -> ToolSegment {
    let u = &rec.utterances[index];
    ToolSegment {
        recording_id: rec.recording_id.clone(),
        index,
        speaker: u.speaker.clone(),
        start_s: round2(u.start_s),
        end_s: round2(u.end_s),
        text: u.text.clone(),
    }
}

/// Whether a normalised query term matches a normalised word: equal; the word starts with
/// a term of four characters or more (`retract` → `retractation`); or they share a stem of
/// six characters (`enregistre` / `enregistrement`), or the word is a prefix of the term of
/// five characters or more (`garanties` → `garantie`).
fn term_matches(term: &str, word: &str) -> bool {
    if term == word {
        return true;
    }
    let common = term
        .chars()
        .zip(word.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let (tl, wl) = (term.chars().count(), word.chars().count());
    (common == tl && tl >= 4) || common >= 6 || (common == wl && wl >= 5)
}

/// The distinct searchable terms of a query: normalised words that are not stopwords.
fn query_terms(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in normalize(query).split_whitespace() {
        if !STOPWORDS.contains(&w) && !out.iter().any(|t| t == w) {
            out.push(w.to_string());
        }
    }
    out
}

impl TranscriptTools {
    /// Indexes the transcripts of a fiche.
    pub fn new(transcripts: &[Transcript]) -> Self {
        Self::build(transcripts.iter())
    }

    /// [`TranscriptTools::new`] over shared transcripts (those of a cached
    /// [`crate::evidence::TranscriptIndex`]).
    pub fn new_shared(transcripts: &[std::sync::Arc<Transcript>]) -> Self {
        Self::build(transcripts.iter().map(|t| &**t))
    }

    fn build<'t>(transcripts: impl Iterator<Item = &'t Transcript>) -> Self {
        let recordings = transcripts
            .map(|t| {
                let utterances = t.utterances();
                let mut vocabulary: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, u) in utterances.iter().enumerate() {
                    for w in normalize(&u.text).split_whitespace() {
                        let holders = vocabulary.entry(w.to_string()).or_default();
                        if holders.last() != Some(&i) {
                            holders.push(i);
                        }
                    }
                }
                let padded = utterances
                    .iter()
                    .map(|u| format!(" {} ", normalize(&u.text)))
                    .collect();
                IndexedRecording {
                    recording_id: t.recording_id.clone(),
                    duration_s: round2(t.words.iter().map(|w| w.end_s).fold(0.0, f64::max)),
                    utterances,
                    vocabulary,
                    padded,
                }
            })
            .collect();
        Self { recordings }
    }

    /// The recordings, for the prompt: ids, durations, utterance counts and speakers.
    pub fn recordings(&self) -> Vec<RecordingOverview> {
        self.recordings
            .iter()
            .map(|r| {
                let mut speakers: Vec<String> = Vec::new();
                for u in &r.utterances {
                    if !speakers.contains(&u.speaker) {
                        speakers.push(u.speaker.clone());
                    }
                }
                RecordingOverview {
                    recording_id: r.recording_id.clone(),
                    duration_s: r.duration_s,
                    utterance_count: r.utterances.len(),
                    speakers,
                }
            })
            .collect()
    }

    fn recording(&self, id: &str) -> Result<&IndexedRecording, String> {
        self.recordings
            .iter()
            .find(|r| r.recording_id == id)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .recordings
                    .iter()
                    .map(|r| r.recording_id.as_str())
                    .collect();
                format!(
                    "unknown recording_id {id:?}; known recordings: {}",
                    known.join(", ")
                )
            })
    }

    /// `searchTranscript`: the utterances containing the query's words, best first.
    pub fn search(&self, args: &SearchArgs) -> SearchResult {
        let mut result = SearchResult {
            query: args.query.clone(),
            matches: Vec::new(),
            total_matches: 0,
            truncated: false,
            error: None,
        };
        let scope: Vec<&IndexedRecording> = match args.recording_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => match self.recording(id) {
                Ok(r) => vec![r],
                Err(e) => {
                    result.error = Some(e);
                    return result;
                }
            },
            _ => self.recordings.iter().collect(),
        };
        let terms = query_terms(&args.query);
        if terms.is_empty() {
            result.error = Some("the query has no searchable word".to_string());
            return result;
        }
        let normalized_query = normalize(&args.query);
        let phrase = format!(" {normalized_query} ");
        let several_words = normalized_query.contains(' ');
        // (whole phrase found, distinct terms matched, recording, utterance)
        let mut hits: Vec<(bool, usize, usize, usize)> = Vec::new();
        for (r, rec) in scope.iter().enumerate() {
            // Utterance → distinct terms it matches.
            let mut matched: BTreeMap<usize, usize> = BTreeMap::new();
            for t in &terms {
                let mut holders: Vec<usize> = rec
                    .vocabulary
                    .iter()
                    .filter(|(w, _)| term_matches(t, w))
                    .flat_map(|(_, us)| us.iter().copied())
                    .collect();
                holders.sort_unstable();
                holders.dedup();
                for i in holders {
                    *matched.entry(i).or_insert(0) += 1;
                }
            }
            for (i, count) in matched {
                let whole = several_words && rec.padded[i].contains(&phrase);
                hits.push((whole, count, r, i));
            }
        }
        hits.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(b.1.cmp(&a.1))
                .then((a.2, a.3).cmp(&(b.2, b.3)))
        });
        result.total_matches = hits.len();
        let limit = args
            .max_results
            .map_or(DEFAULT_SEARCH_RESULTS, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .clamp(1, MAX_SEARCH_RESULTS);
        let mut chars = 0;
        for &(_, _, r, i) in &hits {
            if result.matches.len() >= limit {
                break;
            }
            let seg = segment(scope[r], i);
            let len = seg.text.chars().count();
            if !result.matches.is_empty() && chars + len > MAX_RESULT_TEXT_CHARS {
                break;
            }
            chars += len;
            result.matches.push(seg);
        }
        result.truncated = result.matches.len() < result.total_matches;
        result
    }

    /// `getTranscriptChunks`: consecutive utterances of one recording.
    pub fn chunks(&self, args: &ChunkArgs) -> ChunksResult {
        let mut result = ChunksResult {
            recording_id: args.recording_id.clone(),
            utterance_count: 0,
            chunks: Vec::new(),
            next_index: None,
            truncated: false,
            error: None,
        };
        let rec = match self.recording(args.recording_id.trim()) {
            Ok(r) => r,
            Err(e) => {
                result.error = Some(e);
                return result;
            }
        };
        let count = rec.utterances.len();
        result.utterance_count = count;
        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let range: Vec<usize> = if args.from_index.is_some() || args.to_index.is_some() {
            let from = args.from_index.map_or(0, to_usize);
            let to = args.to_index.map_or(usize::MAX, to_usize);
            if from > to {
                result.error = Some(format!("from_index {from} is after to_index {to}"));
                return result;
            }
            if from >= count {
                result.error = Some(format!(
                    "from_index {from} is past the last utterance (valid indexes: 0 to {})",
                    count.saturating_sub(1)
                ));
                return result;
            }
            (from..=to.min(count - 1)).collect()
        } else {
            let start = args.start_s.filter(|s| s.is_finite()).unwrap_or(0.0);
            let end = args.end_s.filter(|s| s.is_finite()).unwrap_or(f64::MAX);
            if start > end {
                result.error = Some(format!("start_s {start} is after end_s {end}"));
                return result;
            }
            rec.utterances
                .iter()
                .enumerate()
                .filter(|(_, u)| u.end_s >= start && u.start_s <= end)
                .map(|(i, _)| i)
                .collect()
        };
        let mut chars = 0;
        for &i in &range {
            let seg = segment(rec, i);
            let len = seg.text.chars().count();
            let full = result.chunks.len() >= MAX_CHUNK_UTTERANCES
                || (!result.chunks.is_empty() && chars + len > MAX_RESULT_TEXT_CHARS);
            if full {
                result.truncated = true;
                result.next_index = Some(i);
                break;
            }
            chars += len;
            result.chunks.push(seg);
        }
        result
    }

    /// Runs the tool `name` on its JSON `arguments` (as the model sent them) and returns
    /// its JSON result; an unknown tool or malformed arguments give `{"error": …}`.
    pub fn call(&self, name: &str, arguments: &str) -> Value {
        let bad_args = |e: serde_json::Error| json!({"error": format!("invalid arguments for {name}: {e}; see the tool's parameters")});
        match name {
            SEARCH_TRANSCRIPT => match serde_json::from_str::<SearchArgs>(arguments) {
                Ok(args) => json!(self.search(&args)),
                Err(e) => bad_args(e),
            },
            GET_TRANSCRIPT_CHUNKS => match serde_json::from_str::<ChunkArgs>(arguments) {
                Ok(args) => json!(self.chunks(&args)),
                Err(e) => bad_args(e),
            },
            other => json!({
                "error": format!(
                    "unknown tool {other:?}; available tools: {SEARCH_TRANSCRIPT}, {GET_TRANSCRIPT_CHUNKS}"
                )
            }),
        }
    }
}

/// The OpenAI `tools` array offering both tools: function tools with strict JSON schemas
/// (every property required, optional ones nullable, no additional properties).
pub fn tool_definitions() -> Value {
    json!([
        {
            "type": "function",
            "function": {
                "name": SEARCH_TRANSCRIPT,
                "description": format!(
                    "Search the call transcripts for utterances containing words of the \
                     query (accents, case and punctuation ignored; word endings tolerated). \
                     Returns the best matches first, each with recording_id, index, speaker, \
                     start_s, end_s and the verbatim text. At most {MAX_SEARCH_RESULTS} matches."
                ),
                "strict": true,
                "parameters": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["query", "recording_id", "max_results"],
                    "properties": {
                        "query": {
                            "type": "string",
                            "description": "A few content words, e.g. \"droit rétractation quatorze jours\"."
                        },
                        "recording_id": {
                            "type": ["string", "null"],
                            "description": "Search only this recording, or null for all recordings."
                        },
                        "max_results": {
                            "type": ["integer", "null"],
                            "description": format!(
                                "Number of matches to return, 1 to {MAX_SEARCH_RESULTS}; null for {DEFAULT_SEARCH_RESULTS}."
                            )
                        }
                    }
                }
            }
        },
        {
            "type": "function",
            "function": {
                "name": GET_TRANSCRIPT_CHUNKS,
                "description": format!(
                    "Read consecutive utterances of one recording, speaker-labelled and \
                     timestamped: by utterance index range (inclusive), or else by time \
                     window in seconds. At most {MAX_CHUNK_UTTERANCES} utterances per call; \
                     next_index tells where to continue."
                ),
                "strict": true,
                "parameters": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["recording_id", "from_index", "to_index", "start_s", "end_s"],
                    "properties": {
                        "recording_id": {
                            "type": "string",
                            "description": "The recording to read."
                        },
                        "from_index": {
                            "type": ["integer", "null"],
                            "description": "First utterance index (from 0), or null."
                        },
                        "to_index": {
                            "type": ["integer", "null"],
                            "description": "Last utterance index (inclusive), or null."
                        },
                        "start_s": {
                            "type": ["number", "null"],
                            "description": "Start of the time window in seconds, used when no index is given; or null."
                        },
                        "end_s": {
                            "type": ["number", "null"],
                            "description": "End of the time window in seconds, used when no index is given; or null."
                        }
                    }
                }
            }
        }
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Citation;
    use crate::evidence::{CitationVerdict, GatingOptions, check_citation};
    use crate::transcript::Word;

    /// A transcript from `(speaker, start_s, sentence)` turns, words 0.4 s apart.
    fn transcript(id: &str, turns: &[(&str, f64, &str)]) -> Transcript {
        let mut words = Vec::new();
        for (speaker, start, sentence) in turns {
            for (i, w) in sentence.split_whitespace().enumerate() {
                let t = start + 0.4 * i as f64;
                words.push(Word {
                    text: w.to_string(),
                    start_s: t,
                    end_s: t + 0.3,
                    speaker: Some(speaker.to_string()),
                });
            }
        }
        Transcript {
            recording_id: id.to_string(),
            language: Some("fr".into()),
            text: turns.iter().map(|t| t.2).collect::<Vec<_>>().join(" "),
            words,
        }
    }

    fn fiche() -> Vec<Transcript> {
        vec![
            transcript(
                "REC-1",
                &[
                    (
                        "speaker_0",
                        0.0,
                        "Bonjour, je suis Marc de la société Assurup.",
                    ),
                    ("speaker_1", 4.0, "Oui, bonjour."),
                    (
                        "speaker_0",
                        6.0,
                        "Cet appel est enregistré à des fins de qualité.",
                    ),
                    ("speaker_1", 11.0, "D'accord, pas de problème."),
                    (
                        "speaker_0",
                        14.0,
                        "Vous disposez d'un délai de rétractation de quatorze jours.",
                    ),
                ],
            ),
            transcript(
                "REC-2",
                &[
                    ("speaker_0", 0.0, "Je vous rappelle pour la signature."),
                    ("speaker_1", 2.0, "Très bien."),
                    (
                        "speaker_0",
                        3.0,
                        "La cotisation mensuelle est de 29,90 euros.",
                    ),
                    (
                        "speaker_1",
                        8.0,
                        "Et la RÉTRACTATION, c'est combien de temps ?",
                    ),
                ],
            ),
        ]
    }

    fn search(tools: &TranscriptTools, query: &str) -> SearchResult {
        tools.search(&SearchArgs {
            query: query.into(),
            recording_id: None,
            max_results: None,
        })
    }

    #[test]
    fn search_ignores_accents_and_case_and_returns_timed_speaker_labelled_utterances() {
        let tools = TranscriptTools::new(&fiche());
        let r = search(&tools, "retractation");
        assert_eq!(r.error, None);
        assert_eq!(r.total_matches, 2);
        let ids: Vec<(&str, usize)> = r
            .matches
            .iter()
            .map(|m| (m.recording_id.as_str(), m.index))
            .collect();
        assert_eq!(ids, vec![("REC-1", 4), ("REC-2", 3)]);
        let m = &r.matches[0];
        assert_eq!(m.speaker, "speaker_0");
        assert_eq!(m.start_s, 14.0);
        assert_eq!(
            m.text,
            "Vous disposez d'un délai de rétractation de quatorze jours."
        );
        // Upper case and accents in the text, none in the query, and the other way round.
        assert_eq!(search(&tools, "RÉTRACTATION").total_matches, 2);
        assert_eq!(
            r.matches[1].text,
            "Et la RÉTRACTATION, c'est combien de temps ?"
        );
    }

    #[test]
    fn search_tolerates_word_endings_but_not_unrelated_words() {
        let tools = TranscriptTools::new(&fiche());
        let r = search(&tools, "enregistrement");
        assert_eq!(r.matches.len(), 1);
        assert_eq!(r.matches[0].index, 2);
        assert_eq!(search(&tools, "retract").total_matches, 2);
        assert_eq!(search(&tools, "enregistreur").total_matches, 1);
        assert_eq!(search(&tools, "enrouler").total_matches, 0);
        assert!(!search(&tools, "enrouler").truncated);
    }

    #[test]
    fn search_ranks_utterances_with_more_query_words_first() {
        let tools = TranscriptTools::new(&fiche());
        // "rétractation" is in two utterances, "quatorze jours" only with it in REC-1.
        let r = search(&tools, "combien rétractation quatorze jours");
        assert_eq!(r.matches[0].recording_id, "REC-1");
        assert_eq!(r.matches[0].index, 4);
        let r = search(&tools, "Et la rétractation combien");
        assert_eq!(r.matches[0].recording_id, "REC-2");
    }

    #[test]
    fn search_puts_a_whole_phrase_first_and_finds_numbers() {
        let tools = TranscriptTools::new(&fiche());
        let r = search(&tools, "29,90 euros");
        assert_eq!(r.matches[0].recording_id, "REC-2");
        assert_eq!(r.matches[0].index, 2);
        // Both utterances hold both words; only the later one says them as a phrase.
        let tools = TranscriptTools::new(&[transcript(
            "REC-P",
            &[
                ("a", 0.0, "Les jours passent, quatorze au total."),
                ("b", 5.0, "Vous avez quatorze jours."),
            ],
        )]);
        let r = search(&tools, "Quatorze jours");
        assert_eq!(r.total_matches, 2);
        assert_eq!(r.matches[0].index, 1);
        assert_eq!(r.matches[1].index, 0);
    }

    #[test]
    fn search_can_be_restricted_to_one_recording() {
        let tools = TranscriptTools::new(&fiche());
        let r = tools.search(&SearchArgs {
            query: "rétractation".into(),
            recording_id: Some("REC-2".into()),
            max_results: None,
        });
        assert_eq!(r.total_matches, 1);
        assert_eq!(r.matches[0].recording_id, "REC-2");
    }

    #[test]
    fn search_in_an_unknown_recording_is_an_error_naming_the_known_ones() {
        let tools = TranscriptTools::new(&fiche());
        let r = tools.search(&SearchArgs {
            query: "rétractation".into(),
            recording_id: Some("REC-9".into()),
            max_results: None,
        });
        assert!(r.matches.is_empty());
        let e = r.error.expect("error");
        assert!(e.contains("REC-9") && e.contains("REC-1, REC-2"), "{e}");
    }

    #[test]
    fn a_query_of_function_words_only_is_an_error() {
        let tools = TranscriptTools::new(&fiche());
        let r = search(&tools, "de la, à l'");
        assert!(r.matches.is_empty());
        assert!(r.error.is_some());
    }

    #[test]
    fn search_returns_at_most_max_results_and_says_it_was_cut() {
        let turns: Vec<(String, f64)> = (0..50)
            .map(|i| {
                (
                    format!("La garantie numéro {i} est incluse."),
                    i as f64 * 5.0,
                )
            })
            .collect();
        let turns: Vec<(&str, f64, &str)> = turns
            .iter()
            .enumerate()
            .map(|(i, (s, t))| (if i % 2 == 0 { "a" } else { "b" }, *t, s.as_str()))
            .collect();
        let tools = TranscriptTools::new(&[transcript("REC-L", &turns)]);
        let r = search(&tools, "garantie");
        assert_eq!(r.total_matches, 50);
        assert_eq!(r.matches.len(), DEFAULT_SEARCH_RESULTS);
        assert!(r.truncated);
        for (n, max) in [
            (Some(3), 3),
            (Some(0), 1),
            (Some(1_000), MAX_SEARCH_RESULTS),
        ] {
            let r = tools.search(&SearchArgs {
                query: "garanties".into(),
                recording_id: None,
                max_results: n,
            });
            assert_eq!(r.matches.len(), max.min(r.total_matches), "{n:?}");
        }
    }

    #[test]
    fn search_output_is_bounded_in_characters() {
        let long = format!("{} fin.", vec!["contractuellement"; 39].join(" "));
        let turns: Vec<(&str, f64, &str)> = (0..60)
            .map(|i| {
                (
                    if i % 2 == 0 { "speaker_0" } else { "speaker_1" },
                    i as f64 * 20.0,
                    long.as_str(),
                )
            })
            .collect();
        let tools = TranscriptTools::new(&[transcript("REC-B", &turns)]);
        let r = tools.search(&SearchArgs {
            query: "contractuellement".into(),
            recording_id: None,
            max_results: Some(20),
        });
        let chars: usize = r.matches.iter().map(|m| m.text.chars().count()).sum();
        assert!(chars <= MAX_RESULT_TEXT_CHARS, "{chars}");
        assert!(r.matches.len() < 20 && r.truncated);
        assert_eq!(r.total_matches, 60);
    }

    #[test]
    fn chunks_by_index_range_are_inclusive_and_speaker_labelled() {
        let tools = TranscriptTools::new(&fiche());
        let r = tools.chunks(&ChunkArgs {
            recording_id: "REC-1".into(),
            from_index: Some(1),
            to_index: Some(3),
            start_s: None,
            end_s: None,
        });
        assert_eq!(r.error, None);
        assert_eq!(r.utterance_count, 5);
        let got: Vec<(usize, &str, f64)> = r
            .chunks
            .iter()
            .map(|c| (c.index, c.speaker.as_str(), c.start_s))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "speaker_1", 4.0),
                (2, "speaker_0", 6.0),
                (3, "speaker_1", 11.0)
            ]
        );
        assert_eq!(
            r.chunks[1].text,
            "Cet appel est enregistré à des fins de qualité."
        );
        assert!(!r.truncated && r.next_index.is_none());
        // A range past the end stops at the last utterance.
        let r = tools.chunks(&ChunkArgs {
            recording_id: "REC-1".into(),
            from_index: Some(3),
            to_index: Some(99),
            start_s: None,
            end_s: None,
        });
        assert_eq!(r.chunks.len(), 2);
    }

    #[test]
    fn chunks_by_time_window_return_the_overlapping_utterances() {
        let tools = TranscriptTools::new(&fiche());
        let r = tools.chunks(&ChunkArgs {
            recording_id: "REC-1".into(),
            from_index: None,
            to_index: None,
            start_s: Some(5.0),
            end_s: Some(12.0),
        });
        let idx: Vec<usize> = r.chunks.iter().map(|c| c.index).collect();
        assert_eq!(idx, vec![2, 3]);
    }

    #[test]
    fn chunks_of_an_unknown_recording_or_a_bad_range_are_errors() {
        let tools = TranscriptTools::new(&fiche());
        let args = |id: &str, from: Option<u64>, to: Option<u64>| ChunkArgs {
            recording_id: id.into(),
            from_index: from,
            to_index: to,
            start_s: None,
            end_s: None,
        };
        let r = tools.chunks(&args("REC-X", Some(0), Some(3)));
        assert!(r.chunks.is_empty());
        assert!(r.error.expect("error").contains("REC-1, REC-2"));
        let r = tools.chunks(&args("REC-1", Some(3), Some(1)));
        assert!(r.chunks.is_empty() && r.error.is_some());
        let r = tools.chunks(&args("REC-1", Some(5), None));
        assert!(r.chunks.is_empty());
        assert!(r.error.expect("error").contains("0 to 4"));
    }

    #[test]
    fn chunks_are_capped_and_tell_where_to_continue() {
        let turns: Vec<(String, f64)> = (0..100)
            .map(|i| (format!("Phrase numéro {i}."), i as f64 * 3.0))
            .collect();
        let turns: Vec<(&str, f64, &str)> = turns
            .iter()
            .enumerate()
            .map(|(i, (s, t))| (if i % 2 == 0 { "a" } else { "b" }, *t, s.as_str()))
            .collect();
        let tools = TranscriptTools::new(&[transcript("REC-C", &turns)]);
        let r = tools.chunks(&ChunkArgs {
            recording_id: "REC-C".into(),
            from_index: Some(10),
            to_index: Some(99),
            start_s: None,
            end_s: None,
        });
        assert_eq!(r.chunks.len(), MAX_CHUNK_UTTERANCES);
        assert_eq!(r.chunks[0].index, 10);
        assert!(r.truncated);
        assert_eq!(r.next_index, Some(10 + MAX_CHUNK_UTTERANCES));
    }

    #[test]
    fn chunks_output_is_bounded_in_characters() {
        let long = format!("{} fin.", vec!["mutuelle"; 39].join(" "));
        let turns: Vec<(&str, f64, &str)> = (0..40)
            .map(|i| {
                (
                    if i % 2 == 0 { "a" } else { "b" },
                    i as f64 * 20.0,
                    long.as_str(),
                )
            })
            .collect();
        let tools = TranscriptTools::new(&[transcript("REC-D", &turns)]);
        let r = tools.chunks(&ChunkArgs {
            recording_id: "REC-D".into(),
            from_index: None,
            to_index: None,
            start_s: None,
            end_s: None,
        });
        let chars: usize = r.chunks.iter().map(|c| c.text.chars().count()).sum();
        assert!(chars <= MAX_RESULT_TEXT_CHARS);
        assert!(r.truncated);
        assert_eq!(r.next_index, Some(r.chunks.len()));
    }

    #[test]
    fn call_dispatches_on_the_tool_name_and_reports_bad_calls_as_errors() {
        let tools = TranscriptTools::new(&fiche());
        let v = tools.call(
            SEARCH_TRANSCRIPT,
            r#"{"query":"qualité","recording_id":null,"max_results":null}"#,
        );
        assert_eq!(v["matches"][0]["index"], 2);
        assert_eq!(v["matches"][0]["recording_id"], "REC-1");
        assert!(v.get("error").is_none());
        // The simulator's shape: optional fields left out.
        let v = tools.call(
            GET_TRANSCRIPT_CHUNKS,
            r#"{"recording_id":"REC-2","from_index":0,"to_index":1}"#,
        );
        assert_eq!(v["chunks"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["chunks"][1]["speaker"], "speaker_1");
        let v = tools.call(SEARCH_TRANSCRIPT, r#"{"recording_id":"REC-1"}"#);
        assert!(v["error"].as_str().expect("error").contains("query"));
        let v = tools.call(GET_TRANSCRIPT_CHUNKS, "not json");
        assert!(v["error"].is_string());
        let v = tools.call("deleteTranscript", "{}");
        assert!(
            v["error"]
                .as_str()
                .expect("error")
                .contains(SEARCH_TRANSCRIPT)
        );
    }

    #[test]
    fn a_quote_copied_from_a_tool_result_passes_evidence_gating() {
        let transcripts = fiche();
        let tools = TranscriptTools::new(&transcripts);
        for m in search(&tools, "rétractation quatorze").matches {
            let check = check_citation(
                &Citation {
                    quote: m.text.clone(),
                    recording_id: m.recording_id.clone(),
                    start_s: Some(m.start_s),
                    speaker: Some(m.speaker.clone()),
                },
                &transcripts,
                &GatingOptions::default(),
            );
            assert_eq!(check.verdict, CitationVerdict::Verified, "{m:?}");
        }
    }

    #[test]
    fn recordings_overview_lists_ids_durations_counts_and_speakers() {
        let tools = TranscriptTools::new(&fiche());
        let r = tools.recordings();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].recording_id, "REC-1");
        assert_eq!(r[0].utterance_count, 5);
        assert_eq!(r[0].speakers, vec!["speaker_0", "speaker_1"]);
        // Last word of REC-1 starts at 14 + 0.4 × 8 and lasts 0.3 s.
        assert_eq!(r[0].duration_s, 17.5);
    }

    #[test]
    fn tool_definitions_are_strict_function_schemas() {
        let defs = tool_definitions();
        let defs = defs.as_array().expect("array");
        let names: Vec<&str> = defs
            .iter()
            .map(|d| d["function"]["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, vec![SEARCH_TRANSCRIPT, GET_TRANSCRIPT_CHUNKS]);
        for d in defs {
            assert_eq!(d["type"], "function");
            assert_eq!(d["function"]["strict"], true);
            let p = &d["function"]["parameters"];
            assert_eq!(p["additionalProperties"], false);
            let mut props: Vec<&str> = p["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            let mut required: Vec<&str> = p["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|r| r.as_str().expect("str"))
                .collect();
            props.sort_unstable();
            required.sort_unstable();
            assert_eq!(props, required);
        }
    }
}
