//! The task state machine against each backend: every (status, event) pair is driven through
//! the store and its outcome compared with `model::transition`, and the dependency rule of the
//! PostgreSQL settle function and of the SQLite trigger is compared with `waiting_on`.
//!
//! Tasks reach their status through the store as workers and clients move them; only a task
//! with parents in `created` (which no path reaches) is put there by a direct update. Each task
//! waits in a queue of its own, so a claim takes it alone.

mod common;

use std::{collections::BTreeSet, time::Duration};

use chrono::Utc;
use common::*;
use seedcore::{
    model::{
        Actor, NewTask, TaskStatus,
        task::{Waiting, dependency_reason, waiting_on},
        transition::{self, Event, attempts_left, parent_done, parents_settled},
    },
    store::{Claim, Lease, Outcome, Store},
};
use serde_json::json;
use uuid::Uuid;

use TaskStatus::*;

const LONG_LEASE: Duration = Duration::from_secs(3600);
/// A lease that has expired by the time the reaper looks.
const SHORT_LEASE: Duration = Duration::from_millis(1);

/// How a task under test is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No parents; `max_attempts` attempts allowed.
    Alone { max_attempts: i32 },
    /// One parent, running (its lease held by the test) when the event happens.
    Waiting { run_on_failure: bool },
}

/// A task in the status under test, with what the test holds to drive it.
struct Subject {
    id: Uuid,
    /// The lease a worker holds or held on it (a token it never had when never claimed).
    lease: Lease,
    /// The running parent and its lease, for a waiting task.
    parent: Option<Lease>,
}

/// The events the table drives; a parent's settlement is its completing or failing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Run,
    Cancel,
    Claim,
    Complete,
    Fail,
    FailRetryable,
    LeaseExpired,
    Release,
    ParentCompletes,
    ParentFails,
}

const STEPS: [Step; 10] = [
    Step::Run,
    Step::Cancel,
    Step::Claim,
    Step::Complete,
    Step::Fail,
    Step::FailRetryable,
    Step::LeaseExpired,
    Step::Release,
    Step::ParentCompletes,
    Step::ParentFails,
];

fn queue_of_its_own() -> String {
    format!("q-{}", Uuid::new_v4().simple())
}

fn claim_of(queue: &str, lease: Duration) -> Claim {
    Claim {
        queues: Some(vec![queue.to_string()]),
        ..Claim::any("transitions-test", 10, lease)
    }
}

/// Creates a task that waits in a queue of its own.
async fn create(store: &dyn Store, template: NewTask) -> (Uuid, String) {
    let queue = queue_of_its_own();
    let task = store
        .create_task(NewTask {
            queue: queue.clone(),
            ..template
        })
        .await
        .expect("create a task");
    (task.id, queue)
}

/// Claims the task waiting alone in `queue`.
async fn claim(store: &dyn Store, id: Uuid, queue: &str, lease: Duration) -> Lease {
    let claimed = store
        .claim_tasks(&claim_of(queue, lease))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1, "one ready task in its queue");
    assert_eq!(claimed[0].task.id, id);
    claimed[0].lease
}

async fn finish(store: &dyn Store, lease: Lease, outcome: Outcome) -> bool {
    store
        .finish_attempt(lease, outcome)
        .await
        .expect("finish an attempt")
}

fn retry_now() -> Outcome {
    Outcome::Retry {
        error: "try again".into(),
        run_at: Utc::now() - chrono::Duration::seconds(1),
    }
}

/// Moves a claimed task (running under `lease`) to `status` as a worker or client would.
async fn from_running(store: &dyn Store, id: Uuid, lease: Lease, status: TaskStatus) {
    match status {
        Running => {}
        Queued => assert_eq!(store.release(&[lease]).await.expect("release"), 1),
        Retry => assert!(finish(store, lease, retry_now()).await),
        Completed => assert!(finish(store, lease, Outcome::Completed(json!({}))).await),
        Failed => assert!(finish(store, lease, Outcome::Failed("boom".into())).await),
        Cancelled => {
            store
                .cancel_task(id, &Actor::anonymous())
                .await
                .expect("cancel");
        }
        Created | Blocked => unreachable!("no worker leaves a task {status}"),
    }
    assert_eq!(store.get_task(id).await.expect("read").status, status);
}

