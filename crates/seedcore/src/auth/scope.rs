//! Scopes (what a token may do) and roles (named sets of scopes).
//!
//! Invariant: a scope's name is its wire form everywhere (CLI, database, OpenAPI, 403 details);
//! adding a scope means adding it to [`Scope::ALL`] and to the roles that should hold it.

use std::{fmt, str::FromStr};

/// One permission a route asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `tasks:read`: list and read tasks, workflows, queues and schedules.
    TasksRead,
    /// `tasks:write`: create tasks.
    TasksWrite,
    /// Cancel, run again, bulk actions.
    TasksAdmin,
    /// `facts:read`: list, search and read facts and tags.
    FactsRead,
    /// `facts:write`: create, change and delete facts.
    FactsWrite,
    /// `queues:admin`: pause and resume queues.
    QueuesAdmin,
    /// `schedules:admin`: create, change, delete and trigger schedules.
    SchedulesAdmin,
    /// `workflows:write`: create workflows.
    WorkflowsWrite,
    /// Claiming work over the API, for workers in other processes.
    WorkersPull,
    /// `metrics:read`: readiness, workers, the documents about the service.
    MetricsRead,
    /// `tokens:admin`: manage API tokens.
    TokensAdmin,
}

impl Scope {
    /// Every scope, in the order they are listed to people.
    pub const ALL: [Scope; 11] = [
        Scope::TasksRead,
        Scope::TasksWrite,
        Scope::TasksAdmin,
        Scope::FactsRead,
        Scope::FactsWrite,
        Scope::QueuesAdmin,
        Scope::SchedulesAdmin,
        Scope::WorkflowsWrite,
        Scope::WorkersPull,
        Scope::MetricsRead,
        Scope::TokensAdmin,
    ];

    /// The scope's name, e.g. `tasks:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TasksRead => "tasks:read",
            Scope::TasksWrite => "tasks:write",
            Scope::TasksAdmin => "tasks:admin",
            Scope::FactsRead => "facts:read",
            Scope::FactsWrite => "facts:write",
            Scope::QueuesAdmin => "queues:admin",
            Scope::SchedulesAdmin => "schedules:admin",
            Scope::WorkflowsWrite => "workflows:write",
            Scope::WorkersPull => "workers:pull",
            Scope::MetricsRead => "metrics:read",
            Scope::TokensAdmin => "tokens:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(name: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == name)
            .ok_or_else(|| format!("unknown scope '{name}' (known: {})", names(&Scope::ALL)))
    }
}

/// A named set of scopes, given to a token when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Reads tasks, facts and metrics.
    Viewer,
    /// Everything a viewer does, plus creating and managing tasks, facts, queues, schedules
    /// and workflows.
    Operator,
    /// Every scope, tokens included.
    Admin,
    /// A worker process: claims work, reads tasks, reads and writes facts.
    Worker,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Worker, Role::Operator, Role::Admin];

    /// The role's name, e.g. `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Worker => "worker",
        }
    }

    /// The scopes a token of this role gets unless it is created with its own list.
    pub fn scopes(self) -> Vec<Scope> {
        use Scope::*;
        match self {
            Role::Viewer => vec![TasksRead, FactsRead, MetricsRead],
            Role::Operator => vec![
                TasksRead,
                TasksWrite,
                TasksAdmin,
                FactsRead,
                FactsWrite,
                QueuesAdmin,
                SchedulesAdmin,
                WorkflowsWrite,
                MetricsRead,
            ],
            Role::Admin => Scope::ALL.to_vec(),
            Role::Worker => vec![WorkersPull, TasksRead, FactsRead, FactsWrite],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| {
                format!("unknown role '{name}' (known: viewer, operator, admin, worker)")
            })
    }
}

/// Scope names, comma-separated, for messages and listings.
pub fn names(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// A comma-separated list of scope names, each known, none twice.
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, String> {
    let mut scopes: Vec<Scope> = list
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        return Err("--scopes names no scope".into());
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_reads_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("tasks:delete".parse::<Scope>().is_err());
    }

    #[test]
    fn roles_grow_from_viewer_to_admin() {
        let viewer = Role::Viewer.scopes();
        let operator = Role::Operator.scopes();
        assert!(viewer.iter().all(|s| operator.contains(s)));
        assert!(!operator.contains(&Scope::TokensAdmin));
        assert_eq!(Role::Admin.scopes(), Scope::ALL.to_vec());
        assert!(Role::Worker.scopes().contains(&Scope::WorkersPull));
    }

    #[test]
    fn a_scope_list_refuses_unknown_names_and_empty_lists() {
        assert_eq!(
            parse_scopes("tasks:read, facts:read,tasks:read"),
            Ok(vec![Scope::TasksRead, Scope::FactsRead])
        );
        assert!(parse_scopes("tasks:read,nope").is_err());
        assert!(parse_scopes(" , ").is_err());
    }
}
