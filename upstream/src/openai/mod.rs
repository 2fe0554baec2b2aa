//! OpenAI-compatible Chat Completions client: one structured-output completion
//! ([`chat`]), a bounded tool-calling conversation ([`tools`]) and a streamed answer
//! ([`stream`], for the chat about an audit or a fiche). Requests are built
//! with `serde_json::json!` (their shape is the protocol's); answers are read into typed
//! wire structs.

pub mod chat;
pub mod stream;
pub mod tools;

pub use callaudit_domain::transcript_tools::ToolLoopLimits;
pub use stream::{CompletionStream, StreamRequest};
pub use tools::{ToolCompletion, ToolsRequest};

use crate::error::UpstreamError;
use crate::http::{classify, client, read_json, sanitize, transport_error};
use crate::metrics::VendorMetrics;
use callaudit_domain::secret::Secret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const VENDOR: &str = "openai";

/// Token usage of one LLM call (or, summed, of a conversation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default, deserialize_with = "tokens")]
    pub prompt_tokens: i32,
    /// Completion tokens.
    #[serde(default, deserialize_with = "tokens")]
    pub completion_tokens: i32,
}

fn tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let n: Option<i64> = Option::deserialize(d)?;
    Ok(n.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)))
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

/// A Chat Completions answer (the fields we use).
#[derive(Debug, Default, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Default, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
struct ToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: FunctionCall,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionCall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

impl ChatResponse {
    /// The first choice (an answer without one has no content).
    fn into_first_choice(self) -> (Choice, Usage) {
        (
            self.choices.into_iter().next().unwrap_or_default(),
            self.usage.unwrap_or_default(),
        )
    }
}

/// OpenAI-compatible Chat Completions client.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    metrics: VendorMetrics,
}

impl OpenAiClient {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`).
    pub fn new(base_url: &str, key: Secret, timeout: Duration) -> Self {
        Self {
            http: client(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
            metrics: VendorMetrics::default(),
        }
    }

    /// The same client recording its calls and tokens into `metrics`.
    pub fn with_metrics(self, metrics: VendorMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Sends one request; returns the answer of a 2xx. Records the call and the tokens
    /// its answer reports under the request's model.
    async fn chat(&self, request: &Value) -> Result<ChatResponse, UpstreamError> {
        let started = Instant::now();
        let result = self.chat_once(request).await;
        self.metrics
            .call(VENDOR, "chat_completion", started, &result);
        if let Ok(ChatResponse {
            usage: Some(usage), ..
        }) = &result
        {
            let model = request["model"].as_str().unwrap_or("unknown");
            self.metrics
                .tokens(model, usage.prompt_tokens, usage.completion_tokens);
        }
        result
    }

    async fn chat_once(&self, request: &Value) -> Result<ChatResponse, UpstreamError> {
        let resp = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .bearer_auth(self.key.expose())
            .json(request)
            .send()
            .await
            .map_err(|e| transport_error(VENDOR, &e))?;
        let resp = classify(VENDOR, &self.key, resp).await?;
        read_json(VENDOR, resp, || {
            UpstreamError::transient(VENDOR, "answer is not valid JSON")
        })
        .await
    }

    /// One chat request whose answer is checked ([`Self::check_finish`]), a refusal asked
    /// again [`REFUSAL_RESAMPLES`] time(s) first; `requests` and `usage` count every call.
    async fn checked_choice(
        &self,
        request: &Value,
        requests: &mut u32,
        usage: &mut Usage,
    ) -> Result<Choice, UpstreamError> {
        let mut resamples = 0;
        loop {
            let (choice, u) = self.chat(request).await?.into_first_choice();
            *requests += 1;
            usage.add(u);
            if choice.message.refusal.is_some() && resamples < REFUSAL_RESAMPLES {
                resamples += 1;
                tracing::warn!(
                    vendor = VENDOR,
                    "the model refused; asking once more before the refusal counts"
                );
                continue;
            }
            self.check_finish(&choice)?;
            return Ok(choice);
        }
    }

    /// A refusal is permanent; a truncated answer (content or tool arguments) retryable.
    fn check_finish(&self, choice: &Choice) -> Result<(), UpstreamError> {
        if let Some(refusal) = &choice.message.refusal {
            return Err(UpstreamError::permanent(
                VENDOR,
                format!("model refused: {}", sanitize(&self.key, refusal)),
            ));
        }
        if choice.finish_reason.as_deref() == Some("length") {
            return Err(UpstreamError::transient(
                VENDOR,
                "answer truncated (finish_reason=length)",
            ));
        }
        Ok(())
    }
}

/// Refusals asked again within one call before one counts. A model may refuse one sample
/// of a legitimate request and answer the next (a flaky refusal); a second refusal in a
/// row is permanent, so a request the model will not answer costs two calls, not the
/// activity's whole retry budget.
pub const REFUSAL_RESAMPLES: u32 = 1;

/// The strict `json_schema` response format.
fn response_format(schema_name: &str, schema: &Value) -> Value {
    json!({"type": "json_schema", "json_schema": {"name": schema_name, "strict": true, "schema": schema}})
}

/// The JSON answer in a choice's content; invalid JSON is retryable.
fn json_content(choice: &Choice) -> Result<Value, UpstreamError> {
    let content = choice.message.content.as_deref().unwrap_or_default();
    serde_json::from_str(content)
        .map_err(|_| UpstreamError::transient(VENDOR, "answer content is not valid JSON"))
}
