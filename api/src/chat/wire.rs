//! The request and response shapes of the chat routes, and how rows become them.

use crate::error::ApiError;
use callaudit_db::chat::ChatMessageRow;
use callaudit_domain::chat::{ChatMessageStatus, ChatRole, QuoteCheck};
use callaudit_domain::evidence::CitationVerdict;
use poem_openapi::{Enum, Object};
use uuid::Uuid;

/// Longest question, in characters.
pub const MAX_MESSAGE_CHARS: usize = 8_000;

/// A question.
#[derive(Debug, Object)]
pub struct ChatRequest {
    /// The question (1 to 8,000 characters, not only whitespace).
    pub message: String,
}

impl ChatRequest {
    /// The question trimmed, or 422 saying what is wrong with it.
    pub fn question(&self) -> Result<&str, ApiError> {
        let q = self.message.trim();
        if q.is_empty() {
            return Err(ApiError::unprocessable("message must not be empty"));
        }
        let n = q.chars().count();
        if n > MAX_MESSAGE_CHARS {
            return Err(ApiError::unprocessable(format!(
                "message is {n} characters long; at most {MAX_MESSAGE_CHARS} are accepted"
            )));
        }
        Ok(q)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ChatRoleView {
    /// Context given to the model (never stored by the chat routes).
    System,
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

impl From<ChatRole> for ChatRoleView {
    fn from(r: ChatRole) -> Self {
        match r {
            ChatRole::System => Self::System,
            ChatRole::User => Self::User,
            ChatRole::Assistant => Self::Assistant,
        }
    }
}

/// How far a message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ChatStatusView {
    /// Whole: a question, or an answer the model finished.
    Complete,
    /// The answer's stream broke after some text: what arrived is kept, `error` says why.
    Partial,
    /// The model gave nothing; `error` says why.
    Failed,
}

impl From<ChatMessageStatus> for ChatStatusView {
    fn from(s: ChatMessageStatus) -> Self {
        match s {
            ChatMessageStatus::Complete => Self::Complete,
            ChatMessageStatus::Partial => Self::Partial,
            ChatMessageStatus::Failed => Self::Failed,
        }
    }
}

/// What the evidence check says of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuoteVerdictView {
    /// A recording of the fiche says it (ASR differences tolerated).
    Verified,
    /// Only an approximate match exists.
    Close,
    /// Nothing resembling it was said.
    NotFound,
    /// Said by another speaker than cited (not used for chat quotes, which cite none).
    WrongSpeaker,
    /// Said at another time than cited (not used for chat quotes).
    WrongTime,
    /// The cited recording is unknown (not used for chat quotes).
    UnknownRecording,
    /// Found in another recording than cited (not used for chat quotes).
    WrongRecording,
    /// Empty once normalised.
    Empty,
    /// One word: not evidence.
    TooShort,
    /// The words were said, with other figures.
    FiguresDiffer,
}

impl From<CitationVerdict> for QuoteVerdictView {
    fn from(v: CitationVerdict) -> Self {
        match v {
            CitationVerdict::Verified => Self::Verified,
            CitationVerdict::Close => Self::Close,
            CitationVerdict::NotFound => Self::NotFound,
            CitationVerdict::WrongSpeaker => Self::WrongSpeaker,
            CitationVerdict::WrongTime => Self::WrongTime,
            CitationVerdict::UnknownRecording => Self::UnknownRecording,
            CitationVerdict::WrongRecording => Self::WrongRecording,
            CitationVerdict::Empty => Self::Empty,
            CitationVerdict::TooShort => Self::TooShort,
            CitationVerdict::FiguresDiffer => Self::FiguresDiffer,
        }
    }
}

/// A quote of an answer and whether the fiche's recordings say it.
#[derive(Debug, Clone, Object)]
pub struct ChatQuoteView {
    /// The quote as the answer wrote it.
    pub quote: String,
    /// `VERIFIED` when a recording of the fiche says it; otherwise how near it came.
    pub verdict: QuoteVerdictView,
    /// The recording it was found in (or came closest in).
    pub recording_id: Option<String>,
    /// Similarity in `[0, 1]` of the best matching window.
    pub similarity: f64,
    /// The transcript's words there.
    pub matched_text: Option<String>,
    /// Where they start, seconds.
    pub matched_start_s: Option<f64>,
    /// Why, in a few words.
    pub reason: String,
}

impl From<QuoteCheck> for ChatQuoteView {
    fn from(q: QuoteCheck) -> Self {
        Self {
            quote: q.quote,
            verdict: q.verdict.into(),
            recording_id: q.recording_id,
            similarity: q.similarity,
            matched_text: q.matched_text,
            matched_start_s: q.matched_start_s,
            reason: q.reason,
        }
    }
}

/// Tokens of an answer.
#[derive(Debug, Clone, Object)]
pub struct ChatUsage {
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
}

/// A stored message.
#[derive(Debug, Clone, Object)]
pub struct ChatMessageView {
    /// Id; the conversation's order.
    pub id: i64,
    /// Who wrote it.
    pub role: ChatRoleView,
    /// Text (of an answer: what the model sent, whole or up to where it broke).
    pub content: String,
    /// How far it got.
    pub status: ChatStatusView,
    /// The quotes of an answer, each with its verdict.
    pub quotes: Vec<ChatQuoteView>,
    /// Model of an answer.
    pub model: Option<String>,
    /// Tokens of an answer.
    pub usage: Option<ChatUsage>,
    /// Why an answer is partial or failed.
    pub error: Option<String>,
    /// When it was stored.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<ChatMessageRow> for ChatMessageView {
    fn from(r: ChatMessageRow) -> Self {
        let quotes: Vec<QuoteCheck> = serde_json::from_value(r.quotes).unwrap_or_default();
        let usage = (r.role == ChatRole::Assistant).then_some(ChatUsage {
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
        });
        Self {
            id: r.id,
            role: r.role.into(),
            content: r.content,
            status: r.status.into(),
            quotes: quotes.into_iter().map(Into::into).collect(),
            model: r.model,
            usage,
            error: r.error,
            created_at: r.created_at,
        }
    }
}

/// A page of a conversation, oldest first.
#[derive(Debug, Object)]
pub struct ChatHistoryPage {
    /// The conversation (none before the first question).
    pub conversation_id: Option<Uuid>,
    /// The messages of the page, oldest first.
    pub items: Vec<ChatMessageView>,
    /// Messages in the whole conversation.
    pub total: i64,
    /// Page size asked.
    pub limit: i64,
    /// Messages skipped.
    pub offset: i64,
}

/// One event of an answer's stream; its `type` is also the SSE `event:`.
///
/// - `chat.started`: the question is stored (`message`, `conversation_id`);
/// - `chat.delta`: the next piece of the answer (`text`), as the model generates it;
/// - `chat.completed`: the answer is stored whole (`message`, with its quotes and usage);
/// - `chat.failed`: the model's answer broke or never came (`reason`); what arrived is
///   stored `partial` (or `failed`, without text) in `message`.
#[derive(Debug, Clone, Object)]
pub struct ChatEvent {
    /// `chat.started`, `chat.delta`, `chat.completed` or `chat.failed`.
    #[oai(rename = "type")]
    pub kind: String,
    /// `chat.started`: the conversation.
    #[oai(skip_serializing_if_is_none)]
    pub conversation_id: Option<Uuid>,
    /// `chat.delta`: the next piece of the answer's text.
    #[oai(skip_serializing_if_is_none)]
    pub text: Option<String>,
    /// `chat.started`: the stored question; `chat.completed` / `chat.failed`: the stored
    /// answer.
    #[oai(skip_serializing_if_is_none)]
    pub message: Option<ChatMessageView>,
    /// `chat.failed`: why.
    #[oai(skip_serializing_if_is_none)]
    pub reason: Option<String>,
}

impl ChatEvent {
    fn of(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            conversation_id: None,
            text: None,
            message: None,
            reason: None,
        }
    }