/// A task in `status`, made as `kind` says; `lease` is how long a claim of it lasts.
async fn subject(
    store: &dyn Store,
    raw: &RawDb,
    status: TaskStatus,
    kind: Kind,
    lease: Duration,
) -> Subject {
    let never_held = |id| Lease {
        task_id: id,
        token: Uuid::new_v4(),
    };
    match kind {
        Kind::Alone { max_attempts } => {
            let template = NewTask {
                max_attempts,
                run_immediately: status != Created,
                ..NewTask::of_type("echo")
            };
            let (id, queue) = create(store, template).await;
            if status == Created {
                return Subject {
                    id,
                    lease: never_held(id),
                    parent: None,
                };
            }
            let held = claim(store, id, &queue, lease).await;
            from_running(store, id, held, status).await;
            Subject {
                id,
                lease: held,
                parent: None,
            }
        }
        Kind::Waiting { run_on_failure } => {
            waiting(store, raw, status, run_on_failure, lease).await
        }
    }
}

/// A task in `status` whose one parent is running when the event happens.
async fn waiting(
    store: &dyn Store,
    raw: &RawDb,
    status: TaskStatus,
    run_on_failure: bool,
    lease: Duration,
) -> Subject {
    let parent = NewTask {
        run_immediately: true,
        ..NewTask::of_type("echo")
    };
    let (parent, parent_queue) = create(store, parent).await;
    let mut parent_lease = claim(store, parent, &parent_queue, LONG_LEASE).await;
    if matches!(status, Created | Blocked) {
        let child = NewTask {
            depends_on: vec![parent],
            run_on_failure,
            ..NewTask::of_type("echo")
        };
        let (id, _) = create(store, child).await;
        if status == Created {
            // No path leaves a task with parents in `created`.
            raw.force_state(&id.to_string(), Created, None, None).await;
        }
        assert_eq!(store.get_task(id).await.expect("read").status, status);
        return Subject {
            id,
            lease: Lease {
                task_id: id,
                token: Uuid::new_v4(),
            },
            parent: Some(parent_lease),
        };
    }
    // Any other status needs the child to have run: only a failed parent lets a child that runs
    // on failure run while the parent can still be run (and claimed) again afterwards.
    assert!(
        run_on_failure,
        "a waiting task past blocked runs on failure"
    );
    assert!(finish(store, parent_lease, Outcome::Failed("first try".into())).await);
    let child = NewTask {
        depends_on: vec![parent],
        run_on_failure,
        ..NewTask::of_type("echo")
    };
    let (id, queue) = create(store, child).await;
    assert_eq!(store.get_task(id).await.expect("read").status, Queued);
    let held = claim(store, id, &queue, lease).await;
    from_running(store, id, held, status).await;
    assert_eq!(
        store
            .run_task(parent, &Actor::anonymous())
            .await
            .expect("run")
            .status,
        Queued
    );
    parent_lease = claim(store, parent, &parent_queue, LONG_LEASE).await;
    Subject {
        id,
        lease: held,
        parent: Some(parent_lease),
    }
}

