//! The task state machine: [`transition`] decides, for a task's status and an event, the status
//! the task moves to, or why nothing happens. It is the one statement of these rules; the
//! stores apply them with conditional updates whose status lists are bound from the constants
//! it is built on ([`TaskStatus::RUNNABLE`], [`TaskStatus::CANCELLABLE`], [`TaskStatus::READY`]),
//! and `tests/transitions.rs` drives each backend through every (status, event) pair against it.
//!
//! Invariants (property-tested below):
//! - `run` queues `created`, `failed` and `cancelled` tasks (or blocks them again behind parents
//!   not done yet) and leaves every other status as it is, so a second `run` changes nothing;
//! - `cancel` leaves `completed`, `failed` and `cancelled` tasks as they are and cancels every
//!   other task; nothing but `run` moves a task out of `cancelled`;
//! - nothing moves a task out of `completed`;
//! - only a worker holding the lease of a `running` task (or the reaper, once that lease
//!   expired) moves it out of `running`, other than `cancel`; the lease token itself is the
//!   store's part of that fence;
//! - a `blocked` task moves on only when its parents settle it, as [`waiting_on`] says.
//!
//! A `retry` task has no event of its own for "its time has come": once its `run_at` passes it
//! is claimed exactly as a `queued` one is.

use std::fmt;

use super::task::{TaskStatus, Waiting, waiting_on};

/// Something that happens to a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `POST /tasks/{id}/run`. `parents_done`: whether every parent is done as [`parent_done`]
    /// says (true for a task without parents).
    Run {
        /// Whether the task may run at once rather than wait `blocked` for its parents.
        parents_done: bool,
    },
    /// `POST /tasks/{id}/cancel`, or cancelling the task's workflow.
    Cancel,
    /// A worker claims the task (once its `run_at` has passed).
    Claim,
    /// The lease holder reports success.
    Complete,
    /// The lease holder reports a permanent failure (bad params, unsupported type, a panic).
    Fail,
    /// The lease holder reports a retryable failure (an error, a timeout, a stop).
    FailRetryable {
        /// Whether the task has attempts left, as [`attempts_left`] says.
        attempts_left: bool,
    },
    /// The reaper finds the task's lease expired (its worker stopped renewing it).
    LeaseExpired {
        /// Whether the task has attempts left, as [`attempts_left`] says.
        attempts_left: bool,
    },
    /// The lease holder hands the task back at shutdown, its attempt uncounted.
    Release,
    /// A parent reached a final status; the task's parents now stand as this says.
    ParentsSettled(Waiting),
}

/// Why an event leaves a task's status as it is. The API answers `run` and `cancel` with the
/// task unchanged (no error), as the contract says; a worker whose write is refused drops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `run` on a task that is queued, blocked, running or waiting to retry: it runs anyway.
    AlreadyUnderway,
    /// `run` on a completed task: it ran, and stays as it ended.
    AlreadyCompleted,
    /// `cancel` on a task that already completed, failed or was cancelled.
    AlreadyFinished,
    /// A claim of a task that is not waiting for a worker.
    NotReady,
    /// A write for an attempt (or the reaper's rescue) on a task no longer running: the lease
    /// was lost (the task was cancelled, rescued or released), so the write is dropped.
    LeaseLost,
    /// A parent's settlement reaching a task that does not wait for its parents.
    NotWaiting,
    /// A parent's settlement while another parent still decides the task's fate.
    StillWaiting,
}

impl Refusal {
    /// Every refusal, for tests and documentation.
    pub const ALL: [Refusal; 7] = [
        Refusal::AlreadyUnderway,
        Refusal::AlreadyCompleted,
        Refusal::AlreadyFinished,
        Refusal::NotReady,
        Refusal::LeaseLost,
        Refusal::NotWaiting,
        Refusal::StillWaiting,
    ];

