//! The workers' side on PostgreSQL: claiming ready tasks, recording how attempts ended,
//! renewing and releasing leases, and rescuing tasks whose lease expired.
//!
//! The claim is one call of the function `seedcore_claim`, whose definition is
//! `sql/claim_function.sql` beside this module: it picks with `for update skip locked` on the
//! partial index of ready tasks and hands out a fresh lease token per task; claims that may
//! take from a queue with a concurrency limit lock its row first, so their count of its
//! running tasks stays true until they commit. Everything else here is fenced by `id` and
//! `lease_token`: a write whose token is no longer current changes nothing and its lease is
//! left out of the answer. The claim and the completion (the function `seedcore_finish`) write
//! their own event rows and counter deltas, the update trigger stepping aside for their one
//! statement (the trail_by_claim_and_finish migration). Both keep one plan per session, and
//! every plan they may keep finds tasks by key (the plans_by_key migration).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use super::{PgStore, TaskRow};
use crate::store::{Claim, ClaimedTask, Lease, Outcome, Rescued, StoreResult};

/// The definition of `seedcore_claim` as the migrations install it; a test checks that the
/// database holds exactly this body.
#[cfg(test)]
const CLAIM_FUNCTION: &str = include_str!("sql/claim_function.sql");

pub(super) async fn claim(store: &PgStore, claim: &Claim) -> StoreResult<Vec<ClaimedTask>> {
    let rows: Vec<TaskRow> = sqlx::query_as(include_str!("sql/claim.sql"))
        .bind(&claim.worker_id)
        .bind(claim.limit)
        .bind(claim.drift.at_least)
        .bind(claim.drift.below)
        .bind(claim.lease.as_secs_f64())
        .bind(&claim.queues)
        .bind(&claim.exclude_queues)
        .bind(&claim.types)
        .fetch_all(&store.pool)
        .await?;
    rows.into_iter().map(TaskRow::into_claimed).collect()
}

/// A batch of attempt outcomes as the parallel arrays `finish.sql` unnests, borrowing the
/// results and errors from the batch rather than copying them.
#[derive(Default)]
struct FinishColumns<'a> {
    ids: Vec<Uuid>,
    tokens: Vec<Uuid>,
    statuses: Vec<&'static str>,
    results: Vec<Option<Json<&'a Value>>>,
    errors: Vec<Option<&'a str>>,
    run_ats: Vec<Option<DateTime<Utc>>>,
}

impl<'a> From<&'a [(Lease, Outcome)]> for FinishColumns<'a> {
    fn from(batch: &'a [(Lease, Outcome)]) -> Self {
        let mut columns = FinishColumns::default();
        for (lease, outcome) in batch {
            let (status, result, error, run_at) = match outcome {
                Outcome::Completed(result) => ("completed", Some(Json(result)), None, None),
                Outcome::Retry { error, run_at } => {
                    ("retry", None, Some(error.as_str()), Some(*run_at))
                }
                Outcome::Failed(error) => ("failed", None, Some(error.as_str()), None),
            };
            columns.ids.push(lease.task_id);
            columns.tokens.push(lease.token);
            columns.statuses.push(status);
            columns.results.push(result);
            columns.errors.push(error);
            columns.run_ats.push(run_at);
        }
        columns
    }
}

pub(super) async fn finish(store: &PgStore, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>> {
    finish_on(&store.pool, batch).await
}

/// `finish` on any connection, so a caller can add its own writes to the transaction.
pub(super) async fn finish_on<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    batch: &[(Lease, Outcome)],
) -> StoreResult<Vec<Lease>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let columns = FinishColumns::from(batch);
    let recorded: Vec<(Uuid, Uuid)> = sqlx::query_as(include_str!("sql/finish.sql"))
        .bind(&columns.ids)
        .bind(&columns.tokens)
        .bind(&columns.statuses)
        .bind(&columns.results)
        .bind(&columns.errors)
        .bind(&columns.run_ats)
        .fetch_all(executor)
        .await?;
    Ok(leases(recorded))
}

