//! Single-task creates, single-fact creates and task reads by id, written as batches (see
//! [`crate::store::coalesce`]).
//!
//! Concurrent `POST /api/v1/tasks` share one insert statement: one commit and one firing of
//! the statement triggers (events, counters) for the lot, instead of one each; so do
//! concurrent `POST /api/v1/facts` and the facts tasks store. Concurrent
//! `GET /api/v1/tasks/{id}` share one `= any($1)` select. The statements have one text for
//! every batch size (arrays, not a row of placeholders per row), so each connection prepares
//! them once.
//!
//! Invariants: a caller gets exactly what it would have got alone. A task whose idempotency key
//! is in use gets `None` (its caller reads the holder), also when the holder is in the same
//! batch; a batch the database refuses is written again one task at a time, so one bad row
//! fails only its own create.

use std::{collections::HashMap, future::Future};

use futures::future::join_all;
use sqlx::{PgPool, types::Json};
use uuid::Uuid;

use super::{FactRow, TaskRow, held::HeldConnection};
use crate::model::{NewFact, NewTask, TaskStatus};
use crate::store::{StartSlot, StoreError, StoreResult};

/// Most tasks one batched statement writes or reads.
pub(super) const MAX_BATCH: usize = 128;
/// Batches written at once per process (a second one gathers while the first commits).
pub(super) const IN_FLIGHT: usize = 2;

/// A create without parents, with the status it starts in.
pub(super) struct Create {
    pub task: NewTask,
    pub status: TaskStatus,
    pub error: Option<String>,
    /// A worker of this process holds a slot for the task: written as claimed by it when the
    /// task is ready at once (see [`INSERT_STARTED`]), and then started in that slot.
    pub slot: Option<StartSlot>,
}

/// The columns a create writes, in the order of both inserts' select lists.
macro_rules! created_columns {
    () => {
        "id, type, description, params, domain, drift_score, status, error, max_attempts, \
         timeout_seconds, attached_fact_ids, queue, priority, idempotency_key, actor, \
         traceparent, finished_at, run_at"
    };
}

/// The batch as rows `b`, one per create, from the bound arrays `$1`–`$18` and then the extra
/// arrays given (`"$19::text[]" as "worker"`): the one place both inserts name their inputs.
macro_rules! batch_rows {
    ($($array:literal as $name:literal),*) => {
        concat!(
            "unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::float8[], \
             $7::text[], $8::text[], $9::int4[], $10::float8[], $11::text[], $12::text[], \
             $13::int4[], $14::text[], $15::bool[], $16::timestamptz[], $17::text[], $18::text[]",
            $(", ", $array,)*
            ") as b(id, type, description, params, domain, drift_score, status, error, \
             max_attempts, timeout_seconds, attached, queue, priority, idempotency_key, finished, \
             run_at, actor, traceparent",
            $(", ", $name,)*
            ")"
        )
    };
}

const INSERT: &str = concat!(
    "insert into tasks (",
    created_columns!(),
    ")
select id, type, description, params, domain, drift_score, status, error,
       max_attempts, timeout_seconds, attached::uuid[], queue, priority,
       idempotency_key, actor, traceparent, case when finished then now() end,
       coalesce(run_at, now())
from ",
    batch_rows!(),
    "
on conflict (idempotency_key) where idempotency_key is not null do nothing
returning *"
);

/// [`INSERT`] for a batch in which some creates hold a slot of a worker of this process: a
/// create that is ready at once (queued, due, its queue neither paused nor limited) and that
/// no ready task of its queue would precede in a claim (none of the same or a higher
/// priority) is written `running`, claimed by that worker, with a new lease, as
/// `seedcore_claim` would claim it.
///
/// The statement writes the whole batch's trail and counter deltas itself, as the insert
/// trigger would plus the claim: a `created` event of each task (to `queued` for one started
/// here, with its creator as actor), then a `claimed` event of each started task, and one
/// delta per queue and status. It sets `seedcore.trail` (transaction-local: the statement is
/// its own transaction) before the first row, so the insert trigger steps aside.
const INSERT_STARTED: &str = concat!(
    r"
with mark as materialized (
    select set_config('seedcore.trail', 'written', true)
),
b as (
    select b.*,
           b.worker is not null and b.status = 'queued'
           and (b.run_at is null or b.run_at <= now())
           and not exists (select 1 from queues q
                           where q.name = b.queue and (q.paused or q.concurrency is not null))
           and not exists (select 1 from tasks r
                           where r.queue = b.queue and r.status in ('queued', 'retry')
                             and r.run_at <= now() and r.priority >= b.priority)
               as started
    from mark,
         ",
    batch_rows!("$19::text[]" as "worker", "$20::float8[]" as "lease_seconds"),
    r"
),
created as (
    insert into tasks (",
    created_columns!(),
    r", attempts, worker_id, lease_token,
                       lease_expires_at, started_at)
    select id, type, description, params, domain, drift_score,
           case when started then 'running' else status end, error,
           max_attempts, timeout_seconds, attached::uuid[], queue, priority,
           idempotency_key, case when started then null else actor end, traceparent,
           case when finished then now() end, coalesce(run_at, now()),
           case when started then 1 else 0 end,
           case when started then worker end,
           case when started then gen_random_uuid() end,
           case when started then now() + make_interval(secs => lease_seconds) end,
           case when started then now() end
    from b
    on conflict (idempotency_key) where idempotency_key is not null do nothing
    returning *
),
events as (
    insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id, actor)
    select e.task_id, e.kind, e.from_status, e.to_status, e.attempt, e.worker_id, e.actor
    from (
        select c.id as task_id, 1 as step, 'created' as kind, null::text as from_status,
               case when c.status = 'running' then 'queued' else c.status end as to_status,
               0 as attempt, null::text as worker_id, b.actor
        from created c join b on b.id = c.id
        union all
        select c.id, 2, 'claimed', 'queued', 'running', c.attempts, c.worker_id,
               'worker:' || c.worker_id
        from created c
        where c.status = 'running'
    ) e
    order by e.step, e.task_id
),
deltas as (
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, count(*) from created group by queue, status
)
select * from created"
);