/// Applies `step` to the subject through the store; returns the event the state machine
/// sees (from the stored rows before and after) and the status the store reports.
async fn drive(
    store: &dyn Store,
    subject: &Subject,
    step: Step,
) -> (TaskStatus, Event, TaskStatus) {
    let before = store.get_task(subject.id).await.expect("read");
    let left = attempts_left(before.attempts, before.max_attempts);
    let (event, reported) = match step {
        Step::Run => {
            let parents = store.get_tasks(&before.depends_on).await.expect("parents");
            let parents_done = parents
                .iter()
                .all(|p| parent_done(before.run_on_failure, p.status));
            let after = store
                .run_task(subject.id, &Actor::anonymous())
                .await
                .expect("run");
            (Event::Run { parents_done }, Some(after.status))
        }
        Step::Cancel => {
            let after = store
                .cancel_task(subject.id, &Actor::anonymous())
                .await
                .expect("cancel");
            (Event::Cancel, Some(after.status))
        }
        Step::Claim => {
            let claimed = store
                .claim_tasks(&claim_of(&before.queue, LONG_LEASE))
                .await
                .expect("claim");
            let status = claimed.first().map_or(before.status, |c| c.task.status);
            (Event::Claim, Some(status))
        }
        Step::Complete | Step::Fail | Step::FailRetryable => {
            // The engine's choice for a retryable failure: retry while attempts are left.
            let (event, outcome) = match step {
                Step::Complete => (Event::Complete, Outcome::Completed(json!({}))),
                Step::Fail => (Event::Fail, Outcome::Failed("boom".into())),
                _ if left => (
                    Event::FailRetryable {
                        attempts_left: true,
                    },
                    retry_now(),
                ),
                _ => (
                    Event::FailRetryable {
                        attempts_left: false,
                    },
                    Outcome::Failed("boom".into()),
                ),
            };
            let recorded = finish(store, subject.lease, outcome).await;
            let moved = transition::transition(before.status, &event).is_ok();
            assert_eq!(recorded, moved, "{event:?} on {} recorded", before.status);
            (event, None)
        }
        Step::LeaseExpired => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let rescued = store.rescue_expired().await.expect("rescue");
            let event = Event::LeaseExpired {
                attempts_left: left,
            };
            let moved = transition::transition(before.status, &event).is_ok();
            assert_eq!(rescued, u64::from(moved), "{event:?} on {}", before.status);
            (event, None)
        }
        Step::Release => {
            let released = store.release(&[subject.lease]).await.expect("release");
            let moved = transition::transition(before.status, &Event::Release).is_ok();
            assert_eq!(released, u64::from(moved), "release of {}", before.status);
            (Event::Release, None)
        }
        Step::ParentCompletes | Step::ParentFails => {
            let parent = subject.parent.expect("a waiting subject");
            let outcome = if step == Step::ParentCompletes {
                Outcome::Completed(json!({}))
            } else {
                Outcome::Failed("parent failed".into())
            };
            assert!(finish(store, parent, outcome).await);
            let parents = store.get_tasks(&before.depends_on).await.expect("parents");
            let parents: Vec<_> = parents.iter().map(|p| (p.id, p.status)).collect();
            (parents_settled(before.run_on_failure, &parents), None)
        }
    };
    let after = store.get_task(subject.id).await.expect("read").status;
    if let Some(reported) = reported {
        assert_eq!(reported, after, "{event:?} on {}: reported", before.status);
    }
    (before.status, event, after)
}

/// The statuses a kind of subject can be made in.
fn statuses_of(kind: Kind) -> Vec<TaskStatus> {
    match kind {
        Kind::Alone { .. } => TaskStatus::ALL
            .into_iter()
            .filter(|s| *s != Blocked)
            .collect(),
        Kind::Waiting {
            run_on_failure: true,
        } => TaskStatus::ALL.to_vec(),
        Kind::Waiting {
            run_on_failure: false,
        } => vec![Created, Blocked],
    }
}

/// An event with its reason dropped, so that coverage counts kinds of settlement.
fn shape(event: &Event) -> String {
    let text = format!("{event:?}");
    text.split('(').next().unwrap_or_default().to_string()
        + match event {
            Event::ParentsSettled(w) => match w {
                Waiting::Blocked => "/blocked",
                Waiting::Ready => "/ready",
                Waiting::Doomed(_) => "/doomed",
            },
            _ => "",
        }
}

