//! The queue list both backends answer: tasks per queue and status, and which queues are
//! paused, by name.

use std::collections::BTreeMap;

use crate::model::QueueInfo;

/// Queue views from `(queue, status, count)` rows and `(queue, paused)` rows, by name.
pub(crate) fn queue_infos(
    counts: Vec<(String, String, i64)>,
    paused: Vec<(String, bool)>,
) -> Vec<QueueInfo> {
    let mut queues: BTreeMap<String, QueueInfo> = Default::default();
    for (name, status, count) in counts {
        queue(&mut queues, name).counts.insert(status, count);
    }
    for (name, is_paused) in paused {
        queue(&mut queues, name).paused = is_paused;
    }
    queues.into_values().collect()
}

/// The view of the queue `name`, added unpaused and empty when new.
fn queue(queues: &mut BTreeMap<String, QueueInfo>, name: String) -> &mut QueueInfo {
    queues.entry(name.clone()).or_insert_with(|| QueueInfo {
        name,
        paused: false,
        counts: Default::default(),
    })
}
