//! Human review of control points (`PUT|DELETE
//! /api/audits/{id}/steps/{position}/control-points/{index}/review`) and the calibration
//! report (`GET /api/reports/calibration`): how far the AI agrees with its reviewers.

use crate::audits::{ConformiteView, NiveauView};
use crate::auth::{ApiTags, BearerAuth};
use crate::error::{ApiError, operation_errors};
use crate::events::publish;
use crate::state::AppState;
use callaudit_db::reruns::{PatchError, StepPatch, patch_step};
use callaudit_db::{pool, step_results};
use callaudit_domain::analysis::{ControlPointStatus, Review};
use callaudit_domain::calibration::{Agreement, ORDER};
use callaudit_domain::events::{AuditEvent, ReviewChange};
use callaudit_domain::rbac::Permission;
use callaudit_domain::rerun::{ApplyError, ChangeMeta, apply_review};
use callaudit_domain::step_result::StepResult;
use chrono::SecondsFormat;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Longest review comment accepted.
const MAX_COMMENT_CHARS: usize = 4000;
/// Steps read at most by one calibration report.
const MAX_REPORT_STEPS: i64 = 50_000;

/// A control point status on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatutView {
    /// Fully covered.
    Present,
    /// Partly covered.
    Partiel,
    /// Not covered.
    Absent,
    /// Does not apply to this call.
    NonApplicable,
}

impl From<StatutView> for ControlPointStatus {
    fn from(s: StatutView) -> Self {
        match s {
            StatutView::Present => Self::Present,
            StatutView::Partiel => Self::Partiel,
            StatutView::Absent => Self::Absent,
            StatutView::NonApplicable => Self::NonApplicable,
        }
    }
}

impl From<ControlPointStatus> for StatutView {
    fn from(s: ControlPointStatus) -> Self {
        match s {
            ControlPointStatus::Present => Self::Present,
            ControlPointStatus::Partiel => Self::Partiel,
            ControlPointStatus::Absent => Self::Absent,
            ControlPointStatus::NonApplicable => Self::NonApplicable,
        }
    }
}

/// A reviewer's verdict on a control point.
#[derive(Debug, Object)]
pub struct ReviewRequest {
    /// The human verdict; it counts instead of the AI's.
    pub statut: StatutView,
    /// Why (at most 4,000 characters).
    #[oai(default)]
    pub comment: String,
}

