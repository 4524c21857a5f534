//! Queues as operators see them: whether paused, their concurrency limit, and how many tasks
//! wait or ran in each.

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
    /// At most this many of the queue's tasks run at once, across every process and pull
    /// worker; null: no limit.
    #[schema(minimum = 1, maximum = 100000)]
    pub concurrency: Option<i32>,
    /// Tasks in the queue per status (statuses with none are left out).
    pub counts: BTreeMap<String, i64>,
}
