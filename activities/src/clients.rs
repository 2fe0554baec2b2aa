//! Upstream HTTP clients: CRM gateway, ElevenLabs speech-to-text, OpenAI-compatible chat.
//! Each has a timeout and an injectable base URL, and classifies failures from the status
//! so activities can tell retryable from permanent ones. No error carries a key or a
//! header: bodies are scrubbed of the secret and truncated.

use callaudit_domain::secret::Secret;
use callaudit_domain::transcript::{Transcript, Word};
use serde_json::{Value, json};
use std::time::Duration;

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// 429: retry later.
    #[error("{vendor} rate limited (retry after {retry_after_s:?} s)")]
    RateLimited {
        /// Vendor.
        vendor: &'static str,
        /// Retry-After, seconds.
        retry_after_s: Option<u64>,
    },
    /// Network error, timeout or 5xx: retry.
    #[error("{vendor} transient failure: {message}")]
    Transient {
        /// Vendor.
        vendor: &'static str,
        /// Sanitised message.
        message: String,
    },
    /// 4xx (other than 429) or an unusable answer: do not retry.
    #[error("{vendor} permanent failure: {message}")]
    Permanent {
        /// Vendor.
        vendor: &'static str,
        /// Sanitised message.
        message: String,
    },
}

impl UpstreamError {
    /// Whether Temporal should retry.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, UpstreamError::Permanent { .. })
    }
}

fn sanitize(secret: &Secret, text: &str) -> String {
    let scrubbed = secret.scrub(text);
    let mut out: String = scrubbed.chars().take(300).collect();
    if scrubbed.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn transport_error(vendor: &'static str, e: &reqwest::Error) -> UpstreamError {
    // reqwest errors carry the URL, never headers; still keep only the kind.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    UpstreamError::Transient {
        vendor,
        message: kind.into(),
    }
}

async fn classify(
    vendor: &'static str,
    secret: &Secret,
    resp: reqwest::Response,
) -> Result<reqwest::Response, UpstreamError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after_s = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let body = resp.text().await.unwrap_or_default();
    let message = format!("HTTP {}: {}", status.as_u16(), sanitize(secret, &body));
    Err(match status.as_u16() {
        429 => UpstreamError::RateLimited {
            vendor,
            retry_after_s,
        },
        408 | 500..=599 => UpstreamError::Transient { vendor, message },
        _ => UpstreamError::Permanent { vendor, message },
    })
}

fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// CRM gateway client (`docs/CRM-CONTRACT.md`).
#[derive(Debug, Clone)]
pub struct CrmClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl CrmClient {
    /// A client for `base_url` (e.g. `https://gw.example/crm`).
    pub fn new(base_url: &str, key: Secret, timeout: Duration) -> Self {
        Self {
            http: http(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
        }
    }

    /// Full details of a fiche; `Ok(None)` when the CRM does not know it.
    pub async fn fiche_details(&self, fiche_id: &str) -> Result<Option<Value>, UpstreamError> {
        let url = format!("{}/fiches/{}", self.base, urlencode(fiche_id));
        self.get_json(&url, "fiche details").await
    }

    /// GETs `url` with the key; `Ok(None)` on 404, typed errors otherwise.
    async fn get_json(&self, url: &str, what: &str) -> Result<Option<Value>, UpstreamError> {
        let resp = self
            .http
            .get(url)
            .header("x-api-key", self.key.expose())
            .send()
            .await
            .map_err(|e| transport_error("crm", &e))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let resp = classify("crm", &self.key, resp).await?;
        resp.json()
            .await
            .map(Some)
            .map_err(|_| UpstreamError::Permanent {
                vendor: "crm",
                message: format!("{what} is not valid JSON"),
            })
    }
}

impl CrmClient {
    /// Partial fiches sold on `date` that have calls (`GET /sales-with-calls`).
    pub async fn sales_with_calls(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<Vec<Value>, UpstreamError> {
        let url = format!(
            "{}/sales-with-calls?date={}",
            self.base,
            date.format("%Y-%m-%d")
        );
        let body = self
            .get_json(&url, "sales search answer")
            .await?
            .unwrap_or(Value::Null);
        match body.get("fiches").and_then(Value::as_array) {
            Some(fiches) => Ok(fiches.clone()),
            None => Err(UpstreamError::Permanent {
                vendor: "crm",
                message: "sales search answer has no `fiches` array".into(),
            }),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// ElevenLabs speech-to-text client.
#[derive(Debug, Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    /// Model id (e.g. `scribe_v1`).
    pub model: String,
}

impl ElevenLabsClient {
    /// A client for `base_url` (e.g. `https://api.elevenlabs.io`); the key is normalised.
    pub fn new(base_url: &str, key: Secret, model: &str, timeout: Duration) -> Self {
        let key = Secret::normalized(key.expose());
        Self {
            http: http(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
            model: model.to_string(),
        }
    }

    /// Transcribes the audio at `audio_url` (diarized, word timestamps).
    pub async fn transcribe(
        &self,
        recording_id: &str,
        audio_url: &str,
    ) -> Result<Transcript, UpstreamError> {
        let form = reqwest::multipart::Form::new()
            .text("model_id", self.model.clone())
            .text("cloud_storage_url", audio_url.to_string())
            .text("diarize", "true")
            .text("timestamps_granularity", "word")
            .text("language_code", "fr");
        let resp = self
            .http
            .post(format!("{}/v1/speech-to-text", self.base))
            .header("xi-api-key", self.key.expose())
            .multipart(form)
            .send()
            .await
            .map_err(|e| transport_error("elevenlabs", &e))?;
        let resp = classify("elevenlabs", &self.key, resp).await?;
        let body: Value = resp.json().await.map_err(|_| UpstreamError::Permanent {
            vendor: "elevenlabs",
            message: "answer is not valid JSON".into(),
        })?;
        let words = body["words"]
            .as_array()
            .map(|ws| {
                ws.iter()
                    .filter(|w| w["type"].as_str().unwrap_or("word") == "word")
                    .filter_map(|w| {
                        Some(Word {
                            text: w["text"].as_str()?.to_string(),
                            start_s: w["start"].as_f64().unwrap_or(0.0),
                            end_s: w["end"].as_f64().unwrap_or(0.0),
                            speaker: w["speaker_id"].as_str().map(str::to_string),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(Transcript {
            recording_id: recording_id.to_string(),
            language: body["language_code"].as_str().map(str::to_string),
            text: body["text"].as_str().unwrap_or_default().to_string(),
            words,
        })
    }
}

/// Token usage of one LLM call (or, summed, of a conversation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
}

impl Usage {
    fn of(body: &Value) -> Self {
        let tokens = |name: &str| -> i32 {
            body["usage"][name]
                .as_i64()
                .unwrap_or(0)
                .try_into()
                .unwrap_or(i32::MAX)
        };
        Usage {
            prompt_tokens: tokens("prompt_tokens"),
            completion_tokens: tokens("completion_tokens"),
        }
    }

    fn add(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

/// Bounds of one tool-calling conversation ([`OpenAiClient::tools_completion`]).
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

/// One tool-calling conversation ([`OpenAiClient::tools_completion`]): the opening
/// messages, the tools offered, the schema of the final answer and the bounds.
#[derive(Debug, Clone, Copy)]
pub struct ToolsRequest<'a> {
    /// Model.
    pub model: &'a str,
    /// System message.
    pub system: &'a str,
    /// First user message.
    pub user: &'a str,
    /// OpenAI `tools` array (function tools).
    pub tools: &'a Value,
    /// Name of the answer schema.
    pub schema_name: &'a str,
    /// Strict JSON schema of the final answer.
    pub schema: &'a Value,
    /// Bounds of the conversation.
    pub limits: ToolLoopLimits,
}

/// What a tool-calling conversation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCompletion {
    /// The final answer, parsed (it follows the requested schema).
    pub answer: Value,
    /// Tokens summed over every request of the conversation.
    pub usage: Usage,
    /// Chat completion requests sent.
    pub requests: u32,
    /// Answers that asked for tools.
    pub tool_rounds: u32,
    /// Tool calls whose result was returned to the model.
    pub tool_calls: u32,
    /// Characters of tool results returned to the model.
    pub tool_chars: usize,
    /// Whether a bound was reached and the final answer forced (`tool_choice: "none"`).
    pub budget_exhausted: bool,
}

/// What the model is told when it may not read more.
const BUDGET_EXHAUSTED: &str = "Tool budget exhausted: no more tool calls. Answer now, in the \
     required JSON format, from the excerpts already read; quote nothing you have not read \
     in a tool result.";

/// OpenAI-compatible Chat Completions client.
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl OpenAiClient {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`).
    pub fn new(base_url: &str, key: Secret, timeout: Duration) -> Self {
        Self {
            http: http(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
        }
    }

    /// One chat completion whose answer must follow `schema` (strict json_schema);
    /// returns the parsed JSON answer. Refusals, truncation and invalid JSON are typed:
    /// truncation and invalid JSON are retryable (a new sample may succeed), refusals not.
    pub async fn json_completion(
        &self,
        model: &str,
        system: &str,
        user: &str,
        schema_name: &str,
        schema: &Value,
    ) -> Result<(Value, Usage), UpstreamError> {
        let request = json!({
            "model": model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": response_format(schema_name, schema),
        });
        let body = self.chat(&request).await?;
        let usage = Usage::of(&body);
        let choice = &body["choices"][0];
        self.check_finish(choice)?;
        Ok((json_content(choice)?, usage))
    }

    /// A conversation with OpenAI tool calling whose final answer must follow `schema`
    /// (strict json_schema), as [`Self::json_completion`].
    ///
    /// Each round sends the messages with `tools` and `tool_choice: "auto"`; when the
    /// answer holds `message.tool_calls`, the assistant message (with its calls) and one
    /// `tool` message per call (`run_tool(name, arguments)`, serialised) are appended and
    /// the next round starts; an answer without tool calls is the final one. The
    /// conversation is bounded by `req.limits`: once the model has had
    /// `max_tool_rounds` answers with tool calls, or a result would take the tool text past
    /// `max_tool_chars` (that result is then withheld), the model is told in the tool
    /// results and the next request forces the final answer with `tool_choice: "none"`.
    /// Choosing an answer over a failure keeps what was read useful: evidence gating then
    /// judges the answer like any other. A model that still calls tools after that is a
    /// retryable failure (a new sample may comply).
    ///
    /// Errors are those of [`Self::json_completion`], for every round; a tool call without
    /// id is retryable. Token usage is summed over the rounds.
    pub async fn tools_completion(
        &self,
        req: ToolsRequest<'_>,
        mut run_tool: impl FnMut(&str, &str) -> Value,
    ) -> Result<ToolCompletion, UpstreamError> {
        let ToolsRequest {
            model,
            system,
            user,
            tools,
            schema_name,
            schema,
            limits,
        } = req;
        let mut messages = vec![
            json!({"role": "system", "content": system}),
            json!({"role": "user", "content": user}),
        ];
        let mut out = ToolCompletion {
            answer: Value::Null,
            usage: Usage::default(),
            requests: 0,
            tool_rounds: 0,
            tool_calls: 0,
            tool_chars: 0,
            budget_exhausted: limits.max_tool_rounds == 0,
        };
        loop {
            let forced = out.budget_exhausted;
            let request = json!({
                "model": model,
                "temperature": 0,
                "messages": messages,
                "tools": tools,
                "tool_choice": if forced { "none" } else { "auto" },
                "response_format": response_format(schema_name, schema),
            });
            let body = self.chat(&request).await?;
            out.requests += 1;
            out.usage.add(Usage::of(&body));
            let choice = &body["choices"][0];
            self.check_finish(choice)?;
            let calls = match choice["message"]["tool_calls"].as_array() {
                Some(calls) if !calls.is_empty() => calls,
                _ => {
                    out.answer = json_content(choice)?;
                    return Ok(out);
                }
            };
            if forced {
                return Err(UpstreamError::Transient {
                    vendor: "openai",
                    message: "the model asked for tools after tool_choice \"none\"".into(),
                });
            }
            out.tool_rounds += 1;
            let last_round = out.tool_rounds >= limits.max_tool_rounds;
            let mut echoed = Vec::with_capacity(calls.len());
            let mut results = Vec::with_capacity(calls.len());
            for call in calls {
                let id = call["id"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| UpstreamError::Transient {
                        vendor: "openai",
                        message: "a tool call has no id".into(),
                    })?;
                let name = call["function"]["name"].as_str().unwrap_or_default();
                let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
                // Only function tools are offered, so every call is a function call.
                echoed.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }));
                let content = if out.budget_exhausted {
                    json!({"error": BUDGET_EXHAUSTED}).to_string()
                } else {
                    let mut result = run_tool(name, arguments);
                    if last_round && let Some(o) = result.as_object_mut() {
                        o.insert("notice".into(), json!(BUDGET_EXHAUSTED));
                    }
                    let text = result.to_string();
                    let chars = text.chars().count();
                    if out.tool_chars + chars > limits.max_tool_chars {
                        out.budget_exhausted = true;
                        json!({"error": BUDGET_EXHAUSTED}).to_string()
                    } else {
                        out.tool_chars += chars;
                        out.tool_calls += 1;
                        text
                    }
                };
                results.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            messages.push(json!({
                "role": "assistant",
                "content": choice["message"]["content"],
                "tool_calls": echoed,
            }));
            messages.extend(results);
            if last_round {
                out.budget_exhausted = true;
            }
        }
    }

    /// Sends one request; returns the answer body of a 2xx.
    async fn chat(&self, request: &Value) -> Result<Value, UpstreamError> {
        let resp = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .bearer_auth(self.key.expose())
            .json(request)
            .send()
            .await
            .map_err(|e| transport_error("openai", &e))?;
        let resp = classify("openai", &self.key, resp).await?;
        resp.json().await.map_err(|_| UpstreamError::Transient {
            vendor: "openai",
            message: "answer is not valid JSON".into(),
        })
    }

    /// A refusal is permanent; a truncated answer (content or tool arguments) retryable.
    fn check_finish(&self, choice: &Value) -> Result<(), UpstreamError> {
        if let Some(refusal) = choice["message"]["refusal"].as_str() {
            return Err(UpstreamError::Permanent {
                vendor: "openai",
                message: format!("model refused: {}", sanitize(&self.key, refusal)),
            });
        }
        if choice["finish_reason"].as_str() == Some("length") {
            return Err(UpstreamError::Transient {
                vendor: "openai",
                message: "answer truncated (finish_reason=length)".into(),
            });
        }
        Ok(())
    }
}

fn response_format(schema_name: &str, schema: &Value) -> Value {
    json!({"type": "json_schema", "json_schema": {"name": schema_name, "strict": true, "schema": schema}})
}

/// The JSON answer in a choice's content; invalid JSON is retryable.
fn json_content(choice: &Value) -> Result<Value, UpstreamError> {
    let content = choice["message"]["content"].as_str().unwrap_or_default();
    serde_json::from_str(content).map_err(|_| UpstreamError::Transient {
        vendor: "openai",
        message: "answer content is not valid JSON".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_removes_the_key_and_truncates() {
        let key = Secret::normalized("xi-secret-123");
        let s = sanitize(
            &key,
            &format!("Invalid API key: xi-secret-123 {}", "x".repeat(500)),
        );
        assert!(!s.contains("xi-secret-123"));
        assert!(s.chars().count() <= 301);
    }

    #[test]
    fn ids_are_url_encoded() {
        assert_eq!(urlencode("FICHE-1/2 3"), "FICHE-1%2F2%203");
    }
}
