//! What a store operation can fail with, and what the database said, classified.
//!
//! Each backend reads its own error codes (SQLSTATE on PostgreSQL, result codes on SQLite) in
//! its `errors` module; nothing outside `store` looks at a database's error codes. A failure
//! that passes once the database is back is [`StoreError::Unavailable`]; for one whose cause
//! the operator can check, [`StoreError::diagnose`] names it.
//!
//! "Back" includes more than a server that restarts: a database dropped and created again, its
//! schema not yet restored, or a disk that filled up are each unavailable too, so a client is
//! told to try again later (503) with what is wrong ([`StoreError::unavailable_detail`]),
//! never handed an internal error for what the operator is fixing.

use uuid::Uuid;

use super::{postgres, sqlite};

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row has the id, or no id starts with the prefix.
    #[error("not found")]
    NotFound,
    /// The id prefix (as sent) matches more than one row.
    #[error("Ambiguous id prefix '{0}'")]
    AmbiguousPrefix(String),
    /// The database cannot be reached or has no free connection.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database failed the statement for a reason other than availability.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that does not fit the model (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The backend cannot do what was asked (it says what and why).
    #[error("{0}")]
    Unsupported(String),
    /// A new task depends on tasks that do not exist (these ids).
    #[error("unknown dependencies: {0:?}")]
    UnknownDependencies(Vec<Uuid>),
    /// A value that must be unique is in use (it says which).
    #[error("{0}")]
    Conflict(String),
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why the database refused, when it is something the operator can check or fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Another process holds the database file (SQLite); trying again later succeeds.
    FileBusy,
    /// The database file or its folder is read-only (SQLite).
    ReadOnly,
    /// The database file cannot be opened (SQLite): a wrong path or a missing folder.
    CannotOpen,
    /// The file is not a SQLite database.
    NotADatabase,
    /// The database user lacks a permission (PostgreSQL).
    PermissionDenied,
    /// The user name or password was refused (PostgreSQL).
    BadCredentials,
    /// The database named does not exist (PostgreSQL).
    NoSuchDatabase,
    /// The server cannot be reached or has no free connection.
    Unreachable,
    /// The database answers but its tables are gone or incomplete (PostgreSQL): it was
    /// dropped and created again, or is being restored or migrated.
    SchemaMissing,
    /// The disk that holds the database file is full (SQLite).
    DiskFull,
    /// Reading or writing the database file failed in the operating system (SQLite).
    DiskError,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        note_schema_change(&err);
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

impl StoreError {
    /// What the operator can check, when the database said why it refused (or could not be
    /// reached).
    pub fn diagnose(&self) -> Option<Cause> {
        let (StoreError::Unavailable(err) | StoreError::Database(err)) = self else {
            return None;
        };
        if let sqlx::Error::Database(db) = err {
            if let Some(sqlite) = db.try_downcast_ref() {
                return sqlite::errors::cause(sqlite);
            }
            if let Some(cause) = db.try_downcast_ref().and_then(postgres::errors::cause) {
                return Some(cause);
            }
        }
        if let sqlx::Error::ColumnNotFound(_) = err {
            return Some(Cause::SchemaMissing);
        }
        matches!(self, StoreError::Unavailable(_)).then_some(Cause::Unreachable)
    }

    /// What a client is told when the database is unavailable: what is wrong, in words that
    /// name no table or statement.
    pub fn unavailable_detail(&self) -> &'static str {
        match self.diagnose() {
            Some(Cause::DiskFull) => {
                "Database disk is full: writes fail until space is freed; reads still work"
            }
            Some(Cause::DiskError) => "Database file cannot be read or written, try again shortly",
            Some(Cause::SchemaMissing) => {
                "Database schema is missing or incomplete (was the database dropped, or is it \
                 being restored?); try again once it is restored or `seedcore db init` has run"
            }
            Some(Cause::NoSuchDatabase) => {
                "Database does not exist (was it dropped?); try again once it is restored"
            }
            Some(Cause::FileBusy) => "Database is busy, try again shortly",
            _ => "Database unavailable, try again shortly",
        }
    }
}

/// A row without a column the model reads (`ColumnNotFound`) means the table lacks it: every
/// statement reads only columns its migrations create, so the schema is missing a migration,
/// as while it is being applied again.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::ColumnNotFound(_) => true,
        sqlx::Error::Database(db) => match db.try_downcast_ref() {
            Some(sqlite) => sqlite::errors::is_unavailable(sqlite),
            None => db
                .try_downcast_ref()
                .is_some_and(postgres::errors::is_unavailable),
        },
        _ => false,
    }
}

/// Tells the PostgreSQL store's pools when an error shows the schema missing or changed, so
/// connections that prepared statements against the old one are replaced.
fn note_schema_change(err: &sqlx::Error) {
    match err {
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref() {
                postgres::errors::note_schema_change(pg);
            }
        }
        sqlx::Error::ColumnNotFound(_) => postgres::errors::schema_changed(),
        _ => {}
    }
}
