//! What both backends share about API tokens: the message for a name in use.

use super::StoreError;

/// Maps a unique violation on insert to a conflict naming the token name.
pub(super) fn name_taken(name: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("A token named '{name}' already exists"))
        }
        _ => err.into(),
    }
}
