//! Chat about an audit or a fiche, the pure parts: what the model is told (the context,
//! the recent conversation, the question) and which of the answer's quotes are real.
//!
//! **The prompt** is, in order: one system message with the context ([`audit_context`]
//! or [`fiche_context`], at most [`MAX_CONTEXT_CHARS`] characters), the
//! [`HISTORY_WINDOW`] most recent messages stored *before* the new question, oldest
//! first, then the question itself. The question does not count in the window: a
//! conversation of 60 stored messages sends its messages 11 to 60, then the question
//! (52 messages in all with the system one). Failed answers (nothing was received) are
//! not part of the conversation; partial ones are, as they were shown.
//!
//! **Quotes**: an answer quotes the transcript between `« »`, `“ ”` or straight double
//! quotes ([`extract_quotes`]); a span of fewer than [`MIN_QUOTE_WORDS`] words is
//! wording, not a quote. Each quote is checked like an audit citation
//! ([`crate::evidence::check_citation`]) against every recording of the fiche
//! ([`check_quotes`]): VERIFIED with the recording it was found in, else the best
//! verdict any recording gave (CLOSE, FIGURES_DIFFER, NOT_FOUND).

use crate::analysis::{Conformite, Niveau, StepAnalysis};
use crate::audit_config::StepSpec;
use crate::evidence::{CitationVerdict, GatingOptions, check_citation};
use crate::status::named_enum;
use crate::text::normalize;
use crate::transcript::Transcript;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Stored messages sent with a question (the question itself not counted).
pub const HISTORY_WINDOW: usize = 50;

/// Longest context (system message) sent, in characters; past it the rest of the
/// transcripts or steps is left out and the context says how much.
pub const MAX_CONTEXT_CHARS: usize = 60_000;

/// Fewest words of a quote (fewer is wording, e.g. « conforme »).
pub const MIN_QUOTE_WORDS: usize = 2;

/// Most quotes of one answer checked (the first ones in the answer).
pub const MAX_QUOTES: usize = 20;

/// Longest span between quotation marks read as a quote, in characters (beyond, the
/// marks are taken as unbalanced).
const MAX_QUOTE_CHARS: usize = 1_000;

named_enum! {
    /// Who wrote a chat message (`chat_messages.role`).
    ChatRole {
        /// The context given to the model.
        System = "system",
        /// The person asking.
        User = "user",
        /// The model's answer.
        Assistant = "assistant",
    }
}

named_enum! {
    /// How far a message got (`chat_messages.status`).
    ChatMessageStatus {
        /// Whole: a question, or an answer the model finished.
        Complete = "complete",
        /// The answer stream broke after some text: what arrived is kept.
        Partial = "partial",
        /// The model gave nothing (refused the call, broke before any text).
        Failed = "failed",
    }
}

/// One message of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// Who.
    pub role: ChatRole,
    /// What.
    pub content: String,
}

impl PromptMessage {
    /// A message of `role`.
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// The messages of one request: the system `context`, the last [`HISTORY_WINDOW`] of
/// `earlier` (the stored conversation before the question, oldest first; system and
/// empty messages skipped), then the `question`.
pub fn prompt_messages(
    context: String,
    earlier: &[PromptMessage],
    question: &str,
) -> Vec<PromptMessage> {
    let conversation: Vec<&PromptMessage> = earlier
        .iter()
        .filter(|m| m.role != ChatRole::System && !m.content.trim().is_empty())
        .collect();
    let skip = conversation.len().saturating_sub(HISTORY_WINDOW);
    let mut out = Vec::with_capacity(conversation.len() - skip + 2);
    out.push(PromptMessage::new(ChatRole::System, context));
    out.extend(conversation.into_iter().skip(skip).cloned());
    out.push(PromptMessage::new(ChatRole::User, question));
    out
}

const INSTRUCTIONS: &str = "Tu es l'assistant qualité de callaudit : tu réponds en français \
aux questions sur un audit d'appels de vente ou sur une fiche client, d'après le contexte \
ci-dessous uniquement. Quand tu cites ce qui a été dit, recopie les mots exacts de la \
transcription entre « » ; n'invente jamais de citation. Si le contexte ne permet pas de \
répondre, dis-le.";

/// What the chat about an audit is told of the audit itself.
#[derive(Debug, Clone, Copy)]
pub struct AuditFacts<'a> {
    /// Audit id.
    pub audit_id: &'a str,
    /// Its fiche.
    pub fiche_id: &'a str,
    /// Name of the configuration it ran with.
    pub config_name: &'a str,
    /// Where it stands (`completed`, `running`…).
    pub status: &'a str,
    /// Score out of 100, once computed.
    pub score: Option<f64>,
    /// Niveau, once computed.
    pub niveau: Option<Niveau>,
    /// Critical failure, once computed.
    pub critical: Option<bool>,
}

/// One step of the audit's configuration and, once analysed, its result.
#[derive(Debug, Clone, Copy)]
pub struct StepFacts<'a> {
    /// The step as configured.
    pub spec: &'a StepSpec,
    /// Its stored result, if analysed.
    pub result: Option<StepOutcomeFacts<'a>>,
}

