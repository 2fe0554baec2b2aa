//! ElevenLabs speech-to-text client: diarized, word-level timestamps, French.

use crate::error::UpstreamError;
use crate::http::{classify, client, read_json, transport_error};
use crate::metrics::VendorMetrics;
use callaudit_domain::secret::Secret;
use callaudit_domain::transcript::{Transcript, Word};
use serde::Deserialize;
use std::time::{Duration, Instant};

const VENDOR: &str = "elevenlabs";

/// `POST /v1/speech-to-text` answer (the fields we use).
#[derive(Debug, Deserialize)]
struct SttResponse {
    #[serde(default)]
    language_code: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    words: Vec<SttWord>,
}

/// One token of the answer: a word, a spacing or an audio event.
#[derive(Debug, Deserialize)]
struct SttWord {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    start: Option<f64>,
    #[serde(default)]
    end: Option<f64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    speaker_id: Option<String>,
}

impl SttResponse {
    fn into_transcript(self, recording_id: &str) -> Transcript {
        let words = self
            .words
            .into_iter()
            .filter(|w| w.kind.as_deref().unwrap_or("word") == "word")
            .filter_map(|w| {
                Some(Word {
                    text: w.text?,
                    start_s: w.start.unwrap_or(0.0),
                    end_s: w.end.unwrap_or(0.0),
                    speaker: w.speaker_id,
                })
            })
            .collect();
        Transcript {
            recording_id: recording_id.to_string(),
            language: self.language_code,
            text: self.text,
            words,
        }
    }
}

/// ElevenLabs speech-to-text client.
#[derive(Debug, Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
    /// Model id (e.g. `scribe_v1`).
    pub model: String,
    metrics: VendorMetrics,
}

impl ElevenLabsClient {
    /// A client for `base_url` (e.g. `https://api.elevenlabs.io`); the key is normalised.
    pub fn new(base_url: &str, key: Secret, model: &str, timeout: Duration) -> Self {
        let key = Secret::normalized(key.expose());
        Self {
            http: client(timeout),
            base: base_url.trim_end_matches('/').to_string(),
            key,
            model: model.to_string(),
            metrics: VendorMetrics::default(),
        }
    }

    /// The same client recording its calls into `metrics`.
    pub fn with_metrics(self, metrics: VendorMetrics) -> Self {
        Self { metrics, ..self }
    }

    /// Transcribes the audio at `audio_url` (diarized, word timestamps).
    pub async fn transcribe(
        &self,
        recording_id: &str,
        audio_url: &str,
    ) -> Result<Transcript, UpstreamError> {
        let started = Instant::now();
        let result = self.transcribe_once(recording_id, audio_url).await;
        self.metrics
            .call(VENDOR, "speech_to_text", started, &result);
        result
    }

    async fn transcribe_once(
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
            .map_err(|e| transport_error(VENDOR, &e))?;
        let resp = classify(VENDOR, &self.key, resp).await?;
        let body: SttResponse = read_json(VENDOR, resp, || {
            UpstreamError::permanent(VENDOR, "answer is not valid JSON")
        })
        .await?;
        Ok(body.into_transcript(recording_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_and_audio_events_are_not_words() {
        let body: SttResponse = serde_json::from_value(serde_json::json!({
            "language_code": "fr",
            "text": "Bonjour madame",
            "words": [
                {"text": "Bonjour", "start": 0.1, "end": 0.5, "type": "word", "speaker_id": "speaker_0"},
                {"text": " ", "start": 0.5, "end": 0.6, "type": "spacing", "speaker_id": "speaker_0"},
                {"text": "(rires)", "start": 0.6, "end": 0.9, "type": "audio_event"},
                {"text": "madame", "start": 0.6, "end": 1.0}
            ]
        }))
        .unwrap();
        let t = body.into_transcript("REC-1");
        let words: Vec<&str> = t.words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(words, ["Bonjour", "madame"]);
        assert_eq!(t.words[0].speaker.as_deref(), Some("speaker_0"));
        assert_eq!(t.language.as_deref(), Some("fr"));
    }
}
