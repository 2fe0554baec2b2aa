//! Replay tests: each workflow is replayed from a history recorded on a real dev server
//! (`tests/histories/*.json`). A code change that alters the commands a recorded run
//! issued (order, activity or child types and ids) fails here before it can break the
//! audits in flight in production. Re-record deliberately, after a versioned change
//! (`ctx.patched`), with:
//! `CALLAUDIT_RECORD_HISTORIES=1 cargo test -p callaudit --test e2e replay::record -- --ignored`
//! (see [`record`] for which files it writes).

use crate::support::*;
use callaudit_bench::bare::{
    BareAuditInput, BareAuditWorkflow, BareStepWorkflow, BareTranscriptionWorkflow,
};
use callaudit_domain::workflow_io::{AuditWorkflowInput, AuditWorkflowOutput};
use callaudit_workflows::{
    AuditRerunWorkflow, AuditStepWorkflow, AuditWorkflow, FEWER_ROUND_TRIPS_PATCH,
    STEP_SLIDING_WINDOW_PATCH, TranscriptionWorkflow,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_common::protos::coresdk::common::{
    build_has_change_marker_details, decode_change_marker_details,
    extract_local_activity_marker_data,
};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_common::protos::temporal::api::history::v1::{History, HistoryEvent};
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};

/// The recorded histories: (file, what it covers).
const HISTORIES: &[(&str, &str)] = &[
    (
        "audit_completed.json",
        "AuditWorkflow before the step-sliding-window patch: a transcription child, 4 step \
         children in chunks of 3, finalize",
    ),
    (
        "audit_sliding_window.json",
        "AuditWorkflow with the step-sliding-window patch: a transcription child, 4 step \
         children in a sliding window of 2, finalize",
    ),
    (
        "audit_fewer_round_trips.json",
        "AuditWorkflow with the audit-fewer-round-trips patch: audit.start local, each \
         recording transcribed by an activity of the audit, 4 step children in a sliding \
         window of 2, audit.finalize local",
    ),
    (
        "audit_failed.json",
        "AuditWorkflow before the audit-fewer-round-trips patch: unknown fiche, failure \
         recorded by audit.fail",
    ),
    (
        "audit_failed_lean.json",
        "AuditWorkflow with the audit-fewer-round-trips patch: unknown fiche, failure \
         recorded by audit.fail as a local activity",
    ),
    ("audit_step.json", "AuditStepWorkflow"),
    ("transcription.json", "TranscriptionWorkflow"),
    (
        "bare_audit.json",
        "BareAuditWorkflow (bench baseline) before the step-sliding-window patch: 2 \
         transcription children, 2 step children",
    ),
    (
        "bare_audit_sliding_window.json",
        "BareAuditWorkflow with the step-sliding-window patch: 2 transcription children, 4 \
         step children in a sliding window of 2",
    ),
    (
        "bare_audit_lean.json",
        "BareAuditWorkflow, lean form (audit-fewer-round-trips patch): start local, 2 \
         transcription activities, 4 step children in a sliding window of 2, finalize local",
    ),
    (
        "rerun_completed.json",
        "AuditRerunWorkflow: a control-point rerun analysed and applied",
    ),
    (
        "rerun_failed.json",
        "AuditRerunWorkflow: the LLM refuses the key, failure recorded by rerun.fail",
    ),
    (
        "batch_continued_as_new.json",
        "BatchAuditWorkflow, first run of a batch of 5 continuing as new after 3: \
         batch.start, a page of 3 items, 3 AuditWorkflow children in a window of 2, \
         continue-as-new with the cursor and counts",
    ),
    (
        "batch_completed.json",
        "BatchAuditWorkflow, the continued run: the 2 remaining items with the carried \
         counts, batch.finish",
    ),
    (
        "batch_cancelled.json",
        "BatchAuditWorkflow cancelled by its cancel signal after its first audit: the \
         running audit finishes, no other starts, batch.finish records it cancelled",
    ),
    (
        "retention.json",
        "RetentionWorkflow: search attributes upserted, retention.purge",
    ),
    (
        "progressive_fetch.json",
        "ProgressiveFetchWorkflow, a job of 3 days in a window of 5: fetch_job.start, 3 \
         DayFetchWorkflow children (the second failed after its search's retries), each \
         outcome recorded in turn by fetch_job.record_day, fetch_job.finish (partial)",
    ),
    (
        "progressive_fetch_continued.json",
        "ProgressiveFetchWorkflow, first run of a 5-day job at 2 days per run: \
         fetch_job.start, 2 day children in a window of 2, their records, continue-as-new \
         with the cursor and totals",
    ),
    (
        "progressive_fetch_last_run.json",
        "ProgressiveFetchWorkflow, the last run of that job: its one remaining day, its \
         record, fetch_job.finish with the carried totals",
    ),
    (
        "day_fetch.json",
        "DayFetchWorkflow: fetch_job.search_day, then fiche.ensure_details for its 2 fiches",
    ),
    (
        "day_fetch_failed.json",
        "DayFetchWorkflow: fetch_job.search_day fails after its 4 attempts (HTTP 500)",
    ),
    (
        "automation_run.json",
        "AutomationRunWorkflow started by its schedule's trigger: search attributes \
         upserted, automation.start_run, one DayFetchWorkflow child per day of the window \
         in a window of 5, automation.select_fiches, the transcription phase (patch \
         automation-transcription-phase: automation.transcription_plan, a \
         TranscriptionWorkflow child, automation.settle_transcriptions), a \
         BatchAuditWorkflow child (1 audit), automation.finish_run, the webhook, the \
         e-mail summary (patch automation-email-summary)",
    ),
    (
        "automation_run_before_transcription_phase.json",
        "AutomationRunWorkflow recorded before the transcription phase (up to its \
         BatchAuditWorkflow child): replays without the patch, straight to the audits",
    ),
    ("bare_step.json", "BareStepWorkflow"),
    ("bare_transcription.json", "BareTranscriptionWorkflow"),
];

