//! What a chat is about, read from Postgres: the audit (its configuration as it ran, its
//! stored steps) or the fiche, turned into the system context by `domain::chat`, and the
//! fiche's transcripts the answer's quotes are checked against.

use crate::error::ApiError;
use callaudit_db::AsyncPgConnection;
use callaudit_db::audits::AuditRow;
use callaudit_db::{step_results, transcriptions};
use callaudit_domain::analysis::StepAnalysis;
use callaudit_domain::audit_config::AuditConfigSpec;
use callaudit_domain::chat::{AuditFacts, StepFacts, StepOutcomeFacts, audit_context};
use callaudit_domain::transcript::Transcript;

/// The transcripts of the fiche's recordings that are transcribed, in CRM order (a
/// recording not transcribed yet is left out: a chat does not wait for it).
pub(crate) async fn transcripts(
    conn: &mut AsyncPgConnection,
    fiche_id: &str,
) -> Result<Vec<Transcript>, ApiError> {
    Ok(transcriptions::of_fiche(conn, fiche_id)
        .await?
        .into_iter()
        .filter_map(|(_, t)| t)
        .collect())
}

/// The system context of a chat about `audit`: its summary, then every step of the
/// configuration it ran with (its snapshot, else the configuration now) with the stored
/// result of each step analysed so far.
pub(crate) async fn of_audit(
    conn: &mut AsyncPgConnection,
    audit: &AuditRow,
) -> Result<String, ApiError> {
    let spec: AuditConfigSpec =
        callaudit_db::audits::config_of(conn, audit)
            .await
            .map_err(|e| match e {
                callaudit_db::audits::AuditConfigError::Db(e) => ApiError::from(e),
                other => ApiError::internal(format!("audit {}: {other}", audit.id)),
            })?;
    let stored = step_results::of_audit(conn, audit.id).await?;
    // An unreadable stored step is shown as not analysed rather than failing the chat.
    let analyses: Vec<(i32, f64, _, Option<StepAnalysis>)> = stored
        .into_iter()
        .map(|r| {
            let analysis = serde_json::from_value::<StepAnalysis>(r.raw_result).ok();
            (r.position, r.score, r.conforme, analysis)
        })
        .collect();
    let steps: Vec<StepFacts<'_>> = spec
        .steps
        .iter()
        .map(|s| StepFacts {
            spec: s,
            result: analyses
                .iter()
                .find(|(position, ..)| *position == s.position)
                .and_then(|(_, score, conforme, analysis)| {
                    analysis.as_ref().map(|analysis| StepOutcomeFacts {
                        score: *score,
                        conforme: *conforme,
                        analysis,
                    })
                }),
        })
        .collect();
    let audit_id = audit.id.to_string();
    Ok(audit_context(
        &AuditFacts {
            audit_id: &audit_id,
            fiche_id: &audit.fiche_id,
            config_name: &spec.name,
            status: audit.status.as_str(),
            score: audit.score,
            niveau: audit.niveau,
            critical: audit.critical,
        },
        &steps,
    ))
}
