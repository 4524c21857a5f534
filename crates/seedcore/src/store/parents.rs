//! The status each new task starts with, from its parents' statuses: shared by every create
//! path of both backends (single, batch, workflow, schedule fires).
//!
//! A backend reads the parents' current statuses in the transaction that inserts the children
//! (locked on PostgreSQL, under the single writer on SQLite), so no parent finishes unseen.

use std::collections::HashMap;

use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::model::{NewTask, TaskStatus};

/// The status (and error) each new task starts with, in order. A task's parents are either
/// `existing` (their current statuses, read under lock) or earlier tasks of the same batch.
pub(crate) fn starts(
    tasks: &[NewTask],
    existing: &HashMap<Uuid, TaskStatus>,
) -> StoreResult<Vec<(TaskStatus, Option<String>)>> {
    let mut known = existing.clone();
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let parents: Vec<(Uuid, TaskStatus)> = task
            .depends_on
            .iter()
            .filter_map(|id| match known.get(id) {
                Some(status) => Some((*id, *status)),
                None => {
                    missing.push(*id);
                    None
                }
            })
            .collect();
        let start = task.start(&parents);
        known.insert(task.id, start.0);
        out.push(start);
    }
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(StoreError::UnknownDependencies(missing));
    }
    Ok(out)
}

/// Every parent named by the tasks, once.
pub(crate) fn parents_of(tasks: &[NewTask]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = tasks
        .iter()
        .flat_map(|t| t.depends_on.iter().copied())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