/// The human verdict stored on a point.
#[derive(Debug, Object)]
pub struct ReviewView {
    /// The reviewer's status.
    pub statut: StatutView,
    /// Why.
    pub comment: String,
    /// Who.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A control point after a review: both verdicts and the one that counts.
#[derive(Debug, Object)]
pub struct ReviewedPoint {
    /// Position of the step.
    pub position: i32,
    /// Index of the point in the step.
    pub index: i32,
    /// The AI's verdict (after evidence gating).
    pub ai_statut: StatutView,
    /// The human verdict, if any.
    pub review: Option<ReviewView>,
    /// The verdict that counts in the scores.
    pub counted_statut: StatutView,
    /// The step's score after the change.
    pub step_score: f64,
    /// Its verdict.
    pub step_conforme: ConformiteView,
    /// The audit's score after the change.
    pub audit_score: f64,
    /// The audit's level.
    pub audit_niveau: NiveauView,
    /// A critical step is NON_CONFORME.
    pub audit_critical: bool,
}

operation_errors! {
    /// What `reviewControlPoint` answers besides the point.
    pub enum ReviewError for "reviewControlPoint" {
        /// An id, position or index is malformed, the body is not a `ReviewRequest`, or the
        /// comment is longer than 4,000 characters.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `reviews:write` (viewers).
        403,
        /// No audit with this id, or no such step or control point.
        404,
        /// The audit has not completed: only a completed audit is reviewed.
        409,
        /// The body is larger than `API_MAX_BODY_BYTES`.
        413,
        /// The body is not sent as `application/json`.
        415,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `withdrawControlPointReview` answers besides the point.
    pub enum WithdrawReviewError for "withdrawControlPointReview" {
        /// An id, position or index is malformed.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `reviews:write` (viewers).
        403,
        /// No audit with this id, no such step or control point, or no review on the point.
        404,
        /// The audit has not completed.
        409,
        /// Postgres is unavailable; retry later.
        503,
    }
}

operation_errors! {
    /// What `calibrationReport` answers besides the report.
    pub enum CalibrationError for "calibrationReport" {
        /// A parameter is malformed, or `to` is before `from`.
        400,
        /// Missing, invalid or expired bearer token.
        401,
        /// The token lacks `reviews:read`.
        403,
        /// Postgres is unavailable; retry later.
        503,
    }
}

/// Counts of one status row of a confusion matrix: AI said `ai`, humans said each.
#[derive(Debug, Object)]
pub struct ConfusionRow {
    /// The AI's status.
    pub ai: StatutView,
    /// Human PRESENT.
    pub present: u64,
    /// Human PARTIEL.
    pub partiel: u64,
    /// Human ABSENT.
    pub absent: u64,
    /// Human NON_APPLICABLE.
    pub non_applicable: u64,
}

/// Agreement between AI and reviewers over a set of reviewed points.
#[derive(Debug, Object)]
pub struct AgreementView {
    /// Reviewed points.
    pub reviewed: u64,
    /// Points where the reviewer agreed with the AI.
    pub agreed: u64,
    /// agreed / reviewed (none when nothing was reviewed).
    pub agreement_rate: Option<f64>,
    /// Cohen's kappa (none when nothing was reviewed, or when AI and reviewers used a
    /// single same status throughout).
    pub kappa: Option<f64>,
    /// Confusion matrix: one row per AI status (PRESENT, PARTIEL, ABSENT,
    /// NON_APPLICABLE), counts per human status.
    pub confusion: Vec<ConfusionRow>,
}

/// Calibration of one control point of the configuration.
#[derive(Debug, Object)]
pub struct PointCalibration {
    /// Step position.
    pub position: i32,
    /// Step name.
    pub step_name: String,
    /// Index of the point in the step.
    pub index: i32,
    /// The point's wording.
    pub point: String,
    /// Points of this kind seen in the audits (reviewed or not).
    pub audited: u64,
    /// The agreement over its reviews.
    pub agreement: AgreementView,
}

/// The calibration report.
#[derive(Debug, Object)]
pub struct CalibrationReport {
    /// Configuration.
    pub audit_config_id: Uuid,
    /// Audits created from (included).
    pub from: chrono::NaiveDate,
    /// Audits created until (included).
    pub to: chrono::NaiveDate,
    /// Completed audits counted.
    pub audits: u64,
    /// Over every control point of the configuration.
    pub overall: AgreementView,
    /// Per control point, by step position then index.
    pub points: Vec<PointCalibration>,
}

fn agreement_view(a: &Agreement) -> AgreementView {
    AgreementView {
        reviewed: a.reviewed,
        agreed: a.agreed,
        agreement_rate: a.agreement_rate(),
        kappa: a.kappa(),
        confusion: ORDER
            .iter()
            .enumerate()
            .map(|(r, ai)| ConfusionRow {
                ai: (*ai).into(),
                present: a.confusion[r][0],
                partiel: a.confusion[r][1],
                absent: a.confusion[r][2],
                non_applicable: a.confusion[r][3],
            })
            .collect(),
    }
}

/// Review routes.
pub struct ReviewsApi;

#[OpenApi(tag = "ApiTags::Audits")]
impl ReviewsApi {
    /// Stores a human verdict on a control point of a completed audit, beside the AI's
    /// (who, when, why): the step and audit summaries are recomputed with it, the AI
    /// verdict stays visible, `rerun_history` gains a `review` entry and the audit's
    /// stream an `audit.reviewed` event. Auditors and managers may review; viewers not.
    #[oai(
        path = "/api/audits/:id/steps/:position/control-points/:index/review",
        method = "put",
        operation_id = "reviewControlPoint"
    )]
    #[tracing::instrument(skip_all, name = "api.reviews.put", fields(audit.id = %id.0, step.position = position.0, control_point.index = index.0))]
    async fn put(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        position: Path<i32>,
        index: Path<i32>,
        body: Json<ReviewRequest>,
    ) -> Result<Json<ReviewedPoint>, ReviewError> {
        let who = auth.require(Permission::REVIEWS_WRITE)?;
        if body.comment.chars().count() > MAX_COMMENT_CHARS {
            return Err(ApiError::bad_request(format!(
                "comment must be at most {MAX_COMMENT_CHARS} characters"
            ))
            .into());
        }
        let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let review = Review {
            statut: body.statut.into(),
            comment: body.comment.trim().to_string(),
            by: who.user.email.clone(),
            at: now,
        };
        Ok(Json(
            change(
                &state,
                &who.user.email,
                id.0,
                position.0,
                index.0,
                Some(review),
            )
            .await?,
        ))
    }

