//! The queue list both backends answer: tasks per queue and status, and each queue's settings
//! (paused, concurrency limit), by name.

use std::collections::BTreeMap;

use crate::model::QueueInfo;

/// A queue's row in the `queues` table: its name, whether paused, its concurrency limit.
pub(crate) type QueueSettings = (String, bool, Option<i32>);

/// Queue views from `(queue, status, count)` rows and the queues' settings rows, by name.
pub(crate) fn queue_infos(
    counts: Vec<(String, String, i64)>,
    settings: Vec<QueueSettings>,
) -> Vec<QueueInfo> {
    let mut queues: BTreeMap<String, QueueInfo> = Default::default();
    for (name, status, count) in counts {
        queue(&mut queues, name).counts.insert(status, count);
    }
    for (name, paused, concurrency) in settings {
        let info = queue(&mut queues, name);
        info.paused = paused;
        info.concurrency = concurrency;
    }
    queues.into_values().collect()
}

/// The view of the queue `name`, added unpaused and empty when new.
fn queue(queues: &mut BTreeMap<String, QueueInfo>, name: String) -> &mut QueueInfo {
    queues.entry(name.clone()).or_insert_with(|| QueueInfo {
        name,
        paused: false,
        concurrency: None,
        counts: Default::default(),
    })
}
