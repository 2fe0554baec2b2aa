//! `transcription.transcribe`: one recording through speech-to-text, stored once.

use crate::heartbeat::ActivityHeartbeat;
use crate::state::{WorkerActivities, permanent, retryable, upstream};
use callaudit_db::recordings;
use callaudit_db::transcriptions::{self, NewTranscription};
use callaudit_domain::personal_data::{PiiRedaction, redact_transcripts};
use callaudit_domain::pii::Redactor;
use callaudit_domain::transcript::Transcript;
use callaudit_domain::workflow_io::{TranscribeInput, TranscribeOutput};
use callaudit_upstream::leases::{self, Permit};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

impl WorkerActivities {
    /// A stored transcript is reused; otherwise the recording is sent to speech-to-text
    /// (heartbeating) and the first stored transcript wins.
    #[tracing::instrument(
        name = "transcription.transcribe",
        skip_all,
        fields(recording.id = %input.recording_id)
    )]
    pub(crate) async fn transcribe_recording(
        &self,
        ctx: &ActivityContext,
        input: TranscribeInput,
    ) -> Result<TranscribeOutput, ActivityError> {
        if let Some(reused) = self.stored(&input.recording_id).await? {
            return Ok(reused);
        }
        // One speech-to-text call per recording, whoever asks: concurrent audits of a
        // fiche (a second TranscriptionWorkflow could not start, its activity runs here)
        // queue on a one-slot lease of the recording, and the later ones then find the
        // stored transcript.
        let hb = ActivityHeartbeat(ctx);
        let permit = leases::acquire(
            &self.pool,
            &hb,
            &format!("stt:{}", input.recording_id),
            1,
            &self.fiches.holder,
            None,
        )
        .await
        .map_err(retryable)?;
        let result = self.transcribe_holding(&permit, &hb, input).await;
        permit.release().await;
        result
    }

    /// The recording's stored transcript, if any, as a reused output.
    async fn stored(&self, recording_id: &str) -> Result<Option<TranscribeOutput>, ActivityError> {
        let mut conn = self.conn().await?;
        let done = transcriptions::completed(&mut conn, recording_id)
            .await
            .map_err(retryable)?;
        Ok(done.map(|done| {
            let n = done
                .words
                .and_then(|w| w.as_array().map(Vec::len))
                .unwrap_or(0);
            TranscribeOutput {
                recording_id: recording_id.to_string(),
                word_count: u32::try_from(n).unwrap_or(u32::MAX),
                reused: true,
            }
        }))
    }

    /// Transcribes and stores the recording while holding its lease (re-checking first:
    /// the previous holder may have stored it).
    async fn transcribe_holding(
        &self,
        permit: &Permit,
        hb: &ActivityHeartbeat<'_>,
        input: TranscribeInput,
    ) -> Result<TranscribeOutput, ActivityError> {
        if let Some(reused) = self.stored(&input.recording_id).await? {
            return Ok(reused);
        }
        let mut conn = self.conn().await?;
        let audio = recordings::audio(&mut conn, &input.recording_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("recording {} unknown", input.recording_id)))?;
        drop(conn);
        let stt = self
            .stt
            .as_ref()
            .ok_or_else(|| permanent("ELEVENLABS_API_KEY is not configured"))?;
        let transcript = permit
            .hold(hb, stt.transcribe(&input.recording_id, &audio.url))
            .await
            .map_err(retryable)?
            .map_err(upstream)?;
        crate::metrics::work_metrics().audio_transcribed(audio.duration_s.unwrap_or(0.0));
        let mut transcript = transcript;
        if self.pii_redaction == PiiRedaction::Stored {
            // Kept redacted at rest; the original is not kept. (Placeholders are numbered
            // per recording here: the other recordings' values are not at hand.)
            let as_domain = Transcript {
                recording_id: input.recording_id.clone(),
                language: transcript.language.clone(),
                text: transcript.text.clone(),
                words: transcript.words.clone(),
            };
            let redacted = redact_transcripts(&[as_domain], &mut Redactor::new())
                .pop()
                .ok_or_else(|| retryable("redaction lost the transcript"))?;
            transcript.text = redacted.text;
            transcript.words = redacted.words;
        }
        let words = serde_json::to_value(&transcript.words).map_err(retryable)?;
        let count = i32::try_from(transcript.words.len()).unwrap_or(i32::MAX);
        let mut conn = self.conn().await?;
        transcriptions::store(
            &mut conn,
            &NewTranscription {
                recording_id: &input.recording_id,
                model: &stt.model,
                language: transcript.language.as_deref(),
                text: &transcript.text,
                words: &words,
                word_count: count,
            },
        )
        .await
        .map_err(retryable)?;
        Ok(TranscribeOutput {
            recording_id: input.recording_id,
            word_count: u32::try_from(count).unwrap_or(0),
            reused: false,
        })
    }
}
