//! Execution rules through the API and the engine: built-in types, retries, timeouts,
//! cancellation, fencing, rescue of expired leases, restart and shutdown, a handler's progress
//! reports.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use reqwest::StatusCode;
use seedcore::{
    api::ApiSettings,
    engine::{Handler, HandlerError, HandlerRouter, Progress, ProgressError, handler_fn},
    model::{Actor, NewTask, Task, TaskStatus},
    store::{Claim, Lease, Outcome, Store},
};
use serde_json::json;

both_backends!(echo_returns_its_params_in_the_result_envelope);
async fn echo_returns_its_params_in_the_result_envelope() {
    let app = TestApp::start().await;
    let task = app
        .run_to_the_end(json!({"type": "echo", "params": {"a": [1, 2], "b": "x"}}))
        .await;
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.error, None);
    assert_eq!(
        task.result.unwrap(),
        json!({"success": true, "path": "fast", "handler": "echo", "result": {"a": [1, 2], "b": "x"}})
    );
}

both_backends!(noop_and_sleep_complete_with_their_documented_output);
async fn noop_and_sleep_complete_with_their_documented_output() {
    let app = TestApp::start().await;
    let noop = app.run_to_the_end(json!({"type": "noop"})).await;
    assert_eq!(noop.result.unwrap()["result"], json!({}));
    let sleep = app
        .run_to_the_end(json!({"type": "sleep", "params": {"seconds": 0.05}}))
        .await;
    assert_eq!(sleep.status, TaskStatus::Completed);
    assert_eq!(sleep.result.unwrap()["result"], json!({"slept": 0.05}));
}