/// Inserts the creates in one statement; per create its row, or None when its key is in use.
/// A create written claimed starts in its slot here, in the batch's own task rather than the
/// caller's: a request dropped before its answer must not leave a claimed task unstarted (its
/// lease would expire and cost it an attempt).
pub(super) async fn insert(
    pool: &PgPool,
    creates: Vec<Create>,
) -> Vec<StoreResult<Option<TaskRow>>> {
    let written = write_each(
        &creates,
        |c| c.task.id,
        |r: &TaskRow| r.id,
        |batch| insert_all(pool, batch),
    )
    .await;
    for (create, row) in creates.into_iter().zip(&written) {
        if let (Some(slot), Ok(Some(row))) = (create.slot, row) {
            start_claimed(slot, row);
        }
    }
    written
}

/// Runs `row` in `slot` when the statement wrote it claimed; otherwise the slot is freed.
fn start_claimed(slot: StartSlot, row: &TaskRow) {
    if row.status != TaskStatus::Running.as_str() {
        return;
    }
    match row.clone().into_claimed() {
        Ok(claimed) => slot.start(claimed),
        // Unreadable, it cannot run here; its lease expires and the rescue takes it back.
        Err(err) => {
            tracing::error!(task_id = %row.id, error = %err, "cannot start a task written claimed")
        }
    }
}

/// Writes `items` with one call of `write` and gives each item the row carrying its id (None
/// when the statement skipped it). A batch the database refuses for another reason than being
/// unavailable is written again one item at a time, so a bad item fails alone.
async fn write_each<'a, I, R, Fut>(
    items: &'a [I],
    id_of: impl Fn(&I) -> Uuid,
    row_id: impl Fn(&R) -> Uuid,
    write: impl Fn(&'a [I]) -> Fut,
) -> Vec<StoreResult<Option<R>>>
where
    R: Clone,
    Fut: Future<Output = StoreResult<Vec<R>>>,
{
    let ids: Vec<Uuid> = items.iter().map(id_of).collect();
    match write(items).await {
        Ok(rows) => by_id(&ids, rows, row_id).into_iter().map(Ok).collect(),
        Err(err) if items.len() > 1 && !matches!(err, StoreError::Unavailable(_)) => {
            join_all(
                items
                    .chunks(1)
                    .map(|one| async { Ok(write(one).await?.pop()) }),
            )
            .await
        }
        Err(err) => repeated(err, items.len()),
    }
}

async fn insert_all(pool: &PgPool, creates: &[Create]) -> StoreResult<Vec<TaskRow>> {
    let starts_some = creates.iter().any(|c| c.slot.is_some());
    let statement = if starts_some { INSERT_STARTED } else { INSERT };
    let mut insert = sqlx::query_as(statement)
        .bind(column(creates, |c| c.task.id))
        .bind(column(creates, |c| c.task.task_type.as_str()))
        .bind(column(creates, |c| c.task.description.as_str()))
        .bind(column(creates, |c| Json(&c.task.params)))
        .bind(column(creates, |c| c.task.domain.as_deref()))
        .bind(column(creates, |c| c.task.drift_score))
        .bind(column(creates, |c| c.status.as_str()))
        .bind(column(creates, |c| c.error.as_deref()))
        .bind(column(creates, |c| c.task.max_attempts))
        .bind(column(creates, |c| c.task.timeout_seconds))
        .bind(column(creates, |c| uuid_array(&c.task.attached_fact_ids)))
        .bind(column(creates, |c| c.task.queue.as_str()))
        .bind(column(creates, |c| c.task.priority))
        .bind(column(creates, |c| c.task.idempotency_key.as_deref()))
        .bind(column(creates, |c| c.status.is_final()))
        .bind(column(creates, |c| c.task.run_at))
        .bind(column(creates, |c| {
            c.task.actor.as_ref().map(|a| a.as_str())
        }))
        .bind(column(creates, |c| c.task.traceparent.as_deref()));
    if starts_some {
        insert = insert
            .bind(column(creates, |c| {
                c.slot.as_ref().map(|s| s.worker_id.as_str())
            }))
            .bind(column(creates, |c| {
                c.slot.as_ref().map(|s| s.lease.as_secs_f64())
            }));
    }
    Ok(insert.fetch_all(pool).await?)
}

