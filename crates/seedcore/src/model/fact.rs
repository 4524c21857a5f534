//! Facts: short texts with tags and metadata, as stored and as the API returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// A fact as the API returns it. The first six fields are the contract's, in its order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fact {
    /// Assigned by the service when the fact is created.
    pub id: Uuid,
    /// The content, matched by `q` and by full-text search.
    pub text: String,
    /// Labels to filter by, in the order given.
    pub tags: Vec<String>,
    /// A free-form JSON object; its top-level keys can be filtered on.
    #[schema(value_type = Object)]
    pub meta_data: Value,
    /// When the fact was stored; lists are newest first.
    pub created_at: DateTime<Utc>,
    /// When the fact last changed.
    pub updated_at: DateTime<Utc>,
}

/// A fact to create, after validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewFact {
    /// The content.
    pub text: String,
    /// Labels to filter by.
    pub tags: Vec<String>,
    /// A free-form JSON object.
    pub meta_data: Map<String, Value>,
}

/// The fields a PATCH changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactPatch {
    /// Replaces the content.
    pub text: Option<String>,
    /// Replaces every tag.
    pub tags: Option<Vec<String>>,
    /// Replaces the whole metadata object (no merge).
    pub meta_data: Option<Map<String, Value>>,
}

impl FactPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.tags.is_none() && self.meta_data.is_none()
    }
}

/// A position in the newest-first fact order, for keyset paging: the page after it holds the
/// facts created before `created_at` (ties broken by id, descending). Written as
/// `<microseconds since the epoch>_<id without hyphens>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactCursor {
    /// When the last fact of the previous page was created.
    pub created_at: DateTime<Utc>,
    /// That fact's id, which breaks ties.
    pub id: Uuid,
}

impl FactCursor {
    /// The position just after `fact`, where the next page starts.
    pub fn after(fact: &Fact) -> FactCursor {
        FactCursor {
            created_at: fact.created_at,
            id: fact.id,
        }
    }

    /// The text form, as clients send it back.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Reads the text form; None when it is malformed.
    pub fn decode(text: &str) -> Option<FactCursor> {
        let (micros, id) = text.split_once('_')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let id = Uuid::try_parse(id).ok()?;
        Some(FactCursor { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_text() {
        let cursor = FactCursor {
            created_at: DateTime::from_timestamp_micros(1_764_331_200_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(FactCursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "",
            "abc",
            "12_notauuid",
            "x_0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b",
        ] {
            assert_eq!(FactCursor::decode(text), None, "{text}");
        }
    }
}