pub(crate) fn history_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/histories")
        .join(file)
}

fn load(file: &str) -> WorkflowHistory {
    let bytes =
        std::fs::read(history_path(file)).unwrap_or_else(|e| panic!("read history {file}: {e}"));
    WorkflowHistory::from_json(&bytes).unwrap_or_else(|e| panic!("parse history {file}: {e}"))
}

fn replayer() -> WorkflowReplayer {
    WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<AuditWorkflow>()
            .expect("register AuditWorkflow")
            .register_workflow::<AuditStepWorkflow>()
            .expect("register AuditStepWorkflow")
            .register_workflow::<TranscriptionWorkflow>()
            .expect("register TranscriptionWorkflow")
            .register_workflow::<AuditRerunWorkflow>()
            .expect("register AuditRerunWorkflow")
            .register_workflow::<callaudit_workflows::RetentionWorkflow>()
            .expect("register RetentionWorkflow")
            .register_workflow::<callaudit_workflows::BatchAuditWorkflow>()
            .expect("register BatchAuditWorkflow")
            .register_workflow::<callaudit_workflows::ProgressiveFetchWorkflow>()
            .expect("register ProgressiveFetchWorkflow")
            .register_workflow::<callaudit_workflows::DayFetchWorkflow>()
            .expect("register DayFetchWorkflow")
            .register_workflow::<callaudit_workflows::AutomationRunWorkflow>()
            .expect("register AutomationRunWorkflow")
            .register_workflow::<BareAuditWorkflow>()
            .expect("register BareAuditWorkflow")
            .register_workflow::<BareStepWorkflow>()
            .expect("register BareStepWorkflow")
            .register_workflow::<BareTranscriptionWorkflow>()
            .expect("register BareTranscriptionWorkflow")
            .build(),
    )
    .expect("replayer")
}

