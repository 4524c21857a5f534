//! The task list's additions (`GET /api/v1/tasks`): each filter, the parameter filter's typing
//! rules, the orders, keyset paging while tasks are added, the count modes, the refusals, and a
//! bulk action on the same filter acting on exactly the tasks the list shows.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use reqwest::{StatusCode, Url};
use seedcore::model::TaskStatus;
use serde_json::{Value, json};
use uuid::Uuid;

/// The list's path with these query parameters, encoded.
fn tasks_path(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://list/api/v1/tasks").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

async fn list(app: &TestApp, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = app.get(&tasks_path(pairs)).await;
    assert_eq!(status, StatusCode::OK, "{pairs:?}: {body}");
    body
}

/// The ids a list answers with, in its order.
async fn ids(app: &TestApp, pairs: &[(&str, &str)]) -> Vec<String> {
    ids_of(&list(app, pairs).await)
}

fn ids_of(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

fn set(ids: &[&String]) -> HashSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn found(ids: Vec<String>) -> HashSet<String> {
    ids.into_iter().collect()
}

async fn task_with(app: &TestApp, body: Value) -> String {
    let mut body = body;
    body["type"] = json!("echo");
    id_of(&app.create_task(body).await)
}

async fn refusal(app: &TestApp, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = app.get(&tasks_path(pairs)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{pairs:?}: {body}"
    );
    body["detail"][0].clone()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

both_backends!(queue_parent_and_time_filters_keep_exactly_the_matching_tasks);
async fn queue_parent_and_time_filters_keep_exactly_the_matching_tasks() {
    let app = TestApp::without_workers().await;
    let mail = task_with(&app, json!({"queue": "emails"})).await;
    let parent = task_with(&app, json!({})).await;
    let child = task_with(&app, json!({"depends_on": [parent]})).await;
    let other_child = task_with(&app, json!({"depends_on": [parent, mail]})).await;
    assert_eq!(ids(&app, &[("queue", "emails")]).await, [mail.as_str()]);
    assert_eq!(
        found(ids(&app, &[("parent", &parent)]).await),
        set(&[&child, &other_child])
    );
    assert_eq!(
        ids(&app, &[("parent", &mail)]).await,
        [other_child.as_str()]
    );

    let raw = app.db.raw().await;
    let (old, middle, new) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    raw.insert_task(&old.to_string(), "dated", at("2020-01-01T00:00:00Z"))
        .await;
    raw.insert_task(&middle.to_string(), "dated", at("2020-01-02T00:00:00Z"))
        .await;
    raw.insert_task(&new.to_string(), "dated", at("2020-01-03T00:00:00Z"))
        .await;
    let between = ids(
        &app,
        &[
            ("type", "dated"),
            ("created_after", "2020-01-01T00:00:00Z"),
            ("created_before", "2020-01-03T00:00:00Z"),
        ],
    )
    .await;
    assert_eq!(between, [middle.to_string()], "both bounds are strict");
}

both_backends!(workflow_id_keeps_the_tasks_of_that_workflow);
async fn workflow_id_keeps_the_tasks_of_that_workflow() {
    let app = TestApp::without_workers().await;
    task_with(&app, json!({})).await;
    let body = json!({"name": "nightly", "tasks": [
        {"key": "extract", "type": "echo"},
        {"key": "report", "type": "echo", "depends_on": ["extract"]},
    ]});
    let (status, workflow) = app.post("/api/v1/workflows", body).await;
    assert_eq!(status, StatusCode::CREATED, "{workflow}");
    let workflow_id = id_of(&workflow);
    let listed = list(&app, &[("workflow_id", &workflow_id)]).await;
    assert_eq!(listed["total"], 2);
    for task in listed["items"].as_array().unwrap() {
        assert_eq!(task["workflow_id"], workflow_id.as_str());
    }
    // Created in one transaction, the two share their creation time: the id breaks the tie.
    let filter = ("workflow_id", workflow_id.as_str());
    let first = list(&app, &[filter, ("limit", "1")]).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = list(&app, &[filter, ("limit", "1"), ("cursor", cursor)]).await;
    let mut both = [ids_of(&first), ids_of(&second)].concat();
    both.sort();
    let mut expected = ids_of(&listed);
    expected.sort();
    assert_eq!(both, expected);
    // An offset with a cursor skips past it: one more than the last task is none.
    let skipped = list(&app, &[filter, ("cursor", cursor), ("offset", "1")]).await;
    assert_eq!(skipped["items"], json!([]), "{skipped}");
}

both_backends!(q_finds_a_substring_of_the_parameters_or_of_the_error_literally);
async fn q_finds_a_substring_of_the_parameters_or_of_the_error_literally() {
    let app = TestApp::without_workers().await;
    let by_param = task_with(&app, json!({"params": {"note": "Invoice 100%_PAID"}})).await;
    let by_error = task_with(&app, json!({})).await;
    let unrelated = task_with(&app, json!({"params": {"note": "invoice 1000 paid"}})).await;
    app.db
        .raw()
        .await
        .force_state(
            &by_error,
            TaskStatus::Failed,
            None,
            Some("Gateway TIMEOUT at step 3"),
        )
        .await;
    assert_eq!(ids(&app, &[("q", "100%_paid")]).await, [by_param.as_str()]);
    assert_eq!(ids(&app, &[("q", "gateway timeout")]).await, [by_error]);
    assert_eq!(
        found(ids(&app, &[("q", "INVOICE")]).await),
        set(&[&by_param, &unrelated])
    );
}

both_backends!(a_params_filter_matches_the_value_at_its_path_by_json_type_and_value);
async fn a_params_filter_matches_the_value_at_its_path_by_json_type_and_value() {
    let app = TestApp::without_workers().await;
    let int = task_with(&app, json!({"params": {"customer_id": 42}})).await;
    let real = task_with(&app, json!({"params": {"customer_id": 42.0}})).await;
    let text = task_with(&app, json!({"params": {"customer_id": "42"}})).await;
    let listed = task_with(&app, json!({"params": {"customer_id": [42]}})).await;
    let gold = task_with(
        &app,
        json!({"params": {"customer": {"tier": "gold"}, "vip": true, "note": null}}),
    )
    .await;
    let silver = task_with(&app, json!({"params": {"customer": {"tier": "silver"}}})).await;

    let by = |pairs: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move { found(ids(app, pairs).await) }
    };
    assert_eq!(
        by(&[("params.customer_id", "42")]).await,
        set(&[&int, &real])
    );
    assert_eq!(
        by(&[("params.customer_id", "42.0")]).await,
        set(&[&int, &real])
    );
    assert_eq!(by(&[("params.customer_id", "\"42\"")]).await, set(&[&text]));
    assert_eq!(by(&[("params.customer.tier", "gold")]).await, set(&[&gold]));
    assert_eq!(by(&[("params.vip", "true")]).await, set(&[&gold]));
    assert_eq!(by(&[("params.note", "null")]).await, set(&[&gold]));
    assert_eq!(
        by(&[("params.customer.tier", "gold"), ("params.vip", "false")]).await,
        set(&[]),
        "several filters must all match"
    );
    assert!(by(&[("params.customer", "gold")]).await.is_empty());
    let _ = (listed, silver);
}

both_backends!(the_list_sorts_by_creation_or_update_either_way);
async fn the_list_sorts_by_creation_or_update_either_way() {
    let app = TestApp::without_workers().await;
    let raw = app.db.raw().await;
    let made: Vec<String> = (0..4).map(|_| Uuid::new_v4().to_string()).collect();
    for (i, id) in made.iter().enumerate() {
        let created = at("2021-06-01T00:00:00Z") + chrono::Duration::minutes(i as i64);
        raw.insert_task(id, "sorted", created).await;
    }
    // The oldest is updated last.
    raw.force_state(&made[0], TaskStatus::Cancelled, None, None)
        .await;
    let sorted = |sort: &'static str| {
        let app = &app;
        async move { ids(app, &[("type", "sorted"), ("sort", sort)]).await }
    };
    let oldest_first = made.clone();
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    assert_eq!(sorted("created_at").await, oldest_first);
    assert_eq!(sorted("-created_at").await, newest_first);
    assert_eq!(ids(&app, &[("type", "sorted")]).await, newest_first);
    assert_eq!(sorted("-updated_at").await[0], made[0]);
    assert_eq!(sorted("updated_at").await.last(), Some(&made[0]));
}

both_backends!(running_tasks_take_their_place_in_every_order_page_and_count);
async fn running_tasks_take_their_place_in_every_order_page_and_count() {
    let app = TestApp::without_workers().await;
    let raw = app.db.raw().await;
    let made: Vec<String> = (0..9).map(|_| Uuid::new_v4().to_string()).collect();
    let running: Vec<&String> = made.iter().skip(1).step_by(3).collect();
    for (i, id) in made.iter().enumerate() {
        let created = at("2021-07-01T00:00:00Z") + chrono::Duration::minutes(i as i64);
        raw.insert_task(id, "mixed", created).await;
        match i % 3 {
            1 => raw.force_state(id, TaskStatus::Running, None, None).await,
            2 => {
                raw.force_state(id, TaskStatus::Completed, Some(json!(1)), None)
                    .await
            }
            _ => {}
        }
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let sorted = |sort: &'static str| {
        let app = &app;
        async move { ids(app, &[("type", "mixed"), ("sort", sort)]).await }
    };
    assert_eq!(sorted("created_at").await, made);
    assert_eq!(sorted("-created_at").await, newest_first);

    let mut by_offset = Vec::new();
    for offset in ["0", "2", "4", "6", "8"] {
        by_offset.extend(
            ids(
                &app,
                &[("type", "mixed"), ("limit", "2"), ("offset", offset)],
            )
            .await,
        );
    }
    assert_eq!(by_offset, newest_first, "offset pages cut the same order");

    let mut by_cursor = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        // `queue` is an addition to the contract's query, so the page carries a cursor.
        let mut pairs = vec![("type", "mixed"), ("queue", "default"), ("limit", "2")];
        if let Some(cursor) = &cursor {
            pairs.push(("cursor", cursor));
        }
        let page = list(&app, &pairs).await;
        by_cursor.extend(ids_of(&page));
        match &page["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            _ => break,
        }
    }
    assert_eq!(by_cursor, newest_first, "cursor pages cut the same order");

    let only_running = list(&app, &[("type", "mixed"), ("status", "running")]).await;
    let expected: Vec<String> = running.iter().rev().map(|id| id.to_string()).collect();
    assert_eq!(ids_of(&only_running), expected);
    assert_eq!(only_running["total"], 3);
    assert_eq!(list(&app, &[("type", "mixed")]).await["total"], 9);
    assert_eq!(
        list(&app, &[("type", "mixed"), ("count", "estimate")]).await["total"],
        9
    );
}

