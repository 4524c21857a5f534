//! The OpenAPI document as served at `/openapi.json`, pinned by a snapshot: every change to it
//! (a schema, a bound, a status, a description) shows in review as a change to
//! `tests/snapshots/openapi__the_openapi_document.snap`. After an intended change, run
//! `INSTA_UPDATE=always cargo test --test openapi` (or `cargo insta review`) and commit the
//! snapshot.

mod common;

use common::*;
use reqwest::StatusCode;

both_backends!(the_openapi_document);
async fn the_openapi_document() {
    let app = TestApp::without_workers().await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    insta::assert_json_snapshot!("the_openapi_document", doc);
}
