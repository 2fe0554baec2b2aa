//! The `audit_reruns` table and the one way a finished audit's step changes: under its
//! audit's row lock ([`patch_step`]), so reruns and reviews of one audit apply one at a
//! time and each sees the previous one's result.

use crate::enums::Named;
use crate::schema::{audit_reruns, audit_step_results, audits};
use crate::{DbError, DbResult};
use callaudit_domain::analysis::Conformite;
use callaudit_domain::rerun::{RerunKind, RerunStatus};
use callaudit_domain::scoring::{AuditSummary, StepForSummary, summarize};
use callaudit_domain::status::AuditStatus;
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// A stored rerun.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable, serde::Serialize)]
#[diesel(table_name = audit_reruns)]
pub struct RerunRow {
    /// Id.
    pub id: Uuid,
    /// Audit.
    pub audit_id: Uuid,
    /// Step or control point.
    #[diesel(deserialize_as = Named<RerunKind>)]
    pub kind: RerunKind,
    /// Step position.
    pub position: i32,
    /// Control point index (control-point reruns).
    pub control_point_index: Option<i32>,
    /// Number of this rerun of its target (1, 2, …).
    pub n: i32,
    /// Workflow id.
    pub workflow_id: String,
    /// Where it stands.
    #[diesel(deserialize_as = Named<RerunStatus>)]
    pub status: RerunStatus,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// The reviewer's hint.
    pub instructions: Option<String>,
    /// Who asked.
    pub requested_by: Option<Uuid>,
    /// Who asked (e-mail, kept if the user goes).
    pub requested_by_email: Option<String>,
    /// The analysis waiting to be applied.
    pub proposal: Option<serde_json::Value>,
    /// Model.
    pub model: Option<String>,
    /// Tokens in.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
    /// Chat completion requests.
    pub llm_requests: i32,
    /// Step score and audit summary once applied.
    pub outcome: Option<serde_json::Value>,
    /// Failure reason.
    pub error: Option<String>,
    /// Asked at.
    pub created_at: DateTime<Utc>,
    /// Analysis started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended at.
    pub completed_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What the api asks for.
#[derive(Debug, Clone)]
pub struct NewRerun<'a> {
    /// Audit.
    pub audit_id: Uuid,
    /// Step or control point.
    pub kind: RerunKind,
    /// Step position.
    pub position: i32,
    /// Control point index (control-point reruns).
    pub control_point_index: Option<i32>,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// The reviewer's hint.
    pub instructions: Option<&'a str>,
    /// Who asks.
    pub requested_by: Option<Uuid>,
    /// Who asks (e-mail).
    pub requested_by_email: Option<&'a str>,
}

/// Why a rerun was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// No such audit.
    #[error("audit not found")]
    NoAudit,
    /// The audit has not completed (it runs, failed or was cancelled).
    #[error("the audit is {0}")]
    NotCompleted(AuditStatus),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for CreateError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Creates rerun number n (the next of its target; its workflow id is `workflow_id(n)`)
/// of a completed audit, under the audit's row lock so concurrent requests get distinct
/// numbers.
pub async fn create(
    conn: &mut AsyncPgConnection,
    new: &NewRerun<'_>,
    workflow_id: impl Fn(i32) -> String + Send + Sync,
) -> Result<RerunRow, CreateError> {
    conn.transaction::<_, CreateError, _>(async |conn| {
        let status: Option<Named<AuditStatus>> = audits::table
            .find(new.audit_id)
            .select(audits::status)
            .for_update()
            .first::<Named<AuditStatus>>(&mut *conn)
            .await
            .optional()?;
        let status = status.ok_or(CreateError::NoAudit)?.0;
        if status != AuditStatus::Completed {
            return Err(CreateError::NotCompleted(status));
        }
        let mut q = audit_reruns::table
            .filter(audit_reruns::audit_id.eq(new.audit_id))
            .filter(audit_reruns::kind.eq(new.kind.as_str()))
            .filter(audit_reruns::position.eq(new.position))
            .into_boxed();
        q = match new.control_point_index {
            Some(i) => q.filter(audit_reruns::control_point_index.eq(i)),
            None => q.filter(audit_reruns::control_point_index.is_null()),
        };
        let last: Option<i32> = q
            .select(diesel::dsl::max(audit_reruns::n))
            .first(&mut *conn)
            .await?;
        let n = last.unwrap_or(0) + 1;
        let id = Uuid::new_v4();
        let row = diesel::insert_into(audit_reruns::table)
            .values((
                audit_reruns::id.eq(id),
                audit_reruns::audit_id.eq(new.audit_id),
                audit_reruns::kind.eq(new.kind.as_str()),
                audit_reruns::position.eq(new.position),
                audit_reruns::control_point_index.eq(new.control_point_index),
                audit_reruns::n.eq(n),
                audit_reruns::workflow_id.eq(workflow_id(n)),
                audit_reruns::use_rlm.eq(new.use_rlm),
                audit_reruns::instructions.eq(new.instructions),
                audit_reruns::requested_by.eq(new.requested_by),
                audit_reruns::requested_by_email.eq(new.requested_by_email),
            ))
            .returning(RerunRow::as_returning())
            .get_result(&mut *conn)
            .await?;
        Ok(row)
    })
    .await
}

