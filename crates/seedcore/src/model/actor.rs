//! Who acted on a task: the name the audit trail records beside each event.
//!
//! An actor is stored as text, `<kind>:<name>` or a bare word:
//! - `token:<name>`: an API call made with the token of that name;
//! - `anonymous`: an API call without a token (authentication off, or a loopback server
//!   that has no token yet);
//! - `worker:<id>`: the worker process that claimed, finished or released the task;
//! - `schedule:<name>`: the schedule whose fire created the task;
//! - `system:<what>`: seedcore itself, e.g. `system:lease-expired` when a lease ran out and
//!   `system:dependencies` when a parent's outcome moved a waiting child on (a child cancelled
//!   because its parent was cancelled names whoever cancelled the parent instead);
//! - `system:import`: tasks brought in by `db import-legacy`.
//!
//! Invariant: every statement that changes a task's status names its actor in the row's
//! `actor` column, except the workers' own writes, which leave it null (the claim clears it):
//! the event triggers read null as the task's worker. So a name never outlives the change it
//! was written for.

use serde::{Deserialize, Serialize};

/// The actor of tasks written by `db import-legacy`.
pub const IMPORTED_BY: &str = "system:import";

/// Who acted: see the module docs for the forms it takes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    /// An API call authenticated by the token of this name.
    pub fn token(name: &str) -> Actor {
        Actor(format!("token:{name}"))
    }

    /// An API call without a token.
    pub fn anonymous() -> Actor {
        Actor("anonymous".into())
    }

    /// The schedule of this name firing.
    pub fn schedule(name: &str) -> Actor {
        Actor(format!("schedule:{name}"))
    }

    /// seedcore itself, for the named reason.
    pub fn system(what: &str) -> Actor {
        Actor(format!("system:{what}"))
    }

    /// An actor as stored: any text the module docs describe.
    pub fn from_stored(text: String) -> Actor {
        Actor(text)
    }

    /// The stored text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_actor_is_stored_with_its_prefix() {
        assert_eq!(Actor::token("ci").as_str(), "token:ci");
        assert_eq!(Actor::anonymous().as_str(), "anonymous");
        assert_eq!(Actor::schedule("nightly").as_str(), "schedule:nightly");
        assert_eq!(
            Actor::system("lease-expired").as_str(),
            "system:lease-expired"
        );
    }
}