    /// `chat.started`.
    pub fn started(conversation_id: Uuid, question: ChatMessageView) -> Self {
        Self {
            conversation_id: Some(conversation_id),
            message: Some(question),
            ..Self::of("chat.started")
        }
    }

    /// `chat.delta`.
    pub fn delta(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::of("chat.delta")
        }
    }

    /// `chat.completed`.
    pub fn completed(answer: ChatMessageView) -> Self {
        Self {
            message: Some(answer),
            ..Self::of("chat.completed")
        }
    }

    /// `chat.failed`.
    pub fn failed(reason: String, answer: Option<ChatMessageView>) -> Self {
        Self {
            reason: Some(reason),
            message: answer,
            ..Self::of("chat.failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn schema_names_are_the_domain_names() {
        for r in ChatRole::ALL {
            assert_eq!(ChatRoleView::from(*r).to_json(), Some(r.as_str().into()));
        }
        for s in ChatMessageStatus::ALL {
            assert_eq!(ChatStatusView::from(*s).to_json(), Some(s.as_str().into()));
        }
        for v in [
            CitationVerdict::Verified,
            CitationVerdict::Close,
            CitationVerdict::NotFound,
            CitationVerdict::WrongSpeaker,
            CitationVerdict::WrongTime,
            CitationVerdict::UnknownRecording,
            CitationVerdict::WrongRecording,
            CitationVerdict::Empty,
            CitationVerdict::TooShort,
            CitationVerdict::FiguresDiffer,
        ] {
            assert_eq!(QuoteVerdictView::from(v).to_json(), Some(v.as_str().into()));
        }
    }

    #[test]
    fn a_blank_or_overlong_message_is_refused_with_what_is_wrong() {
        let ask = |m: &str| {
            ChatRequest { message: m.into() }
                .question()
                .map(str::to_string)
        };
        assert_eq!(ask("  Pourquoi ?  ").ok().as_deref(), Some("Pourquoi ?"));
        for bad in ["", "   \n\t"] {
            let e = ask(bad).expect_err("blank");
            assert_eq!(e.body().error.status, 422);
            assert_eq!(e.body().error.message, "message must not be empty");
        }
        let e = ask(&"é".repeat(MAX_MESSAGE_CHARS + 1)).expect_err("long");
        assert!(e.body().error.message.contains("at most 8000"), "{e:?}");
        assert!(ask(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok());
    }
}