/// The stored result of a step.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcomeFacts<'a> {
    /// Score (out of the step's weight).
    pub score: f64,
    /// Verdict.
    pub conforme: Conformite,
    /// The gated control points and the step comment.
    pub analysis: &'a StepAnalysis,
}

/// Lines up to a character budget; what does not fit is counted, not sent.
struct Bounded {
    text: String,
    budget: usize,
    chars: usize,
    omitted: usize,
}

impl Bounded {
    fn new(head: &str, budget: usize) -> Self {
        let mut b = Self {
            text: String::new(),
            budget,
            chars: 0,
            omitted: 0,
        };
        b.line(head);
        b
    }

    /// Adds `line` if it fits (and nothing was left out before it, so the context never
    /// has holes); otherwise counts it.
    fn line(&mut self, line: &str) {
        let n = line.chars().count() + 1;
        if self.omitted == 0 && self.chars + n <= self.budget {
            self.text.push_str(line);
            self.text.push('\n');
            self.chars += n;
        } else {
            self.omitted += 1;
        }
    }

    fn finish(mut self, what: &str) -> String {
        if self.omitted > 0 {
            let _ = writeln!(
                self.text,
                "[… {} {what} omis : contexte limité à {} caractères]",
                self.omitted, self.budget
            );
        }
        self.text
    }
}

fn fmt_score(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn oui_non(b: bool) -> &'static str {
    if b { "oui" } else { "non" }
}

/// The context of a chat about an audit: the audit's summary, then each step of its
/// configuration with its verdict and score, and each control point with its statut,
/// commentaire and citations (recording, time, speaker, quote). At most
/// [`MAX_CONTEXT_CHARS`] characters.
pub fn audit_context(audit: &AuditFacts<'_>, steps: &[StepFacts<'_>]) -> String {
    let mut head = format!(
        "{INSTRUCTIONS}\n\nAudit {} de la fiche {}, configuration « {} » : statut {}",
        audit.audit_id, audit.fiche_id, audit.config_name, audit.status
    );
    if let Some(score) = audit.score {
        let _ = write!(head, ", score {}/100", fmt_score(score));
    }
    if let Some(niveau) = audit.niveau {
        let _ = write!(head, ", niveau {niveau}");
    }
    if let Some(critical) = audit.critical {
        let _ = write!(head, ", échec critique : {}", oui_non(critical));
    }
    head.push('.');
    let mut out = Bounded::new(&head, MAX_CONTEXT_CHARS);
    for step in steps {
        let s = step.spec;
        let mut line = format!(
            "\nÉtape {} « {} » (poids {}, critique : {}) : ",
            s.position,
            s.name,
            fmt_score(s.weight),
            oui_non(s.critical)
        );
        match &step.result {
            None => line.push_str("pas encore analysée."),
            Some(r) => {
                let _ = write!(
                    line,
                    "{}, score {}/{}.",
                    r.conforme,
                    fmt_score(r.score),
                    fmt_score(s.weight)
                );
                if !r.analysis.commentaire.trim().is_empty() {
                    let _ = write!(line, " {}", r.analysis.commentaire.trim());
                }
            }
        }
        out.line(&line);
        let Some(r) = &step.result else {
            for (i, point) in s.control_points.iter().enumerate() {
                out.line(&format!("  Point {i} « {point} »"));
            }
            continue;
        };
        for p in &r.analysis.points_controle {
            let mut line = format!("  Point {} « {} » : {}", p.index, p.point, p.statut);
            if !p.commentaire.trim().is_empty() {
                let _ = write!(line, " — {}", p.commentaire.trim());
            }
            if p.evidence_unverified {
                let _ = write!(
                    line,
                    " [preuve non vérifiée{}]",
                    p.evidence_reason
                        .as_deref()
                        .map(|r| format!(" : {r}"))
                        .unwrap_or_default()
                );
            }
            out.line(&line);
            for c in &p.citations {
                let mut at = c.recording_id.clone();
                if let Some(t) = c.start_s.filter(|t| t.is_finite()) {
                    let _ = write!(at, ", {t:.1} s");
                }
                if let Some(sp) = c.speaker.as_deref().filter(|s| !s.trim().is_empty()) {
                    let _ = write!(at, ", {sp}");
                }
                out.line(&format!("    Citation ({at}) : « {} »", c.quote.trim()));
            }
        }
    }
    out.finish("lignes")
}