#[tokio::test]
async fn every_recorded_history_replays_against_the_current_workflows() {
    for (file, covers) in HISTORIES {
        let history = load(file);
        assert!(history.workflow_id().is_some(), "{file} has a start event");
        if let Err(e) = replayer().replay_workflow(history).await {
            panic!("{file} ({covers}) no longer replays: {e}");
        }
    }
}

/// A workflow registered under the recorded type name that issues different commands.
mod changed {
    use super::*;
    use temporalio_macros::{workflow, workflow_methods};
    use temporalio_workflow::{WorkflowContext, WorkflowResult, WorkflowTermination};

    #[workflow]
    #[derive(Default)]
    pub struct ChangedAudit;

    #[workflow_methods]
    impl ChangedAudit {
        #[run(name = "AuditWorkflow")]
        pub async fn run(
            ctx: &mut WorkflowContext<Self>,
            input: AuditWorkflowInput,
        ) -> WorkflowResult<AuditWorkflowOutput> {
            // A timer where the recorded run scheduled `audit.start`.
            ctx.timer(Duration::from_secs(1)).await;
            let _ = input;
            Err(WorkflowTermination::cancelled())
        }
    }
}

#[tokio::test]
async fn an_incompatible_change_to_the_audit_workflow_is_reported_as_nondeterminism() {
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<changed::ChangedAudit>()
            .expect("register")
            .build(),
    )
    .expect("replayer");
    let result = replayer.replay_workflow(load("audit_completed.json")).await;
    assert!(
        matches!(
            result,
            Err(WorkflowReplayError::Replay(
                WorkflowReplayFailure::Nondeterminism { .. }
            ))
        ),
        "expected a nondeterminism error, got {result:?}"
    );
}

/// The step window the sliding-window histories were recorded with.
const RECORDED_WINDOW: usize = 2;

/// Runs recorded at most, until one shows the window sliding (see [`record`]).
const RECORD_ATTEMPTS: usize = 5;

async fn events(file: &str) -> Vec<HistoryEvent> {
    load(file).into_events().await.expect("events")
}

/// The patch ids of the history's patch markers, with their `deprecated` flag.
fn patch_markers(events: &[HistoryEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(m)) => {
                decode_change_marker_details(&m.details)
            }
            _ => None,
        })
        .collect()
}

/// Whether a recorded parent (JSON) shows the window of [`RECORDED_WINDOW`] sliding.
async fn slid(parent: &[u8]) -> bool {
    let events = WorkflowHistory::from_json(parent)
        .expect("parent history")
        .into_events()
        .await
        .expect("events");
    a_step_started_before_its_chunk_could(&events, RECORDED_WINDOW)
}

/// Whether a step child started while one of an earlier chunk of `width` was still
/// running: what the sliding window does and chunks never do. (When every step finishes
/// along with its chunk, both start the same children at the same points.)
fn a_step_started_before_its_chunk_could(events: &[HistoryEvent], width: usize) -> bool {
    let mut started: Vec<&str> = Vec::new();
    let mut finished: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        match &e.attributes {
            Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a))
                if a.workflow_id.contains(":step:") =>
            {
                let chunk = started.len() / width;
                let earlier_chunk_running = started
                    .iter()
                    .enumerate()
                    .any(|(i, id)| i / width < chunk && !finished.contains(id));
                if earlier_chunk_running {
                    return true;
                }
                started.push(&a.workflow_id);
            }
            Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => {
                if let Some(x) = &a.workflow_execution {
                    finished.insert(&x.workflow_id);
                }
            }
            _ => {}
        }
    }
    false
}

