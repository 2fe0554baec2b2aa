//! After the audit: step and control-point reruns and human reviews, applied to a stored
//! step ([`StepResult`]). Pure: the caller brings the stored step, the fresh analysis or
//! the reviewer's verdict, who and when; these functions return the new stored step, its
//! recomputed score and the trail entry appended to `rerun_history`.
//!
//! Rules:
//! - A **step rerun** replaces the step's output (`points_controle`, `commentaire`,
//!   `analysis`); human reviews of its points stay (they are a person's verdict, not the
//!   model's), carried over by index.
//! - A **control-point rerun** patches `points_controle[index]` only (its review stays);
//!   the step's score and `conforme` are recomputed from all its points.
//! - A **review** sets or withdraws the human verdict of one point; the AI verdict stays.
//! - Every change appends one [`HistoryEntry`] with the previous and the new value, so
//!   nothing is overwritten without a trail. Previous and new values never carry the
//!   history itself.

use crate::analysis::{Conformite, ControlPointVerdict, Review};
use crate::scoring::{StepScore, score_step};
use crate::status::named_enum;
use crate::step_result::{AnalysisMode, StepResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

named_enum! {
    /// What a rerun analyses again (`audit_reruns.kind`).
    RerunKind {
        /// The whole step.
        Step = "step",
        /// One control point of a step.
        ControlPoint = "control_point",
    }
}

named_enum! {
    /// Where a rerun stands (`audit_reruns.status`).
    RerunStatus {
        /// Stored, workflow starting.
        Pending = "pending",
        /// The workflow runs.
        Running = "running",
        /// Applied to the stored step and the audit summary.
        Completed = "completed",
        /// Failed with its reason; nothing was changed.
        Failed = "failed",
    }
}

named_enum! {
    /// The kind of a `rerun_history` entry.
    HistoryKind {
        /// A step rerun replaced the step output.
        StepRerun = "step_rerun",
        /// A control-point rerun replaced one point.
        ControlPointRerun = "control_point_rerun",
        /// A reviewer set a human verdict on a point.
        Review = "review",
        /// A reviewer withdrew the human verdict of a point.
        ReviewWithdrawn = "review_withdrawn",
    }
}

/// A rerun's analysis, stored on its row until it is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Proposal {
    /// The step analysed again (gated).
    Step {
        /// The fresh step output.
        result: StepResult,
    },
    /// One control point analysed again (gated).
    ControlPoint {
        /// The fresh verdict.
        point: ControlPointVerdict,
        /// How it was obtained.
        analysis: AnalysisMode,
    },
}

/// Tokens a rerun's LLM calls used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// A step's score and verdict, as recorded before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreSnapshot {
    /// Points earned.
    pub score: f64,
    /// Verdict.
    pub conforme: Conformite,
}

impl From<StepScore> for ScoreSnapshot {
    fn from(s: StepScore) -> Self {
        Self {
            score: s.score,
            conforme: s.conforme,
        }
    }
}

/// Who changed a step and when, and how a rerun was run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeMeta {
    /// Who asked (e-mail).
    pub by: Option<String>,
    /// When it was asked (RFC 3339).
    pub requested_at: Option<String>,
    /// When it was applied (RFC 3339).
    pub applied_at: String,
    /// The rerun's id and workflow id (reruns only).
    pub rerun: Option<RerunTrail>,
}

/// What a rerun adds to its history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct RerunTrail {
    /// `audit_reruns.id`.
    pub rerun_id: String,
    /// The rerun's workflow id.
    pub workflow_id: String,
    /// Transcript-tools mode.
    pub use_rlm: bool,
    /// Model.
    pub model: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// The reviewer's hint added to the prompt.
    pub instructions: Option<String>,
    /// How the answer was obtained.
    pub analysis: AnalysisMode,
}

/// One entry of `raw_result.rerun_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// What happened.
    pub kind: HistoryKind,
    /// Who asked (e-mail).
    pub by: Option<String>,
    /// When it was asked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// When it was applied (RFC 3339).
    pub at: String,
    /// The control point, for point reruns and reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_point_index: Option<usize>,
    /// The rerun (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_id: Option<String>,
    /// The rerun's workflow id (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// `prompt` or `tools` (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Transcript-tools mode (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_rlm: Option<bool>,
    /// Model (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Tokens used (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// The reviewer's hint (reruns only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// The value before: the step output (step reruns) or the control point.
    pub previous: Value,
    /// The value after.
    pub new: Value,
    /// The step's score and verdict before.
    pub previous_score: ScoreSnapshot,
    /// The step's score and verdict after.
    pub new_score: ScoreSnapshot,
}

/// Why a change could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The control point index is not one of the step's.
    #[error("control point {index} is not in this step (it has {count})")]
    NoSuchControlPoint {
        /// Index asked.
        index: usize,
        /// Points of the step.
        count: usize,
    },
    /// There is no review to withdraw.
    #[error("control point {0} has no review to withdraw")]
    NoReview(usize),
}

/// A stored step after a change, with its recomputed score and the entry appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The new stored step (with its history).
    pub result: StepResult,
    /// Its score and verdict, recomputed from the points that count.
    pub score: StepScore,
}

/// The step output without its trail (what `previous`/`new` record for step reruns).
fn output_of(step: &StepResult) -> Value {
    let bare = StepResult {
        gated: step.gated.clone(),
        analysis: step.analysis,
        rerun_history: Vec::new(),
    };
    let mut v = serde_json::to_value(&bare).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("rerun_history");
    }
    v
}

