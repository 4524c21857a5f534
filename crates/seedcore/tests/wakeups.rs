//! Wake-ups on PostgreSQL: a store tells its own process's workers of new tasks at once, other
//! processes through NOTIFY, and does not wake its own workers again when its NOTIFY comes back.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::*;
use seedcore::{
    model::NewTask,
    store::{PgStore, Signal, SignalSink, Store},
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Counts the `TasksReady` signals `store` delivers.
fn count_wakeups(store: &PgStore, stop: &CancellationToken) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let sink: SignalSink = Arc::new(move |signal| {
        if signal == Signal::TasksReady {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    store.watch(sink, stop.clone());
    count
}

/// Waits until `n` sessions of this database listen for notifications (idle after a LISTEN,
/// which has taken effect once its transaction ended).
async fn until_listening(pool: &PgPool, n: i64) {
    for _ in 0..100 {
        let listening: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query ilike 'listen%' and state = 'idle'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if listening >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} listeners never appeared");
}

async fn until(count: &AtomicUsize, at_least: usize) {
    for _ in 0..100 {
        if count.load(Ordering::SeqCst) >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never woken {at_least} times");
}

/// Two stores on one database, as two processes would have, each counting its wake-ups.
struct TwoProcesses {
    /// Kept for the test's length: the database is dropped with it.
    _db: TestDb,
    here: PgStore,
    woken_here: Arc<AtomicUsize>,
    woken_there: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl TwoProcesses {
    async fn listening() -> TwoProcesses {
        let db = TestDb::postgres().await;
        let (here, there) = (db.pg_store().await, db.pg_store().await);
        let stop = CancellationToken::new();
        let woken_here = count_wakeups(&here, &stop);
        let woken_there = count_wakeups(&there, &stop);
        until_listening(here.pool(), 2).await;
        // Each listener looks for work once as it subscribes (what was announced before the
        // LISTEN took effect is found so); the tests count the wake-ups after that.
        for woken in [&woken_here, &woken_there] {
            until(woken, 1).await;
            woken.store(0, Ordering::SeqCst);
        }
        TwoProcesses {
            _db: db,
            here,
            woken_here,
            woken_there,
            stop,
        }
    }
}

impl Drop for TwoProcesses {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

postgres_only!(a_new_task_wakes_its_own_process_once_and_another_process_by_notify);
async fn a_new_task_wakes_its_own_process_once_and_another_process_by_notify() {
    let two = TwoProcesses::listening().await;

    let task = NewTask {
        run_immediately: true,
        ..NewTask::of_type("noop")
    };
    two.here.create_task(task).await.unwrap();

    until(&two.woken_there, 1).await;
    // The NOTIFY reached this process's listener too, by now: it must not count again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(two.woken_here.load(Ordering::SeqCst), 1);
    assert_eq!(two.woken_there.load(Ordering::SeqCst), 1);
}

postgres_only!(a_task_queued_by_the_database_wakes_every_process);
async fn a_task_queued_by_the_database_wakes_every_process() {
    let two = TwoProcesses::listening().await;

    // A retry that is due again is announced by the update trigger, not by a store.
    let pool = two.here.pool();
    sqlx::query(
        "insert into tasks (id, type, status) values (gen_random_uuid(), 'noop', 'running')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("update tasks set status = 'retry'")
        .execute(pool)
        .await
        .unwrap();

    until(&two.woken_here, 1).await;
    until(&two.woken_there, 1).await;
}