#[tokio::test]
async fn the_sliding_window_histories_carry_the_patch_and_the_old_ones_do_not() {
    let patched = vec![(STEP_SLIDING_WINDOW_PATCH.to_string(), false)];
    for file in [
        "audit_sliding_window.json",
        "bare_audit_sliding_window.json",
    ] {
        assert_eq!(patch_markers(&events(file).await), patched, "{file}");
    }
    for file in ["audit_completed.json", "bare_audit.json"] {
        assert!(patch_markers(&events(file).await).is_empty(), "{file}");
    }
    let audit = events("audit_sliding_window.json").await;
    assert!(
        a_step_started_before_its_chunk_could(&audit, RECORDED_WINDOW),
        "audit_sliding_window.json shows no step starting while an earlier chunk ran"
    );
    assert!(
        !a_step_started_before_its_chunk_could(&events("audit_completed.json").await, 3),
        "the chunked history shows a sliding window"
    );
}

/// Without its patch marker (made a deprecated marker of another id, which replay skips),
/// the sliding-window history replays through the chunked path, which must not match it:
/// the recorded run really started a step before its chunk could have.
#[tokio::test]
async fn the_sliding_window_history_does_not_replay_through_the_chunked_path() {
    let mut events = events("audit_sliding_window.json").await;
    let mut withdrawn = 0;
    for e in &mut events {
        if let Some(Attributes::MarkerRecordedEventAttributes(m)) = &mut e.attributes
            && decode_change_marker_details(&m.details)
                .is_some_and(|(id, _)| id == STEP_SLIDING_WINDOW_PATCH)
        {
            m.details = build_has_change_marker_details("step-sliding-window-withdrawn", true)
                .expect("marker details");
            withdrawn += 1;
        }
    }
    assert_eq!(withdrawn, 1, "one patch marker");
    let history = WorkflowHistory::from(History { events });
    let result = replayer().replay_workflow(history).await;
    // The chunked path waits where the window started the next step.
    assert!(
        matches!(
            &result,
            Err(WorkflowReplayError::Replay(
                WorkflowReplayFailure::Nondeterminism { message }
            )) if message.contains("StartChildWorkflowExecutionInitiated")
        ),
        "expected a nondeterminism error on a step child's start, got {result:?}"
    );
}

/// The activity types of the history's local activity markers, in order.
fn local_activities(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(m)) => {
                extract_local_activity_marker_data(&m.details).map(|d| d.activity_type)
            }
            _ => None,
        })
        .collect()
}

/// The activity types the history scheduled as (normal) activities, in order.
fn scheduled_activities(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                a.activity_type.as_ref().map(|t| t.name.clone())
            }
            _ => None,
        })
        .collect()
}

/// The workflow ids of the children the history started.
fn children(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)) => {
                Some(a.workflow_id.clone())
            }
            _ => None,
        })
        .collect()
}

/// What the `audit-fewer-round-trips` patch changed, as recorded: its one patch marker
/// (no step-sliding-window marker), the database activities as local activity markers,
/// the transcriptions as activities of the audit and no transcription child, the steps
/// still children in a sliding window.
#[tokio::test]
async fn the_fewer_round_trips_histories_run_database_activities_locally_and_no_transcription_child()
 {
    let patched = vec![(FEWER_ROUND_TRIPS_PATCH.to_string(), false)];
    for file in [
        "audit_fewer_round_trips.json",
        "audit_failed_lean.json",
        "bare_audit_lean.json",
    ] {
        let events = events(file).await;
        assert_eq!(patch_markers(&events), patched, "{file}");
        assert!(
            children(&events).iter().all(|id| id.contains(":step:")),
            "{file}: {:?}",
            children(&events)
        );
    }
    let audit = events("audit_fewer_round_trips.json").await;
    assert_eq!(local_activities(&audit), ["audit.start", "audit.finalize"]);
    // FICHE-1005 has one recording.
    assert_eq!(
        scheduled_activities(&audit),
        ["fiche.ensure_details", "transcription.transcribe"]
    );
    assert_eq!(children(&audit).len(), 4);
    assert!(
        a_step_started_before_its_chunk_could(&audit, RECORDED_WINDOW),
        "audit_fewer_round_trips.json shows no step starting while an earlier chunk ran"
    );
    let failed = events("audit_failed_lean.json").await;
    assert_eq!(local_activities(&failed), ["audit.start", "audit.fail"]);
    assert_eq!(scheduled_activities(&failed), ["fiche.ensure_details"]);
    let bare = events("bare_audit_lean.json").await;
    assert_eq!(
        local_activities(&bare),
        ["bare.audit.start", "bare.audit.finalize"]
    );
    assert_eq!(
        scheduled_activities(&bare),
        [
            "bare.fiche.ensure_details",
            "bare.transcription.transcribe",
            "bare.transcription.transcribe"
        ]
    );
    assert_eq!(children(&bare).len(), 4);
}

