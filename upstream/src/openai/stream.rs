//! A streamed chat completion (`stream: true` with `stream_options.include_usage`): the
//! answer's text piece by piece as the model generates it, then its finish reason and
//! token usage.
//!
//! The body is Server-Sent Events: `data: <chunk JSON>` frames separated by a blank line,
//! ended by `data: [DONE]`. Bytes are buffered until a frame is complete, so a frame (or
//! a multi-byte character) split across network chunks is read whole. Failures are
//! classified like every call of this client: an error status through
//! `http::classify`; a stream that breaks (connection lost, body ended before the
//! model finished, unreadable chunk) is transient; a stream past its byte cap, a refusal
//! or an error object the vendor sends mid-stream (transient when the vendor says it is a
//! server error) are reported with the key scrubbed. The call is timed and its tokens
//! counted once, when the stream ends.

use super::{OpenAiClient, Usage, VENDOR};
use crate::error::UpstreamError;
use crate::http::{classify, sanitize, transport_error};
use callaudit_domain::chat::PromptMessage;
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

/// Largest streamed answer read, in bytes of the wire (a long answer is a few hundred
/// kilobytes of chunks).
pub const MAX_STREAM_BYTES: usize = 16 << 20;

/// The operation name of streamed completions in the vendor-call metrics.
const OPERATION: &str = "chat_completion_stream";

/// One streamed completion.
#[derive(Debug, Clone, Copy)]
pub struct StreamRequest<'a> {
    /// Model.
    pub model: &'a str,
    /// The conversation, system message first.
    pub messages: &'a [PromptMessage],
    /// Largest body read (bytes of the wire); past it the stream fails, permanently.
    pub max_bytes: usize,
}

impl<'a> StreamRequest<'a> {
    /// A request for `messages` to `model`, capped at [`MAX_STREAM_BYTES`].
    pub fn new(model: &'a str, messages: &'a [PromptMessage]) -> Self {
        Self {
            model,
            messages,
            max_bytes: MAX_STREAM_BYTES,
        }
    }
}

/// A chunk of the stream (the fields we use).
#[derive(Debug, Default, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    /// Some servers report a failure inside the stream instead of as a status.
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// Cuts a Server-Sent Events byte stream into the `data` of its frames.
#[derive(Debug, Default)]
pub(crate) struct SseFrames {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a frame end.
    scanned: usize,
}

impl SseFrames {
    /// Adds `bytes`; returns the data (its `data:` lines joined by newlines) of each frame
    /// they complete, in order. Frames without data (comments, keep-alives) yield
    /// nothing; a frame that is not UTF-8 is an error.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, std::str::Utf8Error> {
        // `\r\n` line ends become `\n`; a CR byte never occurs inside a UTF-8 sequence.
        self.buf
            .extend(bytes.iter().copied().filter(|b| *b != b'\r'));
        let mut out = Vec::new();
        loop {
            let from = self.scanned.saturating_sub(1);
            let Some(end) = self.buf[from..]
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|p| from + p)
            else {
                self.scanned = self.buf.len();
                return Ok(out);
            };
            let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
            self.scanned = 0;
            if let Some(data) = frame_data(std::str::from_utf8(&frame)?) {
                out.push(data);
            }
        }
    }
}

fn frame_data(frame: &str) -> Option<String> {
    let mut data: Option<String> = None;
    for line in frame.lines() {
        let Some(value) = line.strip_prefix("data:") else {
            continue;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(value.to_string()),
        }
    }
    data
}

/// The answer of a streamed completion, read piece by piece with [`next_text`].
///
/// [`next_text`]: CompletionStream::next_text
#[derive(Debug)]
pub struct CompletionStream {
    client: OpenAiClient,
    resp: reqwest::Response,
    frames: SseFrames,
    /// Data of frames received but not handled yet.
    pending: std::collections::VecDeque<String>,
    model: String,
    started: Instant,
    read: usize,
    max_bytes: usize,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    refusal: String,
    ended: bool,
}

