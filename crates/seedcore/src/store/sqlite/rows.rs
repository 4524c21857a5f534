//! How SQLite stores the columns that differ between dialects, both ways: ids as canonical
//! lowercase hyphenated text, timestamps as fixed-width UTC text ([`TIME_FORMAT`], so text
//! order is time order), JSON and lists as serde_json's text.
//!
//! Invariant: what PostgreSQL's jsonb refuses (a NUL character) is refused here too, so that
//! both backends store the same things.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::store::{StoreError, StoreResult, rows};

/// How timestamps are stored: UTC, microseconds, always the same width (years 0–9999).
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// The SQLite dialect of the shared row types.
#[derive(Clone)]
pub(crate) struct Lite;

impl rows::Dialect for Lite {
    type Id = String;
    type Time = String;
    type Json<T>
        = String
    where
        T: Clone + Send + Unpin;
    type List<T>
        = String
    where
        T: Clone + Send + Unpin;

    fn id(value: String) -> StoreResult<Uuid> {
        parse_id(&value)
    }

    fn time(value: String) -> StoreResult<DateTime<Utc>> {
        parse_time(&value)
    }

    fn json<T>(value: String) -> StoreResult<T>
    where
        T: DeserializeOwned + Clone + Send + Unpin,
    {
        parse_json(&value)
    }

    fn list<T>(value: String) -> StoreResult<Vec<T>>
    where
        T: DeserializeOwned + Clone + Send + Unpin,
    {
        parse_json(&value)
    }
}

pub(crate) type TaskRow = rows::TaskRow<Lite>;
pub(crate) type FactRow = rows::FactRow<Lite>;
pub(crate) type WorkerRow = rows::WorkerRow<Lite>;
pub(crate) type EventRow = rows::EventRow<Lite>;
pub(crate) type ScheduleRow = rows::ScheduleRow<Lite>;

/// A timestamp as stored.
pub(crate) fn stamp(at: DateTime<Utc>) -> String {
    at.format(TIME_FORMAT).to_string()
}

/// `now + span`, saturating far in the future rather than overflowing.
pub(crate) fn after(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| now.checked_add_signed(span))
        .unwrap_or_else(|| now + TimeDelta::days(365 * 1000))
}

pub(crate) fn parse_time(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| StoreError::Corrupt(format!("timestamp '{text}': {err}")))
}

pub(crate) fn parse_time_opt(text: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

pub(crate) fn parse_id(text: &str) -> StoreResult<Uuid> {
    Uuid::try_parse(text).map_err(|err| StoreError::Corrupt(format!("id '{text}': {err}")))
}

pub(crate) fn parse_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("JSON column: {err}")))
}

/// A value as JSON text, refused when it holds a NUL character: PostgreSQL's jsonb cannot store
/// one, and a task or fact must not be storable on one backend only.
pub(crate) fn json_text(value: &impl Serialize) -> StoreResult<String> {
    let text = serde_json::to_string(value)
        .map_err(|err| StoreError::Database(sqlx::Error::Encode(err.into())))?;
    if escapes_nul(&text) {
        return Err(StoreError::Database(sqlx::Error::Encode(
            "JSON holding a NUL character (\\u0000) cannot be stored".into(),
        )));
    }
    Ok(text)
}

/// Whether serde_json's output holds an escaped NUL (`\u0000`). Each escape is skipped whole,
/// so an escaped backslash followed by the text `u0000` is not mistaken for one.
fn escapes_nul(json: &str) -> bool {
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        let escape = &rest[at + 1..];
        if escape.starts_with("u0000") {
            return true;
        }
        // The escaped character is ASCII (serde_json escapes only `"`, `\` and controls).
        rest = escape.get(1..).unwrap_or("");
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn timestamps_keep_one_width_so_text_order_is_time_order() {
        let early = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z").unwrap();
        let late = DateTime::parse_from_rfc3339("2026-11-28T12:00:00.5Z").unwrap();
        let (early, late) = (
            stamp(early.with_timezone(&Utc)),
            stamp(late.with_timezone(&Utc)),
        );
        assert_eq!(early, "2026-11-28T12:00:00.000000Z");
        assert_eq!(late, "2026-11-28T12:00:00.500000Z");
        assert!(early < late);
        assert_eq!(stamp(parse_time(&late).unwrap()), late);
    }

    #[test]
    fn json_with_a_nul_character_is_refused_but_an_escaped_backslash_is_not() {
        assert!(json_text(&json!({"a": "x\u{0}y"})).is_err());
        assert!(json_text(&json!({"k\u{0}": 1})).is_err());
        assert!(json_text(&json!({"a": r"\u0000 as text"})).is_ok());
        assert!(json_text(&json!({"a": "\u{1f}"})).is_ok());
    }
}
