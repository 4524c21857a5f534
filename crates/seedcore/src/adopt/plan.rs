//! The plan: every change adoption makes, in order, each with the sentence `--dry-run`
//! prints. Building it checks everything first; nothing here writes.
//!
//! The target is seedcore's first migration: its columns of `tasks` and `facts` (types,
//! defaults, not-null, the status check), then its indexes, event table and triggers, then
//! the later migrations exactly as `db init` applies them.

use sqlx::PgPool;

use super::{
    AdoptError, AdoptOptions,
    columns::{FACT_TIMES, STATUSES, WANTED, Wanted},
    detect::{self, Catalog, not_understood},
};

/// One change, and how it is made.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it changes, for the user.
    pub what: String,
    /// How it is made.
    pub action: Action,
}

/// How a step is made.
#[derive(Debug, Clone)]
pub enum Action {
    /// One statement, its identifiers quoted by PostgreSQL.
    Sql(String),
    /// The original's task rows in seedcore's terms (`sql/backfill_tasks.sql`).
    BackfillTasks,
    /// Null tags, metadata and timestamps of facts filled in (`sql/backfill_facts.sql`).
    BackfillFacts,
    /// The rest of seedcore's first migration: indexes, the event table, triggers.
    FirstMigration,
    /// An `adopted` event per task in the audit trail.
    AdoptedEvents,
    /// A seedcore migration after the first, by version, applied and recorded.
    Migration(i64),
}

/// The changes that adopt the original's database, and what it holds.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What the database holds.
    pub catalog: Catalog,
    /// The changes, in order.
    pub steps: Vec<Step>,
    /// What stays as it is and is worth knowing (kept indexes, extra columns, foreign keys).
    pub kept: Vec<String>,
}

const TYPE_CHANGE: &str = "alter table %I alter column %I type %s using %I::%s";
const ADD_COLUMN: &str = "alter table %I add column %I %s";
const SET_DEFAULT: &str = "alter table %I alter column %I set default %s";
const SET_NOT_NULL: &str = "alter table %I alter column %I set not null";

/// Checks the catalog and lists the changes; fails on the first thing it cannot adopt.
pub async fn build(
    pool: &PgPool,
    catalog: Catalog,
    options: &AdoptOptions,
) -> Result<Plan, AdoptError> {
    check(pool, &catalog).await?;
    let wanted = || WANTED.iter().chain(FACT_TIMES.iter());
    let mut changed: Vec<&Wanted> = Vec::new();
    for want in wanted() {
        if let Some(column) = catalog.column(want.table, want.name)
            && column.udt != want.udt
        {
            changed.push(want);
        }
    }
    let status = catalog.column("tasks", "status").expect("checked");
    let status_changes = status.udt != "text";
    let mut changed_names: Vec<String> = changed
        .iter()
        .map(|w| format!("{}.{}", w.table, w.name))
        .collect();
    if status_changes {
        changed_names.push("tasks.status".into());
    }
    let views = detect::blocking_views(pool, &changed_names).await?;

    let mut steps = Vec::new();
    let mut kept = Vec::new();
    for view in views.iter().rev() {
        steps.push(sql(
            format!(
                "drop view {} (it reads a column whose type changes; recreated below with its \
                 definition unchanged)",
                view.name
            ),
            &view.drop_sql,
        ));
    }
    drop_conflicts(&catalog, &mut steps, &mut kept);

    if status_changes {
        steps.push(sql(
            "tasks.status: drop its default (set to 'created' below)".into(),
            "alter table tasks alter column status drop default",
        ));
        steps.push(sql(
            format!(
                "tasks.status: {} → text, labels lowered ({} rows rewritten)",
                status.udt, catalog.task_rows
            ),
            "alter table tasks alter column status type text using lower(status::text)",
        ));
    }
    for want in &changed {
        let from = &catalog.column(want.table, want.name).expect("present").udt;
        let statement = format_sql(
            pool,
            TYPE_CHANGE,
            &[
                want.table,
                want.name,
                want.sql_type,
                want.name,
                want.sql_type,
            ],
        )
        .await?;
        steps.push(sql(
            format!("{}.{}: {from} → {}", want.table, want.name, want.sql_type),
            &statement,
        ));
    }
    for want in wanted().filter(|w| catalog.column(w.table, w.name).is_none()) {
        let statement = format_sql(pool, ADD_COLUMN, &[want.table, want.name, want.add]).await?;
        steps.push(sql(
            format!("{}: add column {} {}", want.table, want.name, want.add),
            &statement,
        ));
    }
    steps.push(Step {
        what: backfill_sentence(&catalog, options),
        action: Action::BackfillTasks,
    });
    steps.push(Step {
        what: format!(
            "facts: null tags become [], null meta_data {{}} ({} rows read)",
            catalog.fact_rows
        ),
        action: Action::BackfillFacts,
    });
    for want in wanted().filter(|w| catalog.column(w.table, w.name).is_some()) {
        let column = catalog.column(want.table, want.name).expect("present");
        if let Some(default) = want.default {
            let statement =
                format_sql(pool, SET_DEFAULT, &[want.table, want.name, default]).await?;
            steps.push(sql(
                format!("{}.{}: default {default}", want.table, want.name),
                &statement,
            ));
        }
        if want.not_null && !column.not_null {
            let statement = format_sql(pool, SET_NOT_NULL, &[want.table, want.name]).await?;
            steps.push(sql(
                format!("{}.{}: not null", want.table, want.name),
                &statement,
            ));
        }
    }
    steps.push(sql(
        "tasks.status: default 'created', not null, seedcore's status check".into(),
        include_str!("sql/status_rules.sql"),
    ));
    for view in &views {
        let (statement, relabelled) = status_labels_as_text(&view.create_sql, &catalog, status);
        let what = if relabelled {
            format!(
                "create view {} again, its definition unchanged but for the status labels it \
                 compares, now text in lowercase as the statuses are",
                view.name
            )
        } else {
            format!("create view {} again, its definition unchanged", view.name)
        };
        steps.push(sql(what, &statement));
    }
    seedcore_steps(&mut steps, &catalog);
    if catalog.foreign_keys.iter().any(|k| k.to_table == "tasks") {
        steps.push(sql(
            "tasks: a trigger that keeps a finished task other tables still point at in tasks \
             when the rest move to task_history"
                .into(),
            include_str!("sql/keep_referenced.sql"),
        ));
    }
    describe_kept(&catalog, &mut kept);
    Ok(Plan {
        catalog,
        steps,
        kept,
    })
}

