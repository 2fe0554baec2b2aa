//! Roles and permissions: which role may do what on which resource. The database is
//! seeded from this table (idempotently), and every `/api` route names the
//! [`Permission`] it requires.

use crate::status::named_enum;
use std::fmt;

named_enum! {
    /// Resources guarded by permissions.
    Resource {
        /// Audits, their steps and events.
        Audits = "audits",
        /// Audit configurations.
        AuditConfigs = "audit_configs",
        /// Fiches (CRM cache).
        Fiches = "fiches",
        /// Transcriptions.
        Transcriptions = "transcriptions",
        /// Batch audits.
        Batches = "batches",
        /// Automations.
        Automation = "automation",
        /// Chat.
        Chat = "chat",
        /// Human reviews of control points (and the calibration report).
        Reviews = "reviews",
        /// Personal data in clear (`pii:read`) and its erasure (`pii:delete`): admins only
        /// by default.
        Pii = "pii",
        /// Users and roles.
        Users = "users",
    }
}

named_enum! {
    /// Actions on a resource.
    Action {
        /// See.
        Read = "read",
        /// Create, change, start.
        Write = "write",
        /// Remove.
        Delete = "delete",
    }
}

/// A permission: an action on a resource, written `resource:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// What.
    pub resource: Resource,
    /// Which action.
    pub action: Action,
}

impl Permission {
    /// `audits:read`.
    pub const AUDITS_READ: Self = Self::new(Resource::Audits, Action::Read);
    /// `audits:write`.
    pub const AUDITS_WRITE: Self = Self::new(Resource::Audits, Action::Write);
    /// `audit_configs:read`.
    pub const AUDIT_CONFIGS_READ: Self = Self::new(Resource::AuditConfigs, Action::Read);
    /// `audit_configs:write`.
    pub const AUDIT_CONFIGS_WRITE: Self = Self::new(Resource::AuditConfigs, Action::Write);
    /// `audit_configs:delete`.
    pub const AUDIT_CONFIGS_DELETE: Self = Self::new(Resource::AuditConfigs, Action::Delete);
    /// `fiches:read`.
    pub const FICHES_READ: Self = Self::new(Resource::Fiches, Action::Read);
    /// `fiches:write`.
    pub const FICHES_WRITE: Self = Self::new(Resource::Fiches, Action::Write);
    /// `transcriptions:write`: transcribe a fiche's recordings on demand.
    pub const TRANSCRIPTIONS_WRITE: Self = Self::new(Resource::Transcriptions, Action::Write);
    /// `pii:read`: see transcripts, citations and chat unredacted (each read is logged).
    pub const PII_READ: Self = Self::new(Resource::Pii, Action::Read);
    /// `pii:delete`: erase a fiche's personal data.
    pub const PII_DELETE: Self = Self::new(Resource::Pii, Action::Delete);
    /// `reviews:read`.
    pub const REVIEWS_READ: Self = Self::new(Resource::Reviews, Action::Read);
    /// `reviews:write`: set or withdraw a human verdict on a control point.
    pub const REVIEWS_WRITE: Self = Self::new(Resource::Reviews, Action::Write);
    /// `chat:read`.
    pub const CHAT_READ: Self = Self::new(Resource::Chat, Action::Read);
    /// `chat:write`.
    pub const CHAT_WRITE: Self = Self::new(Resource::Chat, Action::Write);
    /// `batches:read`: see batch audits and follow their streams.
    pub const BATCHES_READ: Self = Self::new(Resource::Batches, Action::Read);
    /// `batches:write`: start and cancel batch audits.
    pub const BATCHES_WRITE: Self = Self::new(Resource::Batches, Action::Write);
    /// `automation:read`: see automation schedules and their runs.
    pub const AUTOMATION_READ: Self = Self::new(Resource::Automation, Action::Read);
    /// `automation:write`: create, change, delete and run automation schedules.
    pub const AUTOMATION_WRITE: Self = Self::new(Resource::Automation, Action::Write);

    /// The permission of `action` on `resource`.
    pub const fn new(resource: Resource, action: Action) -> Self {
        Self { resource, action }
    }

    /// Every permission, resource by resource.
    pub fn all() -> impl Iterator<Item = Permission> {
        Resource::ALL
            .iter()
            .flat_map(|r| Action::ALL.iter().map(|a| Permission::new(*r, *a)))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// The built-in roles, most powerful first.
pub const ROLES: &[(&str, &str)] = &[
    ("admin", "Everything, including users and roles"),
    (
        "manager",
        "Everything but users: configs, automations, audits, deletes",
    ),
    (
        "auditor",
        "Runs and reruns audits, fetches fiches, chats; reads the rest",
    ),
    ("viewer", "Reads audits, fiches and results"),
];

/// Whether `role` grants `permission`.
pub fn role_grants(role: &str, permission: Permission) -> bool {
    let Permission { resource, action } = permission;
    match role {
        "admin" => true,
        "manager" => !matches!(resource, Resource::Users | Resource::Pii),
        "auditor" => match action {
            Action::Read => !matches!(resource, Resource::Users | Resource::Pii),
            Action::Write => matches!(
                resource,
                Resource::Audits
                    | Resource::Fiches
                    | Resource::Transcriptions
                    | Resource::Batches
                    | Resource::Chat
                    | Resource::Reviews
            ),
            Action::Delete => false,
        },
        "viewer" => action == Action::Read && !matches!(resource, Resource::Users | Resource::Pii),
        _ => false,
    }
}

/// Every permission a role grants, for seeding.
pub fn permissions_of(role: &str) -> Vec<Permission> {
    Permission::all()
        .filter(|p| role_grants(role, *p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_grants_everything_and_viewer_only_reads() {
        assert_eq!(
            permissions_of("admin").len(),
            Resource::ALL.len() * Action::ALL.len()
        );
        assert!(
            permissions_of("viewer")
                .iter()
                .all(|p| p.action == Action::Read)
        );
        assert!(!role_grants("viewer", Permission::AUDITS_WRITE));
        assert!(!role_grants(
            "viewer",
            Permission::new(Resource::Users, Action::Read)
        ));
    }

    #[test]
    fn auditor_runs_audits_but_cannot_edit_configs_or_users() {
        assert!(role_grants("auditor", Permission::AUDITS_WRITE));
        assert!(!role_grants("auditor", Permission::AUDIT_CONFIGS_WRITE));
        assert!(!role_grants(
            "auditor",
            Permission::new(Resource::Users, Action::Write)
        ));
        assert!(!role_grants(
            "auditor",
            Permission::new(Resource::Audits, Action::Delete)
        ));
    }

    #[test]
    fn only_admins_read_personal_data_in_clear_or_erase_it() {
        for role in ["manager", "auditor", "viewer"] {
            assert!(!role_grants(role, Permission::PII_READ), "{role}");
            assert!(!role_grants(role, Permission::PII_DELETE), "{role}");
        }
        assert!(role_grants("admin", Permission::PII_READ));
        assert!(role_grants("admin", Permission::PII_DELETE));
        assert!(role_grants("manager", Permission::AUDITS_READ));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        assert!(permissions_of("intruder").is_empty());
    }

    #[test]
    fn a_permission_is_written_resource_colon_action() {
        assert_eq!(
            Permission::AUDIT_CONFIGS_READ.to_string(),
            "audit_configs:read"
        );
    }
}