pub(super) async fn renew_reporting(
    store: &PgStore,
    held: Lease,
    lease: Duration,
    progress: f64,
) -> StoreResult<bool> {
    let renewed = sqlx::query(
        r"update tasks
          set lease_expires_at = now() + make_interval(secs => $3), progress = $4,
              updated_at = now()
          where id = $1 and lease_token = $2",
    )
    .bind(held.task_id)
    .bind(held.token)
    .bind(lease.as_secs_f64())
    .bind(progress)
    .execute(&store.pool)
    .await?;
    Ok(renewed.rows_affected() > 0)
}

pub(super) async fn renew(
    store: &PgStore,
    held: &[Lease],
    lease: Duration,
) -> StoreResult<Vec<Lease>> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, tokens) = columns(held);
    let renewed: Vec<(Uuid, Uuid)> = sqlx::query_as(include_str!("sql/renew_leases.sql"))
        .bind(&ids)
        .bind(&tokens)
        .bind(lease.as_secs_f64())
        .fetch_all(&store.pool)
        .await?;
    Ok(leases(renewed))
}

pub(super) async fn release(store: &PgStore, held: &[Lease]) -> StoreResult<u64> {
    if held.is_empty() {
        return Ok(0);
    }
    let (ids, tokens) = columns(held);
    let released = sqlx::query(include_str!("sql/release.sql"))
        .bind(&ids)
        .bind(&tokens)
        .execute(&store.pool)
        .await?;
    Ok(released.rows_affected())
}

pub(super) async fn rescue_expired(store: &PgStore) -> StoreResult<Vec<Rescued>> {
    let rescued: Vec<(String, String)> = sqlx::query_as(include_str!("sql/rescue_expired.sql"))
        .fetch_all(&store.pool)
        .await?;
    Ok(rescued
        .into_iter()
        .map(|(queue, task_type)| Rescued { queue, task_type })
        .collect())
}

/// The leases as the parallel arrays of task ids and tokens the fenced statements take.
fn columns(held: &[Lease]) -> (Vec<Uuid>, Vec<Uuid>) {
    held.iter().map(|l| (l.task_id, l.token)).unzip()
}

fn leases(pairs: Vec<(Uuid, Uuid)>) -> Vec<Lease> {
    pairs
        .into_iter()
        .map(|(task_id, token)| Lease { task_id, token })
        .collect()
}

#[cfg(test)]
mod tests {
    use sqlx::{AssertSqlSafe, ConnectOptions, Connection, postgres::PgConnectOptions};

    use super::*;
    use crate::store::Store;

    /// The body between the `$$` quotes of a function definition.
    fn body(definition: &str) -> &str {
        let (_, rest) = definition.split_once("$$").expect("an opening $$");
        let (body, _) = rest.split_once("$$").expect("a closing $$");
        body
    }

    /// The planner settings of a function definition's `set` clauses, as `pg_proc.proconfig`
    /// spells them (`name=value`), sorted.
    fn settings(definition: &str) -> Vec<String> {
        let (head, _) = definition.split_once("$$").expect("an opening $$");
        let mut settings: Vec<String> = head
            .lines()
            .filter_map(|line| line.strip_prefix("set "))
            .map(|setting| setting.replace(" = ", "="))
            .collect();
        settings.sort();
        settings
    }

    #[test]
    fn the_claim_function_beside_the_module_is_the_one_the_migration_installs() {
        let migration = include_str!(
            "../../../migrations/postgres/20261210000001_trail_by_claim_and_finish.sql"
        );
        assert!(
            migration.contains(body(CLAIM_FUNCTION)),
            "the migration installs another claim"
        );
        assert!(body(CLAIM_FUNCTION).contains("for update skip locked"));
    }

    /// A migrated store in a database of its own, and what drops that database.
    struct Scratch {
        store: PgStore,
        admin: sqlx::PgConnection,
        name: String,
    }