    /// The reason, for logs and people.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::AlreadyUnderway => "the task is already queued, blocked, running or retrying",
            Refusal::AlreadyCompleted => "the task completed; it is not run again",
            Refusal::AlreadyFinished => "the task already completed, failed or was cancelled",
            Refusal::NotReady => "the task is not waiting for a worker",
            Refusal::LeaseLost => "the task is no longer running under this lease",
            Refusal::NotWaiting => "the task does not wait for its parents",
            Refusal::StillWaiting => "a parent has not finished yet",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The status a task in `from` moves to when `event` happens, or why it stays as it is.
pub fn transition(from: TaskStatus, event: &Event) -> Result<TaskStatus, Refusal> {
    use TaskStatus::*;
    match event {
        Event::Run { .. } if from == Completed => Err(Refusal::AlreadyCompleted),
        Event::Run { .. } if !from.run_queues() => Err(Refusal::AlreadyUnderway),
        Event::Run { parents_done: true } => Ok(Queued),
        Event::Run {
            parents_done: false,
        } => Ok(Blocked),
        Event::Cancel if from.cancel_applies() => Ok(Cancelled),
        Event::Cancel => Err(Refusal::AlreadyFinished),
        Event::Claim if TaskStatus::READY.contains(&from) => Ok(Running),
        Event::Claim => Err(Refusal::NotReady),
        _ if is_attempt_event(event) && from != Running => Err(Refusal::LeaseLost),
        Event::Complete => Ok(Completed),
        Event::Fail => Ok(Failed),
        Event::FailRetryable { attempts_left } => Ok(if *attempts_left { Retry } else { Failed }),
        Event::LeaseExpired { attempts_left } => Ok(if *attempts_left { Queued } else { Failed }),
        Event::Release => Ok(Queued),
        Event::ParentsSettled(_) if from != Blocked => Err(Refusal::NotWaiting),
        Event::ParentsSettled(Waiting::Ready) => Ok(Queued),
        Event::ParentsSettled(Waiting::Doomed(_)) => Ok(Cancelled),
        Event::ParentsSettled(Waiting::Blocked) => Err(Refusal::StillWaiting),
    }
}

/// Whether the event is a write about a running attempt, fenced by its lease.
fn is_attempt_event(event: &Event) -> bool {
    matches!(
        event,
        Event::Complete
            | Event::Fail
            | Event::FailRetryable { .. }
            | Event::LeaseExpired { .. }
            | Event::Release
    )
}

/// Whether a task that has started `attempts` of `max_attempts` may try again after a
/// retryable failure or an expired lease (the stores' rescue compares the same columns).
pub fn attempts_left(attempts: i32, max_attempts: i32) -> bool {
    attempts < max_attempts
}

/// The parent statuses that let every child run.
pub const PARENT_DONE: [TaskStatus; 1] = [TaskStatus::Completed];

/// The parent statuses that also let a child that runs on failure run (and doom one that
/// does not).
pub const PARENT_DONE_ON_FAILURE: [TaskStatus; 2] = [TaskStatus::Failed, TaskStatus::Cancelled];

/// Whether a parent in `status` lets its child run: it completed or, for a child that runs
/// on failure, it failed or was cancelled.
pub fn parent_done(run_on_failure: bool, status: TaskStatus) -> bool {
    PARENT_DONE.contains(&status) || (run_on_failure && PARENT_DONE_ON_FAILURE.contains(&status))
}

/// The event a parent's settlement is for a child with these parents (see [`waiting_on`]).
pub fn parents_settled(run_on_failure: bool, parents: &[(uuid::Uuid, TaskStatus)]) -> Event {
    Event::ParentsSettled(waiting_on(run_on_failure, parents))
}

/// The status names of a list, as the stores bind them (`= any($n)` on PostgreSQL, a JSON
/// array read by `json_each` on SQLite).
pub fn names(statuses: &[TaskStatus]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::TaskStatus::*;
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn any_status() -> impl Strategy<Value = TaskStatus> {
        prop::sample::select(TaskStatus::ALL.to_vec())
    }

    fn any_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            any::<bool>().prop_map(|parents_done| Event::Run { parents_done }),
            Just(Event::Cancel),
            Just(Event::Claim),
            Just(Event::Complete),
            Just(Event::Fail),
            any::<bool>().prop_map(|attempts_left| Event::FailRetryable { attempts_left }),
            any::<bool>().prop_map(|attempts_left| Event::LeaseExpired { attempts_left }),
            Just(Event::Release),
            Just(Event::ParentsSettled(Waiting::Blocked)),
            Just(Event::ParentsSettled(Waiting::Ready)),
            Just(Event::ParentsSettled(Waiting::Doomed(
                "dependency x failed".into()
            ))),
        ]
    }

    /// The contract's `run` table: the status after `run` without parents.
    fn contract_run(from: TaskStatus) -> TaskStatus {
        match from {
            Created | Failed | Cancelled => Queued,
            other => other,
        }
    }

    /// The contract's `cancel` table.
    fn contract_cancel(from: TaskStatus) -> TaskStatus {
        match from {
            Completed | Failed => from,
            _ => Cancelled,
        }
    }

    fn after(from: TaskStatus, event: &Event) -> TaskStatus {
        transition(from, event).unwrap_or(from)
    }

    #[test]
    fn run_and_cancel_follow_the_contract_for_every_status() {
        for status in TaskStatus::ALL {
            assert_eq!(
                after(status, &Event::Run { parents_done: true }),
                contract_run(status),
                "run from {status}"
            );
            assert_eq!(
                after(status, &Event::Cancel),
                contract_cancel(status),
                "cancel from {status}"
            );
        }
    }

    #[test]
    fn run_blocks_a_task_again_while_its_parents_are_not_done() {
        for status in [Created, Failed, Cancelled] {
            assert_eq!(
                transition(
                    status,
                    &Event::Run {
                        parents_done: false
                    }
                ),
                Ok(Blocked)
            );
        }
    }

    #[test]
    fn only_queued_and_retrying_tasks_are_claimed() {
        let claimed: Vec<_> = TaskStatus::ALL
            .into_iter()
            .filter(|s| transition(*s, &Event::Claim).is_ok())
            .collect();
        assert_eq!(claimed, vec![Queued, Retry]);
    }

    #[test]
    fn an_attempt_ends_as_its_outcome_and_the_attempts_left_say() {
        let ends = |event| transition(Running, &event);
        assert_eq!(ends(Event::Complete), Ok(Completed));
        assert_eq!(ends(Event::Fail), Ok(Failed));
        assert_eq!(
            ends(Event::FailRetryable {
                attempts_left: true
            }),
            Ok(Retry)
        );
        assert_eq!(
            ends(Event::FailRetryable {
                attempts_left: false
            }),
            Ok(Failed)
        );
        assert_eq!(
            ends(Event::LeaseExpired {
                attempts_left: true
            }),
            Ok(Queued)
        );
        assert_eq!(
            ends(Event::LeaseExpired {
                attempts_left: false
            }),
            Ok(Failed)
        );
        assert_eq!(ends(Event::Release), Ok(Queued));
    }

    #[test]
    fn attempts_are_left_until_the_last_one_started() {
        assert!(attempts_left(1, 3));
        assert!(attempts_left(2, 3));
        assert!(!attempts_left(3, 3));
        assert!(!attempts_left(1, 1));
    }

    #[test]
    fn a_blocked_task_moves_as_its_parents_settle_it() {
        let parent = Uuid::new_v4();
        let settled = |rof, status| transition(Blocked, &parents_settled(rof, &[(parent, status)]));
        assert_eq!(settled(false, Completed), Ok(Queued));
        assert_eq!(settled(false, Failed), Ok(Cancelled));
        assert_eq!(settled(true, Cancelled), Ok(Queued));
        assert_eq!(settled(true, Running), Err(Refusal::StillWaiting));
    }

    #[test]
    fn every_refusal_gives_a_reason() {
        for refusal in Refusal::ALL {
            assert!(!refusal.reason().is_empty());
            assert_eq!(refusal.to_string(), refusal.reason());
        }
    }

    proptest! {
        #[test]
        fn a_cancelled_task_leaves_cancelled_only_by_run(event in any_event()) {
            let to = after(Cancelled, &event);
            prop_assert!(
                to == Cancelled || matches!(event, Event::Run { .. }),
                "{event:?} moved a cancelled task to {to}"
            );
        }

        #[test]
        fn a_completed_task_never_changes(event in any_event()) {
            prop_assert!(transition(Completed, &event).is_err());
        }

        #[test]
        fn a_refusal_is_a_known_reason_and_a_move_changes_the_status(
            from in any_status(),
            event in any_event(),
        ) {
            match transition(from, &event) {
                Ok(to) => prop_assert_ne!(to, from, "{:?} from {} is not a move", event, from),
                Err(refusal) => prop_assert!(Refusal::ALL.contains(&refusal)),
            }
        }

        #[test]
        fn only_the_lease_of_a_running_task_ends_an_attempt(
            from in any_status(),
            event in any_event(),
        ) {
            if is_attempt_event(&event) && from != Running {
                prop_assert_eq!(transition(from, &event), Err(Refusal::LeaseLost));
            }
        }

        #[test]
        fn a_task_cancelled_while_running_stays_cancelled_until_run(
            events in prop::collection::vec(any_event(), 0..20),
        ) {
            let mut status = after(Running, &Event::Cancel);
            prop_assert_eq!(status, Cancelled);
            for event in &events {
                if matches!(event, Event::Run { .. }) {
                    break;
                }
                status = after(status, event);
                prop_assert_eq!(status, Cancelled);
            }
        }

        #[test]
        fn running_is_reached_only_by_a_claim_and_completed_only_by_its_lease(
            from in any_status(),
            event in any_event(),
        ) {
            let to = after(from, &event);
            if to != from && to == Running {
                prop_assert_eq!(&event, &Event::Claim);
            }
            if to != from && to == Completed {
                prop_assert_eq!((from, &event), (Running, &Event::Complete));
            }
        }

        #[test]
        fn run_twice_changes_nothing_the_second_time(
            from in any_status(),
            parents_done in any::<bool>(),
        ) {
            let run = Event::Run { parents_done };
            let once = after(from, &run);
            prop_assert_eq!(after(once, &run), once);
        }

        #[test]
        fn a_parent_is_done_when_it_completed_or_when_failure_is_welcome(
            run_on_failure in any::<bool>(),
            status in any_status(),
        ) {
            let expected = status == Completed
                || (run_on_failure && matches!(status, Failed | Cancelled));
            prop_assert_eq!(parent_done(run_on_failure, status), expected);
        }
    }
}