/// The context of a chat about a fiche: its recordings' transcripts, one utterance a
/// line, timestamped and speaker-labelled (`[12.5 s] speaker_0 : Bonjour…`). At most
/// [`MAX_CONTEXT_CHARS`] characters: the later utterances are left out and counted.
pub fn fiche_context(fiche_id: &str, transcripts: &[Transcript]) -> String {
    let head = format!(
        "{INSTRUCTIONS}\n\nFiche {fiche_id} : {} enregistrement(s) transcrit(s).",
        transcripts.len()
    );
    let mut out = Bounded::new(&head, MAX_CONTEXT_CHARS);
    if transcripts.is_empty() {
        out.line("Aucune transcription n'est encore disponible pour cette fiche.");
    }
    for t in transcripts {
        out.line(&format!("\nEnregistrement {} :", t.recording_id));
        for u in t.utterances() {
            out.line(&format!("[{:.1} s] {} : {}", u.start_s, u.speaker, u.text));
        }
    }
    out.finish("énoncés ou enregistrements")
}

/// The quotes of an answer, in order of appearance, each once (compared normalised), at
/// most [`MAX_QUOTES`]: spans between `«` and `»`, `“` and `”`, or two straight `"`,
/// trimmed, of at least [`MIN_QUOTE_WORDS`] words. An opening mark without its closing
/// one (within 1,000 characters) quotes nothing.
pub fn extract_quotes(answer: &str) -> Vec<String> {
    let chars: Vec<char> = answer.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() && out.len() < MAX_QUOTES {
        let close = match chars[i] {
            '«' => '»',
            '“' => '”',
            '"' => '"',
            _ => {
                i += 1;
                continue;
            }
        };
        let Some(len) = chars[i + 1..]
            .iter()
            .take(MAX_QUOTE_CHARS + 1)
            .position(|c| *c == close)
        else {
            i += 1;
            continue;
        };
        let span: String = chars[i + 1..i + 1 + len].iter().collect();
        i += len + 2;
        let quote = span
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{a0}' || c == '\u{202f}')
            .to_string();
        let norm = normalize(&quote);
        if norm.split(' ').filter(|w| !w.is_empty()).count() < MIN_QUOTE_WORDS
            || seen.contains(&norm)
        {
            continue;
        }
        seen.push(norm);
        out.push(quote);
    }
    out
}

/// A quote of an answer and how it fared against the fiche's transcripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuoteCheck {
    /// The quote as written in the answer.
    pub quote: String,
    /// VERIFIED when some recording says it; otherwise the best verdict of any recording
    /// (CLOSE, FIGURES_DIFFER, NOT_FOUND).
    pub verdict: CitationVerdict,
    /// The recording it was found in (VERIFIED) or came closest in (CLOSE,
    /// FIGURES_DIFFER); none when nothing resembles it.
    #[serde(default)]
    pub recording_id: Option<String>,
    /// Similarity in `[0, 1]` of the best window.
    pub similarity: f64,
    /// Transcript words of that window.
    #[serde(default)]
    pub matched_text: Option<String>,
    /// Start time (seconds) of that window.
    #[serde(default)]
    pub matched_start_s: Option<f64>,
    /// Short English explanation.
    pub reason: String,
}

/// Rank of a verdict that is not VERIFIED: the one said most nearly wins.
fn closeness(v: CitationVerdict) -> u8 {
    match v {
        CitationVerdict::Close => 3,
        CitationVerdict::FiguresDiffer => 2,
        CitationVerdict::NotFound => 1,
        _ => 0,
    }
}

/// Checks each quote against every recording of the fiche (see the module doc).
pub fn check_quotes(
    quotes: &[String],
    transcripts: &[Transcript],
    opts: &GatingOptions,
) -> Vec<QuoteCheck> {
    quotes
        .iter()
        .map(|quote| check_quote(quote, transcripts, opts))
        .collect()
}

fn check_quote(quote: &str, transcripts: &[Transcript], opts: &GatingOptions) -> QuoteCheck {
    let mut best: Option<QuoteCheck> = None;
    for t in transcripts {
        let cited = crate::analysis::Citation {
            quote: quote.to_string(),
            recording_id: t.recording_id.clone(),
            start_s: None,
            speaker: None,
        };
        let c = check_citation(&cited, std::slice::from_ref(t), opts);
        let found = matches!(
            c.verdict,
            CitationVerdict::Verified | CitationVerdict::Close | CitationVerdict::FiguresDiffer
        );
        let check = QuoteCheck {
            quote: quote.to_string(),
            verdict: c.verdict,
            recording_id: found.then(|| t.recording_id.clone()),
            similarity: c.similarity,
            matched_text: c.matched_text,
            matched_start_s: c.matched_start_s,
            reason: if found {
                format!("recording {}: {}", t.recording_id, c.reason)
            } else {
                c.reason
            },
        };
        if check.verdict == CitationVerdict::Verified {
            return check;
        }
        let better = best.as_ref().is_none_or(|b| {
            (closeness(check.verdict), check.similarity) > (closeness(b.verdict), b.similarity)
        });
        if better {
            best = Some(check);
        }
    }
    best.unwrap_or_else(|| QuoteCheck {
        quote: quote.to_string(),
        verdict: CitationVerdict::NotFound,
        recording_id: None,
        similarity: 0.0,
        matched_text: None,
        matched_start_s: None,
        reason: "the fiche has no transcript to check it against".to_string(),
    })
}

#[cfg(test)]
mod tests;
