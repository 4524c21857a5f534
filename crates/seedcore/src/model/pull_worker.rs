//! Workers that claim over HTTP (the pull API), as registered: what they take and the state an
//! operator set for them.
//!
//! Invariant: a pull worker also has a `workers` row (it is listed with the built-in ones and
//! judged active, stopped or lost the same way); its id is `pull:<uuid>`, so every task it runs
//! carries that as `worker_id` and the audit trail names it `worker:pull:<uuid>`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What an operator asks of a pull worker, answered on its every heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerCommand {
    /// Claim and run tasks.
    Running,
    /// Finish the tasks held, claim nothing more.
    Quiet,
    /// Stop: release what is held and exit.
    Terminate,
}

impl WorkerCommand {
    /// The state's name as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerCommand::Running => "running",
            WorkerCommand::Quiet => "quiet",
            WorkerCommand::Terminate => "terminate",
        }
    }

    /// The state of that name, if any.
    pub fn parse(text: &str) -> Option<WorkerCommand> {
        [
            WorkerCommand::Running,
            WorkerCommand::Quiet,
            WorkerCommand::Terminate,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A worker registered through `POST /api/v1/workers`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct PullWorker {
    /// `pull:<uuid>`, given at registration.
    pub id: String,
    /// The name the worker gave itself, for people.
    pub name: String,
    /// The queues it serves; null serves every queue.
    pub queues: Option<Vec<String>>,
    /// The task types it runs; null runs every type.
    pub types: Option<Vec<String>>,
    /// Free-form labels, for operators.
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    /// The client library that runs it.
    pub client_name: String,
    /// That library's version.
    pub client_version: String,
    /// Tasks it runs at once.
    pub concurrency: i32,
    /// What the operator asks of it.
    pub state: WorkerCommand,
}

impl PullWorker {
    /// A fresh worker id.
    pub fn new_id() -> String {
        format!("pull:{}", uuid::Uuid::new_v4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name() {
        for state in [
            WorkerCommand::Running,
            WorkerCommand::Quiet,
            WorkerCommand::Terminate,
        ] {
            assert_eq!(WorkerCommand::parse(state.as_str()), Some(state));
        }
        assert_eq!(WorkerCommand::parse("sleeping"), None);
    }
}
