//! Audit configurations with their steps and control points.

use crate::schema::{audit_configs, audit_control_points, audit_steps, audits};
use crate::{DbError, DbResult};
use callaudit_domain::audit_config::{AuditConfigSpec, StepSpec};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

type ConfigRow = (Uuid, String, String, bool, DateTime<Utc>, DateTime<Utc>);
type StepRow = (Uuid, i32, String, String, f64, bool);
/// (id, name, active, step count, created_at).
pub type ConfigListRow = (Uuid, String, bool, i64, DateTime<Utc>);

/// A stored configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredAuditConfig {
    /// Id.
    pub id: Uuid,
    /// Active configurations can be used for new audits.
    pub active: bool,
    /// Content.
    pub spec: AuditConfigSpec,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

async fn insert_steps(
    conn: &mut AsyncPgConnection,
    config_id: Uuid,
    steps: &[StepSpec],
) -> DbResult<()> {
    for step in steps {
        let step_id = Uuid::new_v4();
        diesel::insert_into(audit_steps::table)
            .values((
                audit_steps::id.eq(step_id),
                audit_steps::audit_config_id.eq(config_id),
                audit_steps::position.eq(step.position),
                audit_steps::name.eq(step.name.trim()),
                audit_steps::instructions.eq(&step.instructions),
                audit_steps::weight.eq(step.weight),
                audit_steps::critical.eq(step.critical),
            ))
            .execute(&mut *conn)
            .await?;
        for (i, cp) in step.control_points.iter().enumerate() {
            diesel::insert_into(audit_control_points::table)
                .values((
                    audit_control_points::id.eq(Uuid::new_v4()),
                    audit_control_points::step_id.eq(step_id),
                    audit_control_points::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    audit_control_points::description.eq(cp.trim()),
                ))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Stores a new (validated) configuration; all or nothing.
pub async fn create(
    conn: &mut AsyncPgConnection,
    spec: &AuditConfigSpec,
    created_by: Option<Uuid>,
) -> DbResult<Uuid> {
    let id = Uuid::new_v4();
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::insert_into(audit_configs::table)
            .values((
                audit_configs::id.eq(id),
                audit_configs::name.eq(spec.name.trim()),
                audit_configs::description.eq(&spec.description),
                audit_configs::created_by.eq(created_by),
            ))
            .execute(&mut *conn)
            .await?;
        insert_steps(conn, id, &spec.steps).await
    })
    .await?;
    Ok(id)
}

/// Replaces name, description and steps of a configuration; `false` when it does not exist.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    spec: &AuditConfigSpec,
    active: bool,
) -> DbResult<bool> {
    conn.transaction::<_, DbError, _>(async |conn| {
        let updated = diesel::update(audit_configs::table.find(id))
            .set((
                audit_configs::name.eq(spec.name.trim()),
                audit_configs::description.eq(&spec.description),
                audit_configs::active.eq(active),
                audit_configs::updated_at.eq(Utc::now()),
            ))
            .execute(&mut *conn)
            .await?;
        if updated == 0 {
            return Ok(false);
        }
        diesel::delete(audit_steps::table.filter(audit_steps::audit_config_id.eq(id)))
            .execute(&mut *conn)
            .await?;
        insert_steps(conn, id, &spec.steps).await?;
        Ok(true)
    })
    .await
}

/// Loads one configuration with its steps (by position) and control points (in order).
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<Option<StoredAuditConfig>> {
    let row: Option<ConfigRow> = audit_configs::table
        .find(id)
        .select((
            audit_configs::id,
            audit_configs::name,
            audit_configs::description,
            audit_configs::active,
            audit_configs::created_at,
            audit_configs::updated_at,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((id, name, description, active, created_at, updated_at)) = row else {
        return Ok(None);
    };
    let steps: Vec<StepRow> = audit_steps::table
        .filter(audit_steps::audit_config_id.eq(id))
        .order(audit_steps::position.asc())
        .select((
            audit_steps::id,
            audit_steps::position,
            audit_steps::name,
            audit_steps::instructions,
            audit_steps::weight,
            audit_steps::critical,
        ))
        .load(conn)
        .await?;
    let step_ids: Vec<Uuid> = steps.iter().map(|s| s.0).collect();
    let points: Vec<(Uuid, String)> = audit_control_points::table
        .filter(audit_control_points::step_id.eq_any(&step_ids))
        .order((
            audit_control_points::step_id,
            audit_control_points::position.asc(),
        ))
        .select((
            audit_control_points::step_id,
            audit_control_points::description,
        ))
        .load(conn)
        .await?;
    let steps = steps
        .into_iter()
        .map(
            |(sid, position, name, instructions, weight, critical)| StepSpec {
                position,
                name,
                instructions,
                weight,
                critical,
                control_points: points
                    .iter()
                    .filter(|(p, _)| *p == sid)
                    .map(|(_, d)| d.clone())
                    .collect(),
            },
        )
        .collect();
    Ok(Some(StoredAuditConfig {
        id,
        active,
        spec: AuditConfigSpec {
            name,
            description,
            steps,
        },
        created_at,
        updated_at,
    }))
}

/// Summaries of every configuration, newest first: (id, name, active, step count).
pub async fn list(conn: &mut AsyncPgConnection) -> DbResult<Vec<ConfigListRow>> {
    let configs: Vec<(Uuid, String, bool, DateTime<Utc>)> = audit_configs::table
        .order(audit_configs::created_at.desc())
        .select((
            audit_configs::id,
            audit_configs::name,
            audit_configs::active,
            audit_configs::created_at,
        ))
        .load(conn)
        .await?;
    let counts: Vec<(Uuid, i64)> = audit_steps::table
        .group_by(audit_steps::audit_config_id)
        .select((audit_steps::audit_config_id, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(configs
        .into_iter()
        .map(|(id, name, active, created)| {
            let n = counts
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            (id, name, active, n, created)
        })
        .collect())
}

/// Outcome of a delete.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted.
    Deleted,
    /// No such configuration.
    NotFound,
    /// Audits reference it (count): deactivate instead.
    InUse(i64),
}

/// Deletes a configuration unless audits reference it.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> DbResult<DeleteOutcome> {
    let used: i64 = audits::table
        .filter(audits::audit_config_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    if used > 0 {
        return Ok(DeleteOutcome::InUse(used));
    }
    let n = diesel::delete(audit_configs::table.find(id))
        .execute(conn)
        .await?;
    Ok(if n == 0 {
        DeleteOutcome::NotFound
    } else {
        DeleteOutcome::Deleted
    })
}