    impl Scratch {
        async fn new() -> Self {
            let url = std::env::var("SEEDCORE_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let options: PgConnectOptions = url.parse().expect("SEEDCORE_TEST_DATABASE_URL");
            let name = format!("seedcore_unit_{}", Uuid::new_v4().simple());
            let mut admin = options.connect().await.expect("the test PostgreSQL");
            // The name is ours (a UUID's hex digits); database names cannot be bind parameters.
            sqlx::raw_sql(AssertSqlSafe(format!("create database {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let store =
                PgStore::connect(options.clone().database(&name), 2, Duration::from_secs(10))
                    .await
                    .unwrap();
            store.migrate().await.unwrap();
            Scratch { store, admin, name }
        }

        async fn drop(mut self) {
            self.store.pool().close().await;
            let name = &self.name;
            sqlx::raw_sql(AssertSqlSafe(format!("drop database {name} with (force)")))
                .execute(&mut self.admin)
                .await
                .unwrap();
            self.admin.close().await.ok();
        }
    }

    #[tokio::test]
    async fn the_database_holds_exactly_the_claim_function_beside_the_module() {
        let scratch = Scratch::new().await;
        let (installed, mut installed_settings): (String, Vec<String>) = sqlx::query_as(
            "select prosrc, proconfig from pg_proc where proname = 'seedcore_claim'",
        )
        .fetch_one(scratch.store.pool())
        .await
        .unwrap();
        scratch.drop().await;
        assert_eq!(installed, body(CLAIM_FUNCTION));
        installed_settings.sort();
        assert_eq!(installed_settings, settings(CLAIM_FUNCTION));
    }

    /// Up to `how_many` ready tasks claimed by worker `w`: their ids and lease tokens.
    async fn claim_on(conn: &mut sqlx::PgConnection, how_many: i64) -> Vec<(Uuid, Uuid)> {
        sqlx::query_as(
            "select id, lease_token
             from seedcore_claim('w', $1, 0, 'Infinity', 30, null, '{}', null)",
        )
        .bind(how_many)
        .fetch_all(conn)
        .await
        .unwrap()
    }

    /// Completes the given leases in one call; returns how many were recorded.
    async fn complete_on(conn: &mut sqlx::PgConnection, leases: &[(Uuid, Uuid)]) -> usize {
        let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) = leases.iter().copied().unzip();
        let recorded: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "select id, token from seedcore_finish($1, $2,
                 array_fill('completed'::text, array[$3]), array_fill('{}'::jsonb, array[$3]),
                 array_fill(null::text, array[$3]), array_fill(null::timestamptz, array[$3]))",
        )
        .bind(&ids)
        .bind(&tokens)
        .bind(ids.len() as i32)
        .fetch_all(conn)
        .await
        .unwrap();
        recorded.len()
    }

    /// Rows of `tasks` read by any scan and not yet reported to the statistics: within one
    /// transaction block nothing is reported, so a difference of two readings there counts
    /// what the statements between them read.
    async fn tasks_rows_read(conn: &mut sqlx::PgConnection) -> i64 {
        sqlx::query_scalar(
            "select seq_tup_read + coalesce(idx_tup_fetch, 0)
             from pg_stat_xact_user_tables where relname = 'tasks'",
        )
        .fetch_one(conn)
        .await
        .unwrap()
    }

    /// Rows of `tasks` read by a claim of 200 and by their completion, in one transaction.
    async fn rows_read_by_a_claim_and_its_completion(conn: &mut sqlx::PgConnection) -> [i64; 2] {
        sqlx::query("begin").execute(&mut *conn).await.unwrap();
        let before = tasks_rows_read(conn).await;
        let claimed = claim_on(conn, 200).await;
        let after_the_claim = tasks_rows_read(conn).await;
        let completed = complete_on(conn, &claimed).await;
        let after_both = tasks_rows_read(conn).await;
        sqlx::query("commit").execute(&mut *conn).await.unwrap();
        assert_eq!((claimed.len(), completed), (200, 200));
        [after_the_claim - before, after_both - after_the_claim]
    }