    /// Withdraws the human verdict of a control point: the AI verdict counts again and
    /// the summaries are recomputed; `rerun_history` gains a `review_withdrawn` entry.
    #[oai(
        path = "/api/audits/:id/steps/:position/control-points/:index/review",
        method = "delete",
        operation_id = "withdrawControlPointReview"
    )]
    #[tracing::instrument(skip_all, name = "api.reviews.delete", fields(audit.id = %id.0, step.position = position.0, control_point.index = index.0))]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        position: Path<i32>,
        index: Path<i32>,
    ) -> Result<Json<ReviewedPoint>, WithdrawReviewError> {
        let who = auth.require(Permission::REVIEWS_WRITE)?;
        Ok(Json(
            change(&state, &who.user.email, id.0, position.0, index.0, None).await?,
        ))
    }

    /// Calibration of the AI against its reviewers for one configuration: over the
    /// completed audits created between `from` and `to` (dates, both included), per
    /// control point and over the whole configuration, the reviewed count, the
    /// agreement rate, the confusion matrix of statuses (AI × human) and Cohen's kappa.
    #[oai(
        path = "/api/reports/calibration",
        method = "get",
        operation_id = "calibrationReport"
    )]
    #[tracing::instrument(skip_all, name = "api.reports.calibration", fields(audit_config.id = %audit_config_id.0))]
    async fn calibration(
        &self,
        auth: BearerAuth,
        state: Data<&AppState>,
        audit_config_id: Query<Uuid>,
        from: Query<chrono::NaiveDate>,
        to: Query<chrono::NaiveDate>,
    ) -> Result<Json<CalibrationReport>, CalibrationError> {
        auth.require(Permission::REVIEWS_READ)?;
        if to.0 < from.0 {
            return Err(ApiError::bad_request(format!(
                "to ({}) is before from ({})",
                to.0, from.0
            ))
            .into());
        }
        let start = from.0.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let end = (to.0 + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc();
        let mut conn = pool::get(&state.pool).await.map_err(ApiError::from)?;
        let steps = step_results::of_completed_audits_of_config(
            &mut conn,
            audit_config_id.0,
            start,
            end,
            MAX_REPORT_STEPS,
        )
        .await
        .map_err(ApiError::from)?;
        let mut audits = std::collections::BTreeSet::new();
        // (position, index) → (step name, wording, audited, agreement)
        let mut per: BTreeMap<(i32, i32), (String, String, u64, Agreement)> = BTreeMap::new();
        let mut overall = Agreement::default();
        for s in steps {
            audits.insert(s.audit_id);
            let Ok(result) = serde_json::from_value::<StepResult>(s.raw_result) else {
                tracing::warn!(audit.id = %s.audit_id, step.position = s.position, "unreadable step skipped");
                continue;
            };
            for p in result.gated.points_controle {
                let key = (s.position, i32::try_from(p.index).unwrap_or(i32::MAX));
                let entry = per.entry(key).or_insert_with(|| {
                    (
                        s.step_name.clone(),
                        p.point.clone(),
                        0,
                        Agreement::default(),
                    )
                });
                entry.2 += 1;
                if entry.3.add_point(&p)
                    && let Some(r) = &p.review
                {
                    overall.add(p.statut, r.statut);
                }
            }
        }
        Ok(Json(CalibrationReport {
            audit_config_id: audit_config_id.0,
            from: from.0,
            to: to.0,
            audits: audits.len() as u64,
            overall: agreement_view(&overall),
            points: per
                .into_iter()
                .map(
                    |((position, index), (step_name, point, audited, a))| PointCalibration {
                        position,
                        step_name,
                        index,
                        point,
                        audited,
                        agreement: agreement_view(&a),
                    },
                )
                .collect(),
        }))
    }
}

