//! Cron schedules on SQLite.
//!
//! One process writes through one connection, so a firing needs no row locks: it reads the due
//! schedules, inserts the tasks of their fires (`on conflict (idempotency_key) do nothing`) and
//! advances `next_fire_at` in one `begin immediate` transaction, which also keeps a second
//! process on the same file from firing the same schedule. A PATCH reads and writes its row in
//! such a transaction too. Times come from this process's clock, as everywhere in this store.
//!
//! Each task inserted gets its row in `schedule_fires` in the same transaction, which then
//! prunes the touched schedules' history to the newest [`FIRE_HISTORY`]. A manual trigger
//! reads its schedule, inserts one task and its history row in one `begin immediate`
//! transaction, and leaves the schedule row as it is. SQLite keeps every task in `tasks`.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqliteConnection, query::QueryAs, sqlite::SqliteArguments};
use uuid::Uuid;

use super::{
    ScheduleRow, SqliteStore, TaskRow,
    rows::{Lite, json_text, parse_id, parse_time_opt, stamp},
    tasks::{self, KEEP_FIRST},
};
use crate::{
    model::{Actor, NewSchedule, NewTask, Schedule, SchedulePatch, Task, TaskStatus},
    store::{
        Page, Signal, StoreError, StoreResult,
        rows::schedules,
        schedules::{
            BatchPlan, FIRE_HISTORY, FireRecord, FireRow, Firing, ScheduleFire, fires, invalid,
            manual_fire, name_taken, plan_batch, task_for_key, touched,
        },
    },
};

pub(super) async fn create(store: &SqliteStore, new: NewSchedule) -> StoreResult<Schedule> {
    let schedule = new
        .into_schedule(Uuid::new_v4(), Utc::now())
        .map_err(invalid)?;
    // Read to the end, so a commit that fails is seen (see the module docs of the store).
    let row: Option<ScheduleRow> = definition(INSERT, &schedule, schedule.created_at)?
        .fetch_all(&store.writer)
        .await
        .map_err(name_taken(&schedule.name))?
        .pop();
    row.ok_or(StoreError::Database(sqlx::Error::RowNotFound))?
        .into_schedule()
}

pub(super) async fn get(store: &SqliteStore, id: Uuid) -> StoreResult<Schedule> {
    let row: Option<ScheduleRow> = sqlx::query_as("select * from schedules where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&store.reader)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_schedule()
}

pub(super) async fn list(
    store: &SqliteStore,
    limit: i64,
    offset: i64,
) -> StoreResult<Page<Schedule>> {
    let total: i64 = sqlx::query_scalar("select count(*) from schedules")
        .fetch_one(&store.reader)
        .await?;
    let rows: Vec<ScheduleRow> =
        sqlx::query_as("select * from schedules order by name, id limit ?1 offset ?2")
            .bind(limit)
            .bind(offset)
            .fetch_all(&store.reader)
            .await?;
    Ok(Page {
        total,
        items: schedules(rows)?,
    })
}

pub(super) async fn update(
    store: &SqliteStore,
    id: Uuid,
    patch: SchedulePatch,
) -> StoreResult<Schedule> {
    if patch.is_empty() {
        return get(store, id).await;
    }
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let row: Option<ScheduleRow> = sqlx::query_as("select * from schedules where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let mut schedule = row.ok_or(StoreError::NotFound)?.into_schedule()?;
    schedule.apply(patch, Utc::now()).map_err(invalid)?;
    let row: ScheduleRow = definition(UPDATE, &schedule, schedule.updated_at)?
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
    values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)
    returning *";

/// Writes everything a PATCH may change (not what firing records); see [`definition`].
const UPDATE: &str = r"update schedules
    set name = ?2, cron = ?3, timezone = ?4, task_type = ?5, params = ?6, description = ?7,
        domain = ?8, queue = ?9, priority = ?10, max_attempts = ?11, timeout_seconds = ?12,
        drift_score = ?13, enabled = ?14, misfire_policy = ?15, next_fire_at = ?16,
        updated_at = ?17
    where id = ?1
    returning *";

/// `sql` with a schedule bound as ?1 (its id), ?2..?16 (its definition and next fire time)
/// and ?17 (`at`: its creation or update time).
fn definition<'q>(
    sql: &'static str,
    schedule: &'q Schedule,
    at: DateTime<Utc>,
) -> StoreResult<QueryAs<'q, Sqlite, ScheduleRow, SqliteArguments>> {
    let query = sqlx::query_as(sql)
        .bind(schedule.id.to_string())
        .bind(&schedule.name)
        .bind(&schedule.cron)
        .bind(&schedule.timezone)
        .bind(&schedule.task.task_type)
        .bind(json_text(&schedule.task.params)?)
        .bind(&schedule.task.description)
        .bind(&schedule.task.domain)
        .bind(&schedule.task.queue)
        .bind(schedule.task.priority)
        .bind(schedule.task.max_attempts)
        .bind(schedule.task.timeout_seconds)
        .bind(schedule.task.drift_score)
        .bind(schedule.enabled)
        .bind(schedule.misfire_policy.as_str())
        .bind(schedule.next_fire_at.map(stamp))
        .bind(stamp(at));
    Ok(query)
}

pub(super) async fn delete(store: &SqliteStore, id: Uuid) -> StoreResult<()> {
    store
        .delete_by_id("delete from schedules where id = ?1", id)
        .await
}