/// The original's triggers (and their functions, when nothing else calls them), its indexes
/// that read the status or take a name seedcore uses, and its checks on the status.
fn drop_conflicts(catalog: &Catalog, steps: &mut Vec<Step>, kept: &mut Vec<String>) {
    for trigger in &catalog.triggers {
        steps.push(sql(
            format!(
                "drop trigger {} on {} (seedcore's own writes keep updated_at and the trail)",
                trigger.name, trigger.table_name
            ),
            &trigger.drop_sql,
        ));
    }
    let mut functions: Vec<&detect::Trigger> = catalog
        .triggers
        .iter()
        .filter(|t| t.other_users == 0)
        .collect();
    functions.sort_by(|a, b| a.function.cmp(&b.function));
    functions.dedup_by(|a, b| a.function == b.function);
    for trigger in functions {
        steps.push(sql(
            format!(
                "drop function {} (only the dropped triggers called it)",
                trigger.function
            ),
            &trigger.drop_function_sql,
        ));
    }
    for index in catalog.indexes.iter().filter(|i| !i.backs_constraint) {
        let named_like_ours = detect::SEEDCORE_RELATIONS.contains(&index.name.as_str());
        let reads_status =
            index.table_name == "tasks" && index.columns.iter().any(|c| c == "status");
        if named_like_ours || reads_status {
            let why = if named_like_ours {
                "seedcore creates an index of that name"
            } else {
                "it reads the original's status"
            };
            steps.push(sql(
                format!("drop index {} ({why}): {}", index.name, index.definition),
                &index.drop_sql,
            ));
        } else {
            kept.push(format!("index {} stays: {}", index.name, index.definition));
        }
    }
    for check in &catalog.checks {
        let ours =
            ["tasks_status_check", "tasks_max_attempts_check"].contains(&check.name.as_str());
        if ours || (check.table_name == "tasks" && check.columns.iter().any(|c| c == "status")) {
            steps.push(sql(
                format!(
                    "drop check {} on {}: {} (seedcore adds its own status check)",
                    check.name, check.table_name, check.definition
                ),
                &check.drop_sql,
            ));
        } else {
            kept.push(format!(
                "check {} on {} stays: {}",
                check.name, check.table_name, check.definition
            ));
        }
    }
}