both_backends!(sleep_with_negative_seconds_fails_without_retrying);
async fn sleep_with_negative_seconds_fails_without_retrying() {
    let app = TestApp::start().await;
    let task = app
        .run_to_the_end(json!({"type": "sleep", "params": {"seconds": -1}}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert!(task.error.unwrap().contains("seconds"));
}

both_backends!(fact_store_creates_a_fact_that_fact_search_finds);
async fn fact_store_creates_a_fact_that_fact_search_finds() {
    let app = TestApp::start().await;
    let stored = app.run_to_the_end(json!({"type": "fact_store", "params": {"text": "The Moon orbits Earth", "tags": ["astro"], "meta_data": {"k": 1}}}),
    )
    .await;
    let fact_id = stored.result.unwrap()["result"]["fact_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, fact) = app.get(&format!("/api/v1/facts/{fact_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fact["text"], "The Moon orbits Earth");
    assert_eq!(fact["tags"], json!(["astro"]));

    let found = app
        .run_to_the_end(json!({"type": "fact_search", "params": {"q": "moon", "tag": "astro"}}))
        .await;
    assert_eq!(
        found.result.unwrap()["result"],
        json!({"total": 1, "ids": [fact_id]})
    );
}

both_backends!(fact_store_without_text_fails_with_a_clear_message);
async fn fact_store_without_text_fails_with_a_clear_message() {
    let app = TestApp::start().await;
    let task = app
        .run_to_the_end(json!({"type": "fact_store", "params": {"tags": ["x"]}}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(
        task.error.as_deref(),
        Some("invalid params: text: Field required")
    );
    assert_eq!(task.attempts, 1);
}

both_backends!(fail_fails_with_its_message_and_is_not_retried_by_default);
async fn fail_fails_with_its_message_and_is_not_retried_by_default() {
    let app = TestApp::start().await;
    let task = app
        .run_to_the_end(json!({"type": "fail", "params": {"message": "boom"}}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("boom"));
    assert_eq!(task.result, None);
    assert_eq!(task.attempts, 1);
}

both_backends!(a_retryable_failure_is_retried_until_max_attempts);
async fn a_retryable_failure_is_retried_until_max_attempts() {
    let app = TestApp::start().await;
    let task = app.run_to_the_end(json!({"type": "fail", "params": {"message": "flaky", "retryable": true}, "max_attempts": 3}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 3);
    assert_eq!(task.error.as_deref(), Some("flaky"));
    let kinds = app.event_kinds(&task.id.to_string()).await;
    assert_eq!(
        kinds,
        [
            "created", "claimed", "retry", "claimed", "retry", "claimed", "failed"
        ]
    );
}

both_backends!(an_unsupported_type_fails_at_once);
async fn an_unsupported_type_fails_at_once() {
    let app = TestApp::start().await;
    let task = app
        .run_to_the_end(json!({"type": "no_such_type", "max_attempts": 5}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(
        task.error.as_deref(),
        Some("Unsupported task type 'no_such_type'")
    );
    assert_eq!(task.attempts, 1);
}

both_backends!(drift_at_or_above_the_threshold_takes_the_escalated_path);
async fn drift_at_or_above_the_threshold_takes_the_escalated_path() {
    let app = TestApp::start().await;
    let at = app
        .run_to_the_end(json!({"type": "noop", "drift_score": 0.5}))
        .await;
    let below = app
        .run_to_the_end(json!({"type": "noop", "drift_score": 0.49}))
        .await;
    assert_eq!(at.result.unwrap()["path"], "escalated");
    assert_eq!(below.result.unwrap()["path"], "fast");
}

both_backends!(an_attempt_past_its_timeout_fails_as_retryable);
async fn an_attempt_past_its_timeout_fails_as_retryable() {
    let app = TestApp::start().await;
    let task = app.run_to_the_end(json!({"type": "sleep", "params": {"seconds": 30}, "timeout_seconds": 0.2, "max_attempts": 2}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 2);
    assert!(task.error.unwrap().contains("timed out"));
}

both_backends!(a_task_cancelled_while_running_stays_cancelled);
async fn a_task_cancelled_while_running_stays_cancelled() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 1}, "run_immediately": true}))
        .await;
    let id = id_of(&task);
    app.wait_for(&id, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    let (status, cancelled) = app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");

    // Longer than the sleep would have taken: the worker's result must not land.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let task = app.task(&id).await;
    assert_eq!(task.status, TaskStatus::Cancelled);
    assert_eq!(task.result, None);
    assert_eq!(
        app.event_kinds(&id).await,
        ["created", "claimed", "cancelled"]
    );
}

both_backends!(cancelling_a_running_task_stops_its_handler_and_frees_its_slot);
async fn cancelling_a_running_task_stops_its_handler_and_frees_its_slot() {
    let mut settings = fast_engine();
    settings.concurrency = 1;
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::on(db, Some(settings), ApiSettings::default()).await;
    let task = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 60}, "run_immediately": true}))
        .await;
    let id = id_of(&task);
    app.wait_for(&id, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    // The only slot was busy for 60 s: the next task runs soon only if the handler stopped.
    let next = app
        .create_task(json!({"type": "noop", "run_immediately": true}))
        .await;
    let next = app
        .wait_for(&id_of(&next), Duration::from_secs(5), |t| {
            t.status.is_final()
        })
        .await;
    assert_eq!(next.status, TaskStatus::Completed);
}

both_backends!(run_called_twice_executes_the_task_once);
async fn run_called_twice_executes_the_task_once() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "echo", "params": {"n": 1}}))
        .await;
    let id = id_of(&task);
    let path = format!("/api/v1/tasks/{id}/run");
    let (first, second) = tokio::join!(app.post_empty(&path), app.post_empty(&path));
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(second.0, StatusCode::OK);
    let done = app.finished(&id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.attempts, 1);
    let (_, again) = app.post_empty(&path).await;
    assert_eq!(again["status"], "completed");
    let kinds = app.event_kinds(&id).await;
    assert_eq!(kinds, ["created", "queued", "claimed", "completed"]);
}

both_backends!(queued_tasks_left_by_a_stopped_process_run_after_restart);
async fn queued_tasks_left_by_a_stopped_process_run_after_restart() {
    let app = TestApp::without_workers().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let task = app
            .create_task(json!({"type": "echo", "params": {"n": n}, "run_immediately": true}))
            .await;
        ids.push(id_of(&task));
    }
    let db = app.stop().await;
    let app = TestApp::on(db, Some(fast_engine()), ApiSettings::default()).await;
    for id in &ids {
        assert_eq!(app.finished(id).await.status, TaskStatus::Completed);
    }
}

/// How long [`a_claimed_echo_task`] holds its task.
const CLAIMED_FOR: Duration = Duration::from_secs(30);