    /// The claim and the completion keep one plan per session, made at their first call. A
    /// plan made while `tasks` was empty must still find a batch by key once the table holds
    /// thousands of rows, and so must the plans made again once an analyze gave the table
    /// statistics: neither call reads the table whole (the plans_by_key migration).
    #[tokio::test]
    async fn a_claim_and_a_completion_planned_on_an_empty_table_read_only_their_batch_later() {
        let scratch = Scratch::new().await;
        let mut conn = scratch.store.pool().acquire().await.unwrap();
        // More calls than PostgreSQL's trial of custom plans before it settles on one.
        for _ in 0..8 {
            let none = claim_on(&mut conn, 200).await;
            complete_on(&mut conn, &none).await;
        }
        sqlx::query(
            "insert into tasks (id, type, status)
             select gen_random_uuid(), 'noop', 'queued' from generate_series(1, 20000)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        let planned_empty = rows_read_by_a_claim_and_its_completion(&mut conn).await;
        sqlx::query("analyze tasks")
            .execute(&mut *conn)
            .await
            .unwrap();
        let planned_analyzed = rows_read_by_a_claim_and_its_completion(&mut conn).await;
        drop(conn);
        scratch.drop().await;

        for [claim, completion] in [planned_empty, planned_analyzed] {
            assert!(claim < 1_000, "a claim of 200 read {claim} rows of 20,000");
            assert!(
                completion < 1_000,
                "a completion of 200 read {completion} rows of 20,000"
            );
        }
    }

    /// Settling dependents runs inside the completion, whose planner settings it would
    /// inherit; it resets them, for itself and for the update trigger its statement fires.
    #[tokio::test]
    async fn settling_dependents_plans_with_the_planners_usual_choices() {
        let scratch = Scratch::new().await;
        let settings: Vec<String> = sqlx::query_scalar(
            "select unnest(proconfig) from pg_proc where proname = 'seedcore_settle_dependents'",
        )
        .fetch_all(scratch.store.pool())
        .await
        .unwrap();
        scratch.drop().await;
        assert_eq!(
            settings,
            [
                "plan_cache_mode=auto",
                "enable_seqscan=on",
                "enable_hashjoin=on",
                "enable_mergejoin=on"
            ]
        );
    }

    /// The claim and the completion write their own trail and have the update trigger step
    /// aside meanwhile; a change made after either in the same transaction still gets its row.
    #[tokio::test]
    async fn a_change_after_a_claim_or_a_completion_in_its_transaction_keeps_its_event() {
        let scratch = Scratch::new().await;
        let pool = scratch.store.pool();
        let (first, second, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        sqlx::query(
            "insert into tasks (id, type, status, priority)
             values ($1, 'noop', 'queued', 3), ($2, 'noop', 'queued', 2),
                    ($3, 'noop', 'queued', 1)",
        )
        .bind(first)
        .bind(second)
        .bind(third)
        .execute(pool)
        .await
        .unwrap();
        let cancel = "update tasks set status = 'cancelled', finished_at = now() where id = $1";

        let mut tx = pool.begin().await.unwrap();
        let (claimed, token): (Uuid, Uuid) = sqlx::query_as(
            "select id, lease_token
             from seedcore_claim('w', 1, 0, 'Infinity', 30, null, '{}', null)",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query(cancel)
            .bind(second)
            .execute(&mut *tx)
            .await
            .unwrap();
        let recorded: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "select id, token from seedcore_finish(array[$1], array[$2], array['completed'],
                 array['{}'::jsonb], array[null::text], array[null::timestamptz])",
        )
        .bind(claimed)
        .bind(token)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        sqlx::query(cancel)
            .bind(third)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let trail: Vec<(Uuid, String)> = sqlx::query_as(
            "select task_id, kind from task_events where kind <> 'created' order by seq",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        scratch.drop().await;
        assert_eq!(claimed, first, "the highest priority is claimed");
        assert_eq!(recorded, vec![(first, token)]);
        let expected = [
            (first, "claimed"),
            (second, "cancelled"),
            (first, "completed"),
            (third, "cancelled"),
        ];
        let expected: Vec<(Uuid, String)> = expected
            .into_iter()
            .map(|(id, kind)| (id, kind.to_string()))
            .collect();
        assert_eq!(trail, expected);
    }
}
