//! SQLite's result codes, read here and nowhere else: which failures pass once another
//! connection lets go of the file, and which name something the operator can fix.

use sqlx::{error::DatabaseError, sqlite::SqliteError};

use crate::store::Cause;

/// The primary result code (the low byte of an extended one).
fn primary(err: &SqliteError) -> Option<i32> {
    err.code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff)
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another connection held the
/// file longer than the busy timeout. Trying again later succeeds.
pub(crate) fn is_busy(err: &SqliteError) -> bool {
    matches!(primary(err), Some(5 | 6))
}

/// What the operator can check for an error SQLite reported.
pub(crate) fn cause(err: &SqliteError) -> Option<Cause> {
    match primary(err)? {
        5 | 6 => Some(Cause::FileBusy),
        8 => Some(Cause::ReadOnly),
        14 => Some(Cause::CannotOpen),
        26 => Some(Cause::NotADatabase),
        _ => None,
    }
}