/// A ready `echo` task, claimed by worker `w1` for [`CLAIMED_FOR`], and its lease.
async fn a_claimed_echo_task(store: &dyn Store) -> (Task, Lease) {
    let task = store
        .create_task(NewTask {
            run_immediately: true,
            ..NewTask::of_type("echo")
        })
        .await
        .unwrap();
    let claimed = store
        .claim_tasks(&Claim::any("w1", 10, CLAIMED_FOR))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    (task, claimed[0].lease)
}

both_backends!(a_worker_that_lost_its_lease_cannot_record_its_result);
async fn a_worker_that_lost_its_lease_cannot_record_its_result() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let (task, lease) = a_claimed_echo_task(&*store).await;
    store
        .cancel_task(task.id, &Actor::anonymous())
        .await
        .unwrap();

    let recorded = store
        .finish_attempt(lease, Outcome::Completed(json!({"late": true})))
        .await
        .unwrap();
    assert!(!recorded);
    let task = store.get_task(task.id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Cancelled);
    assert_eq!(task.result, None);
}

both_backends!(a_second_claim_does_not_take_a_running_task);
async fn a_second_claim_does_not_take_a_running_task() {
    let db = TestDb::create().await;
    let store = db.store().await;
    store
        .create_task(NewTask {
            run_immediately: true,
            ..NewTask::of_type("echo")
        })
        .await
        .unwrap();
    let claim = Claim::any("w1", 10, Duration::from_secs(30));
    assert_eq!(store.claim_tasks(&claim).await.unwrap().len(), 1);
    assert_eq!(store.claim_tasks(&claim).await.unwrap().len(), 0);
}

both_backends!(an_expired_lease_is_rescued_back_to_the_queue_then_failed_when_out_of_attempts);
async fn an_expired_lease_is_rescued_back_to_the_queue_then_failed_when_out_of_attempts() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let task = store
        .create_task(NewTask {
            run_immediately: true,
            max_attempts: 2,
            ..NewTask::of_type("echo")
        })
        .await
        .unwrap();
    let claim = Claim::any("dead-worker", 1, Duration::from_millis(100));
    for expected in [TaskStatus::Queued, TaskStatus::Failed] {
        let claimed = store.claim_tasks(&claim).await.unwrap();
        assert_eq!(claimed.len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.rescue_expired().await.unwrap(), 1);
        let rescued = store.get_task(task.id).await.unwrap();
        assert_eq!(rescued.status, expected);
        assert!(
            rescued
                .error
                .unwrap()
                .contains("lease expired: worker dead-worker")
        );
        // The rescued worker's late result is refused.
        let late = store
            .finish_attempt(claimed[0].lease, Outcome::Completed(json!({})))
            .await
            .unwrap();
        assert!(!late);
    }
    let kinds: Vec<String> = store
        .task_events(task.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["created", "claimed", "rescued", "claimed", "failed"]
    );
}

both_backends!(shutdown_releases_tasks_still_running_after_the_grace_period);
async fn shutdown_releases_tasks_still_running_after_the_grace_period() {
    let db = Arc::new(TestDb::create().await);
    let mut settings = fast_engine();
    settings.shutdown_grace = Duration::from_millis(200);
    let app = TestApp::on(db, Some(settings), ApiSettings::default()).await;
    let task = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 60}, "run_immediately": true}))
        .await;
    let id = id_of(&task);
    app.wait_for(&id, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    let started = std::time::Instant::now();
    let db = app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );

    let app = TestApp::on(db, None, ApiSettings::default()).await;
    let task = app.task(&id).await;
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.attempts, 0);
    assert_eq!(
        app.event_kinds(&id).await,
        ["created", "claimed", "released"]
    );
}

