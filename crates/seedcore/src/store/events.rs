//! The audit trail read as a stream: each status change with the task's queue, type and
//! workflow, in `seq` order, for the live event stream (`GET /api/v1/events`).
//!
//! Invariant: `seq` increases with every event written; a reader that has delivered up to
//! `seq` N asks for events after N. A `seq` is assigned when its event is inserted, not when
//! it commits, so a reader may see N+1 before N is visible (see `api::event_hub` for how
//! that gap is held).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::TaskStatus;
use crate::store::StoreResult;
use crate::store::rows::{Dialect, parse_status};

/// Most events one read of the trail returns.
pub const EVENT_PAGE: i64 = 1000;

/// One status change of a task, as the event stream sends it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TaskChange {
    /// Position in the audit trail; the stream's event id.
    pub seq: i64,
    /// The task that changed.
    pub task_id: Uuid,
    /// The status after the change.
    pub status: TaskStatus,
    /// The status before; null when the task was created.
    pub from_status: Option<TaskStatus>,
    /// What happened: created, queued, claimed, completed, retry, failed, cancelled, rescued, released.
    pub kind: String,
    /// The task's type; null when the task was deleted since.
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// The task's queue; null when the task was deleted since.
    pub queue: Option<String>,
    /// The task's attempt count at that moment.
    pub attempt: i32,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The workflow the task belongs to, if any.
    pub workflow_id: Option<Uuid>,
    /// The error stored with a failure, a retry or a rescue.
    pub error: Option<String>,
}

/// A row of the trail joined with its task (left join: the task may be gone).
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow<D: Dialect> {
    seq: i64,
    task_id: D::Id,
    at: D::Time,
    kind: String,
    from_status: Option<String>,
    to_status: String,
    attempt: i32,
    error: Option<String>,
    task_type: Option<String>,
    queue: Option<String>,
    workflow_id: Option<D::Id>,
}

impl<D: Dialect> ChangeRow<D> {
    pub(crate) fn into_change(self) -> StoreResult<TaskChange> {
        Ok(TaskChange {
            seq: self.seq,
            task_id: D::id(self.task_id)?,
            status: parse_status(&self.to_status)?,
            from_status: self.from_status.as_deref().map(parse_status).transpose()?,
            kind: self.kind,
            task_type: self.task_type,
            queue: self.queue,
            attempt: self.attempt,
            at: D::time(self.at)?,
            workflow_id: self.workflow_id.map(D::id).transpose()?,
            error: self.error,
        })
    }
}

/// Rows into changes, failing on the first that does not decode.
pub(crate) fn changes<D: Dialect>(rows: Vec<ChangeRow<D>>) -> StoreResult<Vec<TaskChange>> {
    rows.into_iter().map(ChangeRow::into_change).collect()
}