both_backends!(every_status_and_event_moves_a_stored_task_as_the_state_machine_says);
async fn every_status_and_event_moves_a_stored_task_as_the_state_machine_says() {
    let db = TestDb::create().await;
    let store = &*db.store().await;
    let raw = db.raw().await;
    let kinds = [
        Kind::Alone { max_attempts: 3 },
        Kind::Alone { max_attempts: 1 },
        Kind::Waiting {
            run_on_failure: true,
        },
        Kind::Waiting {
            run_on_failure: false,
        },
    ];
    let mut covered = BTreeSet::new();
    let mut mismatches = Vec::new();
    for kind in kinds {
        for status in statuses_of(kind) {
            for step in STEPS {
                let waits = matches!(kind, Kind::Waiting { .. });
                if matches!(step, Step::ParentCompletes | Step::ParentFails) && !waits {
                    continue;
                }
                let lease = if step == Step::LeaseExpired {
                    SHORT_LEASE
                } else {
                    LONG_LEASE
                };
                let subject = subject(store, &raw, status, kind, lease).await;
                let (from, event, after) = drive(store, &subject, step).await;
                assert_eq!(from, status, "{kind:?} made in {status}");
                let expected = transition::transition(from, &event).unwrap_or(from);
                if after != expected {
                    mismatches.push(format!(
                        "{kind:?}: {event:?} on {from} gave {after}, expected {expected}"
                    ));
                }
                covered.insert((from.as_str(), shape(&event)));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Every kind of event on every status; the flags where a reachable state can carry both
    // (a task not running has all its attempts left, except after its last one, and only a
    // blocked task's parents are never all done).
    let driven = |status: TaskStatus, event: &str| {
        covered
            .iter()
            .any(|(s, e)| *s == status.as_str() && e.starts_with(event))
    };
    for status in TaskStatus::ALL {
        for event in [
            "Run { parents_done: false }",
            "Cancel",
            "Claim",
            "Complete",
            "Fail",
            "FailRetryable",
            "LeaseExpired",
            "Release",
            "ParentsSettled/ready",
        ] {
            assert!(driven(status, event), "{event} on {status} not driven");
        }
        if status != Blocked {
            assert!(
                driven(status, "Run { parents_done: true }"),
                "run on {status}"
            );
        }
    }
    for flag in ["true", "false"] {
        for event in ["FailRetryable", "LeaseExpired"] {
            let event = format!("{event} {{ attempts_left: {flag} }}");
            assert!(driven(Running, &event), "{event} on running not driven");
        }
    }
    let blocked: BTreeSet<_> = covered.iter().filter(|(s, _)| *s == "blocked").collect();
    assert!(
        blocked.contains(&("blocked", "ParentsSettled/doomed".to_string())),
        "a doomed blocked task not driven"
    );
}

/// How a parent ends in the dependency tests.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Completes,
    Fails,
    IsCancelled,
}

/// A running parent in a queue of its own, with its lease.
async fn running_parent(store: &dyn Store) -> Lease {
    let (id, queue) = create(
        store,
        NewTask {
            run_immediately: true,
            ..NewTask::of_type("echo")
        },
    )
    .await;
    claim(store, id, &queue, LONG_LEASE).await
}

async fn end(store: &dyn Store, parent: Lease, ending: Ending) {
    match ending {
        Ending::Completes => assert!(finish(store, parent, Outcome::Completed(json!({}))).await),
        Ending::Fails => assert!(finish(store, parent, Outcome::Failed("no".into())).await),
        Ending::IsCancelled => {
            store
                .cancel_task(parent.task_id, &Actor::anonymous())
                .await
                .expect("cancel");
        }
    }
}

both_backends!(each_backend_settles_a_dependent_as_the_dependency_rule_says);
async fn each_backend_settles_a_dependent_as_the_dependency_rule_says() {
    let db = TestDb::create().await;
    let store = &*db.store().await;
    let endings = [Ending::Completes, Ending::Fails, Ending::IsCancelled];
    for run_on_failure in [false, true] {
        for first in endings {
            for second in endings {
                let parents = [running_parent(store).await, running_parent(store).await];
                let ids: Vec<Uuid> = parents.iter().map(|l| l.task_id).collect();
                let child = NewTask {
                    depends_on: ids.clone(),
                    run_on_failure,
                    ..NewTask::of_type("echo")
                };
                let (child, _) = create(store, child).await;
                let mut expected = (Blocked, None::<String>);
                for (parent, ending) in parents.into_iter().zip([first, second]) {
                    end(store, parent, ending).await;
                    let now: Vec<_> = store
                        .get_tasks(&ids)
                        .await
                        .expect("parents")
                        .iter()
                        .map(|p| (p.id, p.status))
                        .collect();
                    if expected.0 == Blocked {
                        expected = match waiting_on(run_on_failure, &now) {
                            Waiting::Blocked => (Blocked, None),
                            Waiting::Ready => (Queued, None),
                            Waiting::Doomed(why) => (Cancelled, Some(why)),
                        };
                    }
                    let stored = store.get_task(child).await.expect("child");
                    assert_eq!(
                        (stored.status, stored.error),
                        expected.clone(),
                        "run_on_failure {run_on_failure}, parents {first:?} then {second:?}"
                    );
                }
            }
        }
    }
}

both_backends!(a_child_doomed_by_two_failed_parents_at_once_names_the_lowest_on_each_backend);
async fn a_child_doomed_by_two_failed_parents_at_once_names_the_lowest_on_each_backend() {
    let db = TestDb::create().await;
    let store = &*db.store().await;
    let parents = [running_parent(store).await, running_parent(store).await];
    for parent in parents {
        end(store, parent, Ending::Fails).await;
    }
    let ids: Vec<Uuid> = parents.iter().map(|l| l.task_id).collect();
    let (child, _) = create(
        store,
        NewTask {
            depends_on: ids.clone(),
            ..NewTask::of_type("echo")
        },
    )
    .await;
    assert_eq!(store.get_task(child).await.unwrap().status, Cancelled);
    // Run again, the child waits for its failed parents; when the higher one fails again both
    // have failed, and the lower one is named, as the Rust rule names it.
    assert_eq!(
        store
            .run_task(child, &Actor::anonymous())
            .await
            .unwrap()
            .status,
        Blocked
    );
    let high = *ids.iter().max().unwrap();
    let low = *ids.iter().min().unwrap();
    let queue = store.get_task(high).await.unwrap().queue;
    store
        .run_task(high, &Actor::anonymous())
        .await
        .expect("run the parent again");
    let lease = claim(store, high, &queue, LONG_LEASE).await;
    end(store, lease, Ending::Fails).await;
    let stored = store.get_task(child).await.unwrap();
    let parents: Vec<_> = store
        .get_tasks(&ids)
        .await
        .unwrap()
        .iter()
        .map(|p| (p.id, p.status))
        .collect();
    let rule = waiting_on(false, &parents);
    assert_eq!(
        rule,
        Waiting::Doomed(stored.error.clone().unwrap_or_default())
    );
    assert_eq!(stored.status, Cancelled);
    assert_eq!(stored.error, Some(dependency_reason(low, Failed)));
}

both_backends!(cancelling_a_workflow_moves_each_of_its_tasks_as_cancel_does);
async fn cancelling_a_workflow_moves_each_of_its_tasks_as_cancel_does() {
    let db = TestDb::create().await;
    let store = &*db.store().await;
    let workflow = Uuid::new_v4();
    let step = |key: &str, status: TaskStatus| NewTask {
        queue: queue_of_its_own(),
        run_immediately: status != Created,
        workflow: Some((workflow, key.to_string())),
        ..NewTask::of_type("echo")
    };
    let mut tasks: Vec<NewTask> = TaskStatus::ALL
        .into_iter()
        .filter(|s| *s != Blocked)
        .map(|s| step(s.as_str(), s))
        .collect();
    let running = tasks
        .iter()
        .find(|t| t.workflow.as_ref().unwrap().1 == "running");
    let blocked = NewTask {
        depends_on: vec![running.unwrap().id],
        ..step("blocked", Blocked)
    };
    tasks.push(blocked);
    store
        .create_workflow(seedcore::model::WorkflowPlan {
            id: workflow,
            name: "every status".into(),
            tasks: tasks.clone(),
        })
        .await
        .expect("create the workflow");
    let mut before = Vec::new();
    for task in &tasks {
        let status = TaskStatus::parse(&task.workflow.as_ref().unwrap().1).unwrap();
        if task.run_immediately && task.depends_on.is_empty() {
            let lease = claim(store, task.id, &task.queue, LONG_LEASE).await;
            from_running(store, task.id, lease, status).await;
        }
        assert_eq!(store.get_task(task.id).await.unwrap().status, status);
        before.push((task.id, status));
    }
    let cancelled = store
        .cancel_workflow(workflow, &Actor::anonymous())
        .await
        .expect("cancel");
    for (id, from) in before {
        let expected = transition::transition(from, &Event::Cancel).unwrap_or(from);
        let after = cancelled.tasks.iter().find(|t| t.id == id).unwrap().status;
        assert_eq!(after, expected, "the workflow's {from} task");
    }
}
