//! A batch request checked (`fiche_ids`, or a sale-date range over the cached fiches),
//! its idempotency fingerprint, and the cached fiches a range selects.

use super::StartBatchRequest;
use crate::error::ApiError;
use callaudit_db::AsyncPgConnection;
use callaudit_db::batches::{self, Selection};
use callaudit_domain::batch::{MAX_SELECTED_FICHES, MAX_SELECTION_DAYS, collapse_fiche_ids};
use chrono::NaiveDate;
use uuid::Uuid;

/// Most groupes a selection may name.
const MAX_GROUPES: usize = 50;

/// A date-range selection, checked.
#[derive(Debug, Clone)]
pub(super) struct Range {
    from: NaiveDate,
    to: NaiveDate,
    groupes: Option<Vec<String>>,
    only_unaudited: bool,
    only_with_recordings: bool,
}

impl Range {
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from,
            "to": self.to,
            "groupes": self.groupes,
            "only_unaudited": self.only_unaudited,
            "only_with_recordings": self.only_with_recordings,
        })
    }
}

/// Where the fiches come from.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// Listed (checked, each once, in order).
    Fiches(Vec<String>),
    /// Selected from the cache.
    Range(Range),
}

/// A request, checked (400 with what is wrong).
#[derive(Debug, Clone)]
pub(super) struct Validated {
    pub(super) use_rlm: bool,
    pub(super) window: Option<u32>,
    pub(super) source: Source,
}

impl Validated {
    pub(super) fn of(body: &StartBatchRequest) -> Result<Self, ApiError> {
        let range_given = body.from.is_some()
            || body.to.is_some()
            || body.groupes.is_some()
            || body.only_unaudited.is_some()
            || body.only_with_recordings.is_some();
        let source = match (&body.fiche_ids, range_given) {
            (Some(_), true) => {
                return Err(ApiError::bad_request(
                    "give either fiche_ids or a date range (from, to, groupes, \
                     only_unaudited, only_with_recordings), not both",
                ));
            }
            (Some(ids), false) => {
                Source::Fiches(collapse_fiche_ids(ids).map_err(ApiError::bad_request)?)
            }
            (None, true) => Source::Range(Self::range(body)?),
            (None, false) => {
                return Err(ApiError::bad_request(
                    "give the fiches to audit: fiche_ids, or a date range from … to",
                ));
            }
        };
        Ok(Self {
            use_rlm: body.use_rlm.or(body.use_rlm_camel).unwrap_or(false),
            window: body.window,
            source,
        })
    }

    fn range(body: &StartBatchRequest) -> Result<Range, ApiError> {
        let (Some(from), Some(to)) = (body.from, body.to) else {
            return Err(ApiError::bad_request(
                "a date range needs both from and to (YYYY-MM-DD)",
            ));
        };
        if from > to {
            return Err(ApiError::bad_request(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_SELECTION_DAYS {
            return Err(ApiError::bad_request(format!(
                "the range spans {days} days; at most {MAX_SELECTION_DAYS}"
            )));
        }
        if let Some(groupes) = &body.groupes {
            if groupes.is_empty() || groupes.len() > MAX_GROUPES {
                return Err(ApiError::bad_request(format!(
                    "groupes must name 1 to {MAX_GROUPES} groupes (omit it for any groupe)"
                )));
            }
            if let Some(bad) = groupes
                .iter()
                .find(|g| g.trim().is_empty() || g.chars().count() > 100)
            {
                return Err(ApiError::bad_request(format!(
                    "groupes contains {bad:?}: a groupe is 1 to 100 characters"
                )));
            }
        }
        Ok(Range {
            from,
            to,
            groupes: body.groupes.clone(),
            only_unaudited: body.only_unaudited.unwrap_or(false),
            only_with_recordings: body.only_with_recordings.unwrap_or(false),
        })
    }

    /// What the request asks for, canonically (its idempotency fingerprint).
    pub(super) fn canonical(&self, audit_config_id: Uuid) -> String {
        let source = match &self.source {
            Source::Fiches(ids) => serde_json::json!({"fiche_ids": ids}),
            Source::Range(range) => range.json(),
        };
        serde_json::json!({
            "audit_config_id": audit_config_id,
            "use_rlm": self.use_rlm,
            "window": self.window,
            "source": source,
        })
        .to_string()
    }
}

/// The cached fiches a range matches (422 when none, or more than
/// [`MAX_SELECTED_FICHES`]).
pub(super) async fn select(
    conn: &mut AsyncPgConnection,
    range: &Range,
    audit_config_id: Uuid,
) -> Result<Vec<String>, ApiError> {
    let limit = i64::try_from(MAX_SELECTED_FICHES + 1).unwrap_or(i64::MAX);
    let fiches = batches::select_fiches(
        conn,
        &Selection {
            from: range.from,
            to: range.to,
            groupes: range.groupes.as_deref(),
            only_unaudited_with: range.only_unaudited.then_some(audit_config_id),
            only_with_recordings: range.only_with_recordings,
        },
        limit,
    )
    .await?;
    if fiches.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "no cached fiche sold from {} to {} matches the selection; fetch those days \
             first (POST /api/fiches/progressive-fetch, or GET /api/fiches/sales?date=…)",
            range.from, range.to
        )));
    }
    if fiches.len() > MAX_SELECTED_FICHES {
        return Err(ApiError::unprocessable(format!(
            "the selection matches more than {MAX_SELECTED_FICHES} fiches; narrow the range \
             or the groupes"
        )));
    }
    Ok(fiches)
}
