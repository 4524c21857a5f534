//! Bulk actions on every task matching a filter: what one is (kind, filter, progress), and
//! the rules both backends apply in each batch.
//!
//! Invariants (kept by both backends):
//! - an action walks the matching tasks by id, at most `batch` ids per transaction; the
//!   changes of a batch and the action's new cursor and counts commit together, so a batch is
//!   applied once whatever crashes;
//! - only tasks created at or before the moment the action was accepted (`bound`) are
//!   considered, and only those in a status the action applies to (cancel: not finished; run:
//!   created, failed or cancelled; delete: finished): `matched` counts those read, `done` those
//!   changed, `skipped` those that changed under the action (e.g. finished before the cancel
//!   got there) or that a rule keeps (a finished task a blocked task still waits on is not
//!   deleted);
//! - a batch applies only while the process holds the action's lease (`owner`); one that lost
//!   it changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::TaskStatus;
use crate::store::rows::Dialect;
use crate::store::{ParamFilter, StoreError, StoreResult, TaskFilter};

/// What a bulk action does to each matching task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Cancel every task that has not finished (a running one's handler is told to stop).
    Cancel,
    /// Queue again every created, failed or cancelled task.
    Run,
    /// Delete every finished task (completed, failed, cancelled).
    Delete,
}

impl ActionKind {
    /// Every kind, in the order the API lists them.
    pub const ALL: [ActionKind; 3] = [ActionKind::Cancel, ActionKind::Run, ActionKind::Delete];

    /// The kind as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Cancel => "cancel",
            ActionKind::Run => "run",
            ActionKind::Delete => "delete",
        }
    }

    /// The kind spelt `text`, if any.
    pub fn parse(text: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The statuses of the tasks the action applies to.
    pub fn applies_to(self) -> &'static [TaskStatus] {
        const FINISHED: [TaskStatus; 3] = [
            TaskStatus::Completed,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ];
        match self {
            ActionKind::Cancel => &TaskStatus::CANCELLABLE,
            ActionKind::Run => &TaskStatus::RUNNABLE,
            ActionKind::Delete => &FINISHED,
        }
    }

    /// Whether tasks it applies to may have moved to a history table.
    pub fn reaches_finished(self) -> bool {
        self != ActionKind::Cancel
    }
}

/// Which tasks an action applies to: the task list's filters (see [`TaskFilter`]). Every field
/// is optional; all given ones must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionFilter {
    /// Only tasks in this status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// Only tasks of this type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Only tasks in this queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Only tasks in this domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Only tasks of this workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<Uuid>,
    /// Only tasks created strictly after this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<DateTime<Utc>>,
    /// Only tasks created strictly before this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<DateTime<Utc>>,
    /// Only the tasks that depend on this one (its children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Uuid>,
    /// Case-insensitive substring of the parameters as JSON text or of the error; literal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// `path=value` parameter filters, as the task list's `params.<path>=<value>` takes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
}

impl ActionFilter {
    /// The filters it shares with the task list.
    pub fn task_filter(&self) -> TaskFilter {
        TaskFilter {
            task_type: self.task_type.clone(),
            queue: self.queue.clone(),
            domain: self.domain.clone(),
            workflow_id: self.workflow_id,
            parent: self.parent,
            created_after: self.created_after,
            created_before: self.created_before,
            q: self.q.clone(),
            // Checked when the action was accepted.
            params: self
                .params
                .iter()
                .filter_map(|p| ParamFilter::parse(p))
                .collect(),
        }
    }

    /// The statuses to read: those the action applies to, narrowed to the filter's status.
    pub fn statuses(&self, kind: ActionKind) -> Vec<&'static str> {
        kind.applies_to()
            .iter()
            .filter(|s| self.status.is_none_or(|wanted| wanted == **s))
            .map(|s| s.as_str())
            .collect()
    }
}

