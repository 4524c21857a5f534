//! Who acted, on every event of the audit trail: the token of an API call (or `anonymous`
//! without one), the worker that claimed, finished or released a task, the schedule that
//! created it, and seedcore itself for a rescued lease and for children a parent moved on.
//! Each kind of change is made the way a client, a worker or the reaper makes it, and the
//! trail is read back through `GET /api/v1/tasks/{id}/events`.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use common::*;
use reqwest::StatusCode;
use seedcore::{
    api::{self, ApiSettings, AppState},
    auth::{AuthSettings, NewToken, Role, Secret},
    engine::{Engine, EngineHandle, HandlerRouter},
    model::{Actor, NewTask, TaskEvent},
    store::{Claim, DynStore, Lease, Outcome},
};
use serde_json::{Value, json};
use uuid::Uuid;

/// The app with workers and every route closed to callers without a token.
struct LockedApp {
    base: String,
    client: reqwest::Client,
    store: DynStore,
    _engine: EngineHandle,
    _db: Arc<TestDb>,
}

impl LockedApp {
    async fn start() -> LockedApp {
        let db = Arc::new(TestDb::create().await);
        let store = db.store().await.into_dyn();
        let engine = Engine::new(store.clone(), HandlerRouter::with_builtins(), fast_engine())
            .start()
            .await;
        let auth = AuthSettings {
            open_routes: Vec::new(),
            rate: None,
            ..AuthSettings::default()
        };
        let state = AppState::new(store.clone(), ApiSettings::default()).with_auth(auth);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(listener, api::app(state)).await.expect("serve");
        });
        LockedApp {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            store,
            _engine: engine,
            _db: db,
        }
    }

    /// Stores an admin token of this name and returns its text.
    async fn token(&self, name: &str) -> String {
        let secret = Secret::generate();
        self.store
            .create_token(NewToken {
                id: secret.id.clone(),
                name: name.into(),
                role: Role::Admin,
                scopes: Role::Admin.scopes(),
                secret_hash: secret.hash(),
                expires_at: None,
            })
            .await
            .expect("store a token");
        secret.text
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(response.status().is_success(), "{path}: {response:?}");
        response.json().await.expect("json")
    }

    async fn task(&self, token: &str, id: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/api/v1/tasks/{id}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        response.json().await.expect("json")
    }

    async fn finished(&self, token: &str, id: &str) -> Value {
        eventually(Duration::from_secs(20), "the task finishes", || async {
            let task = self.task(token, id).await;
            matches!(task["status"].as_str(), Some("completed" | "failed")).then_some(task)
        })
        .await
    }

    /// The trail as (kind, actor) pairs, a worker shown as `worker` once checked to be the
    /// worker the event names.
    async fn trail(&self, token: &str, id: &str) -> Vec<(String, String)> {
        let response = self
            .client
            .get(format!("{}/api/v1/tasks/{id}/events", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let events: Value = response.json().await.expect("json");
        let events: Vec<TaskEvent> =
            serde_json::from_value(events["items"].clone()).expect("events");
        kinds_and_actors(&events)
    }
}

/// Each event's kind and actor; a worker's name is checked against the event's worker and
/// then shown as `worker`, since worker ids are made up at start.
fn kinds_and_actors(events: &[TaskEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|event| {
            let actor = event.actor.as_ref().map_or("(none)", Actor::as_str);
            let actor = match (actor.strip_prefix("worker:"), &event.worker_id) {
                (Some(worker), Some(held_by)) => {
                    assert_eq!(worker, held_by, "the worker that acted holds the task");
                    "worker"
                }
                _ => actor,
            };
            (event.kind.clone(), actor.to_string())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(kind, actor)| (kind.to_string(), actor.to_string()))
        .collect()
}

both_backends!(every_event_names_the_token_or_the_worker_that_acted);
async fn every_event_names_the_token_or_the_worker_that_acted() {
    let app = LockedApp::start().await;
    let deployer = app.token("deployer").await;
    let operator = app.token("operator").await;

    let task = app
        .post(
            &deployer,
            "/api/v1/tasks",
            json!({"type": "fail", "run_immediately": true, "max_attempts": 1}),
        )
        .await;
    let id = id_of(&task);
    app.finished(&deployer, &id).await;
    app.post(&operator, &format!("/api/v1/tasks/{id}/run"), json!({}))
        .await;
    app.finished(&operator, &id).await;

    let idle = app
        .post(&deployer, "/api/v1/tasks", json!({"type": "noop"}))
        .await;
    let idle = id_of(&idle);
    app.post(
        &operator,
        &format!("/api/v1/tasks/{idle}/cancel"),
        json!({}),
    )
    .await;

    assert_eq!(
        app.trail(&deployer, &id).await,
        pairs(&[
            ("created", "token:deployer"),
            ("claimed", "worker"),
            ("failed", "worker"),
            ("queued", "token:operator"),
            ("claimed", "worker"),
            ("failed", "worker"),
        ])
    );
    assert_eq!(
        app.trail(&deployer, &idle).await,
        pairs(&[
            ("created", "token:deployer"),
            ("cancelled", "token:operator")
        ])
    );
}

both_backends!(a_workflow_and_its_cancellation_name_the_tokens_that_made_them);
async fn a_workflow_and_its_cancellation_name_the_tokens_that_made_them() {
    let app = LockedApp::start().await;
    let author = app.token("author").await;
    let canceller = app.token("canceller").await;
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let workflow = app
        .post(
            &author,
            "/api/v1/workflows",
            json!({"name": "w", "tasks": [
                {"key": "later", "type": "noop", "run_at": tomorrow},
                {"key": "after", "type": "noop", "depends_on": ["later"]},
            ]}),
        )
        .await;
    let workflow_id = workflow["id"].as_str().expect("a workflow id");
    let cancelled = app
        .post(
            &canceller,
            &format!("/api/v1/workflows/{workflow_id}/cancel"),
            json!({}),
        )
        .await;
    for task in cancelled["tasks"].as_array().expect("tasks") {
        let id = task["id"].as_str().expect("a task id");
        let trail = app.trail(&author, id).await;
        assert_eq!(trail[0], ("created".into(), "token:author".into()));
        assert_eq!(
            trail.last().unwrap(),
            &("cancelled".to_string(), "token:canceller".to_string()),
            "{trail:?}"
        );
    }
}

both_backends!(an_api_call_without_a_token_is_recorded_as_anonymous);
async fn an_api_call_without_a_token_is_recorded_as_anonymous() {
    let app = TestApp::without_workers().await;
    let task = app.create_task(json!({"type": "noop"})).await;
    let id = id_of(&task);
    let (status, _) = app.post_empty(&format!("/api/v1/tasks/{id}/cancel")).await;
    assert_eq!(status, StatusCode::OK);
    let events = app.store.task_events(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        kinds_and_actors(&events),
        pairs(&[("created", "anonymous"), ("cancelled", "anonymous")])
    );
}

/// A task created through the store in a queue of its own, claimed by `worker`: its id, the
/// claim (to claim it again) and the lease of the attempt.
async fn claimed_alone(store: &DynStore, worker: &str, lease: Duration) -> (Uuid, Claim, Lease) {
    let queue = format!("q-{}", Uuid::new_v4().simple());
    let task = store
        .create_task(NewTask {
            queue: queue.clone(),
            run_immediately: true,
            max_attempts: 3,
            actor: Some(Actor::token("maker")),
            ..NewTask::of_type("noop")
        })
        .await
        .expect("create");
    let claim = Claim {
        queues: Some(vec![queue]),
        ..Claim::any(worker, 10, lease)
    };
    let claimed = store.claim_tasks(&claim).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    (task.id, claim, claimed[0].lease)
}

both_backends!(a_lease_that_ran_out_is_rescued_by_the_system_and_claimed_again_by_a_worker);
async fn a_lease_that_ran_out_is_rescued_by_the_system_and_claimed_again_by_a_worker() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let (id, claim, _) = claimed_alone(&store, "gone", Duration::from_millis(1)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.rescue_expired().await.expect("rescue"), 1);
    let again = Claim {
        worker_id: "second".into(),
        lease: Duration::from_secs(60),
        ..claim
    };
    let claimed = store.claim_tasks(&again).await.expect("claim again");
    store
        .finish_attempt(claimed[0].lease, Outcome::Failed("no".into()))
        .await
        .expect("finish");

    let events = store.task_events(id).await.unwrap();
    assert_eq!(
        kinds_and_actors(&events),
        pairs(&[
            ("created", "token:maker"),
            ("claimed", "worker"),
            ("rescued", "system:lease-expired"),
            ("claimed", "worker"),
            ("failed", "worker"),
        ])
    );
    assert_eq!(events[3].worker_id.as_deref(), Some("second"));
}

both_backends!(a_released_task_names_the_worker_that_let_it_go);
async fn a_released_task_names_the_worker_that_let_it_go() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let (id, _, lease) = claimed_alone(&store, "stopping", Duration::from_secs(60)).await;
    assert_eq!(store.release(&[lease]).await.expect("release"), 1);
    let events = store.task_events(id).await.unwrap();
    assert_eq!(
        kinds_and_actors(&events),
        pairs(&[
            ("created", "token:maker"),
            ("claimed", "worker"),
            ("released", "worker"),
        ])
    );
    assert_eq!(
        events[2].actor,
        Some(Actor::from_stored("worker:stopping".into()))
    );
}

