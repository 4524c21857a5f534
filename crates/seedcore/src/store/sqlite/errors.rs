//! SQLite's result codes, read here and nowhere else: which failures pass once another
//! connection lets go of the file or the disk has room again, and which name something the
//! operator can fix.
//!
//! A write that finds the disk full fails whole: SQLite rolls its transaction back and the
//! file keeps what it held, so once space is freed the same write succeeds.

use sqlx::{error::DatabaseError, sqlite::SqliteError};

use crate::store::Cause;

/// The primary result code (the low byte of an extended one).
fn primary(err: &SqliteError) -> Option<i32> {
    err.code()
        .and_then(|c| c.parse::<i32>().ok())
        .map(|c| c & 0xff)
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another connection held the
/// file longer than the busy timeout. SQLITE_FULL (13): the disk is full. SQLITE_IOERR (10):
/// the operating system refused a read or write (a disk that filled up in the middle of one,
/// among others). Trying again later succeeds once the cause is gone.
pub(crate) fn is_unavailable(err: &SqliteError) -> bool {
    matches!(primary(err), Some(5 | 6 | 10 | 13))
}

/// What the operator can check for an error SQLite reported.
pub(crate) fn cause(err: &SqliteError) -> Option<Cause> {
    match primary(err)? {
        5 | 6 => Some(Cause::FileBusy),
        8 => Some(Cause::ReadOnly),
        10 => Some(Cause::DiskError),
        13 => Some(Cause::DiskFull),
        14 => Some(Cause::CannotOpen),
        26 => Some(Cause::NotADatabase),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use crate::store::{Cause, SqliteStore};

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_diagnosed_as_such() {
        let folder = std::env::temp_dir().join(format!("seedcore-unit-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("notes.db");
        std::fs::write(&path, "these are notes, not a database, ".repeat(100)).unwrap();
        let refused = SqliteStore::open(&path).await;
        let _ = std::fs::remove_dir_all(&folder);
        let err = refused
            .err()
            .expect("a text file does not open as a database");
        assert_eq!(err.diagnose(), Some(Cause::NotADatabase), "{err}");
    }
}
