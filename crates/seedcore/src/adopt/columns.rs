//! seedcore's columns of `tasks` and `facts` as its first migration creates them, and which
//! types of the original's columns convert to each without loss. The status is apart: it
//! needs its own conversion (an enum or varchar to text, labels lowered).

/// A column of seedcore's first migration.
pub(super) struct Wanted {
    pub(super) table: &'static str,
    pub(super) name: &'static str,
    /// Its type as `format_type` and the internal name of that type.
    pub(super) sql_type: &'static str,
    pub(super) udt: &'static str,
    /// Types of the original that convert to it without loss.
    pub(super) accepts: &'static [&'static str],
    pub(super) default: Option<&'static str>,
    pub(super) not_null: bool,
    /// The column definition when the original lacks it.
    pub(super) add: &'static str,
}

const fn wanted(
    table: &'static str,
    name: &'static str,
    (sql_type, udt): (&'static str, &'static str),
    accepts: &'static [&'static str],
    (default, not_null): (Option<&'static str>, bool),
    add: &'static str,
) -> Wanted {
    Wanted {
        table,
        name,
        sql_type,
        udt,
        accepts,
        default,
        not_null,
        add,
    }
}

const TEXT: (&str, &str) = ("text", "text");
const JSONB: (&str, &str) = ("jsonb", "jsonb");
const TIME: (&str, &str) = ("timestamptz", "timestamptz");
const TEXTS: &[&str] = &["text", "varchar", "bpchar"];
const TIMES: &[&str] = &["timestamptz", "timestamp"];

/// The columns of `tasks` and `facts` in seedcore's first migration (status apart: it needs
/// its own conversion).
pub(super) const WANTED: [Wanted; 23] = [
    wanted("tasks", "id", ("uuid", "uuid"), &["uuid"], (None, true), ""),
    wanted("tasks", "type", TEXT, TEXTS, (None, true), ""),
    wanted(
        "tasks",
        "description",
        TEXT,
        TEXTS,
        (Some("''"), true),
        "text not null default ''",
    ),
    wanted(
        "tasks",
        "params",
        JSONB,
        &["jsonb", "json"],
        (Some("'{}'"), true),
        "jsonb not null default '{}'",
    ),
    wanted("tasks", "domain", TEXT, TEXTS, (None, false), "text"),
    wanted(
        "tasks",
        "drift_score",
        ("double precision", "float8"),
        &["float8", "float4", "numeric"],
        (Some("0"), true),
        "double precision not null default 0",
    ),
    wanted(
        "tasks",
        "result",
        JSONB,
        &["jsonb", "json"],
        (None, false),
        "jsonb",
    ),
    wanted("tasks", "error", TEXT, TEXTS, (None, false), "text"),
    wanted(
        "tasks",
        "created_at",
        TIME,
        TIMES,
        (Some("now()"), true),
        "timestamptz not null default now()",
    ),
    wanted(
        "tasks",
        "updated_at",
        TIME,
        TIMES,
        (Some("now()"), true),
        "timestamptz not null default now()",
    ),
    wanted(
        "tasks",
        "attempts",
        ("integer", "int4"),
        &["int4", "int2"],
        (Some("0"), true),
        "integer not null default 0",
    ),
    wanted(
        "tasks",
        "max_attempts",
        ("integer", "int4"),
        &["int4"],
        (Some("3"), true),
        "integer not null default 3 check (max_attempts >= 1)",
    ),
    wanted(
        "tasks",
        "timeout_seconds",
        ("double precision", "float8"),
        &["float8"],
        (None, false),
        "double precision",
    ),
    wanted(
        "tasks",
        "run_at",
        TIME,
        TIMES,
        (Some("now()"), true),
        "timestamptz not null default now()",
    ),
    wanted(
        "tasks",
        "started_at",
        TIME,
        TIMES,
        (None, false),
        "timestamptz",
    ),
    wanted(
        "tasks",
        "finished_at",
        TIME,
        TIMES,
        (None, false),
        "timestamptz",
    ),
    wanted("tasks", "worker_id", TEXT, TEXTS, (None, false), "text"),
    wanted(
        "tasks",
        "lease_token",
        ("uuid", "uuid"),
        &["uuid"],
        (None, false),
        "uuid",
    ),
    wanted(
        "tasks",
        "lease_expires_at",
        TIME,
        TIMES,
        (None, false),
        "timestamptz",
    ),
    wanted("facts", "id", ("uuid", "uuid"), &["uuid"], (None, true), ""),
    wanted("facts", "text", TEXT, TEXTS, (None, true), ""),
    wanted(
        "facts",
        "tags",
        ("text[]", "_text"),
        &["_text", "_varchar"],
        (Some("'{}'"), true),
        "text[] not null default '{}'",
    ),
    wanted(
        "facts",
        "meta_data",
        JSONB,
        &["jsonb", "json"],
        (Some("'{}'"), true),
        "jsonb not null default '{}'",
    ),
];

/// `facts.created_at` and `facts.updated_at` are the same as the tasks' columns.
pub(super) const FACT_TIMES: [Wanted; 2] = [
    wanted(
        "facts",
        "created_at",
        TIME,
        TIMES,
        (Some("now()"), true),
        "timestamptz not null default now()",
    ),
    wanted(
        "facts",
        "updated_at",
        TIME,
        TIMES,
        (Some("now()"), true),
        "timestamptz not null default now()",
    ),
];

/// The original's status labels, lowered, that seedcore knows.
pub(super) const STATUSES: [&str; 7] = [
    "created",
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
    "retry",
];