both_backends!(children_a_parent_moved_on_name_the_system);
async fn children_a_parent_moved_on_name_the_system() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let queue = format!("q-{}", Uuid::new_v4().simple());
    let parent = store
        .create_task(NewTask {
            queue: queue.clone(),
            run_immediately: true,
            max_attempts: 1,
            actor: Some(Actor::token("maker")),
            ..NewTask::of_type("noop")
        })
        .await
        .unwrap();
    let child = |run_on_failure| NewTask {
        queue: format!("{queue}-child"),
        run_immediately: true,
        depends_on: vec![parent.id],
        run_on_failure,
        actor: Some(Actor::token("maker")),
        ..NewTask::of_type("noop")
    };
    let stopped = store.create_task(child(false)).await.unwrap();
    let cleanup = store.create_task(child(true)).await.unwrap();
    let claimed = store
        .claim_tasks(&Claim {
            queues: Some(vec![queue]),
            ..Claim::any("w1", 10, Duration::from_secs(60))
        })
        .await
        .unwrap();
    store
        .finish_attempt(claimed[0].lease, Outcome::Failed("broken".into()))
        .await
        .unwrap();

    let trail = |events: Vec<TaskEvent>| kinds_and_actors(&events);
    assert_eq!(
        trail(store.task_events(stopped.id).await.unwrap()),
        pairs(&[
            ("created", "token:maker"),
            ("cancelled", "system:dependencies")
        ])
    );
    assert_eq!(
        trail(store.task_events(cleanup.id).await.unwrap()),
        pairs(&[
            ("created", "token:maker"),
            ("queued", "system:dependencies")
        ])
    );
}