/// Where an action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionState {
    /// Batches are still being applied.
    Running,
    /// Every matching task was handled.
    Completed,
    /// Stopped on an error (see `error`); the batches before it stay applied.
    Failed,
}

impl ActionState {
    /// The state as the API and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Running => "running",
            ActionState::Completed => "completed",
            ActionState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> StoreResult<ActionState> {
        match text {
            "running" => Ok(ActionState::Running),
            "completed" => Ok(ActionState::Completed),
            "failed" => Ok(ActionState::Failed),
            other => Err(StoreError::Corrupt(format!(
                "unknown action state '{other}'"
            ))),
        }
    }
}

/// A bulk action and its progress.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TaskAction {
    /// The action's id.
    pub id: Uuid,
    /// What it does to each task.
    pub action: ActionKind,
    /// Which tasks it applies to.
    pub filter: ActionFilter,
    /// Where it stands.
    pub state: ActionState,
    /// Tasks read so far that the filter matches and the action applies to.
    pub matched: i64,
    /// Of those, the tasks changed.
    pub done: i64,
    /// Of those, the tasks left as they were (changed meanwhile, or kept by a rule).
    pub skipped: i64,
    /// When it was accepted; tasks created later are not touched.
    pub created_at: DateTime<Utc>,
    /// When it completed or failed.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why a failed action stopped.
    pub error: Option<String>,
    /// Who asked for it (`token:<name>`, or `anonymous` without a token): the audit trail
    /// names it on every change the action makes.
    pub actor: Option<String>,
    /// The greatest task id handled so far (batches walk ids in order).
    #[serde(skip)]
    pub cursor: Option<Uuid>,
    /// Only tasks created at or before this instant are touched.
    #[serde(skip)]
    pub bound: DateTime<Utc>,
}

/// An action to store, as the API accepted it.
#[derive(Clone, Debug)]
pub struct NewAction {
    /// A fresh id.
    pub id: Uuid,
    /// What to do.
    pub action: ActionKind,
    /// To which tasks.
    pub filter: ActionFilter,
    /// Who asked (`token:<name>`), when known.
    pub actor: Option<String>,
}

/// A `task_actions` row.
#[derive(sqlx::FromRow)]
pub(crate) struct ActionRow<D: Dialect> {
    id: D::Id,
    action: String,
    filter: D::Json<ActionFilter>,
    state: String,
    matched: i64,
    done: i64,
    skipped: i64,
    cursor: Option<D::Id>,
    bound: D::Time,
    actor: Option<String>,
    error: Option<String>,
    created_at: D::Time,
    finished_at: Option<D::Time>,
}

impl TaskAction {
    /// The actor the action's changes are recorded under.
    pub fn actor(&self) -> &str {
        self.actor.as_deref().unwrap_or("anonymous")
    }
}

impl<D: Dialect> ActionRow<D> {
    pub(crate) fn into_action(self) -> StoreResult<TaskAction> {
        Ok(TaskAction {
            id: D::id(self.id)?,
            action: ActionKind::parse(&self.action)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown action '{}'", self.action)))?,
            filter: D::json(self.filter)?,
            state: ActionState::parse(&self.state)?,
            matched: self.matched,
            done: self.done,
            skipped: self.skipped,
            created_at: D::time(self.created_at)?,
            finished_at: self.finished_at.map(D::time).transpose()?,
            error: self.error,
            actor: self.actor,
            cursor: self.cursor.map(D::id).transpose()?,
            bound: D::time(self.bound)?,
        })
    }
}

/// Why a task that exists was not deleted.
pub(crate) fn not_deletable(status: TaskStatus) -> StoreError {
    if status.is_final() {
        StoreError::Conflict("The task cannot be deleted: a blocked task still waits on it".into())
    } else {
        StoreError::Conflict(format!(
            "The task is {}: only completed, failed or cancelled tasks can be deleted",
            status.as_str()
        ))
    }
}
