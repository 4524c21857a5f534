//! The fact endpoints against the HTTP contract: shapes, status codes, search and paging.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::*;
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use seedcore::api::ApiSettings;
use serde_json::{Value, json};
use uuid::Uuid;

const FACTS: &str = "/api/v1/facts";
const LIMIT: usize = 1_048_576;

async fn create(app: &TestApp, body: Value) -> Value {
    let (status, fact) = app.post(FACTS, body).await;
    assert_eq!(status, StatusCode::OK, "create fact: {fact}");
    fact
}

async fn create_text(app: &TestApp, text: &str) -> Value {
    create(app, json!({ "text": text })).await
}

/// `GET /api/v1/facts` with the given query parameters, encoded as a client would.
async fn list(app: &TestApp, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let query = serde_urlencoded::to_string(params).expect("encode the query");
    app.get(&format!("{FACTS}?{query}")).await
}

/// The listed facts' texts, in list order.
async fn texts(app: &TestApp, params: &[(&str, &str)]) -> Vec<String> {
    let (status, page) = list(app, params).await;
    assert_eq!(status, StatusCode::OK, "list {params:?}: {page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|f| f["text"].as_str().expect("text").to_string())
        .collect()
}

async fn total(app: &TestApp) -> i64 {
    let (status, page) = list(app, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["total"].as_i64().expect("total")
}

fn fact_path(id: &str) -> String {
    format!("{FACTS}/{id}")
}

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    let raw = value.as_str().expect("a timestamp string");
    let parsed = DateTime::parse_from_rfc3339(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
    assert_eq!(parsed.offset().local_minus_utc(), 0, "{raw} is not UTC");
    parsed.with_timezone(&Utc)
}

/// Checks FastAPI's validation shape and that one error sits at `loc`.
fn assert_invalid_at(status: StatusCode, body: &Value, loc: Value) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(keys(body), ["detail"], "{body}");
    let errors = body["detail"].as_array().expect("detail is a list");
    assert!(!errors.is_empty(), "{body}");
    for error in errors {
        assert!(error["loc"].is_array(), "loc: {error}");
        assert!(error["msg"].is_string(), "msg: {error}");
        assert!(error["type"].is_string(), "type: {error}");
    }
    assert!(
        errors.iter().any(|e| e["loc"] == loc),
        "no error at {loc}: {body}"
    );
}

/// Inserts a fact row directly, with a chosen id and creation time.
async fn insert_row(app: &TestApp, id: &str, text: &str, created_at: DateTime<Utc>) {
    app.db.raw().await.insert_fact(id, text, created_at).await;
}

async fn send_raw(app: &TestApp, body: reqwest::Body) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}{FACTS}", app.base))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A JSON fact body of exactly `size` bytes.
fn body_of_size(size: usize) -> String {
    let frame = r#"{"text":""}"#.len();
    format!(r#"{{"text":"{}"}}"#, "x".repeat(size - frame))
}

// ---- create ----------------------------------------------------------------------------------

both_backends!(a_created_fact_starts_with_the_six_contract_keys_in_order);
async fn a_created_fact_starts_with_the_six_contract_keys_in_order() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "water boils at 100 C", "tags": ["physics", "Water"], "meta_data": {"source": "book", "page": 12}}),
    )
    .await;
    assert_eq!(
        keys(&fact)[..6],
        [
            "id",
            "text",
            "tags",
            "meta_data",
            "created_at",
            "updated_at"
        ]
    );
    let id = id_of(&fact);
    let parsed = Uuid::parse_str(&id).expect("a uuid");
    assert_eq!(id, parsed.hyphenated().to_string(), "lowercase, hyphenated");
    assert_eq!(fact["text"], "water boils at 100 C");
    assert_eq!(fact["tags"], json!(["physics", "Water"]));
    assert_eq!(fact["meta_data"], json!({"source": "book", "page": 12}));
    assert_eq!(
        timestamp(&fact["created_at"]),
        timestamp(&fact["updated_at"])
    );
}

both_backends!(a_created_fact_is_returned_as_stored);
async fn a_created_fact_is_returned_as_stored() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "stored", "tags": ["a"], "meta_data": {"k": [1, {"n": null}]}}),
    )
    .await;
    let (status, got) = app.get(&fact_path(&id_of(&fact))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got, fact);
}

