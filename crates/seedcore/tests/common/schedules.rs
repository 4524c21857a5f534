//! Calls on `/api/v1/schedules` that the schedule test files share: each asserts the status a
//! successful call answers and returns the body, so a test reads as the steps it takes.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

pub const PATH: &str = "/api/v1/schedules";

pub async fn create(app: &TestApp, body: Value) -> Value {
    let (status, schedule) = app.post(PATH, body).await;
    assert_eq!(status, StatusCode::CREATED, "create schedule: {schedule}");
    schedule
}

pub async fn get(app: &TestApp, id: &str) -> Value {
    let (status, schedule) = app.get(&format!("{PATH}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "get schedule: {schedule}");
    schedule
}

/// An RFC 3339 time of a response.
pub fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("a time").parse().expect("RFC 3339")
}