/// A view's definition with the status enum's literals (`'QUEUED'::taskstatus`, as PostgreSQL
/// prints them) turned into the text the status now holds (`'queued'::text`); without this a
/// view comparing the status with a label could not be created again over a text column.
/// Whether anything changed.
fn status_labels_as_text(
    create_sql: &str,
    catalog: &Catalog,
    status: &detect::Column,
) -> (String, bool) {
    if !status.is_enum {
        return (create_sql.to_string(), false);
    }
    let mut statement = create_sql.to_string();
    for label in catalog.enum_labels.iter().filter(|l| !l.contains('\'')) {
        let enum_literal = format!("'{label}'::{}", status.udt);
        let text_literal = format!("'{}'::text", label.to_lowercase());
        statement = statement.replace(&enum_literal, &text_literal);
    }
    let changed = statement != create_sql;
    (statement, changed)
}

/// The first migration's remainder, the audit trail, and the later migrations.
fn seedcore_steps(steps: &mut Vec<Step>, catalog: &Catalog) {
    steps.push(Step {
        what: "seedcore's first migration: its indexes on tasks and facts, task_events and \
               the status triggers; recorded as applied"
            .into(),
        action: Action::FirstMigration,
    });
    steps.push(Step {
        what: format!(
            "task_events: an 'adopted' event for each of the {} tasks",
            catalog.task_rows
        ),
        action: Action::AdoptedEvents,
    });
    // The later migrations run as on any database; over the adopted rows they are what builds
    // the status counters and the fact search vectors.
    for migration in super::apply::MIGRATOR.iter().skip(1) {
        steps.push(Step {
            what: format!(
                "migration {} {}, over the adopted rows",
                migration.version, migration.description
            ),
            action: Action::Migration(migration.version),
        });
    }
}

fn describe_kept(catalog: &Catalog, kept: &mut Vec<String>) {
    let known = |table: &str, name: &str| {
        name == "status"
            || WANTED
                .iter()
                .chain(FACT_TIMES.iter())
                .any(|w| w.table == table && w.name == name)
    };
    for (table, columns) in [("tasks", &catalog.tasks), ("facts", &catalog.facts)] {
        for column in columns.iter().filter(|c| !known(table, &c.name)) {
            kept.push(format!(
                "column {table}.{} ({}) stays, untouched",
                column.name, column.udt
            ));
        }
    }
    for key in &catalog.foreign_keys {
        kept.push(format!(
            "foreign key {} of {} → {} (on delete {}) keeps holding",
            key.name, key.from_table, key.to_table, key.on_delete
        ));
    }
}

fn backfill_sentence(catalog: &Catalog, options: &AdoptOptions) -> String {
    let counts: Vec<String> = catalog
        .statuses
        .iter()
        .map(|(label, n)| format!("{label}: {n}"))
        .collect();
    let running = if options.requeue_running {
        "running tasks go back to queued".to_string()
    } else {
        format!(
            "running tasks keep a lease until their lease or lock (+{}s) expires, and those \
             already expired are rescued as the reaper would",
            options.lease_seconds
        )
    };
    format!(
        "tasks: statuses become seedcore's ({}); run_after → run_at; {running}; null \
         description becomes \"\", null params {{}}; ids, timestamps and attempts kept",
        counts.join(", ")
    )
}

/// Everything that stops adoption before any change.
async fn check(pool: &PgPool, catalog: &Catalog) -> Result<(), AdoptError> {
    let clashes = detect::name_clashes(pool).await?;
    if !clashes.is_empty() {
        return Err(not_understood(&format!(
            "seedcore's migrations create objects that already exist here: {}",
            clashes.join(", ")
        )));
    }
    for (table, name) in detect::LATER_COLUMNS {
        if catalog.column(table, name).is_some() {
            return Err(not_understood(&format!(
                "column {table}.{name} exists, and seedcore adds a column of that name"
            )));
        }
    }
    for want in WANTED.iter().chain(FACT_TIMES.iter()) {
        if let Some(column) = catalog.column(want.table, want.name)
            && !want.accepts.contains(&column.udt.as_str())
        {
            return Err(not_understood(&format!(
                "column {}.{} has type {}; seedcore needs {}",
                want.table, want.name, column.udt, want.sql_type
            )));
        }
    }
    let status = catalog
        .column("tasks", "status")
        .expect("checked by inspect");
    if !status.is_enum && !["text", "varchar", "bpchar"].contains(&status.udt.as_str()) {
        return Err(not_understood(&format!(
            "column tasks.status has type {}; expected the taskstatus enum or text",
            status.udt
        )));
    }
    for (label, n) in &catalog.statuses {
        if !STATUSES.contains(&label.to_lowercase().as_str()) {
            return Err(not_understood(&format!(
                "tasks.status holds '{label}' ({n} rows), which is none of {}",
                STATUSES.join(", ")
            )));
        }
    }
    for key in &catalog.foreign_keys {
        if key.to_table == "tasks" && !["no action", "restrict"].contains(&key.on_delete.as_str()) {
            return Err(not_understood(&format!(
                "foreign key {} of {} points at tasks with on delete {}: seedcore moves finished \
                 tasks to task_history and prunes them by deleting rows, which would change {}'s \
                 rows; make it on delete no action first",
                key.name, key.from_table, key.on_delete, key.from_table
            )));
        }
    }
    check_columns_seedcore_can_write(catalog)?;
    check_values(pool, catalog).await
}

