//! Recognising the original's schema: what its `tasks` and `facts` tables hold, and every
//! object around them that adoption must change or keep.
//!
//! Only reads the catalog and counts rows. Statement texts that name the original's objects
//! are written by PostgreSQL (`format` with `%I`, `::regclass`, `::regprocedure`), so every
//! identifier is quoted as the server would quote it.

use sqlx::{FromRow, PgPool};

/// Whose schema the database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No `tasks` table.
    Empty,
    /// seedcore's first migration is recorded.
    Seedcore,
    /// A `tasks` table that seedcore did not create.
    Original,
}

/// The version seedcore's first migration is recorded under.
pub const FIRST_MIGRATION: i64 = 20261128000001;

/// Which of the three the database is.
pub async fn state(pool: &PgPool) -> Result<State, sqlx::Error> {
    let (tasks, migrations): (bool, bool) = sqlx::query_as(
        r"select to_regclass('tasks') is not null, to_regclass('_sqlx_migrations') is not null",
    )
    .fetch_one(pool)
    .await?;
    if !tasks {
        return Ok(State::Empty);
    }
    if migrations {
        let recorded: bool = sqlx::query_scalar(
            r"select exists (select 1 from _sqlx_migrations where version = $1)",
        )
        .bind(FIRST_MIGRATION)
        .fetch_one(pool)
        .await?;
        if recorded {
            return Ok(State::Seedcore);
        }
    }
    Ok(State::Original)
}

/// A column of `tasks` or `facts`.
#[derive(Debug, Clone, FromRow)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// The type's internal name (`varchar`, `_text`, `taskstatus`, …).
    pub udt: String,
    /// The type is an enum (the original's `taskstatus`).
    pub is_enum: bool,
    /// Declared not null.
    pub not_null: bool,
    /// Has a default.
    pub has_default: bool,
}

/// An index on `tasks` or `facts`.
#[derive(Debug, Clone, FromRow)]
pub struct Index {
    /// Its name.
    pub name: String,
    /// The table it belongs to.
    pub table_name: String,
    /// Its definition, as PostgreSQL prints it.
    pub definition: String,
    /// The columns its keys, expressions and predicate read.
    pub columns: Vec<String>,
    /// A primary key or unique constraint stands on it.
    pub backs_constraint: bool,
    /// The statement that drops it.
    pub drop_sql: String,
}

/// A user trigger on `tasks` or `facts`, with its function.
#[derive(Debug, Clone, FromRow)]
pub struct Trigger {
    /// Its name.
    pub name: String,
    /// The table it belongs to.
    pub table_name: String,
    /// Its function, with argument types.
    pub function: String,
    /// Triggers on other tables that call the same function.
    pub other_users: i64,
    /// The statement that drops it.
    pub drop_sql: String,
    /// The statement that drops its function.
    pub drop_function_sql: String,
}

/// A check constraint on `tasks` or `facts`.
#[derive(Debug, Clone, FromRow)]
pub struct Check {
    /// Its name.
    pub name: String,
    /// The table it belongs to.
    pub table_name: String,
    /// Its definition, as PostgreSQL prints it.
    pub definition: String,
    /// The columns it reads.
    pub columns: Vec<String>,
    /// The statement that drops it.
    pub drop_sql: String,
}

/// A foreign key of another table that points at `tasks` or `facts`.
#[derive(Debug, Clone, FromRow)]
pub struct ForeignKey {
    /// Its name.
    pub name: String,
    /// The table holding the key.
    pub from_table: String,
    /// `tasks` or `facts`.
    pub to_table: String,
    /// What a delete of the row pointed at does.
    pub on_delete: String,
}

/// What the original's database holds around `tasks` and `facts`.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The columns of `tasks`, in table order.
    pub tasks: Vec<Column>,
    /// The columns of `facts`, in table order.
    pub facts: Vec<Column>,
    /// Rows in `tasks`.
    pub task_rows: i64,
    /// Rows in `facts`.
    pub fact_rows: i64,
    /// Tasks per status label as stored (before lowering).
    pub statuses: Vec<(String, i64)>,
    /// The labels of the status enum, when the status is an enum.
    pub enum_labels: Vec<String>,
    /// Every index of the two tables.
    pub indexes: Vec<Index>,
    /// Their user triggers.
    pub triggers: Vec<Trigger>,
    /// Their check constraints.
    pub checks: Vec<Check>,
    /// Foreign keys of other tables pointing at them.
    pub foreign_keys: Vec<ForeignKey>,
}

impl Catalog {
    /// The column `name` of `table` (`"tasks"` or `"facts"`), when the original has it.
    pub fn column(&self, table: &str, name: &str) -> Option<&Column> {
        let columns = if table == "tasks" {
            &self.tasks
        } else {
            &self.facts
        };
        columns.iter().find(|c| c.name == name)
    }
}

