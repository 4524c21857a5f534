//! The live event stream (`GET /api/v1/events`): task transitions over a real HTTP
//! connection, in order; resuming from an event id; filters; heartbeats; a client that does
//! not read is dropped while the server stays healthy; events written by another process; and
//! an event whose transaction commits after a later one's is still delivered, in order.

mod common;

use std::{sync::Arc, time::Duration};

use common::{process::Process, *};
use reqwest::StatusCode;
use seedcore::api::{ApiSettings, EventSettings};
use serde_json::{Value, json};

/// One item of an event stream.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Event { id: i64, event: String, data: Value },
    Comment(String),
}

/// Reads a `text/event-stream` body item by item.
struct Sse {
    body: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<i64>) -> Sse {
        let mut request = app.client.get(format!("{}/api/v1/events{query}", app.base));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        Sse::from_response(request.send().await.expect("connect")).await
    }

    async fn from_response(response: reqwest::Response) -> Sse {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Sse {
            body: response,
            buffer: String::new(),
        }
    }

    /// The next item, None when the stream ended; fails after `within`.
    async fn next(&mut self, within: Duration) -> Option<Item> {
        tokio::time::timeout(within, self.next_item())
            .await
            .expect("the stream sent nothing in time")
    }

    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            match self.body.chunk().await {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// The next `task` events (comments skipped) until `n` were read.
    async fn events(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(Duration::from_secs(20)).await {
                Some(Item::Event { id, event, data }) => {
                    assert_eq!(event, "task");
                    assert_eq!(data["seq"], json!(id), "the id is the seq");
                    out.push(data);
                }
                Some(Item::Comment(_)) => {}
                None => panic!("the stream ended after {} events", out.len()),
            }
        }
        out
    }

    /// Events until one of `task_id` reaches `status`.
    async fn until(&mut self, task_id: &str, status: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let event = self.events(1).await.remove(0);
            let done = event["task_id"] == task_id && event["status"] == status;
            out.push(event);
            if done {
                return out;
            }
        }
    }
}

fn parse(block: &str) -> Item {
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            return Item::Comment(comment.trim().to_string());
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().expect("a numeric id")),
            "event" => event = value.to_string(),
            "data" => data.push_str(value),
            _ => {}
        }
    }
    Item::Event {
        id: id.expect("an id"),
        event,
        data: serde_json::from_str(&data).expect("JSON data"),
    }
}

fn of_task<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["task_id"] == id).collect()
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

async fn app_with(events: EventSettings, workers: bool) -> TestApp {
    let settings = ApiSettings {
        events,
        ..ApiSettings::default()
    };
    let engine = workers.then(fast_engine);
    TestApp::on(Arc::new(TestDb::create().await), engine, settings).await
}

/// Every seq of the audit trail, in order, read through the per-task trail.
async fn trail(app: &TestApp, ids: &[String]) -> Vec<i64> {
    let mut all = Vec::new();
    for id in ids {
        let (_, body) = app.get(&format!("/api/v1/tasks/{id}/events")).await;
        for item in body["items"].as_array().unwrap() {
            all.push(item["seq"].as_i64().unwrap());
        }
    }
    all.sort();
    all
}

both_backends!(the_stream_delivers_a_task_s_transitions_in_order);
async fn the_stream_delivers_a_task_s_transitions_in_order() {
    let app = TestApp::start().await;
    let mut stream = Sse::open(&app, "", None).await;
    let task = app
        .create_task(
            json!({"type": "echo", "queue": "events", "params": {"n": 1}, "run_immediately": true}),
        )
        .await;
    let id = id_of(&task);
    let events = stream.until(&id, "completed").await;
    let mine = of_task(&events, &id);
    let steps: Vec<(&str, &str)> = mine
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("created", "queued"),
            ("claimed", "running"),
            ("completed", "completed")
        ]
    );
    let first = mine[0];
    assert_eq!(first["type"], "echo");
    assert_eq!(first["queue"], "events");
    assert_eq!(first["from_status"], Value::Null);
    assert_eq!(first["workflow_id"], Value::Null);
    assert_eq!(mine[1]["from_status"], "queued");
    assert_eq!(mine[1]["attempt"], 1);
    assert!(first["at"].as_str().unwrap().ends_with('Z'));
    let all = seqs(&events);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "in seq order: {all:?}");
    drop(stream);
    app.stop().await;
}