/// Follows `next_cursor` from the first page to the last, adding a task after each page.
async fn walk(app: &TestApp, sort: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut pairs = vec![
            ("queue", "paged"),
            ("sort", sort),
            ("limit", "7"),
            ("count", "estimate"),
        ];
        if let Some(cursor) = &cursor {
            pairs.push(("cursor", cursor));
        }
        let page = list(app, &pairs).await;
        seen.extend(ids_of(&page));
        task_with(app, json!({"queue": "paged"})).await;
        match &page["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            Value::Null => return seen,
            other => panic!("next_cursor should be a string or null, not {other}"),
        }
    }
}

both_backends!(keyset_pages_have_no_duplicates_and_no_gaps_while_tasks_are_added);
async fn keyset_pages_have_no_duplicates_and_no_gaps_while_tasks_are_added() {
    let app = TestApp::without_workers().await;
    let mut before = Vec::new();
    for _ in 0..30 {
        before.push(task_with(&app, json!({"queue": "paged"})).await);
    }
    let newest_first = walk(&app, "-created_at").await;
    let expected: Vec<String> = before.iter().rev().cloned().collect();
    assert_eq!(
        newest_first, expected,
        "newer tasks land before the first page, so the walk sees exactly the earlier ones"
    );

    let oldest_first = walk(&app, "created_at").await;
    assert_eq!(oldest_first[..30], before[..], "no gap and no duplicate");
    let unique: HashSet<&String> = oldest_first.iter().collect();
    assert_eq!(unique.len(), oldest_first.len(), "no task is listed twice");
}