/// One rerun.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<RerunRow>> {
    Ok(audit_reruns::table
        .find(id)
        .select(RerunRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The reruns of an audit, oldest first.
pub async fn of_audit(conn: &mut AsyncPgConnection, audit_id: Uuid) -> DbResult<Vec<RerunRow>> {
    Ok(audit_reruns::table
        .filter(audit_reruns::audit_id.eq(audit_id))
        .order((audit_reruns::created_at.asc(), audit_reruns::n.asc()))
        .select(RerunRow::as_select())
        .load(conn)
        .await?)
}

/// Reruns not ended whose row has not moved since `before` (for reconciliation).
pub async fn unsettled(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<RerunRow>> {
    Ok(audit_reruns::table
        .filter(
            audit_reruns::status
                .eq_any([RerunStatus::Pending.as_str(), RerunStatus::Running.as_str()]),
        )
        .filter(audit_reruns::updated_at.lt(before))
        .order(audit_reruns::updated_at.asc())
        .limit(limit)
        .select(RerunRow::as_select())
        .load(conn)
        .await?)
}

/// Marks a pending rerun running (its analysis began).
pub async fn mark_running(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<()> {
    let now = Utc::now();
    diesel::update(
        audit_reruns::table
            .find(id)
            .filter(audit_reruns::status.eq(RerunStatus::Pending.as_str())),
    )
    .set((
        audit_reruns::status.eq(RerunStatus::Running.as_str()),
        audit_reruns::started_at.eq(now),
        audit_reruns::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// The analysis of a rerun, before it is applied.
#[derive(Debug, Clone)]
pub struct Proposal<'a> {
    /// The gated analysis (a step result or one control point).
    pub proposal: &'a serde_json::Value,
    /// Model.
    pub model: &'a str,
    /// Tokens in.
    pub prompt_tokens: i32,
    /// Tokens out.
    pub completion_tokens: i32,
    /// Chat completion requests.
    pub llm_requests: i32,
}

/// Stores the analysis of a running rerun unless one is stored already (the first
/// stays); returns whether this call stored it.
pub async fn store_proposal(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    p: &Proposal<'_>,
) -> DbResult<bool> {
    let n = diesel::update(
        audit_reruns::table
            .find(id)
            .filter(audit_reruns::proposal.is_null())
            .filter(audit_reruns::status.eq(RerunStatus::Running.as_str())),
    )
    .set((
        audit_reruns::proposal.eq(p.proposal),
        audit_reruns::model.eq(p.model),
        audit_reruns::prompt_tokens.eq(p.prompt_tokens),
        audit_reruns::completion_tokens.eq(p.completion_tokens),
        audit_reruns::llm_requests.eq(p.llm_requests),
        audit_reruns::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Records a rerun failed unless it ended already; true when this call recorded it.
pub async fn fail(conn: &mut AsyncPgConnection, id: Uuid, error: &str) -> DbResult<bool> {
    let now = Utc::now();
    let n = diesel::update(
        audit_reruns::table
            .find(id)
            .filter(audit_reruns::status.ne_all([
                RerunStatus::Completed.as_str(),
                RerunStatus::Failed.as_str(),
            ])),
    )
    .set((
        audit_reruns::status.eq(RerunStatus::Failed.as_str()),
        audit_reruns::error.eq(error),
        audit_reruns::completed_at.eq(now),
        audit_reruns::updated_at.eq(now),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// A step row as [`patch_step`] hands it to its change.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = audit_step_results)]
pub struct LockedStep {
    /// Position.
    pub position: i32,
    /// Weight.
    pub weight: f64,
    /// Critical.
    pub critical: bool,
    /// Score.
    pub score: f64,
    /// Verdict.
    #[diesel(deserialize_as = Named<Conformite>)]
    pub conforme: Conformite,
    /// Stored step result.
    pub raw_result: serde_json::Value,
}

/// The new state of a step, computed by a [`patch_step`] change.
#[derive(Debug, Clone)]
pub struct StepPatch {
    /// New `raw_result`.
    pub raw_result: serde_json::Value,
    /// New score.
    pub score: f64,
    /// New verdict.
    pub conforme: Conformite,
}

/// Why [`patch_step`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum PatchError<E> {
    /// No such audit.
    #[error("audit not found")]
    NoAudit,
    /// The audit has not completed.
    #[error("the audit is {0}")]
    NotCompleted(AuditStatus),
    /// The audit has no stored step at this position.
    #[error("the audit has no step {0}")]
    NoStep(i32),
    /// The change refused (e.g. an unknown control point).
    #[error("{0}")]
    Rejected(E),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl<E> From<diesel::result::Error> for PatchError<E> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// A step changed and the audit summary recomputed (stored as a rerun's `outcome`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Patched {
    /// The step's new score.
    pub score: f64,
    /// Its new verdict.
    pub conforme: Conformite,
    /// The audit's new summary.
    pub summary: AuditSummary,
}

/// Changes step `position` of completed audit `audit_id` with `change` and recomputes
/// the audit summary from all its steps, in one transaction holding the audit's row
/// lock: changes of one audit apply one at a time, each on the previous one's result.
/// With `applied_rerun`, that rerun is recorded completed (with the outcome) in the same
/// transaction, so the change and its record commit together or not at all.
pub async fn patch_step<E, F>(
    conn: &mut AsyncPgConnection,
    audit_id: Uuid,
    position: i32,
    change: F,
    applied_rerun: Option<Uuid>,
) -> Result<Patched, PatchError<E>>
where
    E: Send,
    F: FnOnce(&LockedStep) -> Result<StepPatch, E> + Send,
{
    conn.transaction::<_, PatchError<E>, _>(async |conn| {
        let status = audits::table
            .find(audit_id)
            .select(audits::status)
            .for_update()
            .first::<Named<AuditStatus>>(&mut *conn)
            .await
            .optional()?
            .ok_or(PatchError::NoAudit)?
            .0;
        if status != AuditStatus::Completed {
            return Err(PatchError::NotCompleted(status));
        }
        let step = audit_step_results::table
            .filter(audit_step_results::audit_id.eq(audit_id))
            .filter(audit_step_results::position.eq(position))
            .select(LockedStep::as_select())
            .first(&mut *conn)
            .await
            .optional()?
            .ok_or(PatchError::NoStep(position))?;
        let patch = change(&step).map_err(PatchError::Rejected)?;
        let now = Utc::now();
        diesel::update(
            audit_step_results::table
                .filter(audit_step_results::audit_id.eq(audit_id))
                .filter(audit_step_results::position.eq(position)),
        )
        .set((
            audit_step_results::raw_result.eq(&patch.raw_result),
            audit_step_results::score.eq(patch.score),
            audit_step_results::conforme.eq(patch.conforme.as_str()),
            audit_step_results::updated_at.eq(now),
        ))
        .execute(&mut *conn)
        .await?;
        let steps: Vec<LockedStep> = audit_step_results::table
            .filter(audit_step_results::audit_id.eq(audit_id))
            .select(LockedStep::as_select())
            .load(&mut *conn)
            .await?;
        let summary = summarize(
            &steps
                .iter()
                .map(|s| StepForSummary {
                    weight: s.weight,
                    critical: s.critical,
                    score: s.score,
                    conforme: s.conforme,
                })
                .collect::<Vec<_>>(),
        );
        diesel::update(audits::table.find(audit_id))
            .set((
                audits::score.eq(summary.score),
                audits::niveau.eq(summary.niveau.as_str()),
                audits::critical.eq(summary.critical),
                audits::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .await?;
        let patched = Patched {
            score: patch.score,
            conforme: patch.conforme,
            summary,
        };
        if let Some(rerun) = applied_rerun {
            let outcome = serde_json::to_value(&patched).unwrap_or_default();
            mark_applied(conn, rerun, &outcome).await?;
        }
        Ok(patched)
    })
    .await
}

/// Records that rerun `id` was applied with `outcome` (inside [`patch_step`]'s
/// transaction).
async fn mark_applied(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    outcome: &serde_json::Value,
) -> Result<(), diesel::result::Error> {
    let now = Utc::now();
    diesel::update(audit_reruns::table.find(id))
        .set((
            audit_reruns::status.eq(RerunStatus::Completed.as_str()),
            audit_reruns::outcome.eq(outcome),
            audit_reruns::completed_at.eq(now),
            audit_reruns::updated_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
