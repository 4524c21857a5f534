//! `GET /ui/api/cron?cron=…&timezone=…`: the next five fire times of a cron expression, so
//! the schedule form can check an expression as it is typed, by the same rules a schedule
//! create applies (the API offers no such preview).
//!
//! Invariant: an expression is judged by `CronSpec` exactly as `POST /api/v1/schedules`
//! judges it, off the async threads (an expression that never matches takes croner a while
//! to rule out); a bad one is a 422 naming the parameter, in the API's shape.

use std::collections::HashMap;

use axum::{Json, extract::RawQuery};
use chrono::Utc;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::model::schedule::{CronSpec, SpecError};

/// How many fire times are shown.
const SHOWN: usize = 5;
/// The longest expression or zone name looked at.
const MAX_LEN: usize = 200;

pub(super) async fn preview(RawQuery(raw): RawQuery) -> Result<Json<Value>, ApiError> {
    let params: HashMap<String, String> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::invalid(&["query"], "value_error", "Malformed query string"))?;
    let cron = required(&params, "cron")?;
    let timezone = params.get("timezone").map_or("UTC", String::as_str);
    if timezone.len() > MAX_LEN {
        return Err(too_long("timezone"));
    }
    let (cron, timezone) = (cron.to_string(), timezone.to_string());
    let checked = tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        let spec = CronSpec::parse(&cron, &timezone)?;
        spec.check_fires(now)?;
        Ok::<_, SpecError>(spec.next_fire_times(SHOWN, now))
    })
    .await
    .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    match checked {
        Ok(times) => Ok(Json(json!({ "next_fire_times": times }))),
        Err(err @ SpecError::Timezone(_)) => Err(ApiError::invalid(
            &["query", "timezone"],
            "value_error",
            err.to_string(),
        )),
        Err(err) => Err(ApiError::invalid(
            &["query", "cron"],
            "value_error",
            err.to_string(),
        )),
    }
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    let value = params
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(&["query", name], "missing", "Field required"))?;
    if value.len() > MAX_LEN {
        return Err(too_long(name));
    }
    Ok(value)
}

fn too_long(name: &str) -> ApiError {
    ApiError::invalid(
        &["query", name],
        "string_too_long",
        format!("String should have at most {MAX_LEN} characters"),
    )
}