both_backends!(tasks_held_for_the_slot_of_a_slow_handler_go_back_to_the_queue);
async fn tasks_held_for_the_slot_of_a_slow_handler_go_back_to_the_queue() {
    let mut settings = fast_engine();
    settings.concurrency = 1;
    let db = Arc::new(TestDb::create().await);
    let app = TestApp::on(db, Some(settings), ApiSettings::default()).await;
    // Quick runs first: the lane now claims ahead of its one slot.
    for _ in 0..5 {
        app.run_to_the_end(json!({"type": "noop"})).await;
    }
    app.post_empty("/api/v1/queues/default/pause").await;
    let slow = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 60}, "run_immediately": true}))
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let task = app
            .create_task(json!({"type": "noop", "run_immediately": true}))
            .await;
        held.push(id_of(&task));
    }
    app.post_empty("/api/v1/queues/default/resume").await;

    // One claim takes the slow task for the slot and the others ahead of it; they may not
    // wait for the minute it runs.
    app.wait_for(&id_of(&slow), Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    for id in &held {
        let task = app
            .wait_for(id, Duration::from_secs(10), |t| {
                t.status == TaskStatus::Queued && t.attempts == 0
            })
            .await;
        assert_eq!(task.result, None);
        assert_eq!(
            app.event_kinds(id).await,
            ["created", "claimed", "released"]
        );
    }
    assert_eq!(app.task(&id_of(&slow)).await.status, TaskStatus::Running);
}

both_backends!(shutdown_waits_for_tasks_that_finish_within_the_grace_period);
async fn shutdown_waits_for_tasks_that_finish_within_the_grace_period() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "sleep", "params": {"seconds": 0.5}, "run_immediately": true}))
        .await;
    let id = id_of(&task);
    app.wait_for(&id, Duration::from_secs(10), |t| {
        t.status == TaskStatus::Running
    })
    .await;
    let db = app.stop().await;
    let app = TestApp::on(db, None, ApiSettings::default()).await;
    assert_eq!(app.task(&id).await.status, TaskStatus::Completed);
}

fn custom_router() -> HandlerRouter {
    let mut router = HandlerRouter::with_builtins();
    router
        .register("explode", handler_fn(|_task| async { panic!("kaboom") }))
        .register(
            "greet",
            handler_fn(|task| async move { Ok(json!({"hello": task.params["name"]})) }),
        )
        .register_for_domain(
            "greet",
            "formal",
            "formal_greeter",
            handler_fn(|task| async move { Ok(json!({"good_day": task.params["name"]})) }),
        )
        .register(
            "nul",
            // PostgreSQL's jsonb cannot hold a NUL character: this result cannot be stored.
            handler_fn(|_task| async { Ok(json!({"text": "a\u{0}b"})) }),
        )
        .register(
            "refuse",
            handler_fn(|_task| async { Err(HandlerError::Permanent("not today".into())) }),
        );
    router
}

async fn app_with_custom_handlers() -> TestApp {
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(
        db,
        Some(fast_engine()),
        ApiSettings::default(),
        custom_router(),
    )
    .await
}

both_backends!(a_panicking_handler_fails_its_task_and_the_worker_goes_on);
async fn a_panicking_handler_fails_its_task_and_the_worker_goes_on() {
    let app = app_with_custom_handlers().await;
    let task = app
        .run_to_the_end(json!({"type": "explode", "max_attempts": 3}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("handler panicked: kaboom"));
    assert_eq!(task.attempts, 1);
    assert_eq!(
        app.run_to_the_end(json!({"type": "noop"})).await.status,
        TaskStatus::Completed
    );
}

both_backends!(a_domain_handler_wins_over_the_handler_for_the_type);
async fn a_domain_handler_wins_over_the_handler_for_the_type() {
    let app = app_with_custom_handlers().await;
    let plain = app
        .run_to_the_end(json!({"type": "greet", "params": {"name": "Ada"}}))
        .await;
    let formal = app
        .run_to_the_end(json!({"type": "greet", "domain": "formal", "params": {"name": "Ada"}}))
        .await;
    let plain = plain.result.unwrap();
    let formal = formal.result.unwrap();
    assert_eq!(
        (plain["handler"].clone(), plain["result"].clone()),
        (json!("greet"), json!({"hello": "Ada"}))
    );
    assert_eq!(
        (formal["handler"].clone(), formal["result"].clone()),
        (json!("formal_greeter"), json!({"good_day": "Ada"}))
    );
}

both_backends!(a_permanent_handler_error_is_not_retried);
async fn a_permanent_handler_error_is_not_retried() {
    let app = app_with_custom_handlers().await;
    let task = app
        .run_to_the_end(json!({"type": "refuse", "max_attempts": 4}))
        .await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("not today"));
    assert_eq!(task.attempts, 1);
}