fn entry(
    kind: HistoryKind,
    meta: &ChangeMeta,
    control_point_index: Option<usize>,
    previous: Value,
    new: Value,
    scores: (StepScore, StepScore),
) -> HistoryEntry {
    let rerun = meta.rerun.as_ref();
    HistoryEntry {
        kind,
        by: meta.by.clone(),
        requested_at: meta.requested_at.clone(),
        at: meta.applied_at.clone(),
        control_point_index,
        rerun_id: rerun.map(|r| r.rerun_id.clone()),
        workflow_id: rerun.map(|r| r.workflow_id.clone()),
        mode: rerun.map(|r| {
            match r.analysis {
                AnalysisMode::Prompt => "prompt",
                AnalysisMode::Tools { .. } => "tools",
            }
            .to_string()
        }),
        use_rlm: rerun.map(|r| r.use_rlm),
        model: rerun.map(|r| r.model.clone()),
        usage: rerun.map(|r| r.usage),
        instructions: rerun.and_then(|r| r.instructions.clone()),
        previous,
        new,
        previous_score: scores.0.into(),
        new_score: scores.1.into(),
    }
}

fn push(result: &mut StepResult, e: &HistoryEntry) {
    result
        .rerun_history
        .push(serde_json::to_value(e).unwrap_or(Value::Null));
}

/// A step rerun: `fresh` (analysed, gated) replaces `stored`'s output; reviews of the
/// stored points stay on the points of the same index; the history gains one entry.
pub fn apply_step_rerun(
    stored: &StepResult,
    fresh: StepResult,
    weight: f64,
    meta: &ChangeMeta,
) -> Applied {
    let before = score_step(weight, &stored.gated.points_controle);
    let mut result = fresh;
    for point in &mut result.gated.points_controle {
        point.review = stored
            .gated
            .points_controle
            .iter()
            .find(|p| p.index == point.index)
            .and_then(|p| p.review.clone());
    }
    result.rerun_history = stored.rerun_history.clone();
    let after = score_step(weight, &result.gated.points_controle);
    let e = entry(
        HistoryKind::StepRerun,
        meta,
        None,
        output_of(stored),
        output_of(&result),
        (before, after),
    );
    push(&mut result, &e);
    Applied {
        result,
        score: after,
    }
}

fn slot(stored: &StepResult, index: usize) -> Result<usize, ApplyError> {
    stored
        .gated
        .points_controle
        .iter()
        .position(|p| p.index == index)
        .ok_or(ApplyError::NoSuchControlPoint {
            index,
            count: stored.gated.points_controle.len(),
        })
}

/// A control-point rerun: `fresh` (analysed alone, gated) replaces point `index` of
/// `stored`, keeping its index, its wording and its review; the step is rescored from
/// all its points.
pub fn apply_control_point_rerun(
    stored: &StepResult,
    index: usize,
    fresh: ControlPointVerdict,
    weight: f64,
    meta: &ChangeMeta,
) -> Result<Applied, ApplyError> {
    let at = slot(stored, index)?;
    let before = score_step(weight, &stored.gated.points_controle);
    let old = stored.gated.points_controle[at].clone();
    let mut point = fresh;
    point.index = old.index;
    point.point.clone_from(&old.point);
    point.review.clone_from(&old.review);
    let mut result = stored.clone();
    result.gated.points_controle[at] = point.clone();
    let after = score_step(weight, &result.gated.points_controle);
    let e = entry(
        HistoryKind::ControlPointRerun,
        meta,
        Some(index),
        serde_json::to_value(&old).unwrap_or(Value::Null),
        serde_json::to_value(&point).unwrap_or(Value::Null),
        (before, after),
    );
    push(&mut result, &e);
    Ok(Applied {
        result,
        score: after,
    })
}

/// Sets (`Some`) or withdraws (`None`) the human verdict of point `index`; the AI verdict
/// stays; the step is rescored with the verdicts that count.
pub fn apply_review(
    stored: &StepResult,
    index: usize,
    review: Option<Review>,
    weight: f64,
    meta: &ChangeMeta,
) -> Result<Applied, ApplyError> {
    let at = slot(stored, index)?;
    let old = stored.gated.points_controle[at].review.clone();
    if review.is_none() && old.is_none() {
        return Err(ApplyError::NoReview(index));
    }
    let before = score_step(weight, &stored.gated.points_controle);
    let mut result = stored.clone();
    let kind = if review.is_some() {
        HistoryKind::Review
    } else {
        HistoryKind::ReviewWithdrawn
    };
    result.gated.points_controle[at].review.clone_from(&review);
    let after = score_step(weight, &result.gated.points_controle);
    let e = entry(
        kind,
        meta,
        Some(index),
        serde_json::to_value(&old).unwrap_or(Value::Null),
        serde_json::to_value(&review).unwrap_or(Value::Null),
        (before, after),
    );
    push(&mut result, &e);
    Ok(Applied {
        result,
        score: after,
    })
}

/// The reviewer's hint as it is added to a rerun's step instructions.
pub fn instructions_with_hint(step_instructions: &str, hint: Option<&str>) -> String {
    match hint.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) => format!("{step_instructions}\n\nConsigne du relecteur pour cette relance : {h}"),
        None => step_instructions.to_string(),
    }
}

#[cfg(test)]
mod tests;
