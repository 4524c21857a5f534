//! Cron schedules on PostgreSQL.
//!
//! A firing locks the due rows with `for update skip locked`, so processes never plan the same
//! schedule at once and none waits for another; it plans with the database's clock, inserts the
//! tasks with `on conflict (idempotency_key) do nothing`, and advances `next_fire_at`, all in
//! one transaction. A PATCH locks its row too (`for update`), so it never interleaves with a
//! firing of the same schedule.
//!
//! Each task inserted gets its row in `schedule_fires` in the same transaction, which then
//! prunes the touched schedules' history to the newest [`FIRE_HISTORY`]. A manual trigger
//! holds its schedule `for share` (a delete waits, a firing of another schedule does not),
//! inserts one task and its history row, and leaves the schedule row as it is.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::QueryAs, types::Json};
use uuid::Uuid;

use super::{
    IMPORT_CHUNK, PgStore, ScheduleRow, TaskRow,
    rows::Pg,
    tasks::{KEEP_FIRST, insert_tasks},
};
use crate::{
    model::{Actor, NewSchedule, NewTask, Schedule, SchedulePatch, Task, TaskStatus},
    store::{
        Page, StoreError, StoreResult,
        parents::starts,
        rows::{schedules, tasks},
        schedules::{
            BatchPlan, FIRE_HISTORY, FireRecord, FireRow, Firing, ScheduleFire, fires, invalid,
            manual_fire, name_taken, plan_batch, task_for_key, touched,
        },
    },
};

pub(super) async fn create(store: &PgStore, new: NewSchedule) -> StoreResult<Schedule> {
    let schedule = new
        .into_schedule(Uuid::new_v4(), Utc::now())
        .map_err(invalid)?;
    let row: ScheduleRow = definition(INSERT, &schedule, schedule.created_at)
        .fetch_one(&store.pool)
        .await
        .map_err(name_taken(&schedule.name))?;
    row.into_schedule()
}

pub(super) async fn get(store: &PgStore, id: Uuid) -> StoreResult<Schedule> {
    let row: Option<ScheduleRow> = sqlx::query_as("select * from schedules where id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_schedule()
}

pub(super) async fn list(store: &PgStore, limit: i64, offset: i64) -> StoreResult<Page<Schedule>> {
    let total: i64 = sqlx::query_scalar("select count(*) from schedules")
        .fetch_one(&store.pool)
        .await?;
    let rows: Vec<ScheduleRow> =
        sqlx::query_as("select * from schedules order by name, id limit $1 offset $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(&store.pool)
            .await?;
    Ok(Page {
        total,
        items: schedules(rows)?,
    })
}

pub(super) async fn update(
    store: &PgStore,
    id: Uuid,
    patch: SchedulePatch,
) -> StoreResult<Schedule> {
    if patch.is_empty() {
        return get(store, id).await;
    }
    let mut tx = store.pool.begin().await?;
    let row: Option<ScheduleRow> =
        sqlx::query_as("select * from schedules where id = $1 for update")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let mut schedule = row.ok_or(StoreError::NotFound)?.into_schedule()?;
    schedule.apply(patch, Utc::now()).map_err(invalid)?;
    let row: ScheduleRow = definition(UPDATE, &schedule, schedule.updated_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(name_taken(&schedule.name))?;
    tx.commit().await?;
    row.into_schedule()
}

/// Inserts a new schedule; see [`definition`] for the parameters.
const INSERT: &str = r"insert into schedules (id, name, cron, timezone, task_type, params,
                                  description, domain, queue, priority, max_attempts,
                                  timeout_seconds, drift_score, enabled, misfire_policy,
                                  next_fire_at, created_at, updated_at)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
    returning *";

/// Writes everything a PATCH may change (not what firing records); see [`definition`].
const UPDATE: &str = r"update schedules
    set name = $2, cron = $3, timezone = $4, task_type = $5, params = $6, description = $7,
        domain = $8, queue = $9, priority = $10, max_attempts = $11, timeout_seconds = $12,
        drift_score = $13, enabled = $14, misfire_policy = $15, next_fire_at = $16,
        updated_at = $17
    where id = $1
    returning *";

/// `sql` with a schedule bound as $1 (its id), $2..$16 (its definition and next fire time)
/// and $17 (`at`: its creation or update time).
fn definition<'q>(
    sql: &'static str,
    schedule: &'q Schedule,
    at: DateTime<Utc>,
) -> QueryAs<'q, Postgres, ScheduleRow, PgArguments> {
    sqlx::query_as(sql)
        .bind(schedule.id)
        .bind(&schedule.name)
        .bind(&schedule.cron)
        .bind(&schedule.timezone)
        .bind(&schedule.task.task_type)
        .bind(Json(&schedule.task.params))
        .bind(&schedule.task.description)
        .bind(&schedule.task.domain)
        .bind(&schedule.task.queue)
        .bind(schedule.task.priority)
        .bind(schedule.task.max_attempts)
        .bind(schedule.task.timeout_seconds)
        .bind(schedule.task.drift_score)
        .bind(schedule.enabled)
        .bind(schedule.misfire_policy.as_str())
        .bind(schedule.next_fire_at)
        .bind(at)
}

pub(super) async fn delete(store: &PgStore, id: Uuid) -> StoreResult<()> {
    store
        .delete_by_id("delete from schedules where id = $1", id)
        .await
}