both_backends!(a_stream_resumes_after_an_event_id_with_nothing_missed_or_repeated);
async fn a_stream_resumes_after_an_event_id_with_nothing_missed_or_repeated() {
    let app = TestApp::without_workers().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(id_of(
            &app.create_task(json!({"type": "echo", "params": {"n": n}}))
                .await,
        ));
    }
    let before = trail(&app, &ids).await;
    assert_eq!(before.len(), 5);

    // From the header: the three after the second, then what happens next, live.
    let mut stream = Sse::open(&app, "", Some(before[1])).await;
    let caught_up = stream.events(3).await;
    assert_eq!(seqs(&caught_up), before[2..]);
    let (status, _) = app
        .post_empty(&format!("/api/v1/tasks/{}/run", ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
    let live = stream.events(1).await;
    assert_eq!(live[0]["task_id"], ids[0].as_str());
    assert_eq!(live[0]["kind"], "queued");
    let after = trail(&app, &ids).await;
    assert_eq!(seqs(&live), after[5..], "the next event of the trail, once");
    drop(stream);

    // From the query, and from the very start.
    for (query, header, expected) in [
        (format!("?after={}", before[3]), None, &after[4..]),
        ("?after=0".to_string(), None, &after[..]),
        // The header wins over the query.
        ("?after=0".to_string(), Some(after[4]), &after[5..]),
    ] {
        let mut stream = Sse::open(&app, &query, header).await;
        assert_eq!(
            seqs(&stream.events(expected.len()).await),
            expected,
            "{query}"
        );
    }
    app.stop().await;
}

both_backends!(filters_pick_the_events_of_a_task_queue_type_or_workflow);
async fn filters_pick_the_events_of_a_task_queue_type_or_workflow() {
    let app = TestApp::without_workers().await;
    let a = id_of(
        &app.create_task(json!({"type": "alpha", "queue": "red"}))
            .await,
    );
    let b = id_of(
        &app.create_task(json!({"type": "beta", "queue": "red"}))
            .await,
    );
    let c = id_of(
        &app.create_task(json!({"type": "alpha", "queue": "blue"}))
            .await,
    );
    let (status, workflow) = app
        .post(
            "/api/v1/workflows",
            json!({"tasks": [{"key": "one", "type": "gamma"}, {"key": "two", "type": "gamma", "depends_on": ["one"]}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    let workflow_id = id_of(&workflow);
    // One more event each for a and c, after the creates.
    for id in [&a, &c] {
        app.post_empty(&format!("/api/v1/tasks/{id}/run")).await;
    }
    let expect = [
        (format!("?after=0&task_id={a}"), 2),
        ("?after=0&queue=red".to_string(), 3),
        ("?after=0&type=alpha".to_string(), 4),
        (format!("?after=0&workflow_id={workflow_id}"), 2),
        ("?after=0&type=alpha&queue=blue".to_string(), 2),
    ];
    for (query, n) in expect {
        let mut stream = Sse::open(&app, &query, None).await;
        let got = stream.events(n).await;
        for event in &got {
            if query.contains("task_id") {
                assert_eq!(event["task_id"], a.as_str());
            }
            if query.contains("queue=red") {
                assert_eq!(event["queue"], "red");
                assert!(event["task_id"] == a.as_str() || event["task_id"] == b.as_str());
            }
            if query.contains("type=alpha") {
                assert_eq!(event["type"], "alpha");
            }
            if query.contains("queue=blue") {
                assert_eq!(event["task_id"], c.as_str());
            }
            if query.contains("workflow_id") {
                assert_eq!(event["workflow_id"], workflow_id.as_str());
                assert_eq!(event["type"], "gamma");
            }
        }
        // Nothing else matches: a fresh task of another kind, then one that matches all
        // filters but the task id, shows the stream passed over the rest.
        let other = app
            .create_task(json!({"type": "delta", "queue": "green"}))
            .await;
        let next = tokio::time::timeout(Duration::from_millis(600), stream.events(1)).await;
        assert!(
            next.is_err(),
            "{query}: an event of {} passed the filter",
            id_of(&other)
        );
        drop(stream);
    }
    app.stop().await;
}

both_backends!(bad_parameters_and_ids_are_refused_with_422);
async fn bad_parameters_and_ids_are_refused_with_422() {
    let app = TestApp::without_workers().await;
    for (query, loc) in [
        ("?task_id=nope", json!(["query", "task_id"])),
        ("?workflow_id=123", json!(["query", "workflow_id"])),
        ("?after=-1", json!(["query", "after"])),
        ("?after=x", json!(["query", "after"])),
        ("?colour=red", json!(["query", "colour"])),
    ] {
        let (status, body) = app.get(&format!("/api/v1/events{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"], loc, "{query}: {body}");
    }
    let response = app
        .client
        .get(format!("{}/api/v1/events", app.base))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["header", "last-event-id"]));
    app.stop().await;
}

both_backends!(an_idle_stream_carries_heartbeat_comments);
async fn an_idle_stream_carries_heartbeat_comments() {
    let settings = EventSettings {
        heartbeat: Duration::from_millis(200),
        ..EventSettings::default()
    };
    let app = app_with(settings, false).await;
    let mut stream = Sse::open(&app, "", None).await;
    for _ in 0..2 {
        let item = stream.next(Duration::from_secs(5)).await;
        assert_eq!(item, Some(Item::Comment("keep-alive".into())));
    }
    drop(stream);
    app.stop().await;
}

both_backends!(a_client_that_does_not_read_is_dropped_and_the_server_stays_healthy);
async fn a_client_that_does_not_read_is_dropped_and_the_server_stays_healthy() {
    let settings = EventSettings {
        buffer: 16,
        ..EventSettings::default()
    };
    let app = app_with(settings, false).await;
    let mut stalled = Sse::open(&app, "", None).await;
    // Far more than the socket buffers on both sides and the subscriber's 16 events hold.
    const CREATED: usize = 60_000;
    let mut last = String::new();
    for _ in 0..CREATED / 10_000 {
        let tasks: Vec<Value> = (0..10_000).map(|_| json!({"type": "echo"})).collect();
        let (status, body) = app
            .post("/api/v1/tasks/bulk", json!({"tasks": tasks}))
            .await;
        assert_eq!(status, StatusCode::OK);
        last = body["ids"][9_999].as_str().unwrap().to_string();
    }
    // A client that reads keeps up and sees the last one.
    let mut reader = Sse::open(&app, "?after=0", None).await;
    reader.until(&last, "created").await;

    // The stalled one now reads what its sockets held, then the end, marked as a drop.
    let mut received = 0;
    let ending = loop {
        match stalled.next(Duration::from_secs(30)).await {
            Some(Item::Event { .. }) => received += 1,
            Some(Item::Comment(text)) if text.starts_with("dropped") => break text,
            Some(Item::Comment(_)) => {}
            None => panic!("the stream ended without saying it dropped the client"),
        }
    };
    assert!(ending.contains("Last-Event-ID"), "{ending}");
    assert!(
        stalled.next(Duration::from_secs(10)).await.is_none(),
        "then it ends"
    );
    assert!(
        received < CREATED,
        "it was dropped before the end ({received})"
    );
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get("/api/v1/tasks?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["total"], CREATED);
    drop((stalled, reader));
    app.stop().await;
}

postgres_only!(events_written_by_another_process_arrive);
async fn events_written_by_another_process_arrive() {
    let app = TestApp::without_workers().await;
    let mut stream = Sse::open(&app, "?type=echo", None).await;
    let url = app.db.url();
    let mut other = Process::spawn(&["serve"], &[("PG_DSN", url.as_str()), ("PORT", "0")]);
    let base = other.wait_for_address();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/v1/tasks"))
        .json(&json!({"type": "echo", "run_immediately": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = id_of(&created);
    let events = stream.until(&id, "completed").await;
    let kinds: Vec<&str> = of_task(&events, &id)
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "claimed", "completed"]);
    other.stop();
    drop(stream);
    app.stop().await;
}

postgres_only!(an_event_committed_after_a_later_one_is_still_delivered_in_order);
async fn an_event_committed_after_a_later_one_is_still_delivered_in_order() {
    let settings = EventSettings {
        gap_wait: Duration::from_secs(30),
        ..EventSettings::default()
    };
    let app = app_with(settings, false).await;
    let slow = id_of(&app.create_task(json!({"type": "slow"})).await);
    let mut stream = Sse::open(&app, "", None).await;

    // A transaction takes the next seq (its event is inserted) and holds it uncommitted...
    let raw = app.db.raw().await;
    let RawDb::Postgres(pool) = &raw else {
        unreachable!("a PostgreSQL test")
    };
    let mut held = pool.begin().await.unwrap();
    sqlx::query("update tasks set status = 'queued', updated_at = now() where id = $1::uuid")
        .bind(&slow)
        .execute(&mut *held)
        .await
        .unwrap();
    // ...while a later event commits at once.
    let fast = id_of(&app.create_task(json!({"type": "fast"})).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    held.commit().await.unwrap();

    let events = stream.events(2).await;
    assert_eq!(events[0]["task_id"], slow.as_str(), "{events:?}");
    assert_eq!(events[0]["kind"], "queued");
    assert_eq!(events[1]["task_id"], fast.as_str());
    assert!(events[0]["seq"].as_i64() < events[1]["seq"].as_i64());
    drop(stream);
    app.stop().await;
}
