//! PostgreSQL's SQLSTATE codes, read here and nowhere else: which failures pass once the
//! server is back, and which name something the operator can fix.
//!
//! "Back" covers a database dropped and created again under a running server: while it is
//! missing (3D000, 57P04) and while its tables are (42P01 and kin, until a restore or
//! `db init` has brought all of them back), every statement fails the same way and passes
//! afterwards, so these count as unavailable, like a server that is restarting.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::postgres::PgDatabaseError;

use crate::store::Cause;

/// 0A000 with this message: a statement prepared on a connection returns other columns now
/// that the schema changed (a migration ran after it was prepared). PostgreSQL refuses it on
/// that connection until the connection goes; see [`predates_schema_change`].
const STALE_PLAN: &str = "cached plan must not change result type";

/// Class 08 is connection trouble, 57P0x an administrator or crash shutdown or the database
/// being dropped, 53300 too many connections, 3D000 a database that does not exist (yet):
/// all pass when the server and its database are back. So do the codes of a missing schema,
/// and a statement prepared before the schema changed (its connection is replaced).
pub(crate) fn is_unavailable(err: &PgDatabaseError) -> bool {
    let code = err.code();
    code.starts_with("08")
        || code.starts_with("57P0")
        || code == "53300"
        || code == "3D000"
        || is_schema_missing(code)
        || is_stale_plan(err)
}

fn is_stale_plan(err: &PgDatabaseError) -> bool {
    err.code() == "0A000" && err.message() == STALE_PLAN
}

/// When this process last saw the schema missing or changed, in milliseconds since
/// [`epoch`] (0: never).
static SCHEMA_CHANGED: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Notes an error that shows the schema missing, incomplete or changed under the process:
/// connections opened before it may hold statements prepared against the old schema.
pub(crate) fn note_schema_change(err: &PgDatabaseError) {
    if is_schema_missing(err.code()) || is_stale_plan(err) {
        schema_changed();
    }
}

/// Marks the schema as changed now.
pub(crate) fn schema_changed() {
    let now = epoch().elapsed().as_millis().max(1);
    SCHEMA_CHANGED.store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Whether a pooled connection of this age was opened before the schema last changed: its
/// cached statements may be stale, so the pool replaces it instead of handing it out.
pub(crate) fn predates_schema_change(age: Duration) -> bool {
    let changed = SCHEMA_CHANGED.load(Ordering::Relaxed);
    changed != 0 && epoch().elapsed().saturating_sub(age) <= Duration::from_millis(changed)
}

/// 42P01 (no such table), 42703 (no such column), 42883 (no such function), 42704 (no such
/// type or other object) and 3F000 (no such schema): the migrations' objects are gone, or
/// only partly back while they are being applied again. Every statement seedcore sends names
/// only objects its migrations create, so on a migrated database these mean the schema was
/// dropped or the database recreated, not a mistake in a statement.
fn is_schema_missing(code: &str) -> bool {
    matches!(code, "42P01" | "42703" | "42883" | "42704" | "3F000")
}

/// What the operator can check for an error the server reported.
pub(crate) fn cause(err: &PgDatabaseError) -> Option<Cause> {
    match err.code() {
        "42501" => Some(Cause::PermissionDenied),
        "28P01" | "28000" => Some(Cause::BadCredentials),
        "3D000" | "57P04" => Some(Cause::NoSuchDatabase),
        code if is_schema_missing(code) => Some(Cause::SchemaMissing),
        _ if is_stale_plan(err) => Some(Cause::SchemaMissing),
        _ => None,
    }
}

/// 42P01: the table does not exist.
pub(crate) fn is_undefined_table(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{predates_schema_change, schema_changed};

    #[test]
    fn a_connection_opened_before_the_schema_changed_is_replaced_and_a_newer_one_kept() {
        schema_changed();
        std::thread::sleep(Duration::from_millis(5));
        assert!(predates_schema_change(Duration::from_secs(3600)));
        assert!(!predates_schema_change(Duration::from_millis(1)));
    }
}