/// Sets (`Some`) or withdraws (`None`) the review of a point under the audit's lock.
async fn change(
    state: &AppState,
    by: &str,
    audit_id: Uuid,
    position: i32,
    index: i32,
    review: Option<Review>,
) -> Result<ReviewedPoint, ApiError> {
    let slot = usize::try_from(index).map_err(|_| {
        ApiError::not_found(format!("step {position} has no control point {index}"))
    })?;
    let meta = ChangeMeta {
        by: Some(by.to_string()),
        requested_at: None,
        applied_at: chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        rerun: None,
    };
    let withdrawing = review.is_none();
    let mut conn = pool::get(&state.pool).await?;
    let mut point = None;
    let patched = patch_step(
        &mut conn,
        audit_id,
        position,
        |step| -> Result<StepPatch, ApplyError> {
            let stored: StepResult =
                serde_json::from_value(step.raw_result.clone()).map_err(|_| {
                    ApplyError::NoSuchControlPoint {
                        index: slot,
                        count: 0,
                    }
                })?;
            let applied = apply_review(&stored, slot, review, step.weight, &meta)?;
            point = applied
                .result
                .gated
                .points_controle
                .iter()
                .find(|p| p.index == slot)
                .cloned();
            Ok(StepPatch {
                raw_result: serde_json::to_value(&applied.result).map_err(|_| {
                    ApplyError::NoSuchControlPoint {
                        index: slot,
                        count: 0,
                    }
                })?,
                score: applied.score.score,
                conforme: applied.score.conforme,
            })
        },
        None,
    )
    .await
    .map_err(|e| match e {
        PatchError::NoAudit => ApiError::not_found(format!("audit {audit_id} not found")),
        PatchError::NotCompleted(status) => ApiError::conflict(format!(
            "audit {audit_id} is {status}: only a completed audit is reviewed"
        )),
        PatchError::NoStep(p) => ApiError::not_found(format!("audit {audit_id} has no step {p}")),
        PatchError::Rejected(ApplyError::NoReview(_)) => ApiError::not_found(format!(
            "control point {index} of step {position} has no review to withdraw"
        )),
        PatchError::Rejected(e @ ApplyError::NoSuchControlPoint { .. }) => {
            ApiError::not_found(format!("step {position}: {e}"))
        }
        PatchError::Db(e) => e.into(),
    })?;
    let point = point.ok_or_else(|| ApiError::internal("reviewed point vanished"))?;
    let counted = point.counted_statut();
    tracing::info!(statut = ?point.review.as_ref().map(|r| r.statut), withdrawing, "review stored");
    publish(
        &mut conn,
        &AuditEvent::Reviewed {
            audit_id: audit_id.to_string(),
            change: ReviewChange {
                position,
                control_point_index: index,
                ai_statut: point.statut,
                human_statut: point.review.as_ref().map(|r| r.statut),
                by: by.to_string(),
                at: meta.applied_at.clone(),
            },
            step_score: patched.score,
            step_conforme: patched.conforme,
            summary: patched.summary,
        },
    )
    .await?;
    Ok(ReviewedPoint {
        position,
        index,
        ai_statut: point.statut.into(),
        review: point.review.map(|r| ReviewView {
            statut: r.statut.into(),
            comment: r.comment,
            by: r.by,
            at: r.at,
        }),
        counted_statut: counted.into(),
        step_score: patched.score,
        step_conforme: patched.conforme.into(),
        audit_score: patched.summary.score,
        audit_niveau: patched.summary.niveau.into(),
        audit_critical: patched.summary.critical,
    })
}
