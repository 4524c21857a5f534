//! Running a plan: every step in one transaction, with seedcore's migrations recorded as
//! `sqlx::migrate!` records them, so that `db init` and `serve` afterwards find an up-to-date
//! database. A failing step rolls everything back.

use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};

use super::{
    AdoptError,
    detect::FIRST_MIGRATION,
    plan::{Action, Plan, Step},
};

/// seedcore's PostgreSQL migrations, the same set the store applies.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How to adopt.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    /// Running tasks go back to `queued` (default: they keep running under a lease).
    pub requeue_running: bool,
    /// The lease a running task gets from its lock time when it has no lease of its own.
    pub lease_seconds: f64,
    /// Fail just before this step (1-based), after the earlier ones ran: for tests that the
    /// transaction leaves the database as it was.
    pub fail_before_step: Option<usize>,
}

impl Default for AdoptOptions {
    fn default() -> Self {
        AdoptOptions {
            requeue_running: false,
            lease_seconds: 30.0,
            fail_before_step: None,
        }
    }
}

/// What adoption did.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// Tasks adopted.
    pub tasks: i64,
    /// Facts adopted.
    pub facts: i64,
    /// Steps run.
    pub steps: usize,
    /// How long the transaction took.
    pub elapsed: Duration,
}

/// Runs every step of `plan` in one transaction; `progress` hears of each step as it starts
/// (its number and sentence) and when it is done (its duration).
pub async fn run(
    pool: &PgPool,
    plan: &Plan,
    options: &AdoptOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Adopted, AdoptError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    // Nothing else may read or write the two tables while their columns change. Taken first,
    // so that a process of the original still running stops adoption before any change; the
    // timeout turns an endless wait into that message.
    sqlx::query("set local lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("lock table tasks, facts in access exclusive mode")
        .execute(&mut *tx)
        .await?;
    sqlx::query("set local lock_timeout = 0")
        .execute(&mut *tx)
        .await?;
    sqlx::query(include_str!("sql/adopted_table.sql"))
        .execute(&mut *tx)
        .await?;
    for (index, step) in plan.steps.iter().enumerate() {
        let number = index + 1;
        if options.fail_before_step == Some(number) {
            return Err(AdoptError::Injected(number));
        }
        progress(Progress::Started {
            number,
            total: plan.steps.len(),
            what: &step.what,
        });
        let began = Instant::now();
        run_step(&mut tx, step, options)
            .await
            .map_err(|source| AdoptError::Step {
                number,
                what: step.what.clone(),
                source,
            })?;
        progress(Progress::Done {
            took: began.elapsed(),
        });
    }
    tx.commit().await?;
    Ok(Adopted {
        tasks: plan.catalog.task_rows,
        facts: plan.catalog.fact_rows,
        steps: plan.steps.len(),
        elapsed: started.elapsed(),
    })
}

/// Where a run is.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A step began.
    Started {
        /// The step, from 1.
        number: usize,
        /// How many steps there are.
        total: usize,
        /// What the step changes.
        what: &'a str,
    },
    /// The step finished.
    Done {
        /// How long it took.
        took: Duration,
    },
}

async fn run_step(
    tx: &mut Transaction<'static, Postgres>,
    step: &Step,
    options: &AdoptOptions,
) -> Result<(), sqlx::Error> {
    match &step.action {
        // The statement's identifiers were quoted by PostgreSQL when the plan was built.
        Action::Sql(statement) => {
            sqlx::raw_sql(AssertSqlSafe(statement.as_str()))
                .execute(&mut **tx)
                .await?;
        }
        Action::BackfillTasks => {
            sqlx::query(include_str!("sql/backfill_tasks.sql"))
                .bind(options.lease_seconds)
                .bind(options.requeue_running)
                .execute(&mut **tx)
                .await?;
        }
        Action::BackfillFacts => {
            sqlx::query(include_str!("sql/backfill_facts.sql"))
                .execute(&mut **tx)
                .await?;
        }
        Action::FirstMigration => {
            let began = Instant::now();
            sqlx::raw_sql(sqlx::AssertSqlSafe(first_migration_remainder()))
                .execute(&mut **tx)
                .await?;
            sqlx::raw_sql(include_str!("sql/migrations_table.sql"))
                .execute(&mut **tx)
                .await?;
            record(tx, FIRST_MIGRATION, began.elapsed()).await?;
        }
        Action::AdoptedEvents => {
            sqlx::query(include_str!("sql/adopted_events.sql"))
                .execute(&mut **tx)
                .await?;
        }
        Action::Migration(version) => {
            let began = Instant::now();
            let migration = migration(*version);
            sqlx::raw_sql(AssertSqlSafe(migration.sql.as_str()))
                .execute(&mut **tx)
                .await?;
            record(tx, *version, began.elapsed()).await?;
        }
    }
    Ok(())
}

/// Records a migration as applied, with the checksum `sqlx::migrate!` compares on every start.
async fn record(
    tx: &mut Transaction<'static, Postgres>,
    version: i64,
    took: Duration,
) -> Result<(), sqlx::Error> {
    let migration = migration(version);
    sqlx::query(
        r"insert into _sqlx_migrations (version, description, success, checksum, execution_time)
          values ($1, $2, true, $3, $4)",
    )
    .bind(migration.version)
    .bind(&*migration.description)
    .bind(&*migration.checksum)
    .bind(i64::try_from(took.as_nanos()).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn migration(version: i64) -> &'static sqlx::migrate::Migration {
    MIGRATOR
        .iter()
        .find(|m| m.version == version)
        .expect("the plan names migrations of this migrator only")
}

/// seedcore's first migration without its `create table tasks` and `create table facts`:
/// adoption has just turned the original's two tables into exactly those, and the rest of
/// the migration (indexes, the event table, its triggers) runs as written, so it cannot drift
/// from the migration a new database gets.
fn first_migration_remainder() -> String {
    const FIRST: &str =
        include_str!("../../migrations/postgres/20261128000001_tasks_and_facts.sql");
    let mut rest = String::with_capacity(FIRST.len());
    let mut in_table = false;
    for line in FIRST.lines() {
        in_table |= line == "create table tasks (" || line == "create table facts (";
        if !in_table {
            rest.push_str(line);
            rest.push('\n');
        }
        in_table &= line != ");";
    }
    rest
}

#[cfg(test)]
mod first_migration {
    use super::first_migration_remainder;

    #[test]
    fn the_remainder_creates_everything_but_the_two_adopted_tables() {
        let rest = first_migration_remainder();
        assert!(!rest.contains("create table tasks"), "{rest}");
        assert!(!rest.contains("create table facts"), "{rest}");
        assert!(rest.contains("create table task_events ("), "{rest}");
        assert!(rest.contains("create index tasks_ready_idx"), "{rest}");
        assert!(
            rest.contains("create index facts_text_trgm_idx on facts"),
            "{rest}"
        );
    }
}
