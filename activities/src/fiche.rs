//! `fiche.ensure_details`: the fiche's details cached (under the global CRM cap), and its
//! recordings with their transcription state.

use crate::heartbeat::ActivityHeartbeat;
use crate::state::{WorkerActivities, fiche, retryable};
use callaudit_db::recordings;
use callaudit_domain::workflow_io::{EnsureFicheInput, FicheRecordings, RecordingRef};
use temporalio_common::ActivityError;
use temporalio_sdk::activities::ActivityContext;

impl WorkerActivities {
    /// Fetches the details when they are not cached (or a forced refresh is due).
    #[tracing::instrument(name = "fiche.ensure_details", skip_all, fields(fiche.id = %input.fiche_id))]
    pub(crate) async fn ensure_details(
        &self,
        ctx: &ActivityContext,
        input: EnsureFicheInput,
    ) -> Result<FicheRecordings, ActivityError> {
        let ensured = self
            .fiches
            .ensure(
                &input.fiche_id,
                input.force_refresh,
                &ActivityHeartbeat(ctx),
                None,
            )
            .await
            .map_err(fiche)?;
        let mut conn = self.conn().await?;
        let recordings = recordings::of_fiche(&mut conn, &input.fiche_id)
            .await
            .map_err(retryable)?
            .into_iter()
            .map(|r| RecordingRef {
                recording_id: r.recording_id,
                transcribed: r.transcribed,
            })
            .collect();
        Ok(FicheRecordings {
            fiche_id: input.fiche_id,
            recordings,
            fetched: ensured.fetched,
        })
    }
}
