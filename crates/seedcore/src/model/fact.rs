//! Facts: short texts with tags and metadata, as stored and as the API returns them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

/// A fact as the API returns it. The first six fields are the contract's, in its order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Fact {
    pub id: Uuid,
    pub text: String,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub meta_data: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A fact to create, after validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewFact {
    pub text: String,
    pub tags: Vec<String>,
    pub meta_data: Map<String, Value>,
}

/// The fields a PATCH changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FactPatch {
    pub text: Option<String>,
    pub tags: Option<Vec<String>>,
    pub meta_data: Option<Map<String, Value>>,
}

impl FactPatch {
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.tags.is_none() && self.meta_data.is_none()
    }
}