both_backends!(count_modes_give_an_exact_total_an_estimate_or_none);
async fn count_modes_give_an_exact_total_an_estimate_or_none() {
    let app = TestApp::without_workers().await;
    for _ in 0..3 {
        task_with(&app, json!({"queue": "counted"})).await;
    }
    let plain = list(&app, &[("limit", "2")]).await;
    assert_eq!(plain["total"], 3);
    assert!(
        plain.get("next_cursor").is_none(),
        "the contract's query keeps the contract's shape: {plain}"
    );
    let exact = list(&app, &[("queue", "counted"), ("limit", "2")]).await;
    assert_eq!(exact["total"], 3);
    assert!(exact["next_cursor"].is_string());
    let estimated = list(&app, &[("queue", "counted"), ("count", "estimate")]).await;
    assert_eq!(estimated["total"], 3, "few matches are counted exactly");
    assert!(estimated.get("total_is_estimate").is_none());
    assert_eq!(estimated["next_cursor"], Value::Null);
    let none = list(&app, &[("queue", "counted"), ("count", "none")]).await;
    assert_eq!(none["total"], Value::Null);
    assert_eq!(none["items"].as_array().unwrap().len(), 3);
}

both_backends!(every_malformed_parameter_is_refused_naming_it);
async fn every_malformed_parameter_is_refused_naming_it() {
    let app = TestApp::without_workers().await;
    // (query, the parameter named, the error's type)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("queue", "no spaces")], "queue", "queue_name"),
        (&[("workflow_id", "nope")], "workflow_id", "uuid_parsing"),
        (&[("parent", "abc")], "parent", "uuid_parsing"),
        (
            &[("created_after", "yesterday")],
            "created_after",
            "datetime_parsing",
        ),
        (
            &[("created_before", "2026-13-01")],
            "created_before",
            "datetime_parsing",
        ),
        (&[("sort", "created")], "sort", "enum"),
        (&[("count", "all")], "count", "enum"),
        (&[("cursor", "page-2")], "cursor", "enum"),
        (&[("params.a..b", "1")], "params.a..b", "param_filter"),
        (&[("params.", "1")], "params.", "param_filter"),
        (&[("q", "a\0b")], "q", "string_nul"),
    ];
    for (pairs, name, kind) in cases {
        let error = refusal(&app, pairs).await;
        assert_eq!(error["loc"], json!(["query", name]), "{pairs:?}: {error}");
        if *kind != "string_nul" {
            assert_eq!(error["type"], *kind, "{pairs:?}: {error}");
        }
    }
}