/// Reads everything adoption needs to know; fails with the first thing it cannot adopt.
pub async fn inspect(pool: &PgPool) -> Result<Catalog, super::AdoptError> {
    let facts_exist: bool = sqlx::query_scalar(r"select to_regclass('facts') is not null")
        .fetch_one(pool)
        .await?;
    if !facts_exist {
        return Err(not_understood(
            "there is a table tasks but no table facts; the original service creates both",
        ));
    }
    let tasks = columns(pool, "tasks").await?;
    let facts = columns(pool, "facts").await?;
    for (table, required) in [
        ("tasks", &["id", "type", "status"][..]),
        ("facts", &["id", "text"][..]),
    ] {
        let columns = if table == "tasks" { &tasks } else { &facts };
        for &name in required {
            if !columns.iter().any(|c| c.name == name) {
                return Err(not_understood(&format!(
                    "table {table} has no column {name}: it is not the original service's {table}"
                )));
            }
        }
    }
    let (task_rows, fact_rows): (i64, i64) =
        sqlx::query_as(r"select (select count(*) from tasks), (select count(*) from facts)")
            .fetch_one(pool)
            .await?;
    let statuses = sqlx::query_as(
        r"select status::text, count(*) from tasks group by status::text order by 1",
    )
    .fetch_all(pool)
    .await?;
    let enum_labels = sqlx::query_scalar(
        r"select e.enumlabel::text
          from pg_attribute a join pg_enum e on e.enumtypid = a.atttypid
          where a.attrelid = to_regclass('tasks') and a.attname = 'status'
          order by e.enumsortorder",
    )
    .fetch_all(pool)
    .await?;
    Ok(Catalog {
        tasks,
        facts,
        task_rows,
        fact_rows,
        statuses,
        enum_labels,
        indexes: sqlx::query_as(include_str!("sql/indexes.sql"))
            .fetch_all(pool)
            .await?,
        triggers: sqlx::query_as(include_str!("sql/triggers.sql"))
            .fetch_all(pool)
            .await?,
        checks: sqlx::query_as(include_str!("sql/checks.sql"))
            .fetch_all(pool)
            .await?,
        foreign_keys: sqlx::query_as(include_str!("sql/foreign_keys.sql"))
            .fetch_all(pool)
            .await?,
    })
}

async fn columns(pool: &PgPool, table: &str) -> Result<Vec<Column>, sqlx::Error> {
    sqlx::query_as(
        r"select a.attname::text as name, t.typname::text as udt, t.typtype = 'e' as is_enum,
                 a.attnotnull as not_null, a.atthasdef as has_default
          from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped
          order by a.attnum",
    )
    .bind(table)
    .fetch_all(pool)
    .await
}

/// The views that read any of `columns` (`table.column`) of `tasks` or `facts`, and the views
/// over those, outermost last.
pub async fn blocking_views(pool: &PgPool, columns: &[String]) -> Result<Vec<View>, sqlx::Error> {
    sqlx::query_as(include_str!("sql/views.sql"))
        .bind(columns)
        .fetch_all(pool)
        .await
}

/// A view to drop before a column change and recreate after it.
#[derive(Debug, Clone, FromRow)]
pub struct View {
    /// Its name.
    pub name: String,
    /// 1 for a view over the tables, 2 for a view over that, and so on.
    pub depth: i32,
    /// The statement that drops it.
    pub drop_sql: String,
    /// The statement that creates it again, its definition unchanged.
    pub create_sql: String,
}

/// Relations and functions with the names seedcore's migrations create, other than the
/// indexes of `tasks` and `facts` (those are dropped as conflicts).
pub async fn name_clashes(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(include_str!("sql/clashes.sql"))
        .bind(&SEEDCORE_RELATIONS[..])
        .fetch_all(pool)
        .await
}

/// Every table, view, sequence and index seedcore's migrations create (PostgreSQL keeps
/// relation names unique per schema, so an original index of the same name would stop a
/// migration).
pub const SEEDCORE_RELATIONS: [&str; 40] = [
    "task_events",
    "task_events_task_idx",
    "workers",
    "workers_started_idx",
    "seedcore_settings",
    "queues",
    "workflows",
    "workflows_created_idx",
    "schedules",
    "schedules_due_idx",
    "counters",
    "counter_deltas",
    "counter_deltas_key_idx",
    "task_history",
    "task_history_created_idx",
    "task_history_status_created_idx",
    "task_history_workflow_idx",
    "task_history_idempotency_idx",
    "task_event_history",
    "task_event_history_task_idx",
    "task_keys",
    "all_tasks",
    "all_task_events",
    "fact_vectors",
    "fact_vectors_search_idx",
    "fact_vectors_tags_idx",
    "tasks_seq_seq",
    "tasks_created_idx",
    "tasks_status_created_idx",
    "tasks_ready_idx",
    "tasks_lease_idx",
    "tasks_idempotency_idx",
    "tasks_blocked_parents_idx",
    "tasks_workflow_idx",
    "facts_created_idx",
    "facts_tags_idx",
    "facts_text_trgm_idx",
    "facts_meta_trgm_idx",
    "facts_search_idx",
    "facts_meta_idx",
];

/// Columns seedcore's later migrations add; the original must not have them already.
pub const LATER_COLUMNS: [(&str, &str); 13] = [
    ("tasks", "attached_fact_ids"),
    ("tasks", "queue"),
    ("tasks", "priority"),
    ("tasks", "seq"),
    ("tasks", "idempotency_key"),
    ("tasks", "depends_on"),
    ("tasks", "run_on_failure"),
    ("tasks", "workflow_id"),
    ("tasks", "workflow_key"),
    ("tasks", "actor"),
    ("tasks", "traceparent"),
    ("tasks", "progress"),
    ("facts", "search_vector"),
];

pub(super) fn not_understood(what: &str) -> super::AdoptError {
    super::AdoptError::NotUnderstood(what.to_string())
}