both_backends!(a_child_cancelled_with_its_parent_names_whoever_cancelled_the_parent);
async fn a_child_cancelled_with_its_parent_names_whoever_cancelled_the_parent() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let made = |depends_on| NewTask {
        depends_on,
        actor: Some(Actor::token("maker")),
        ..NewTask::of_type("noop")
    };
    let parent = store.create_task(made(vec![])).await.unwrap();
    let child = store.create_task(made(vec![parent.id])).await.unwrap();
    let grandchild = store.create_task(made(vec![child.id])).await.unwrap();
    store
        .cancel_task(parent.id, &Actor::token("stopper"))
        .await
        .unwrap();

    for id in [child.id, grandchild.id] {
        assert_eq!(
            kinds_and_actors(&store.task_events(id).await.unwrap()),
            pairs(&[("created", "token:maker"), ("cancelled", "token:stopper")])
        );
    }
}

postgres_only!(a_task_moved_to_the_history_keeps_who_acted_on_it);
async fn a_task_moved_to_the_history_keeps_who_acted_on_it() {
    let db = TestDb::create().await;
    let store = db.store().await.into_dyn();
    let (id, _, lease) = claimed_alone(&store, "mover", Duration::from_secs(60)).await;
    store
        .finish_attempt(lease, Outcome::Completed(json!({})))
        .await
        .unwrap();
    let before = store.task_events(id).await.unwrap();

    let moved = store
        .archive_finished(chrono::Utc::now() + chrono::TimeDelta::minutes(1), 100)
        .await
        .unwrap();
    assert_eq!(moved, 1, "the finished task moved to the history");
    let after = store.task_events(id).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(
        kinds_and_actors(&after),
        pairs(&[
            ("created", "token:maker"),
            ("claimed", "worker"),
            ("completed", "worker"),
        ])
    );
}
