//! The automation run's transcription phase, around its `TranscriptionWorkflow`
//! children: which recordings of the selected fiches are dispatched
//! (`automation.transcription_plan`), and the batch settled once they ended
//! (`automation.settle_transcriptions`). Both are idempotent, keyed by the run's batch.

use crate::state::{WorkerActivities, permanent, retryable};
use callaudit_db::automation as db;
use callaudit_db::{batches, recordings};
use callaudit_domain::automation::{
    FicheToTranscribe, SettleTranscriptionsInput, TranscriptionPlanInput,
};
use temporalio_common::ActivityError;
use uuid::Uuid;

/// Most fiches of one batch read (a run selects at most 5000).
const MAX_BATCH_FICHES: i64 = 5000;

fn uuid(what: &str, s: &str) -> Result<Uuid, ActivityError> {
    Uuid::parse_str(s).map_err(|_| permanent(format!("invalid {what} id {s}")))
}

/// The recordings of one fiche the phase dispatches: none when it has no recording, or
/// when every one is transcribed and `skip_if_transcribed` is on; with it on, only the
/// untranscribed ones; with it off, every one (a transcribed recording's child reuses
/// its stored transcript: nothing is sent to speech-to-text again).
pub(crate) fn to_dispatch(recordings: &[(String, bool)], skip_if_transcribed: bool) -> Vec<String> {
    recordings
        .iter()
        .filter(|(_, transcribed)| !(skip_if_transcribed && *transcribed))
        .map(|(id, _)| id.clone())
        .collect()
}

impl WorkerActivities {
    /// `automation.transcription_plan`: each fiche of the run's batch (in batch order)
    /// with the recordings the phase starts a `TranscriptionWorkflow` for.
    #[tracing::instrument(name = "automation.transcription_plan", skip_all, fields(run.id = %input.run_id))]
    pub(crate) async fn transcription_plan(
        &self,
        input: TranscriptionPlanInput,
    ) -> Result<Vec<FicheToTranscribe>, ActivityError> {
        let batch_id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        let items = batches::items(&mut conn, batch_id, MAX_BATCH_FICHES, 0)
            .await
            .map_err(retryable)?;
        let mut plan = Vec::with_capacity(items.len());
        for item in items {
            let recs: Vec<(String, bool)> = recordings::of_fiche(&mut conn, &item.fiche_id)
                .await
                .map_err(retryable)?
                .into_iter()
                .map(|r| (r.recording_id, r.transcribed))
                .collect();
            plan.push(FicheToTranscribe {
                recordings: to_dispatch(&recs, input.skip_if_transcribed),
                fiche_id: item.fiche_id,
            });
        }
        let dispatched: usize = plan.iter().map(|f| f.recordings.len()).sum();
        tracing::info!(
            fiches = plan.len(),
            recordings = dispatched,
            skip_if_transcribed = input.skip_if_transcribed,
            "automation transcription planned"
        );
        Ok(plan)
    }

    /// `automation.settle_transcriptions`: the fiches whose transcription failed taken
    /// out of the run's pending batch (they are the run's failures, not audits); without
    /// `continueOnError` and with a failure, the whole batch dropped. Returns the batch
    /// left to audit, if any.
    #[tracing::instrument(name = "automation.settle_transcriptions", skip_all, fields(run.id = %input.run_id, failed = input.failed.len()))]
    pub(crate) async fn settle_transcriptions(
        &self,
        input: SettleTranscriptionsInput,
    ) -> Result<Option<String>, ActivityError> {
        let batch_id = uuid("batch", &input.batch_id)?;
        let mut conn = self.conn().await?;
        if !input.failed.is_empty() && !input.go_on {
            batches::delete_pending(&mut conn, batch_id)
                .await
                .map_err(retryable)?;
            return Ok(None);
        }
        if input.failed.is_empty() {
            return Ok(Some(input.batch_id));
        }
        let left = db::drop_from_pending_batch(&mut conn, batch_id, &input.failed)
            .await
            .map_err(retryable)?;
        Ok((left > 0).then_some(input.batch_id))
    }
}

#[cfg(test)]
mod tests {
    use super::to_dispatch;

    fn recs() -> Vec<(String, bool)> {
        vec![("R1".into(), true), ("R2".into(), false)]
    }

    #[test]
    fn skip_if_transcribed_dispatches_only_what_has_no_transcript() {
        assert_eq!(to_dispatch(&recs(), true), ["R2"]);
        assert!(to_dispatch(&[("R1".into(), true)], true).is_empty());
    }

    #[test]
    fn without_it_every_recording_goes_through_the_phase() {
        assert_eq!(to_dispatch(&recs(), false), ["R1", "R2"]);
        assert!(to_dispatch(&[], false).is_empty());
    }
}