impl OpenAiClient {
    /// Starts a streamed completion of `req.messages`; returns once the vendor answered
    /// 2xx with an event stream (an error status is classified as for every call).
    pub async fn stream_completion(
        &self,
        req: StreamRequest<'_>,
    ) -> Result<CompletionStream, UpstreamError> {
        let started = Instant::now();
        let messages: Vec<_> = req
            .messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let request = json!({
            "model": req.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let opened = async {
            let resp = self
                .http
                .post(format!("{}/chat/completions", self.base))
                .bearer_auth(self.key.expose())
                .header("accept", "text/event-stream")
                .json(&request)
                .send()
                .await
                .map_err(|e| transport_error(VENDOR, &e))?;
            let resp = classify(VENDOR, &self.key, resp).await?;
            let is_stream = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
            if is_stream {
                Ok(resp)
            } else {
                Err(UpstreamError::permanent(
                    VENDOR,
                    "a streamed completion was answered without an event stream",
                ))
            }
        }
        .await;
        match opened {
            Ok(resp) => Ok(CompletionStream {
                client: self.clone(),
                resp,
                frames: SseFrames::default(),
                pending: Default::default(),
                model: req.model.to_string(),
                started,
                read: 0,
                max_bytes: req.max_bytes,
                finish_reason: None,
                usage: None,
                refusal: String::new(),
                ended: false,
            }),
            Err(e) => {
                let failed: Result<CompletionStream, UpstreamError> = Err(e);
                self.metrics.call(VENDOR, OPERATION, started, &failed);
                failed
            }
        }
    }
}

impl CompletionStream {
    /// The next piece of the answer's text; `Ok(None)` once the model finished (after
    /// which [`usage`](Self::usage) and [`finish_reason`](Self::finish_reason) are known).
    /// An error ends the stream: the text received so far is all there is. An answer cut
    /// by the token limit (`finish_reason: "length"`) ends with a transient error after
    /// its text, a refusal with a permanent one.
    pub async fn next_text(&mut self) -> Result<Option<String>, UpstreamError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            while let Some(data) = self.pending.pop_front() {
                match self.handle(&data) {
                    Ok(Some(text)) => return Ok(Some(text)),
                    Ok(None) if data.trim() == "[DONE]" => return self.end(Ok(())),
                    Ok(None) => {}
                    Err(e) => return self.end(Err(e)),
                }
            }
            let chunk = match self.resp.chunk().await {
                Ok(chunk) => chunk,
                Err(e) => {
                    let kind = transport_error(VENDOR, &e);
                    return self.end(Err(UpstreamError::transient(
                        VENDOR,
                        format!("the answer stream broke ({})", message_of(&kind)),
                    )));
                }
            };
            let Some(bytes) = chunk else {
                // The body ended: complete only if the model had finished.
                return if self.finish_reason.is_some() {
                    self.end(Ok(()))
                } else {
                    self.end(Err(UpstreamError::transient(
                        VENDOR,
                        "the answer stream broke: it ended before the model finished",
                    )))
                };
            };
            self.read += bytes.len();
            if self.read > self.max_bytes {
                let limit = self.max_bytes;
                return self.end(Err(UpstreamError::permanent(
                    VENDOR,
                    format!("answer stream larger than {limit} bytes"),
                )));
            }
            match self.frames.push(&bytes) {
                Ok(datas) => self.pending.extend(datas),
                Err(_) => {
                    return self.end(Err(UpstreamError::transient(
                        VENDOR,
                        "the answer stream is not valid UTF-8",
                    )));
                }
            }
        }
    }

    /// Token usage the stream reported (zero when it reported none).
    pub fn usage(&self) -> Usage {
        self.usage.unwrap_or_default()
    }

