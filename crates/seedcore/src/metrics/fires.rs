//! Counting schedule fires by schedule name.
//!
//! A fire is a task the scheduler created; the task knows its schedule only by id, in its fire
//! key (`schedule:<id>:<time>`, see `model::schedule::fire_key`). Names are looked up once per
//! schedule and kept; a schedule deleted before its name was read is counted as `other`.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
};

use uuid::Uuid;

use super::labels::OTHER;
use crate::model::Task;
use crate::store::DynStore;

/// Names of the schedules seen so far, by id.
fn names() -> &'static Mutex<HashMap<Uuid, String>> {
    static NAMES: OnceLock<Mutex<HashMap<Uuid, String>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// Counts each task the scheduler created as a fire of its schedule and as a created task.
pub async fn count(store: &DynStore, created: &[Task]) {
    if !super::enabled() {
        return;
    }
    for task in created {
        super::task_created(&task.queue, &task.task_type);
        if let Some(id) = task.idempotency_key.as_deref().and_then(schedule_id) {
            super::schedule_fired(&name_of(store, id).await);
        }
    }
}

/// The schedule id in a fire key.
fn schedule_id(key: &str) -> Option<Uuid> {
    let rest = key.strip_prefix("schedule:")?;
    let (id, _) = rest.split_once(':')?;
    Uuid::parse_str(id).ok()
}

async fn name_of(store: &DynStore, id: Uuid) -> String {
    if let Some(name) = names().lock().expect("schedule names").get(&id) {
        return name.clone();
    }
    match store.get_schedule(id).await {
        Ok(schedule) => {
            let mut names = names().lock().expect("schedule names");
            names.insert(id, schedule.name.clone());
            schedule.name
        }
        Err(_) => OTHER.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::schedule::fire_key;

    #[test]
    fn a_fire_key_names_its_schedule() {
        let id = Uuid::new_v4();
        assert_eq!(schedule_id(&fire_key(id, Utc::now())), Some(id));
        assert_eq!(schedule_id("my-own-key"), None);
    }
}
