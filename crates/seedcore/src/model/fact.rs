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