/// Without its patch marker, the fewer-round-trips history replays through the older
/// path (`audit.start` a normal activity), which must not match it.
#[tokio::test]
async fn the_fewer_round_trips_history_does_not_replay_through_the_older_path() {
    let mut events = events("audit_fewer_round_trips.json").await;
    let mut withdrawn = 0;
    for e in &mut events {
        if let Some(Attributes::MarkerRecordedEventAttributes(m)) = &mut e.attributes
            && decode_change_marker_details(&m.details)
                .is_some_and(|(id, _)| id == FEWER_ROUND_TRIPS_PATCH)
        {
            m.details = build_has_change_marker_details("audit-fewer-round-trips-withdrawn", true)
                .expect("marker details");
            withdrawn += 1;
        }
    }
    assert_eq!(withdrawn, 1, "one patch marker");
    let result = replayer()
        .replay_workflow(WorkflowHistory::from(History { events }))
        .await;
    assert!(
        matches!(
            &result,
            Err(WorkflowReplayError::Replay(
                WorkflowReplayFailure::Nondeterminism { .. }
            ))
        ),
        "expected a nondeterminism error, got {result:?}"
    );
}

pub(crate) async fn fetch(
    client: &temporalio_client::Client,
    workflow_id: &str,
    run_id: Option<String>,
) -> Vec<u8> {
    WorkflowExecutionInfo::builder()
        .namespace("default")
        .workflow_id(workflow_id)
        .maybe_run_id(run_id)
        .build()
        .bind_untyped(client.clone())
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await
        .unwrap_or_else(|e| panic!("history of {workflow_id}: {e}"))
}

