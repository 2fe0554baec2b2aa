//! Replay tests: each workflow is replayed from a history recorded on a real dev server
//! (`tests/histories/*.json`). A code change that alters the commands a recorded run
//! issued (order, activity or child types and ids) fails here before it can break the
//! audits in flight in production. Re-record deliberately, after a versioned change
//! (`ctx.patched`), with:
//! `CALLAUDIT_RECORD_HISTORIES=1 cargo test -p callaudit --test e2e replay::record -- --ignored`.

use crate::support::*;
use callaudit_bench::bare::{
    BareAuditInput, BareAuditWorkflow, BareStepWorkflow, BareTranscriptionWorkflow,
};
use callaudit_domain::workflow_io::{AuditWorkflowInput, AuditWorkflowOutput};
use callaudit_workflows::{AuditStepWorkflow, AuditWorkflow, TranscriptionWorkflow};
use std::path::PathBuf;
use std::time::Duration;
use temporalio_client::{WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_sdk::workflow_replayer::{
    WorkflowReplayError, WorkflowReplayFailure, WorkflowReplayer, WorkflowReplayerOptions,
};

/// The recorded histories: (file, what it covers).
const HISTORIES: &[(&str, &str)] = &[
    (
        "audit_completed.json",
        "AuditWorkflow: 2 transcription children, 4 step children, finalize",
    ),
    (
        "audit_failed.json",
        "AuditWorkflow: unknown fiche, failure recorded by audit.fail",
    ),
    ("audit_step.json", "AuditStepWorkflow"),
    ("transcription.json", "TranscriptionWorkflow"),
    (
        "bare_audit.json",
        "BareAuditWorkflow (bench baseline): 2 transcription children, 2 step children",
    ),
    ("bare_step.json", "BareStepWorkflow"),
    ("bare_transcription.json", "BareTranscriptionWorkflow"),
];

fn history_path(file: &str) -> PathBuf {
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

async fn fetch(
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

/// Records the histories from real runs (the audit's children are pinned by run id).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "records tests/histories; run deliberately (see the module docs)"]
async fn record() {
    assert!(
        std::env::var("CALLAUDIT_RECORD_HISTORIES").is_ok(),
        "set CALLAUDIT_RECORD_HISTORIES=1 to overwrite tests/histories"
    );
    let sc = crate::audit_pipeline::Scenario::without_api_crm("record", Default::default()).await;
    let config = sc.config(4).await;
    let _worker = sc.worker(&[]);
    let ok = sc.run("FICHE-1005", &config).await;
    sc.completed(&ok).await;
    let failed = sc.run("FICHE-0000", &config).await;
    wait_for("the audit to fail", Duration::from_secs(60), || async {
        (sc.audit(&failed).await["status"] == "failed").then_some(())
    })
    .await;

    let client = callaudit_api::temporal::connect(
        &temporal_settings(&temporal_address(), &sc.queue),
        Duration::from_secs(5),
    )
    .await
    .expect("temporal");
    let parent = fetch(&client, &format!("audit:{ok}"), None).await;
    let (step_id, step_run) = started_child(&parent, &format!("audit:{ok}:step:")).await;
    let (tr_id, tr_run) = started_child(&parent, "transcribe:").await;

    // The bench's bare baseline, run by `callaudit bench-bare-worker`.
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
    let bare_id = format!("record-bare-{}", uuid::Uuid::new_v4().simple());
    let handle = client
        .start_workflow(
            BareAuditWorkflow::run,
            BareAuditInput {
                audit_id: bare_id.clone(),
                fiche_id: format!("{bare_id}-fiche"),
                steps: 2,
                recordings: 2,
                step_parallelism: 3,
            },
            temporalio_client::WorkflowStartOptions::new(bare_queue, format!("audit:{bare_id}"))
                .build(),
        )
        .await
        .expect("start the bare audit");
    handle
        .get_result(Default::default())
        .await
        .expect("bare audit result");
    let bare_parent = fetch(&client, &format!("audit:{bare_id}"), None).await;
    let (bare_step_id, bare_step_run) =
        started_child(&bare_parent, &format!("audit:{bare_id}:step:")).await;
    let (bare_tr_id, bare_tr_run) = started_child(&bare_parent, "transcribe:").await;

    let files = [
        ("audit_completed.json", parent),
        (
            "audit_failed.json",
            fetch(&client, &format!("audit:{failed}"), None).await,
        ),
        (
            "audit_step.json",
            fetch(&client, &step_id, Some(step_run)).await,
        ),
        (
            "transcription.json",
            fetch(&client, &tr_id, Some(tr_run)).await,
        ),
        ("bare_audit.json", bare_parent),
        (
            "bare_step.json",
            fetch(&client, &bare_step_id, Some(bare_step_run)).await,
        ),
        (
            "bare_transcription.json",
            fetch(&client, &bare_tr_id, Some(bare_tr_run)).await,
        ),
    ];
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
