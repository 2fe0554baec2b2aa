//! On-demand transcription of a fiche's recordings, started by the api itself: one
//! `TranscriptionWorkflow` per recording not yet transcribed, under the id audits use
//! (`transcribe:{recording_id}`), with the default id-conflict policy (fail when running).
//!
//! Why no workflow of its own: there is nothing to orchestrate beyond N independent
//! starts, each durable once accepted by Temporal, and `GET /api/fiches/{id}` shows their
//! progress. Why that policy: a start refused as *already started* means an audit of the
//! fiche (or an earlier request) runs that recording's transcription right now — it is
//! shared, not started twice; a closed earlier run (a failure) may run again, and the
//! activity reuses a stored transcript, so a recording is never sent to speech-to-text
//! twice.

use crate::error::ApiError;
use crate::state::AppState;
use callaudit_db::{pool, recordings};
use callaudit_domain::search::{self, RunKind};
use callaudit_domain::workflow_io::{TranscribeInput, ids};
use callaudit_workflows::TranscriptionWorkflow;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object};
use temporalio_client::WorkflowStartOptions;
use temporalio_client::errors::WorkflowStartError;

/// What the request did for one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TranscriptionStart {
    /// Its `TranscriptionWorkflow` was started now.
    Started,
    /// Its `TranscriptionWorkflow` was running already (an audit's, or an earlier
    /// request's): shared, not started again.
    AlreadyRunning,
    /// A completed transcription is stored: nothing to do.
    Transcribed,
}

/// One recording of the request.
#[derive(Debug, Object)]
pub struct RecordingTranscription {
    /// Recording id.
    pub recording_id: String,
    /// Its transcription's workflow (`transcribe:{recording_id}`).
    pub workflow_id: String,
    /// What was done.
    pub state: TranscriptionStart,
}

/// Accepted transcription request.
#[derive(Debug, Object)]
pub struct FicheTranscription {
    /// The fiche.
    pub fiche_id: String,
    /// Its recordings, in CRM order.
    pub recordings: Vec<RecordingTranscription>,
    /// The fiche (each recording says whether it is `transcribed`).
    pub fiche: String,
}

/// `POST /api/fiches/{fiche_id}/transcribe` answer.
#[derive(ApiResponse)]
pub enum TranscribeAccepted {
    /// Accepted: every recording not yet transcribed has its transcription running.
    #[oai(status = 202)]
    Accepted(Json<FicheTranscription>),
}

/// Starts the transcription of every recording of `fiche_id` (its details cached already)
/// that has none completed.
pub(crate) async fn start(
    state: &AppState,
    fiche_id: &str,
) -> Result<TranscribeAccepted, ApiError> {
    let recs = {
        let mut conn = pool::get(&state.pool).await?;
        recordings::of_fiche(&mut conn, fiche_id).await?
    };
    let mut out = Vec::with_capacity(recs.len());
    let mut client = None;
    for rec in recs {
        let workflow_id = ids::transcription(&rec.recording_id);
        let started = if rec.transcribed {
            TranscriptionStart::Transcribed
        } else {
            if client.is_none() {
                client = Some(state.temporal.client().await.map_err(|e| {
                    tracing::warn!(error = %e, "transcribe: Temporal unreachable");
                    ApiError::unavailable(
                        "the workflow engine is unavailable; nothing was started, retry later",
                    )
                })?);
            }
            let c = client.as_ref().expect("connected above");
            let result = c
                .start_workflow(
                    TranscriptionWorkflow::run,
                    TranscribeInput {
                        recording_id: rec.recording_id.clone(),
                    },
                    WorkflowStartOptions::new(
                        state.temporal.settings.task_queue.clone(),
                        workflow_id.clone(),
                    )
                    .search_attributes(search::of_fiche_run(fiche_id, RunKind::Transcription))
                    .build(),
                )
                .await;
            match result {
                Ok(_) => TranscriptionStart::Started,
                Err(WorkflowStartError::AlreadyStarted { .. }) => {
                    TranscriptionStart::AlreadyRunning
                }
                Err(e) => {
                    tracing::warn!(error = %e, recording.id = %rec.recording_id, "starting TranscriptionWorkflow failed");
                    return Err(ApiError::unavailable(
                        "the workflow engine is unavailable; the transcriptions started so far \
                         continue, retry later for the rest",
                    ));
                }
            }
        };
        out.push(RecordingTranscription {
            recording_id: rec.recording_id,
            workflow_id,
            state: started,
        });
    }
    Ok(TranscribeAccepted::Accepted(Json(FicheTranscription {
        fiche_id: fiche_id.to_string(),
        recordings: out,
        fiche: format!("/api/fiches/{fiche_id}"),
    })))
}
