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

/// Token usage of one LLM call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
}

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
            "response_format": {"type": "json_schema", "json_schema": {"name": schema_name, "strict": true, "schema": schema}},
        });
        let resp = self
            .http
            .post(format!("{}/chat/completions", self.base))
            .bearer_auth(self.key.expose())
            .json(&request)
            .send()
            .await
            .map_err(|e| transport_error("openai", &e))?;
        let resp = classify("openai", &self.key, resp).await?;
        let body: Value = resp.json().await.map_err(|_| UpstreamError::Transient {
            vendor: "openai",
            message: "answer is not valid JSON".into(),
        })?;
        let usage = Usage {
            prompt_tokens: body["usage"]["prompt_tokens"]
                .as_i64()
                .unwrap_or(0)
                .try_into()
                .unwrap_or(i32::MAX),
            completion_tokens: body["usage"]["completion_tokens"]
                .as_i64()
                .unwrap_or(0)
                .try_into()
                .unwrap_or(i32::MAX),
        };
        let choice = &body["choices"][0];
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
        let content = choice["message"]["content"].as_str().unwrap_or_default();
        let parsed: Value =
            serde_json::from_str(content).map_err(|_| UpstreamError::Transient {
                vendor: "openai",
                message: "answer content is not valid JSON".into(),
            })?;
        Ok((parsed, usage))
    }
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