    /// Why the model stopped (`stop`, `length`…), once known.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// The model the request named.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Reads one frame's data: its text, if any.
    fn handle(&mut self, data: &str) -> Result<Option<String>, UpstreamError> {
        if data.trim() == "[DONE]" {
            return Ok(None);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
            UpstreamError::transient(VENDOR, "a chunk of the answer stream is not valid JSON")
        })?;
        if let Some(error) = chunk.error {
            let message = format!(
                "error in the answer stream: {}",
                sanitize(&self.client.key, error.message.as_deref().unwrap_or("")),
            );
            return Err(match error.kind.as_deref() {
                Some("server_error") | None => UpstreamError::transient(VENDOR, message),
                Some(_) => UpstreamError::permanent(VENDOR, message),
            });
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        let mut text = String::new();
        for choice in chunk.choices {
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
            if let Some(refusal) = choice.delta.refusal {
                self.refusal.push_str(&refusal);
            }
            if let Some(content) = choice.delta.content {
                text.push_str(&content);
            }
        }
        Ok((!text.is_empty()).then_some(text))
    }

    /// Ends the stream with `outcome` (a model that finished on its token limit, refused
    /// or was filtered turns a clean end into an error), recording the call and its
    /// tokens once.
    fn end(&mut self, outcome: Result<(), UpstreamError>) -> Result<Option<String>, UpstreamError> {
        let outcome = outcome.and_then(|()| {
            if !self.refusal.is_empty() {
                return Err(UpstreamError::permanent(
                    VENDOR,
                    format!(
                        "model refused: {}",
                        sanitize(&self.client.key, &self.refusal)
                    ),
                ));
            }
            match self.finish_reason.as_deref() {
                Some("length") => Err(UpstreamError::transient(
                    VENDOR,
                    "answer truncated (finish_reason=length)",
                )),
                Some("content_filter") => Err(UpstreamError::permanent(
                    VENDOR,
                    "answer stopped by the content filter",
                )),
                _ => Ok(()),
            }
        });
        self.ended = true;
        self.client
            .metrics
            .call(VENDOR, OPERATION, self.started, &outcome);
        if let Some(usage) = self.usage {
            self.client
                .metrics
                .tokens(&self.model, usage.prompt_tokens, usage.completion_tokens);
        }
        outcome.map(|()| None)
    }
}

fn message_of(e: &UpstreamError) -> &str {
    match e {
        UpstreamError::Transient { message, .. } | UpstreamError::Permanent { message, .. } => {
            message
        }
        UpstreamError::RateLimited { .. } => "rate limited",
    }
}

#[cfg(test)]
mod tests {
    use super::SseFrames;

    const STREAM: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"Déjà\"}}]}\n\n\
                          : keep-alive\n\n\
                          data: {\"choices\":[{\"delta\":{\"content\":\" vu\"}}]}\r\n\r\n\
                          data: [DONE]\n\n";

    #[test]
    fn frames_split_at_every_byte_even_inside_a_character_are_read_whole() {
        let bytes = STREAM.as_bytes();
        for cut in 0..bytes.len() {
            let mut frames = SseFrames::default();
            let mut got = frames.push(&bytes[..cut]).expect("utf-8");
            got.extend(frames.push(&bytes[cut..]).expect("utf-8"));
            assert_eq!(
                got,
                vec![
                    "{\"choices\":[{\"delta\":{\"content\":\"Déjà\"}}]}",
                    "{\"choices\":[{\"delta\":{\"content\":\" vu\"}}]}",
                    "[DONE]"
                ],
                "cut at byte {cut}"
            );
        }
    }

    #[test]
    fn byte_by_byte_the_same_frames_come_out_and_an_unfinished_one_waits() {
        let mut frames = SseFrames::default();
        let mut got = Vec::new();
        for b in STREAM.as_bytes() {
            got.extend(frames.push(std::slice::from_ref(b)).expect("utf-8"));
        }
        assert_eq!(got.len(), 3);
        assert!(
            frames
                .push(b"data: {\"partial\"")
                .expect("utf-8")
                .is_empty()
        );
        assert_eq!(frames.push(b"}\n\n").expect("utf-8"), vec!["{\"partial\"}"]);
    }

    #[test]
    fn multi_line_data_is_joined_and_a_frame_that_is_not_utf8_is_an_error() {
        let mut frames = SseFrames::default();
        assert_eq!(
            frames
                .push(b"event: x\ndata: a\ndata:b\n\n")
                .expect("utf-8"),
            vec!["a\nb"]
        );
        assert!(frames.push(b"data: \xff\xfe\n\n").is_err());
    }
}
