//! Roles and permissions: which role may do what on which resource. The database is
//! seeded from this table (idempotently), and every `/api` route names the permission
//! it requires.

/// Resources guarded by permissions.
pub const RESOURCES: &[&str] = &[
    "audits",
    "audit_configs",
    "fiches",
    "transcriptions",
    "batches",
    "automation",
    "chat",
    "users",
];

/// Actions on a resource.
pub const ACTIONS: &[&str] = &["read", "write", "delete"];

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

/// Whether `role` grants `action` on `resource`.
pub fn role_grants(role: &str, resource: &str, action: &str) -> bool {
    match role {
        "admin" => true,
        "manager" => resource != "users",
        "auditor" => match action {
            "read" => resource != "users",
            "write" => matches!(
                resource,
                "audits" | "fiches" | "transcriptions" | "batches" | "chat"
            ),
            _ => false,
        },
        "viewer" => action == "read" && resource != "users",
        _ => false,
    }
}

/// Every (resource, action) pair a role grants, for seeding.
pub fn permissions_of(role: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    for resource in RESOURCES {
        for action in ACTIONS {
            if role_grants(role, resource, action) {
                out.push((*resource, *action));
            }
        }
    }
    out
}

/// A permission as written in errors and `/api/auth/me`: `resource:action`.
pub fn permission_name(resource: &str, action: &str) -> String {
    format!("{resource}:{action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_grants_everything_and_viewer_only_reads() {
        assert_eq!(
            permissions_of("admin").len(),
            RESOURCES.len() * ACTIONS.len()
        );
        assert!(permissions_of("viewer").iter().all(|(_, a)| *a == "read"));
        assert!(!role_grants("viewer", "audits", "write"));
        assert!(!role_grants("viewer", "users", "read"));
    }

    #[test]
    fn auditor_runs_audits_but_cannot_edit_configs_or_users() {
        assert!(role_grants("auditor", "audits", "write"));
        assert!(!role_grants("auditor", "audit_configs", "write"));
        assert!(!role_grants("auditor", "users", "write"));
        assert!(!role_grants("auditor", "audits", "delete"));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        assert!(permissions_of("intruder").is_empty());
    }
}
