//! Queues as operators see them: whether paused, and how many tasks wait or ran in each.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// A queue and its tasks by status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct QueueInfo {
    /// The queue's name, as tasks give it.
    pub name: String,
    /// Paused queues keep their tasks but no worker claims them until resumed.
    pub paused: bool,
    /// Tasks in the queue per status (statuses with none are left out).
    pub counts: BTreeMap<String, i64>,
}
