//! PostgreSQL's SQLSTATE codes, read here and nowhere else: which failures pass once the
//! server is back, and which name something the operator can fix.

use sqlx::postgres::PgDatabaseError;

use crate::store::Cause;

/// Class 08 is connection trouble, 57P0x an administrator or crash shutdown, 53300 too many
/// connections: all pass when the server is back.
pub(crate) fn is_unavailable(err: &PgDatabaseError) -> bool {
    let code = err.code();
    code.starts_with("08") || code.starts_with("57P0") || code == "53300"
}

/// What the operator can check for an error the server reported.
pub(crate) fn cause(err: &PgDatabaseError) -> Option<Cause> {
    match err.code() {
        "42501" => Some(Cause::PermissionDenied),
        "28P01" | "28000" => Some(Cause::BadCredentials),
        "3D000" => Some(Cause::NoSuchDatabase),
        _ => None,
    }
}

/// 42P01: the table does not exist.
pub(crate) fn is_undefined_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}