/// Records histories from real runs (the audit's children are pinned by run id), with
/// `CALLAUDIT_RECORD_HISTORIES` set:
///
/// * `1`: only the histories of the current (`audit-fewer-round-trips`) shape,
///   `audit_fewer_round_trips.json`, `audit_failed_lean.json` and `bare_audit_lean.json`
///   (4 steps, 2 at once; the audit is run again, up to [`RECORD_ATTEMPTS`] times, until
///   a step starts before its chunk could have);
/// * `all`: also the step children (`audit_step.json`, `bare_step.json`), which that
///   patch does not change.
///
/// The histories of the older paths are never rewritten: recorded before their patch,
/// they keep those paths replaying, and today's code would record the new one —
/// `audit_completed.json` and `bare_audit.json` (chunks), `audit_sliding_window.json`,
/// `bare_audit_sliding_window.json` and `audit_failed.json` (transcription children,
/// normal database activities). Nor are `transcription.json` and
/// `bare_transcription.json`: audits no longer start transcription children (the api's
/// `POST /api/fiches/{id}/transcribe` does) and their workflows are unchanged.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately (see the module docs)"]
async fn record() {
    let mode = std::env::var("CALLAUDIT_RECORD_HISTORIES").unwrap_or_default();
    assert!(
        mode == "1" || mode == "all",
        "set CALLAUDIT_RECORD_HISTORIES=1 (or =all) to write tests/histories"
    );
    let window = u32::try_from(RECORDED_WINDOW).expect("window");
    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), "record"),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");

    // A fresh scenario per attempt: a second audit of the fiche would reuse its transcript.
    let mut attempt = 0;
    let (sc, _worker, config, ok, parent) = loop {
        attempt += 1;
        let sc = crate::audit_pipeline::Scenario::without_api_crm_stepping(
            "record",
            Default::default(),
            window,
        )
        .await;
        let config = sc.config(4).await;
        let worker = sc.worker(&[]);
        let ok = sc.run("FICHE-1005", &config).await;
        sc.completed(&ok).await;
        let parent = fetch(&client, &format!("audit:{ok}"), None).await;
        if slid(&parent).await {
            break (sc, worker, config, ok, parent);
        }
        assert!(
            attempt < RECORD_ATTEMPTS,
            "in {RECORD_ATTEMPTS} audits every step finished along with its chunk: no \
             history shows the window sliding"
        );
    };

    // The bench's bare baseline, run by `callaudit bench-bare-worker`. Its no-op steps
    // often finish together: the first run that shows the window sliding is kept, else
    // the last one (it still covers the patched path).
    let bare_queue = task_queue("record-bare");
    let _bare_worker = ChildGuard(
        std::process::Command::new(bin())
            .arg("bench-bare-worker")
            .env("TEMPORAL_ADDRESS", temporal_address())
            .env("TEMPORAL_TASK_QUEUE", &bare_queue)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn bench-bare-worker"),
    );
    let mut bare = None;
    for _ in 0..RECORD_ATTEMPTS {
        let bare_id = format!("record-bare-{}", uuid::Uuid::new_v4().simple());
        let handle = client
            .start_workflow(
                BareAuditWorkflow::run,
                BareAuditInput {
                    audit_id: bare_id.clone(),
                    fiche_id: format!("{bare_id}-fiche"),
                    steps: 4,
                    recordings: 2,
                    step_parallelism: window,
                    lean: true,
                },
                temporalio_client::WorkflowStartOptions::new(
                    bare_queue.clone(),
                    format!("audit:{bare_id}"),
                )
                .build(),
            )
            .await
            .expect("start the bare audit");
        handle
            .get_result(Default::default())
            .await
            .expect("bare audit result");
        let history = fetch(&client, &format!("audit:{bare_id}"), None).await;
        let done = slid(&history).await;
        bare = Some((bare_id, history));
        if done {
            break;
        }
    }
    let (bare_id, bare_parent) = bare.expect("a bare audit");

    let failed = sc.run("FICHE-0000", &config).await;
    wait_for("the audit to fail", Duration::from_secs(60), || async {
        (sc.audit(&failed).await["status"] == "failed").then_some(())
    })
    .await;
    let mut files = vec![
        ("audit_fewer_round_trips.json", parent.clone()),
        ("bare_audit_lean.json", bare_parent.clone()),
        (
            "audit_failed_lean.json",
            fetch(&client, &format!("audit:{failed}"), None).await,
        ),
    ];
    if mode == "all" {
        let (step_id, step_run) = started_child(&parent, &format!("audit:{ok}:step:")).await;
        let (bare_step_id, bare_step_run) =
            started_child(&bare_parent, &format!("audit:{bare_id}:step:")).await;
        files.extend([
            (
                "audit_step.json",
                fetch(&client, &step_id, Some(step_run)).await,
            ),
            (
                "bare_step.json",
                fetch(&client, &bare_step_id, Some(bare_step_run)).await,
            ),
        ]);
    }
    for (file, json) in files {
        std::fs::write(history_path(file), json).expect("write history");
    }
}

/// (workflow id, run id) of the first child started by the recorded `parent` whose id
/// starts with `prefix`.
async fn started_child(parent: &[u8], prefix: &str) -> (String, String) {
    let events = WorkflowHistory::from_json(parent)
        .expect("parent history")
        .into_events()
        .await
        .expect("events");
    events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a)) => a
                .workflow_execution
                .as_ref()
                .filter(|x| x.workflow_id.starts_with(prefix))
                .map(|x| (x.workflow_id.clone(), x.run_id.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no child {prefix}… in the parent's history"))
}
