//! The api's connection to Temporal, opened lazily so the api starts (and `/ready` can
//! say what is wrong) while Temporal is still down.

use callaudit_domain::secret::Secret;
use std::time::Duration;
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, WorkflowCountOptions,
};
use tokio::sync::Mutex;

/// Typed Temporal settings.
#[derive(Debug, Clone)]
pub struct TemporalSettings {
    /// `host:port` or a URL.
    pub address: String,
    /// Namespace.
    pub namespace: String,
    /// Task queue of callaudit's workflows and activities.
    pub task_queue: String,
    /// Temporal Cloud API key (enables TLS).
    pub api_key: Option<Secret>,
    /// TLS without an API key.
    pub tls: bool,
    /// Base URL of the Temporal UI, for links.
    pub ui_url: String,
}

impl TemporalSettings {
    /// The address as a URL (`http://` or `https://` added when missing).
    pub fn url(&self) -> String {
        if self.address.contains("://") {
            self.address.clone()
        } else if self.tls || self.api_key.is_some() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        }
    }

    /// Link to a workflow in the Temporal UI.
    pub fn ui_link(&self, workflow_id: &str) -> String {
        format!(
            "{}/namespaces/{}/workflows/{}",
            self.ui_url,
            self.namespace,
            workflow_id.replace(':', "%3A")
        )
    }
}

/// Errors reaching Temporal.
#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    /// Could not connect or the server did not answer in time.
    #[error("temporal unreachable at {address}: {reason}")]
    Unreachable {
        /// Address tried.
        address: String,
        /// Why.
        reason: String,
    },
}

/// Connects to Temporal (one attempt, bounded by `timeout`).
pub async fn connect(
    settings: &TemporalSettings,
    timeout: Duration,
) -> Result<Client, TemporalError> {
    let unreachable = |reason: String| TemporalError::Unreachable {
        address: settings.address.clone(),
        reason,
    };
    let url = url::Url::parse(&settings.url()).map_err(|e| unreachable(e.to_string()))?;
    let opts = ConnectionOptions::new(url)
        .identity(format!("callaudit@{}", hostname()))
        .maybe_api_key(settings.api_key.as_ref().map(|k| k.expose().to_string()))
        .connect_timeout(timeout)
        .build();
    let conn = tokio::time::timeout(timeout, Connection::connect(opts))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Client::new(conn, ClientOptions::new(settings.namespace.clone()).build())
        .map_err(|e| unreachable(e.to_string()))
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
}

/// A lazily connected, shared Temporal client.
#[derive(Debug)]
pub struct TemporalGateway {
    /// Settings.
    pub settings: TemporalSettings,
    client: Mutex<Option<Client>>,
}

impl TemporalGateway {
    /// A gateway that connects on first use.
    pub fn new(settings: TemporalSettings) -> Self {
        Self {
            settings,
            client: Mutex::new(None),
        }
    }

    /// The client, connecting if needed.
    pub async fn client(&self) -> Result<Client, TemporalError> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = connect(&self.settings, Duration::from_secs(3)).await?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Starts workflow `workflow` as `workflow_id` on the task queue, with its search
    /// attributes and memo: the one way the api starts a run (audits, reruns, batches,
    /// jobs). An error is logged once and worded for the caller without internals; the
    /// caller undoes what it stored for the run.
    pub async fn start<W>(
        &self,
        workflow: W,
        input: W::Input,
        workflow_id: &str,
        search_attributes: temporalio_common::search_attributes::SearchAttributes,
        memo: temporalio_common::MemoValues,
    ) -> Result<(), TemporalError>
    where
        W: temporalio_common::HasWorkflowDefinition,
        W::Input: Send,
    {
        let client = self.client().await?;
        client
            .start_workflow(
                workflow,
                input,
                temporalio_client::WorkflowStartOptions::new(
                    self.settings.task_queue.clone(),
                    workflow_id.to_string(),
                )
                .search_attributes(search_attributes)
                .memo(memo)
                .build(),
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!(workflow.id = workflow_id, error = %e, "starting a workflow failed");
                TemporalError::Unreachable {
                    address: self.settings.address.clone(),
                    reason: e.to_string(),
                }
            })
    }

    /// Readiness: a cheap visibility call answered within 3 s.
    pub async fn check(&self) -> Result<(), TemporalError> {
        let client = self.client().await?;
        let call = client.count_workflows(
            "WorkflowType = 'callaudit-ready-probe'",
            WorkflowCountOptions::default(),
        );
        match tokio::time::timeout(Duration::from_secs(3), call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(TemporalError::Unreachable {
                address: self.settings.address.clone(),
                reason: e.to_string(),
            }),
            Err(_) => Err(TemporalError::Unreachable {
                address: self.settings.address.clone(),
                reason: "timed out".into(),
            }),
        }
    }
}

/// How a workflow ended without completing: what the reconcilers record for a row its
/// workflow left open (terminated by an operator, timed out, cancelled, failed before
/// recording its outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnrecordedEnd {
    /// Terminated.
    Terminated,
    /// Timed out.
    TimedOut,
    /// Cancelled.
    Cancelled,
    /// Failed.
    Failed,
}

impl UnrecordedEnd {
    /// The end `status` is; `None` while the workflow runs, once it completed or
    /// continued as new.
    pub(crate) fn of(status: temporalio_client::WorkflowExecutionStatus) -> Option<Self> {
        use temporalio_client::WorkflowExecutionStatus as S;
        match status {
            S::Terminated => Some(Self::Terminated),
            S::TimedOut => Some(Self::TimedOut),
            S::Canceled => Some(Self::Cancelled),
            S::Failed => Some(Self::Failed),
            _ => None,
        }
    }

    /// The past participle: "terminated", "timed out", "cancelled", "failed".
    pub(crate) fn participle(self) -> &'static str {
        match self {
            Self::Terminated => "terminated",
            Self::TimedOut => "timed out",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// As what the workflow did: "was terminated", "timed out", "was cancelled", "failed".
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Self::Terminated => "was terminated",
            Self::TimedOut => "timed out",
            Self::Cancelled => "was cancelled",
            Self::Failed => "failed",
        }
    }
}
