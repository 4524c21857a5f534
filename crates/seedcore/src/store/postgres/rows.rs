//! How PostgreSQL stores the columns that differ between dialects: native `uuid`,
//! `timestamptz`, `jsonb` and arrays, which decode as they are.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use uuid::Uuid;

use crate::store::{StoreResult, rows};

/// The PostgreSQL dialect of the shared row types.
#[derive(Clone)]
pub(crate) struct Pg;

impl rows::Dialect for Pg {
    type Id = Uuid;
    type Time = DateTime<Utc>;
    type Json<T>
        = Json<T>
    where
        T: Clone + Send + Unpin;
    type List<T>
        = Vec<T>
    where
        T: Clone + Send + Unpin;

    fn id(value: Uuid) -> StoreResult<Uuid> {
        Ok(value)
    }

    fn time(value: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        Ok(value)
    }

    fn json<T>(value: Json<T>) -> StoreResult<T>
    where
        T: DeserializeOwned + Clone + Send + Unpin,
    {
        Ok(value.0)
    }

    fn list<T>(value: Vec<T>) -> StoreResult<Vec<T>>
    where
        T: DeserializeOwned + Clone + Send + Unpin,
    {
        Ok(value)
    }
}

pub(crate) type TaskRow = rows::TaskRow<Pg>;
pub(crate) type FactRow = rows::FactRow<Pg>;
pub(crate) type WorkerRow = rows::WorkerRow<Pg>;
pub(crate) type EventRow = rows::EventRow<Pg>;
pub(crate) type ScheduleRow = rows::ScheduleRow<Pg>;