pub(super) async fn fire_due(store: &PgStore, limit: i64) -> StoreResult<Firing> {
    let mut tx = store.pool.begin().await?;
    let now: DateTime<Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<ScheduleRow> = sqlx::query_as(
        r"select * from schedules
          where enabled and next_fire_at <= $1
          order by next_fire_at
          limit $2
          for update skip locked",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let due = schedules(rows)?;
    let batch = plan_batch(&due, now);
    let tasks = insert_fires(&mut tx, &batch).await?;
    record(&mut tx, &batch.recorded(&tasks)).await?;
    advance(&mut tx, &batch).await?;
    let next_due: Option<DateTime<Utc>> =
        sqlx::query_scalar("select min(next_fire_at) from schedules where enabled")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    if tasks.iter().any(|t| t.status == TaskStatus::Queued) {
        store.announce();
    }
    Ok(Firing {
        now,
        schedules: due.len(),
        tasks,
        missed: batch.missed,
        next_due,
    })
}

/// Inserts the planned tasks; a fire key already in use creates nothing.
async fn insert_fires(conn: &mut PgConnection, batch: &BatchPlan) -> StoreResult<Vec<Task>> {
    let mut created = Vec::with_capacity(batch.tasks.len());
    for chunk in batch.tasks.chunks(IMPORT_CHUNK) {
        let starts = starts(chunk, &Default::default())?;
        let mut insert = insert_tasks(chunk.iter().zip(&starts));
        insert.push(KEEP_FIRST);
        let rows: Vec<TaskRow> = insert.build_query_as().fetch_all(&mut *conn).await?;
        created.extend(tasks(rows)?);
    }
    Ok(created)
}

/// Moves each planned schedule to its next fire and records its latest fire and task.
async fn advance(conn: &mut PgConnection, batch: &BatchPlan) -> StoreResult<()> {
    if batch.advances.is_empty() {
        return Ok(());
    }
    let found: Vec<(Uuid, String)> =
        sqlx::query_as("select id, idempotency_key from all_tasks where idempotency_key = any($1)")
            .bind(batch.last_keys())
            .fetch_all(&mut *conn)
            .await?;
    for step in &batch.advances {
        sqlx::query(
            r"update schedules
              set next_fire_at = $2,
                  last_fire_at = coalesce($3, last_fire_at),
                  last_task_id = coalesce($4, last_task_id)
              where id = $1",
        )
        .bind(step.id)
        .bind(step.next_fire_at)
        .bind(step.last_fire_at)
        .bind(task_for_key(&found, step.last_key.as_ref()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Creates the schedule's task now and records it as a manual fire; see the module docs.
pub(super) async fn trigger(store: &PgStore, id: Uuid, actor: Actor) -> StoreResult<Task> {
    let mut tx = store.pool.begin().await?;
    let row: Option<ScheduleRow> =
        sqlx::query_as("select * from schedules where id = $1 for share")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    // The database's clock, as a firing uses: fire times of one schedule compare across hosts.
    let now: DateTime<Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&mut *tx)
        .await?;
    let schedule = row.ok_or(StoreError::NotFound)?.into_schedule()?;
    let (task, fire) = manual_fire(&schedule, actor, now);
    let task = insert_one(&mut tx, &task).await?;
    record(&mut tx, &[fire]).await?;
    tx.commit().await?;
    if task.status == TaskStatus::Queued {
        store.announce();
    }
    Ok(task)
}

async fn insert_one(conn: &mut PgConnection, task: &NewTask) -> StoreResult<Task> {
    let tasks = std::slice::from_ref(task);
    let starts = starts(tasks, &Default::default())?;
    let mut insert = insert_tasks(tasks.iter().zip(&starts));
    insert.push(" returning *");
    let row: TaskRow = insert.build_query_as().fetch_one(&mut *conn).await?;
    row.into_task()
}

/// Writes the history rows of tasks inserted in this transaction, then keeps only the newest
/// [`FIRE_HISTORY`] of each schedule they belong to (a bounded scan: the index holds those
/// schedules' rows in order, and there are never many more than the limit).
async fn record(conn: &mut PgConnection, records: &[FireRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    sqlx::query(
        r"insert into schedule_fires (schedule_id, fired_at, task_id, manual)
          select * from unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::boolean[])",
    )
    .bind(records.iter().map(|r| r.schedule_id).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.fired_at).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.task_id).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.manual).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        r"delete from schedule_fires
          where seq in (
              select seq from (
                  select seq, row_number() over (
                      partition by schedule_id order by fired_at desc, seq desc) as n
                  from schedule_fires
                  where schedule_id = any($1)
              ) ranked
              where n > $2)",
    )
    .bind(touched(records))
    .bind(FIRE_HISTORY)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest `limit` fires of the schedule, each with its task as it is now (hot or moved to
/// the history); NotFound when there is no such schedule.
pub(super) async fn list_fires(
    store: &PgStore,
    id: Uuid,
    limit: i64,
) -> StoreResult<Vec<ScheduleFire>> {
    let known: Option<bool> = sqlx::query_scalar("select true from schedules where id = $1")
        .bind(id)
        .fetch_optional(&store.pool)
        .await?;
    known.ok_or(StoreError::NotFound)?;
    let rows: Vec<FireRow<Pg>> = sqlx::query_as(
        r"select f.fired_at, f.manual, f.task_id, t.id, t.status, t.created_at, t.finished_at
          from schedule_fires f
          left join all_tasks t on t.id = f.task_id
          where f.schedule_id = $1
          order by f.fired_at desc, f.seq desc
          limit $2",
    )
    .bind(id)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    fires(rows)
}