both_backends!(a_bulk_action_on_a_search_and_params_filter_acts_on_exactly_the_listed_tasks);
async fn a_bulk_action_on_a_search_and_params_filter_acts_on_exactly_the_listed_tasks() {
    let app = TestApp::without_workers().await;
    let parent = task_with(&app, json!({})).await;
    for (customer, note) in [
        (42, "urgent"),
        (42, "later"),
        (7, "urgent"),
        (42, "URGENT!"),
    ] {
        task_with(
            &app,
            json!({"params": {"customer_id": customer, "note": note}, "depends_on": [parent]}),
        )
        .await;
    }
    task_with(
        &app,
        json!({"params": {"customer_id": 42, "note": "urgent"}}),
    )
    .await;
    let filter = [
        ("q", "urgent"),
        ("params.customer_id", "42"),
        ("parent", parent.as_str()),
    ];
    let listed = found(ids(&app, &filter).await);
    assert_eq!(listed.len(), 2);

    let (status, action) = app
        .post(
            "/api/v1/tasks/actions",
            json!({"action": "cancel", "filter": {
                "q": "urgent", "params": ["customer_id=42"], "parent": parent,
            }}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{action}");
    assert_eq!(action["filter"]["params"], json!(["customer_id=42"]));
    let action_id = id_of(&action);
    let done = eventually(Duration::from_secs(20), "the action finishing", || async {
        let (_, action) = app.get(&format!("/api/v1/actions/{action_id}")).await;
        (action["state"] != "running").then_some(action)
    })
    .await;
    assert_eq!(done["state"], "completed", "{done}");
    let cancelled = found(ids(&app, &[("status", "cancelled"), ("limit", "100")]).await);
    assert_eq!(cancelled, listed);
}

both_backends!(a_bulk_action_refuses_a_malformed_parameter_filter);
async fn a_bulk_action_refuses_a_malformed_parameter_filter() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(
            "/api/v1/tasks/actions",
            json!({"action": "cancel", "filter": {"params": ["customer_id=1", "a..b=2", "novalue"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let locs: Vec<&Value> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["loc"])
        .collect();
    assert_eq!(
        locs,
        [
            &json!(["body", "filter", "params", 1]),
            &json!(["body", "filter", "params", 2])
        ]
    );
}

both_backends!(a_cursor_far_beyond_any_date_reads_as_the_start_or_the_end_of_the_list);
async fn a_cursor_far_beyond_any_date_reads_as_the_start_or_the_end_of_the_list() {
    let app = TestApp::without_workers().await;
    let created = task_with(&app, json!({})).await;
    let id = "0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b";
    // Newest first: past a cursor in the far future every task follows; in the far past none.
    let future = format!("9223372036854775807_{id}");
    assert_eq!(
        ids(&app, &[("cursor", &future)]).await,
        std::slice::from_ref(&created)
    );
    let past = format!("-718697098499024741_{id}");
    assert!(ids(&app, &[("cursor", &past)]).await.is_empty());
    let oldest_first = [("cursor", past.as_str()), ("sort", "created_at")];
    assert_eq!(ids(&app, &oldest_first).await, [created]);
}
