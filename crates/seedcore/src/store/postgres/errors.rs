//! PostgreSQL's SQLSTATE codes, read here and nowhere else: which failures pass once the
//! server is back, and which name something the operator can fix.
//!
//! "Back" covers a database dropped and created again under a running server: while it is
//! missing (3D000, 57P04) and while its tables are (42P01 and kin, until a restore or
//! `db init`), every statement fails the same way and passes afterwards, so these count as
//! unavailable, like a server that is restarting.

use sqlx::postgres::PgDatabaseError;

use crate::store::Cause;

/// Class 08 is connection trouble, 57P0x an administrator or crash shutdown or the database
/// being dropped, 53300 too many connections, 3D000 a database that does not exist (yet):
/// all pass when the server and its database are back. So do the codes of a missing schema.
pub(crate) fn is_unavailable(err: &PgDatabaseError) -> bool {
    let code = err.code();
    code.starts_with("08")
        || code.starts_with("57P0")
        || code == "53300"
        || code == "3D000"
        || is_schema_missing(code)
}

/// 42P01 (no such table), 42883 (no such function) and 3F000 (no such schema): the
/// migrations' objects are gone. Every statement seedcore sends names only objects its
/// migrations create, so on a migrated database these mean the schema was dropped or the
/// database recreated, not a mistake in a statement.
fn is_schema_missing(code: &str) -> bool {
    matches!(code, "42P01" | "42883" | "3F000")
}

/// What the operator can check for an error the server reported.
pub(crate) fn cause(err: &PgDatabaseError) -> Option<Cause> {
    match err.code() {
        "42501" => Some(Cause::PermissionDenied),
        "28P01" | "28000" => Some(Cause::BadCredentials),
        "3D000" | "57P04" => Some(Cause::NoSuchDatabase),
        code if is_schema_missing(code) => Some(Cause::SchemaMissing),
        _ => None,
    }
}

/// 42P01: the table does not exist.
pub(crate) fn is_undefined_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}