both_backends!(many_tasks_all_complete_exactly_once);
async fn many_tasks_all_complete_exactly_once() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for n in 0..100 {
        ids.push(id_of(
            &app.create_task(json!({"type": "echo", "params": {"n": n}, "run_immediately": true}))
                .await,
        ));
    }
    for id in &ids {
        let task = app.finished(id).await;
        assert_eq!(task.status, TaskStatus::Completed);
        assert_eq!(task.attempts, 1);
    }
}

both_backends!(a_result_the_database_cannot_store_fails_only_its_own_task);
async fn a_result_the_database_cannot_store_fails_only_its_own_task() {
    let app = app_with_custom_handlers().await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let task_type = if n == 7 { "nul" } else { "echo" };
        let task = app
            .create_task(json!({"type": task_type, "params": {"n": n}, "run_immediately": true}))
            .await;
        ids.push(id_of(&task));
    }
    for (n, id) in ids.iter().enumerate() {
        let task = app.finished(id).await;
        if n == 7 {
            assert_eq!(task.status, TaskStatus::Failed);
            assert!(task.error.unwrap().contains("could not be stored"));
        } else {
            assert_eq!(task.status, TaskStatus::Completed, "task {n}");
        }
    }
}

/// An app whose only extra handler is `handler`, registered for `task_type`.
async fn app_with(task_type: &str, handler: impl Handler) -> TestApp {
    let mut router = HandlerRouter::with_builtins();
    router.register(task_type, handler);
    let db = Arc::new(TestDb::create().await);
    TestApp::with_router(db, Some(fast_engine()), ApiSettings::default(), router).await
}

/// What a handler's progress report answered, sent to the test as it happens.
type Reports = tokio::sync::mpsc::UnboundedSender<Result<bool, String>>;

both_backends!(a_handler_reports_its_progress_while_it_runs);
async fn a_handler_reports_its_progress_while_it_runs() {
    let (reports, mut reported) = tokio::sync::mpsc::unbounded_channel();
    let finish = Arc::new(tokio::sync::Notify::new());
    let go = finish.clone();
    let halfway = handler_fn(move |task| {
        let (reports, go): (Reports, _) = (reports.clone(), go.clone());
        async move {
            let held = task.progress.report(0.5).await;
            reports.send(held.map_err(|e| e.to_string())).ok();
            go.notified().await;
            Ok(json!({}))
        }
    });
    let app = app_with("halfway", halfway).await;
    let id = id_of(
        &app.create_task(json!({"type": "halfway", "run_immediately": true}))
            .await,
    );

    assert_eq!(reported.recv().await, Some(Ok(true)));
    let running = app.task(&id).await;
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(running.progress, Some(0.5));

    finish.notify_one();
    let done = app
        .wait_for(&id, Duration::from_secs(10), |t| t.status.is_final())
        .await;
    assert_eq!(done.status, TaskStatus::Completed);
}

both_backends!(a_progress_outside_zero_to_one_is_refused_and_not_recorded);
async fn a_progress_outside_zero_to_one_is_refused_and_not_recorded() {
    let overshoot = handler_fn(|task| async move {
        let mut refused = 0;
        for fraction in [1.5, -0.1, f64::NAN, f64::INFINITY] {
            match task.progress.report(fraction).await {
                Err(ProgressError::OutOfRange(_)) => refused += 1,
                other => return Err(HandlerError::Permanent(format!("{fraction}: {other:?}"))),
            }
        }
        Ok(json!({ "refused": refused }))
    });
    let app = app_with("overshoot", overshoot).await;
    let task = app.run_to_the_end(json!({"type": "overshoot"})).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.result.unwrap()["result"], json!({"refused": 4}));
    assert_eq!(task.progress, None);
}

both_backends!(a_progress_report_after_its_task_was_cancelled_is_not_recorded);
async fn a_progress_report_after_its_task_was_cancelled_is_not_recorded() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let (task, lease) = a_claimed_echo_task(&*store).await;
    let progress = Progress::new(store.clone(), lease, CLAIMED_FOR);
    assert!(progress.report(0.1).await.unwrap());
    store
        .cancel_task(task.id, &Actor::anonymous())
        .await
        .unwrap();

    assert!(!progress.report(0.9).await.unwrap());
    let task = store.get_task(task.id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Cancelled);
    assert_eq!(task.progress, Some(0.1));
}