/// One bound array: a field of every row.
fn column<'a, R, T>(rows: &'a [R], field: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

const INSERT_FACTS: &str = r"
insert into facts (id, text, tags, meta_data)
select b.id, b.text,
       array(select t from jsonb_array_elements_text(b.tags) with ordinality e(t, n) order by n),
       b.meta
from unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[]) as b(id, text, tags, meta)
returning id, text, tags, meta_data, created_at, updated_at";

/// Inserts the facts in one statement; per fact its row. Tags travel as JSON arrays, since
/// arrays of arrays cannot be bound row by row.
pub(super) async fn insert_facts(pool: &PgPool, facts: Vec<NewFact>) -> Vec<StoreResult<FactRow>> {
    let facts: Vec<(Uuid, NewFact)> = facts.into_iter().map(|f| (Uuid::new_v4(), f)).collect();
    let written = write_each(
        &facts,
        |(id, _)| *id,
        |r: &FactRow| r.id,
        |batch| insert_facts_with_ids(pool, batch),
    )
    .await;
    // An insert without a conflict clause returns every row it was given.
    written
        .into_iter()
        .map(|row| row?.ok_or(StoreError::NotFound))
        .collect()
}

async fn insert_facts_with_ids(
    pool: &PgPool,
    facts: &[(Uuid, NewFact)],
) -> StoreResult<Vec<FactRow>> {
    Ok(sqlx::query_as(INSERT_FACTS)
        .bind(column(facts, |(id, _)| *id))
        .bind(column(facts, |(_, f)| f.text.as_str()))
        .bind(column(facts, |(_, f)| Json(&f.tags)))
        .bind(column(facts, |(_, f)| Json(&f.meta_data)))
        .fetch_all(pool)
        .await?)
}

/// Reads the tasks in one statement on the slot's connection; per id its row, or None.
pub(super) async fn get(
    pool: PgPool,
    mut held: HeldConnection,
    ids: Vec<Uuid>,
) -> (HeldConnection, Vec<StoreResult<Option<TaskRow>>>) {
    let found = match held.connection(&pool).await {
        Ok(conn) => {
            sqlx::query_as("select * from all_tasks where id = any($1)")
                .bind(&ids)
                .fetch_all(conn)
                .await
        }
        Err(err) => Err(err),
    };
    held.keep_if(&found);
    let answers = match found {
        Ok(rows) => by_id(&ids, rows, |r: &TaskRow| r.id)
            .into_iter()
            .map(Ok)
            .collect(),
        Err(err) => repeated(err.into(), ids.len()),
    };
    (held, answers)
}

/// The rows in the order of `ids` (an id asked for twice gets its row twice).
fn by_id<R: Clone>(ids: &[Uuid], rows: Vec<R>, row_id: impl Fn(&R) -> Uuid) -> Vec<Option<R>> {
    let mut wanted: HashMap<Uuid, usize> = HashMap::with_capacity(ids.len());
    for id in ids {
        *wanted.entry(*id).or_default() += 1;
    }
    let mut rows: HashMap<Uuid, R> = rows.into_iter().map(|r| (row_id(&r), r)).collect();
    ids.iter()
        .map(|id| {
            let left = wanted.get_mut(id).expect("counted above");
            *left -= 1;
            match left {
                0 => rows.remove(id),
                _ => rows.get(id).cloned(),
            }
        })
        .collect()
}

/// A failed batch's error for each of its `n` callers: the first gets it, the others the
/// same kind of error with its text.
fn repeated<T>(err: StoreError, n: usize) -> Vec<StoreResult<T>> {
    let message = err.to_string();
    let unavailable = matches!(err, StoreError::Unavailable(_));
    let mut first = Some(err);
    (0..n)
        .map(|_| {
            Err(first.take().unwrap_or_else(|| {
                let err = sqlx::Error::Protocol(message.clone());
                match unavailable {
                    true => StoreError::Unavailable(err),
                    false => StoreError::Database(err),
                }
            }))
        })
        .collect()
}

/// A `uuid[]` literal, since arrays of arrays cannot be bound row by row.
fn uuid_array(ids: &[Uuid]) -> String {
    let items: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    format!("{{{}}}", items.join(","))
}