both_backends!(a_fact_may_have_empty_text);
async fn a_fact_may_have_empty_text() {
    let app = TestApp::without_workers().await;
    let fact = create(&app, json!({"text": ""})).await;
    assert_eq!(fact["text"], "");
    assert_eq!(fact["tags"], json!([]));
    assert_eq!(fact["meta_data"], json!({}));
}

both_backends!(null_tags_and_null_metadata_are_stored_as_empty);
async fn null_tags_and_null_metadata_are_stored_as_empty() {
    let app = TestApp::without_workers().await;
    let fact = create(&app, json!({"text": "t", "tags": null, "meta_data": null})).await;
    assert_eq!(fact["tags"], json!([]));
    assert_eq!(fact["meta_data"], json!({}));
}

both_backends!(unknown_fields_in_a_create_body_are_ignored);
async fn unknown_fields_in_a_create_body_are_ignored() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "t", "metadata": {"x": 1}, "id": "not-mine", "extra": [1]}),
    )
    .await;
    assert_eq!(fact["text"], "t");
    assert_eq!(fact["meta_data"], json!({}));
    assert_ne!(fact["id"], "not-mine");
    assert!(fact.get("metadata").is_none(), "{fact}");
}

both_backends!(a_create_without_text_is_a_422_at_body_text);
async fn a_create_without_text_is_a_422_at_body_text() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.post(FACTS, json!({"tags": ["a"]})).await;
    assert_invalid_at(status, &body, json!(["body", "text"]));
}

both_backends!(a_create_with_a_number_as_text_is_a_422_at_body_text);
async fn a_create_with_a_number_as_text_is_a_422_at_body_text() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.post(FACTS, json!({"text": 42})).await;
    assert_invalid_at(status, &body, json!(["body", "text"]));
}

both_backends!(a_create_with_null_text_is_a_422_at_body_text);
async fn a_create_with_null_text_is_a_422_at_body_text() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.post(FACTS, json!({"text": null})).await;
    assert_invalid_at(status, &body, json!(["body", "text"]));
}

both_backends!(a_create_with_a_string_as_tags_is_a_422_at_body_tags);
async fn a_create_with_a_string_as_tags_is_a_422_at_body_tags() {
    let app = TestApp::without_workers().await;
    let (status, body) = app.post(FACTS, json!({"text": "t", "tags": "a"})).await;
    assert_invalid_at(status, &body, json!(["body", "tags"]));
}

both_backends!(a_create_with_a_number_inside_tags_is_a_422_at_that_index);
async fn a_create_with_a_number_inside_tags_is_a_422_at_that_index() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(FACTS, json!({"text": "t", "tags": ["a", 7]}))
        .await;
    assert_invalid_at(status, &body, json!(["body", "tags", 1]));
}

both_backends!(a_create_with_an_array_as_metadata_is_a_422_at_body_meta_data);
async fn a_create_with_an_array_as_metadata_is_a_422_at_body_meta_data() {
    let app = TestApp::without_workers().await;
    let (status, body) = app
        .post(FACTS, json!({"text": "t", "meta_data": [1, 2]}))
        .await;
    assert_invalid_at(status, &body, json!(["body", "meta_data"]));
}