pub(super) async fn fire_due(store: &SqliteStore, limit: i64) -> StoreResult<Firing> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let now = Utc::now();
    let rows: Vec<ScheduleRow> = sqlx::query_as(
        r"select * from schedules
          where enabled and next_fire_at <= ?1
          order by next_fire_at
          limit ?2",
    )
    .bind(stamp(now))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let due = schedules(rows)?;
    let batch = plan_batch(&due, now);
    let tasks = insert_fires(&mut tx, &batch).await?;
    record(&mut tx, &batch.recorded(&tasks)).await?;
    advance(&mut tx, &batch).await?;
    let next_due: Option<String> =
        sqlx::query_scalar("select min(next_fire_at) from schedules where enabled")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    if !tasks.is_empty() {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(Firing {
        now,
        schedules: due.len(),
        tasks,
        missed: batch.missed,
        next_due: parse_time_opt(next_due)?,
    })
}

/// Inserts the planned tasks; a fire key already in use creates nothing.
async fn insert_fires(conn: &mut SqliteConnection, batch: &BatchPlan) -> StoreResult<Vec<Task>> {
    let rows = tasks::columns_of(conn, batch.tasks.clone()).await?;
    let now = stamp(Utc::now());
    let mut created = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(tasks::CHUNK) {
        let mut insert = tasks::insert(chunk, &now);
        insert.push(KEEP_FIRST);
        let inserted: Vec<TaskRow> = insert.build_query_as().fetch_all(&mut *conn).await?;
        created.extend(crate::store::rows::tasks(inserted)?);
    }
    Ok(created)
}

/// Moves each planned schedule to its next fire and records its latest fire and task.
async fn advance(conn: &mut SqliteConnection, batch: &BatchPlan) -> StoreResult<()> {
    if batch.advances.is_empty() {
        return Ok(());
    }
    let found: Vec<(String, String)> = sqlx::query_as(
        r"select id, idempotency_key from tasks
          where idempotency_key in (select value from json_each(?1))",
    )
    .bind(json_text(&batch.last_keys())?)
    .fetch_all(&mut *conn)
    .await?;
    let found = found
        .into_iter()
        .map(|(id, key)| Ok((parse_id(&id)?, key)))
        .collect::<StoreResult<Vec<_>>>()?;
    for step in &batch.advances {
        sqlx::query(
            r"update schedules
              set next_fire_at = ?2,
                  last_fire_at = coalesce(?3, last_fire_at),
                  last_task_id = coalesce(?4, last_task_id)
              where id = ?1",
        )
        .bind(step.id.to_string())
        .bind(step.next_fire_at.map(stamp))
        .bind(step.last_fire_at.map(stamp))
        .bind(task_for_key(&found, step.last_key.as_ref()).map(|id| id.to_string()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Creates the schedule's task now and records it as a manual fire; see the module docs.
pub(super) async fn trigger(store: &SqliteStore, id: Uuid, actor: Actor) -> StoreResult<Task> {
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let row: Option<ScheduleRow> = sqlx::query_as("select * from schedules where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
    let schedule = row.ok_or(StoreError::NotFound)?.into_schedule()?;
    let (task, fire) = manual_fire(&schedule, actor, Utc::now());
    let task = insert_one(&mut tx, task).await?;
    record(&mut tx, &[fire]).await?;
    tx.commit().await?;
    if task.status == TaskStatus::Queued {
        store.watchers.send(Signal::TasksReady);
    }
    Ok(task)
}

async fn insert_one(conn: &mut SqliteConnection, task: NewTask) -> StoreResult<Task> {
    let rows = tasks::columns_of(conn, vec![task]).await?;
    let mut insert = tasks::insert(&rows, &stamp(Utc::now()));
    insert.push(" returning *");
    let row: TaskRow = insert.build_query_as().fetch_one(&mut *conn).await?;
    row.into_task()
}

/// Writes the history rows of tasks inserted in this transaction, then keeps only the newest
/// [`FIRE_HISTORY`] of each schedule they belong to (a bounded scan: the index holds those
/// schedules' rows in order, and there are never many more than the limit).
async fn record(conn: &mut SqliteConnection, records: &[FireRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = records
        .iter()
        .map(|r| (r.schedule_id, stamp(r.fired_at), r.task_id, r.manual))
        .collect();
    sqlx::query(
        r"insert into schedule_fires (schedule_id, fired_at, task_id, manual, at)
          select value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?2
          from json_each(?1)",
    )
    .bind(json_text(&rows)?)
    .bind(stamp(Utc::now()))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        r"delete from schedule_fires
          where seq in (
              select seq from (
                  select seq, row_number() over (
                      partition by schedule_id order by fired_at desc, seq desc) as n
                  from schedule_fires
                  where schedule_id in (select value from json_each(?1))
              )
              where n > ?2)",
    )
    .bind(json_text(&touched(records))?)
    .bind(FIRE_HISTORY)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest `limit` fires of the schedule, each with its task as it is now; NotFound when
/// there is no such schedule.
pub(super) async fn list_fires(
    store: &SqliteStore,
    id: Uuid,
    limit: i64,
) -> StoreResult<Vec<ScheduleFire>> {
    let known: Option<i64> = sqlx::query_scalar("select 1 from schedules where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&store.reader)
        .await?;
    known.ok_or(StoreError::NotFound)?;
    let rows: Vec<FireRow<Lite>> = sqlx::query_as(
        r"select f.fired_at, f.manual, f.task_id, t.id, t.status, t.created_at, t.finished_at
          from schedule_fires f
          left join tasks t on t.id = f.task_id
          where f.schedule_id = ?1
          order by f.fired_at desc, f.seq desc
          limit ?2",
    )
    .bind(id.to_string())
    .bind(limit)
    .fetch_all(&store.reader)
    .await?;
    fires(rows)
}