/// seedcore inserts rows naming its own columns only: any other column must accept that.
fn check_columns_seedcore_can_write(catalog: &Catalog) -> Result<(), AdoptError> {
    for (table, columns) in [("tasks", &catalog.tasks), ("facts", &catalog.facts)] {
        for column in columns {
            let known = column.name == "status"
                || WANTED
                    .iter()
                    .chain(FACT_TIMES.iter())
                    .any(|w| w.table == table && w.name == column.name);
            if !known && column.not_null && !column.has_default {
                return Err(not_understood(&format!(
                    "column {table}.{} is not null and has no default, so seedcore could not \
                     insert rows; give it a default first",
                    column.name
                )));
            }
        }
    }
    Ok(())
}

/// Rows whose values seedcore cannot keep as they are.
async fn check_values(pool: &PgPool, catalog: &Catalog) -> Result<(), AdoptError> {
    let queries: [(&str, &str, &str); 4] = [
        (
            "tasks",
            "type",
            r"select count(*) from tasks where type is null or type::text = ''",
        ),
        (
            "facts",
            "text",
            r"select count(*) from facts where text is null",
        ),
        (
            "tasks",
            "params",
            r"select count(*) from tasks where jsonb_typeof(params::jsonb) <> 'object'",
        ),
        (
            "facts",
            "meta_data",
            r"select count(*) from facts where jsonb_typeof(meta_data::jsonb) <> 'object'",
        ),
    ];
    for (table, column, query) in queries {
        if catalog.column(table, column).is_none() {
            continue;
        }
        let bad: i64 = sqlx::query_scalar(query).fetch_one(pool).await?;
        if bad > 0 {
            return Err(not_understood(&format!(
                "{bad} rows of {table} have a {column} seedcore cannot keep (null, empty or not \
                 a JSON object, as the case may be); fix them first"
            )));
        }
    }
    Ok(())
}

fn sql(what: String, statement: &str) -> Step {
    Step {
        what,
        action: Action::Sql(statement.to_string()),
    }
}

/// A statement from a template, its arguments placed by PostgreSQL's `format` (`%I` quotes
/// identifiers; `%s` is used for type names and defaults from this module's constants only).
async fn format_sql(pool: &PgPool, template: &str, args: &[&str]) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(r"select format($1, variadic $2::text[])")
        .bind(template)
        .bind(args)
        .fetch_one(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(labels: &[&str]) -> Catalog {
        Catalog {
            tasks: Vec::new(),
            facts: Vec::new(),
            task_rows: 0,
            fact_rows: 0,
            statuses: Vec::new(),
            enum_labels: labels.iter().map(|l| l.to_string()).collect(),
            indexes: Vec::new(),
            triggers: Vec::new(),
            checks: Vec::new(),
            foreign_keys: Vec::new(),
        }
    }

    fn status(is_enum: bool, udt: &str) -> detect::Column {
        detect::Column {
            name: "status".into(),
            udt: udt.into(),
            is_enum,
            not_null: true,
            has_default: true,
        }
    }

    #[test]
    fn enum_labels_in_a_view_become_lowercase_text() {
        let view = "create view v as  SELECT tasks.id FROM tasks WHERE (tasks.status = ANY \
                    (ARRAY['QUEUED'::taskstatus, 'RETRY'::taskstatus]))";
        let (relabelled, changed) = status_labels_as_text(
            view,
            &catalog(&["CREATED", "QUEUED", "RETRY"]),
            &status(true, "taskstatus"),
        );
        assert!(changed);
        assert_eq!(
            relabelled,
            "create view v as  SELECT tasks.id FROM tasks WHERE (tasks.status = ANY \
             (ARRAY['queued'::text, 'retry'::text]))"
        );
    }

    #[test]
    fn a_view_over_a_text_status_is_created_as_it_was() {
        let view = "create view v as SELECT tasks.id FROM tasks WHERE tasks.status::text = \
                    'queued'::text";
        let (same, changed) = status_labels_as_text(view, &catalog(&[]), &status(false, "varchar"));
        assert!(!changed);
        assert_eq!(same, view);
    }
}
