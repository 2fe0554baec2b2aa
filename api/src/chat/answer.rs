//! One question and its answer: the question is stored, the prompt built from the
//! context and the conversation so far, and the answer streamed from the LLM by a task
//! of its own — which goes on when the client leaves, so the answer is stored whatever
//! happens to the request. The answer's quotes are checked against the fiche's
//! transcripts before it is stored.

use super::wire::ChatEvent;
use crate::error::ApiError;
use crate::events::KEEP_ALIVE;
use crate::state::{AppState, ChatLlm};
use callaudit_db::chat::{self as chat_rows, NewChatMessage, Subject};
use callaudit_db::{Pool, pool};
use callaudit_domain::chat::{
    ChatMessageStatus, ChatRole, HISTORY_WINDOW, PromptMessage, check_quotes, extract_quotes,
    prompt_messages,
};
use callaudit_domain::evidence::GatingOptions;
use callaudit_domain::personal_data::redact_transcripts;
use callaudit_domain::pii::Redactor;
use callaudit_domain::transcript::Transcript;
use callaudit_upstream::UpstreamError;
use callaudit_upstream::openai::{StreamRequest, Usage};
use futures::stream::BoxStream;
use poem_openapi::payload::EventStream;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;
use uuid::Uuid;

/// Attempts to open the LLM's stream (a 5xx or 429 before any text is retried).
const OPEN_ATTEMPTS: u32 = 3;

/// Longest pause between two attempts (a longer `Retry-After` is cut to it).
const MAX_OPEN_PAUSE: Duration = Duration::from_secs(2);

/// The answer's events as Server-Sent Events (`event:` = the event's type).
pub type ChatStream = EventStream<BoxStream<'static, ChatEvent>>;

/// A question about `subject` by `user`, with what the model is told and what the
/// quotes are checked against.
pub(crate) struct Question<'a> {
    pub subject: Subject<'a>,
    pub user: Uuid,
    pub text: &'a str,
    /// The system context.
    pub context: String,
    /// The fiche's transcripts.
    pub transcripts: Vec<Transcript>,
}

/// The chat's LLM, or 503 when the api has none.
pub(crate) fn llm(state: &AppState) -> Result<ChatLlm, ApiError> {
    state.chat.clone().ok_or_else(|| {
        ApiError::unavailable("chat is not configured on this api (OPENAI_API_KEY is not set)")
    })
}

/// Stores the question, then streams the answer: `chat.started`, `chat.delta`s, then
/// `chat.completed` or `chat.failed`. Nothing is stored when the replica serves its cap
/// of streams (503).
pub(crate) async fn ask(
    state: &AppState,
    llm: ChatLlm,
    q: Question<'_>,
) -> Result<ChatStream, ApiError> {
    let permit = state.events.stream_permit().ok_or_else(|| {
        ApiError::unavailable(
            "this api replica already serves API_MAX_STREAMS event streams; retry later or \
             on another replica",
        )
    })?;
    let mut conn = pool::get(&state.pool).await?;
    let conversation = chat_rows::conversation(&mut conn, q.subject, q.user).await?;
    let no_quotes = serde_json::json!([]);
    let question = chat_rows::insert(
        &mut conn,
        &NewChatMessage {
            conversation_id: conversation,
            role: ChatRole::User.as_str(),
            content: q.text,
            status: ChatMessageStatus::Complete.as_str(),
            quotes: &no_quotes,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            error: None,
        },
    )
    .await?;
    let earlier: Vec<PromptMessage> = chat_rows::recent_before(
        &mut conn,
        conversation,
        question.id,
        i64::try_from(HISTORY_WINDOW).unwrap_or(i64::MAX),
    )
    .await?
    .into_iter()
    .map(|m| PromptMessage::new(m.role, m.content))
    .collect();
    drop(conn);
    let mut messages = prompt_messages(q.context, &earlier, q.text);
    let mut transcripts = q.transcripts;
    if llm.pii_redaction.prompts() {
        // Every text sent to the LLM carries placeholders, numbered for the fiche as its
        // transcripts' are (they are redacted first); quotes are checked against what the
        // model read.
        let mut redactor = Redactor::new();
        transcripts = redact_transcripts(&transcripts, &mut redactor);
        for m in &mut messages {
            m.content = redactor.redact(&m.content).text;
        }
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ChatEvent>();
    let _ = tx.send(ChatEvent::started(conversation, question.into()));
    let answering = Answering {
        pool: state.pool.clone(),
        llm,
        conversation,
        messages,
        transcripts,
        tx,
    };
    tokio::spawn(answering.run().in_current_span());
    let events = futures::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        rx.recv().await.map(|e| (e, (rx, permit)))
    });
    Ok(
        EventStream::new(Box::pin(events) as BoxStream<'static, ChatEvent>)
            .keep_alive(KEEP_ALIVE)
            .to_event(|e| {
                use poem_openapi::types::ToJSON;
                poem::web::sse::Event::message(e.to_json_string()).event_type(e.kind)
            }),
    )
}

