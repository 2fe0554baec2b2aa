//! `transcription.transcribe`: one recording through speech-to-text, stored once.

use crate::heartbeat::heartbeating;
use crate::state::{WorkerActivities, permanent, retryable, upstream};
use callaudit_db::recordings;
use callaudit_db::transcriptions::{self, NewTranscription};
use callaudit_domain::workflow_io::{TranscribeInput, TranscribeOutput};
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
        let mut conn = self.conn().await?;
        if let Some(done) = transcriptions::completed(&mut conn, &input.recording_id)
            .await
            .map_err(retryable)?
        {
            let n = done
                .words
                .and_then(|w| w.as_array().map(Vec::len))
                .unwrap_or(0);
            return Ok(TranscribeOutput {
                recording_id: input.recording_id,
                word_count: u32::try_from(n).unwrap_or(u32::MAX),
                reused: true,
            });
        }
        let url = recordings::url(&mut conn, &input.recording_id)
            .await
            .map_err(retryable)?
            .ok_or_else(|| permanent(format!("recording {} unknown", input.recording_id)))?;
        drop(conn);
        let stt = self
            .stt
            .as_ref()
            .ok_or_else(|| permanent("ELEVENLABS_API_KEY is not configured"))?;
        let transcript = heartbeating(ctx, stt.transcribe(&input.recording_id, &url))
            .await
            .map_err(upstream)?;
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