both_backends!(a_create_body_that_is_not_a_json_object_is_a_422);
async fn a_create_body_that_is_not_a_json_object_is_a_422() {
    let app = TestApp::without_workers().await;
    for raw in ["[1, 2]", "\"text\"", "{\"text\": ", "not json", ""] {
        let (status, body) = send_raw(&app, raw.to_string().into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{raw:?}: {body}");
        assert!(body["detail"].is_array(), "{raw:?}: {body}");
    }
}

both_backends!(a_create_body_of_exactly_one_mebibyte_is_accepted);
async fn a_create_body_of_exactly_one_mebibyte_is_accepted() {
    let app = TestApp::without_workers().await;
    let (status, body) = send_raw(&app, body_of_size(LIMIT).into()).await;
    let shown: String = body.to_string().chars().take(200).collect();
    assert_eq!(status, StatusCode::OK, "{shown}");
}

both_backends!(a_create_body_over_one_mebibyte_is_a_413);
async fn a_create_body_over_one_mebibyte_is_a_413() {
    let app = TestApp::without_workers().await;
    let (status, body) = send_raw(&app, body_of_size(LIMIT + 1).into()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

both_backends!(a_chunked_create_body_over_one_mebibyte_is_a_413);
async fn a_chunked_create_body_over_one_mebibyte_is_a_413() {
    let app = TestApp::without_workers().await;
    let body = body_of_size(LIMIT + 1).into_bytes();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let stream = futures::stream::iter(chunks);
    let (status, body) = send_raw(&app, reqwest::Body::wrap_stream(stream)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

both_backends!(a_configured_body_limit_replaces_the_default);
async fn a_configured_body_limit_replaces_the_default() {
    let settings = ApiSettings {
        max_body_bytes: 64,
        ..ApiSettings::default()
    };
    let app = TestApp::on(Arc::new(TestDb::create().await), None, settings).await;
    let (status, _) = send_raw(&app, body_of_size(64).into()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send_raw(&app, body_of_size(65).into()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

both_backends!(a_nul_character_in_a_fact_is_a_422_not_a_500);
async fn a_nul_character_in_a_fact_is_a_422_not_a_500() {
    let app = TestApp::without_workers().await;
    for (bad, loc) in [
        (json!({"text": "a\u{0}b"}), json!(["body", "text"])),
        (
            json!({"text": "t", "tags": ["x\u{0}"]}),
            json!(["body", "tags", 0]),
        ),
        (
            json!({"text": "t", "meta_data": {"k": ["v\u{0}"]}}),
            json!(["body", "meta_data", "k", 0]),
        ),
        (
            json!({"text": "t", "meta_data": {"k\u{0}": 1}}),
            json!(["body", "meta_data", "k\u{0}"]),
        ),
    ] {
        let (status, body) = app.post(FACTS, bad).await;
        assert_invalid_at(status, &body, loc);
    }
    let fact = create_text(&app, "clean").await;
    let (status, body) = app
        .patch(&fact_path(&id_of(&fact)), json!({"text": "\u{0}"}))
        .await;
    assert_invalid_at(status, &body, json!(["body", "text"]));
    assert_eq!(texts(&app, &[]).await, ["clean"]);
}

both_backends!(a_nul_character_in_a_search_is_a_422_not_a_500);
async fn a_nul_character_in_a_search_is_a_422_not_a_500() {
    let app = TestApp::without_workers().await;
    create_text(&app, "anything").await;
    for name in ["q", "tag"] {
        let (status, body) = list(&app, &[(name, "a\u{0}")]).await;
        assert_invalid_at(status, &body, json!(["query", name]));
    }
}

both_backends!(a_rejected_create_stores_nothing);
async fn a_rejected_create_stores_nothing() {
    let app = TestApp::without_workers().await;
    for bad in [
        json!({"tags": ["a"]}),
        json!({"text": 1}),
        json!({"text": "t", "tags": "a"}),
        json!({"text": "t", "tags": ["a", 1]}),
        json!({"text": "t", "meta_data": []}),
    ] {
        let (status, body) = app.post(FACTS, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = send_raw(&app, body_of_size(LIMIT + 1).into()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(total(&app).await, 0);
}

// ---- list ------------------------------------------------------------------------------------

both_backends!(an_empty_fact_list_has_total_and_items);
async fn an_empty_fact_list_has_total_and_items() {
    let app = TestApp::without_workers().await;
    let (status, page) = list(&app, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, json!({"total": 0, "items": []}));
    assert_eq!(keys(&page), ["total", "items"]);
}

both_backends!(facts_are_listed_newest_first);
async fn facts_are_listed_newest_first() {
    let app = TestApp::without_workers().await;
    for text in ["one", "two", "three"] {
        create_text(&app, text).await;
    }
    assert_eq!(texts(&app, &[]).await, ["three", "two", "one"]);
    let (_, page) = list(&app, &[]).await;
    let first = &page["items"][0];
    assert_eq!(
        keys(first)[..6],
        [
            "id",
            "text",
            "tags",
            "meta_data",
            "created_at",
            "updated_at"
        ]
    );
}

both_backends!(facts_created_at_the_same_instant_are_listed_by_id_descending);
async fn facts_created_at_the_same_instant_are_listed_by_id_descending() {
    let app = TestApp::without_workers().await;
    let at = Utc::now() - Duration::hours(1);
    insert_row(&app, "10000000-0000-4000-8000-000000000001", "low", at).await;
    insert_row(&app, "f0000000-0000-4000-8000-000000000001", "high", at).await;
    insert_row(&app, "80000000-0000-4000-8000-000000000001", "mid", at).await;
    insert_row(
        &app,
        "00000000-0000-4000-8000-000000000001",
        "newer",
        at + Duration::seconds(1),
    )
    .await;
    assert_eq!(texts(&app, &[]).await, ["newer", "high", "mid", "low"]);
}

both_backends!(the_total_counts_every_match_before_paging);
async fn the_total_counts_every_match_before_paging() {
    let app = TestApp::without_workers().await;
    for i in 0..5 {
        create_text(&app, &format!("fact {i}")).await;
    }
    let (status, page) = list(&app, &[("limit", "2"), ("offset", "1")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 5);
    assert_eq!(
        texts(&app, &[("limit", "2"), ("offset", "1")]).await,
        ["fact 3", "fact 2"]
    );
    assert_eq!(
        texts(&app, &[("limit", "2"), ("offset", "4")]).await,
        ["fact 0"]
    );
    let (_, beyond) = list(&app, &[("offset", "10")]).await;
    assert_eq!(beyond, json!({"total": 5, "items": []}));
}

both_backends!(limit_and_offset_accept_their_bounds);
async fn limit_and_offset_accept_their_bounds() {
    let app = TestApp::without_workers().await;
    create_text(&app, "a").await;
    create_text(&app, "b").await;
    assert_eq!(texts(&app, &[("limit", "1")]).await, ["b"]);
    assert_eq!(
        texts(&app, &[("limit", "1000"), ("offset", "0")]).await,
        ["b", "a"]
    );
}

both_backends!(the_default_page_holds_one_hundred_facts);
async fn the_default_page_holds_one_hundred_facts() {
    let app = TestApp::without_workers().await;
    let raw = app.db.raw().await;
    for n in 1..=101 {
        raw.insert_fact(
            &Uuid::new_v4().to_string(),
            &format!("bulk {n}"),
            Utc::now(),
        )
        .await;
    }
    let (status, page) = list(&app, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 101);
    assert_eq!(page["items"].as_array().unwrap().len(), 100);
}

both_backends!(out_of_range_or_malformed_paging_is_a_422_naming_the_parameter);
async fn out_of_range_or_malformed_paging_is_a_422_naming_the_parameter() {
    let app = TestApp::without_workers().await;
    for (name, value) in [
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "abc"),
        ("limit", "-5"),
        ("offset", "-1"),
        ("offset", "x"),
    ] {
        let (status, body) = list(&app, &[(name, value)]).await;
        assert_invalid_at(status, &body, json!(["query", name]));
    }
}

both_backends!(a_fact_search_is_a_case_insensitive_substring_of_the_text);
async fn a_fact_search_is_a_case_insensitive_substring_of_the_text() {
    let app = TestApp::without_workers().await;
    create_text(&app, "The Quick Brown Fox").await;
    create_text(&app, "a slow turtle").await;
    assert_eq!(
        texts(&app, &[("q", "quick brown")]).await,
        ["The Quick Brown Fox"]
    );
    assert_eq!(texts(&app, &[("q", "TURTLE")]).await, ["a slow turtle"]);
    assert_eq!(
        texts(&app, &[("q", "ck bro")]).await,
        ["The Quick Brown Fox"]
    );
    assert!(texts(&app, &[("q", "elephant")]).await.is_empty());
    let (_, page) = list(&app, &[("q", "o")]).await;
    assert_eq!(page["total"], 2);
}

both_backends!(a_fact_search_matches_inside_a_metadata_value);
async fn a_fact_search_matches_inside_a_metadata_value() {
    let app = TestApp::without_workers().await;
    create(
        &app,
        json!({"text": "first", "meta_data": {"source": "User_Input"}}),
    )
    .await;
    create(
        &app,
        json!({"text": "second", "meta_data": {"source": "import"}}),
    )
    .await;
    assert_eq!(texts(&app, &[("q", "user_input")]).await, ["first"]);
    assert_eq!(texts(&app, &[("q", "USER_INPUT")]).await, ["first"]);
    assert_eq!(texts(&app, &[("q", "Input")]).await, ["first"]);
}

both_backends!(a_percent_sign_in_a_search_is_literal);
async fn a_percent_sign_in_a_search_is_literal() {
    let app = TestApp::without_workers().await;
    create_text(&app, "100% sure").await;
    create_text(&app, "1000 sure").await;
    assert_eq!(texts(&app, &[("q", "0%")]).await, ["100% sure"]);
    assert_eq!(texts(&app, &[("q", "%")]).await, ["100% sure"]);
    assert_eq!(texts(&app, &[("q", "1%0")]).await, Vec::<String>::new());
}

both_backends!(an_underscore_in_a_search_is_literal);
async fn an_underscore_in_a_search_is_literal() {
    let app = TestApp::without_workers().await;
    create_text(&app, "axb").await;
    create_text(&app, "a_b").await;
    assert_eq!(texts(&app, &[("q", "a_b")]).await, ["a_b"]);
    assert_eq!(texts(&app, &[("q", "_")]).await, ["a_b"]);
}

both_backends!(a_backslash_in_a_search_is_literal);
async fn a_backslash_in_a_search_is_literal() {
    let app = TestApp::without_workers().await;
    create_text(&app, r"C:\temp\new").await;
    create_text(&app, "C:tempnew").await;
    create_text(&app, "C:%temp").await;
    assert_eq!(texts(&app, &[("q", r"\temp")]).await, [r"C:\temp\new"]);
    assert_eq!(texts(&app, &[("q", r"\")]).await, [r"C:\temp\new"]);
    assert_eq!(texts(&app, &[("q", r":\%")]).await, Vec::<String>::new());
}

both_backends!(a_fact_search_finds_unicode_text_by_a_substring);
async fn a_fact_search_finds_unicode_text_by_a_substring() {
    let app = TestApp::without_workers().await;
    create_text(&app, "Grüße aus Köln").await;
    create_text(&app, "日本語のテキスト").await;
    create_text(&app, "plain ascii").await;
    assert_eq!(texts(&app, &[("q", "üße")]).await, ["Grüße aus Köln"]);
    assert_eq!(texts(&app, &[("q", "grüße AUS")]).await, ["Grüße aus Köln"]);
    assert_eq!(texts(&app, &[("q", "本語")]).await, ["日本語のテキスト"]);
}

both_backends!(a_tag_filter_is_exact_and_case_sensitive);
async fn a_tag_filter_is_exact_and_case_sensitive() {
    let app = TestApp::without_workers().await;
    create(&app, json!({"text": "upper", "tags": ["Rust"]})).await;
    create(&app, json!({"text": "lower", "tags": ["rust", "db"]})).await;
    create(&app, json!({"text": "longer", "tags": ["rustacean"]})).await;
    assert_eq!(texts(&app, &[("tag", "rust")]).await, ["lower"]);
    assert_eq!(texts(&app, &[("tag", "Rust")]).await, ["upper"]);
    assert!(texts(&app, &[("tag", "rus")]).await.is_empty());
    assert!(texts(&app, &[("tag", "RUST")]).await.is_empty());
}

both_backends!(a_repeated_tag_filter_requires_every_tag);
async fn a_repeated_tag_filter_requires_every_tag() {
    let app = TestApp::without_workers().await;
    create(&app, json!({"text": "both", "tags": ["a", "b"]})).await;
    create(&app, json!({"text": "only a", "tags": ["a"]})).await;
    create(&app, json!({"text": "only b", "tags": ["b", "c"]})).await;
    assert_eq!(texts(&app, &[("tag", "a"), ("tag", "b")]).await, ["both"]);
    assert_eq!(texts(&app, &[("tag", "b")]).await, ["only b", "both"]);
    let (_, page) = list(&app, &[("tag", "a"), ("tag", "c")]).await;
    assert_eq!(page, json!({"total": 0, "items": []}));
}

both_backends!(a_search_and_a_tag_filter_combine);
async fn a_search_and_a_tag_filter_combine() {
    let app = TestApp::without_workers().await;
    create(&app, json!({"text": "red apple", "tags": ["fruit"]})).await;
    create(&app, json!({"text": "red car", "tags": ["vehicle"]})).await;
    create(&app, json!({"text": "green apple", "tags": ["fruit"]})).await;
    assert_eq!(
        texts(&app, &[("q", "red"), ("tag", "fruit")]).await,
        ["red apple"]
    );
    let (_, page) = list(&app, &[("q", "apple"), ("tag", "fruit"), ("limit", "1")]).await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["text"], "green apple");
}

both_backends!(empty_search_and_tag_parameters_mean_no_filter);
async fn empty_search_and_tag_parameters_mean_no_filter() {
    let app = TestApp::without_workers().await;
    create(&app, json!({"text": "x", "tags": ["t"]})).await;
    create(&app, json!({"text": "y"})).await;
    assert_eq!(texts(&app, &[("q", ""), ("tag", "")]).await, ["y", "x"]);
    assert_eq!(texts(&app, &[("q", "")]).await, ["y", "x"]);
    assert_eq!(texts(&app, &[("tag", "")]).await, ["y", "x"]);
    assert_eq!(
        texts(&app, &[("limit", ""), ("offset", "")]).await,
        ["y", "x"]
    );
}

// ---- get -------------------------------------------------------------------------------------

both_backends!(a_fact_is_found_by_its_exact_id_in_any_case_and_without_hyphens);
async fn a_fact_is_found_by_its_exact_id_in_any_case_and_without_hyphens() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "findable").await;
    let id = id_of(&fact);
    for form in [id.clone(), id.to_uppercase(), id.replace('-', "")] {
        let (status, got) = app.get(&fact_path(&form)).await;
        assert_eq!(status, StatusCode::OK, "{form}: {got}");
        assert_eq!(got, fact, "{form}");
    }
}

both_backends!(a_fact_is_found_by_a_unique_prefix_of_its_id);
async fn a_fact_is_found_by_a_unique_prefix_of_its_id() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "prefixed").await;
    let id = id_of(&fact);
    for prefix in [&id[..4], &id[..8], &id[..9], &id[..13], &id[..35]] {
        let (status, got) = app.get(&fact_path(prefix)).await;
        assert_eq!(status, StatusCode::OK, "{prefix}: {got}");
        assert_eq!(got["id"], id, "{prefix}");
    }
    let upper = id[..8].to_uppercase();
    let (status, got) = app.get(&fact_path(&upper)).await;
    assert_eq!(status, StatusCode::OK, "{upper}: {got}");
    assert_eq!(got["id"], id);
}

both_backends!(an_unknown_fact_is_a_404_naming_the_id_as_sent);
async fn an_unknown_fact_is_a_404_naming_the_id_as_sent() {
    let app = TestApp::without_workers().await;
    create_text(&app, "someone else").await;
    let unknown = "0F8E2C4A-1B3D-4E5F-8A9B-0C1D2E3F4A5B";
    let (status, body) = app.get(&fact_path(unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body,
        json!({"detail": format!("Fact '{unknown}' not found")})
    );
    let lower = unknown.to_lowercase();
    let (status, body) = app.get(&fact_path(&lower)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, json!({"detail": format!("Fact '{lower}' not found")}));
}

both_backends!(an_unknown_id_prefix_is_a_404_naming_the_prefix_as_sent);
async fn an_unknown_id_prefix_is_a_404_naming_the_prefix_as_sent() {
    let app = TestApp::without_workers().await;
    insert_row(
        &app,
        "abcd1234-0000-4000-8000-000000000001",
        "one",
        Utc::now(),
    )
    .await;
    for prefix in ["ABCE", "abcd12345", "abcd-1"] {
        let (status, body) = app.get(&fact_path(prefix)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{prefix}: {body}");
        assert_eq!(
            body,
            json!({"detail": format!("Fact '{prefix}' not found")})
        );
    }
}

both_backends!(a_malformed_fact_id_is_a_422);
async fn a_malformed_fact_id_is_a_422() {
    let app = TestApp::without_workers().await;
    for bad in [
        "abc",
        "not-a-uuid",
        "zzzz1234",
        "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b0",
        "0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b0000",
        // Escapes that do not decode to UTF-8.
        "%FF%FE%FD%FC",
    ] {
        let (status, body) = app.get(&fact_path(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body["detail"].is_array(), "{bad}: {body}");
        for method in [Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(|| json!({"text": "x"}));
            let (status, answer) = app.request(method.clone(), &fact_path(bad), body).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{method} {bad}: {answer}"
            );
        }
    }
}

both_backends!(an_ambiguous_id_prefix_is_a_409_naming_the_prefix_as_sent);
async fn an_ambiguous_id_prefix_is_a_409_naming_the_prefix_as_sent() {
    let app = TestApp::without_workers().await;
    insert_row(
        &app,
        "abcd1234-0000-4000-8000-000000000001",
        "one",
        Utc::now(),
    )
    .await;
    insert_row(
        &app,
        "abcd1234-0000-4000-8000-000000000002",
        "two",
        Utc::now(),
    )
    .await;
    for prefix in ["abcd", "ABCD1234", "abcd1234-0000-4000-8000-00000000000"] {
        let (status, body) = app.get(&fact_path(prefix)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{prefix}: {body}");
        assert_eq!(
            body,
            json!({"detail": format!("Ambiguous id prefix '{prefix}'")})
        );
    }
    let (status, body) = app
        .patch(&fact_path("abcd1234"), json!({"text": "x"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.delete(&fact_path("abcd1234")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(total(&app).await, 2);
    assert_eq!(texts(&app, &[("q", "x")]).await, Vec::<String>::new());
}

both_backends!(a_longer_prefix_resolves_facts_that_share_a_shorter_one);
async fn a_longer_prefix_resolves_facts_that_share_a_shorter_one() {
    let app = TestApp::without_workers().await;
    insert_row(
        &app,
        "abcd1234-0000-4000-8000-000000000001",
        "one",
        Utc::now(),
    )
    .await;
    insert_row(
        &app,
        "abcd1234-1000-4000-8000-000000000001",
        "two",
        Utc::now(),
    )
    .await;
    let (status, body) = app.get(&fact_path("abcd1234-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["text"], "two");
    let (status, body) = app.get(&fact_path("ABCD1234-0")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["text"], "one");
}

// ---- patch -----------------------------------------------------------------------------------

both_backends!(a_patch_changes_only_the_keys_it_sends);
async fn a_patch_changes_only_the_keys_it_sends() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "old", "tags": ["a"], "meta_data": {"k": 1}}),
    )
    .await;
    let path = fact_path(&id_of(&fact));

    let (status, patched) = app.patch(&path, json!({"text": "new"})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        keys(&patched)[..6],
        [
            "id",
            "text",
            "tags",
            "meta_data",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(patched["text"], "new");
    assert_eq!(patched["tags"], json!(["a"]));
    assert_eq!(patched["meta_data"], json!({"k": 1}));
    assert_eq!(patched["id"], fact["id"]);
    assert_eq!(patched["created_at"], fact["created_at"]);

    let (_, patched) = app.patch(&path, json!({"tags": ["b", "c"]})).await;
    assert_eq!(patched["text"], "new");
    assert_eq!(patched["tags"], json!(["b", "c"]));
    assert_eq!(patched["meta_data"], json!({"k": 1}));

    let (_, patched) = app.patch(&path, json!({"meta_data": {"z": true}})).await;
    assert_eq!(patched["text"], "new");
    assert_eq!(patched["tags"], json!(["b", "c"]));
    assert_eq!(patched["meta_data"], json!({"z": true}));

    let (_, got) = app.get(&path).await;
    assert_eq!(got, patched);
}

both_backends!(an_empty_patch_changes_nothing_not_even_updated_at);
async fn an_empty_patch_changes_nothing_not_even_updated_at() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "still", "tags": ["t"], "meta_data": {"m": 1}}),
    )
    .await;
    let path = fact_path(&id_of(&fact));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, patched) = app.patch(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched, fact);
    let (_, unknown_only) = app.patch(&path, json!({"unknown": 1})).await;
    assert_eq!(unknown_only, fact);
    let (_, got) = app.get(&path).await;
    assert_eq!(got, fact);
}

both_backends!(a_patch_with_null_text_is_a_422_and_changes_nothing);
async fn a_patch_with_null_text_is_a_422_and_changes_nothing() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "keep me").await;
    let path = fact_path(&id_of(&fact));
    let (status, body) = app.patch(&path, json!({"text": null, "tags": ["x"]})).await;
    assert_invalid_at(status, &body, json!(["body", "text"]));
    let (_, got) = app.get(&path).await;
    assert_eq!(got, fact);
}

both_backends!(a_patch_with_wrong_types_is_a_422_and_changes_nothing);
async fn a_patch_with_wrong_types_is_a_422_and_changes_nothing() {
    let app = TestApp::without_workers().await;
    let fact = create(&app, json!({"text": "keep", "tags": ["t"]})).await;
    let path = fact_path(&id_of(&fact));
    for (bad, loc) in [
        (json!({"text": 5}), json!(["body", "text"])),
        (json!({"tags": "t"}), json!(["body", "tags"])),
        (json!({"tags": ["ok", false]}), json!(["body", "tags", 1])),
        (json!({"meta_data": ["a"]}), json!(["body", "meta_data"])),
        (
            json!({"text": "changed", "meta_data": 3}),
            json!(["body", "meta_data"]),
        ),
    ] {
        let (status, body) = app.patch(&path, bad).await;
        assert_invalid_at(status, &body, loc);
    }
    let (_, got) = app.get(&path).await;
    assert_eq!(got, fact);
}

both_backends!(a_patch_with_null_tags_empties_them);
async fn a_patch_with_null_tags_empties_them() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "t", "tags": ["a", "b"], "meta_data": {"k": 1}}),
    )
    .await;
    let (status, patched) = app
        .patch(&fact_path(&id_of(&fact)), json!({"tags": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["tags"], json!([]));
    assert_eq!(patched["meta_data"], json!({"k": 1}));
}

both_backends!(a_patch_with_null_metadata_empties_it);
async fn a_patch_with_null_metadata_empties_it() {
    let app = TestApp::without_workers().await;
    let fact = create(
        &app,
        json!({"text": "t", "tags": ["a"], "meta_data": {"k": 1}}),
    )
    .await;
    let (status, patched) = app
        .patch(&fact_path(&id_of(&fact)), json!({"meta_data": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["meta_data"], json!({}));
    assert_eq!(patched["tags"], json!(["a"]));
}

both_backends!(a_patch_that_changes_the_fact_advances_updated_at);
async fn a_patch_that_changes_the_fact_advances_updated_at() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "before").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, patched) = app
        .patch(&fact_path(&id_of(&fact)), json!({"text": "after"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(timestamp(&patched["updated_at"]) > timestamp(&fact["updated_at"]));
    assert_eq!(patched["created_at"], fact["created_at"]);
}

both_backends!(a_patch_by_prefix_updates_the_fact);
async fn a_patch_by_prefix_updates_the_fact() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "short").await;
    let id = id_of(&fact);
    let (status, patched) = app
        .patch(&fact_path(&id[..8]), json!({"text": "long"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["id"], id);
    assert_eq!(patched["text"], "long");
}

both_backends!(a_patch_of_an_unknown_fact_is_a_404);
async fn a_patch_of_an_unknown_fact_is_a_404() {
    let app = TestApp::without_workers().await;
    let unknown = Uuid::new_v4().to_string();
    let (status, body) = app.patch(&fact_path(&unknown), json!({"text": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body,
        json!({"detail": format!("Fact '{unknown}' not found")})
    );
    let (status, body) = app.patch(&fact_path(&unknown), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(total(&app).await, 0);
}

// ---- delete ----------------------------------------------------------------------------------

both_backends!(a_deleted_fact_is_gone);
async fn a_deleted_fact_is_gone() {
    let app = TestApp::without_workers().await;
    let fact = create_text(&app, "doomed").await;
    let id = id_of(&fact);
    let path = fact_path(&id);
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], id);
    assert_eq!(keys(&body)[0], "deleted");

    let (status, body) = app.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, json!({"detail": format!("Fact '{id}' not found")}));

    let (status, body) = app.delete(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body, json!({"detail": format!("Fact '{id}' not found")}));
    assert_eq!(total(&app).await, 0);
}

both_backends!(a_delete_by_prefix_answers_the_whole_id_and_spares_the_others);
async fn a_delete_by_prefix_answers_the_whole_id_and_spares_the_others() {
    let app = TestApp::without_workers().await;
    insert_row(
        &app,
        "abcd1234-0000-4000-8000-000000000001",
        "one",
        Utc::now(),
    )
    .await;
    insert_row(
        &app,
        "bcde1234-0000-4000-8000-000000000001",
        "two",
        Utc::now(),
    )
    .await;
    let (status, body) = app.delete(&fact_path("ABCD")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deleted"], "abcd1234-0000-4000-8000-000000000001");
    assert_eq!(texts(&app, &[]).await, ["two"]);
}

both_backends!(metadata_numbers_at_the_edges_of_the_double_range_read_back_unchanged);
async fn metadata_numbers_at_the_edges_of_the_double_range_read_back_unchanged() {
    // PostgreSQL writes such numbers back in full (309 digits for the largest), which a
    // reader that rounds loosely took for out of range: the create answered 500.
    let app = TestApp::without_workers().await;
    let meta = json!({"max": f64::MAX, "min": f64::MIN, "tiny": f64::MIN_POSITIVE});
    let fact = create(&app, json!({"text": "edges", "meta_data": meta})).await;
    assert_eq!(fact["meta_data"], meta);
    let (status, body) = app.get(&fact_path(&id_of(&fact))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta_data"], meta);
}