/// The answering task: reads the model's stream to its end (sending each piece to the
/// client while it listens), checks the quotes, stores the answer, tells the client.
struct Answering {
    pool: Pool,
    llm: ChatLlm,
    conversation: Uuid,
    messages: Vec<PromptMessage>,
    transcripts: Vec<Transcript>,
    /// To the client; sends fail silently once it left.
    tx: UnboundedSender<ChatEvent>,
}

impl Answering {
    async fn run(self) {
        let mut text = String::new();
        let (usage, outcome) = self.generate(&mut text).await;
        let quotes = check_quotes(
            &extract_quotes(&text),
            &self.transcripts,
            &GatingOptions::default(),
        );
        let status = match (&outcome, text.trim().is_empty()) {
            (Ok(()), _) => ChatMessageStatus::Complete,
            (Err(_), false) => ChatMessageStatus::Partial,
            (Err(_), true) => ChatMessageStatus::Failed,
        };
        let error = outcome.as_ref().err().map(ToString::to_string);
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, chars = text.chars().count(), "chat answer incomplete");
        }
        let stored = self
            .store(&text, status, &quotes, usage, error.as_deref())
            .await;
        let event = match (stored, error) {
            (Ok(answer), None) => ChatEvent::completed(answer.into()),
            (Ok(answer), Some(reason)) => ChatEvent::failed(reason, Some(answer.into())),
            (Err(e), _) => {
                tracing::error!(error = %e, "storing a chat answer failed");
                ChatEvent::failed("the answer could not be stored".into(), None)
            }
        };
        let _ = self.tx.send(event);
    }

    /// Streams the answer into `text`; the tokens it reported and how it ended. Opening
    /// the stream is tried [`OPEN_ATTEMPTS`] times when it fails retryably (nothing was
    /// shown yet); a stream that breaks once text arrived is not restarted.
    async fn generate(&self, text: &mut String) -> (Usage, Result<(), UpstreamError>) {
        let request = StreamRequest::new(&self.llm.model, &self.messages);
        let mut attempt = 1;
        let mut stream = loop {
            match self.llm.client.stream_completion(request).await {
                Ok(s) => break s,
                Err(e) if e.is_retryable() && attempt < OPEN_ATTEMPTS => {
                    let pause = match &e {
                        UpstreamError::RateLimited {
                            retry_after_s: Some(s),
                            ..
                        } => Duration::from_secs(*s).min(MAX_OPEN_PAUSE),
                        _ => Duration::from_millis(250) * 2u32.pow(attempt - 1),
                    };
                    tracing::info!(attempt, error = %e, pause_ms = pause.as_millis(), "chat: opening the answer stream failed; retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return (Usage::default(), Err(e)),
            }
        };
        loop {
            match stream.next_text().await {
                Ok(Some(piece)) => {
                    text.push_str(&piece);
                    let _ = self.tx.send(ChatEvent::delta(piece));
                }
                Ok(None) => return (stream.usage(), Ok(())),
                Err(e) => return (stream.usage(), Err(e)),
            }
        }
    }

    async fn store(
        &self,
        text: &str,
        status: ChatMessageStatus,
        quotes: &[callaudit_domain::chat::QuoteCheck],
        usage: Usage,
        error: Option<&str>,
    ) -> Result<callaudit_db::chat::ChatMessageRow, callaudit_db::DbError> {
        let quotes = serde_json::to_value(quotes).unwrap_or_else(|_| serde_json::json!([]));
        let mut conn = pool::get(&self.pool).await?;
        chat_rows::insert(
            &mut conn,
            &NewChatMessage {
                conversation_id: self.conversation,
                role: ChatRole::Assistant.as_str(),
                content: text,
                status: status.as_str(),
                quotes: &quotes,
                model: Some(&self.llm.model),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                error,
            },
        )
        .await
    }
}
