//! The per-row SQL limit W1 is set beside: a minimal queue table (id, status, payload,
//! claimed_at; one partial index on the queued rows) drained by the strongest plain client,
//! one `update … where id = (select … for update skip locked limit 1) returning id` and one
//! `update … set status = 'completed'` per row. Two clients: this tool's own (one connection
//! per loop, statements prepared once per connection, tried at several connection counts, the
//! best reported) and pgbench with the same two statements in a script file, when `pgbench` is
//! on PATH. Each drain gets a freshly filled table, vacuumed and checkpointed.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection, PgPool};

use crate::{
    db::BenchDb,
    error::{Context as _, Error, Result},
    external,
    workloads::checkpoint,
};

/// Connection counts the tool's own client tries; the best rate is the limit.
pub const CONNECTIONS: [usize; 3] = [8, 16, 32];
/// pgbench's clients: the reference figure of BENCHMARKS.md.
pub const PGBENCH_CLIENTS: usize = 16;
const PGBENCH_LIMIT: Duration = Duration::from_secs(300);

const CLAIM: &str = r"update bench_queue set status = 'running', claimed_at = now()
    where id = (select id from bench_queue where status = 'queued'
                order by id limit 1 for update skip locked)
    returning id";
const COMPLETE: &str = r"update bench_queue set status = 'completed' where id = $1";

/// The best of the tool's own client over `CONNECTIONS`: (rate, connections), plus every try.
pub struct Best {
    pub rate: f64,
    pub connections: usize,
    pub tries: Vec<(usize, f64)>,
}

pub async fn best_client_drain(db: &BenchDb, pool: &PgPool, count: i64) -> Result<Best> {
    let mut tries = Vec::new();
    for connections in CONNECTIONS {
        let rate = client_drain(db, pool, count, connections).await?;
        tries.push((connections, rate));
    }
    let (connections, rate) = best_of(&tries).context("try any connection count")?;
    Ok(Best {
        rate,
        connections,
        tries,
    })
}

/// The try with the highest rate.
pub fn best_of(tries: &[(usize, f64)]) -> Option<(usize, f64)> {
    tries
        .iter()
        .copied()
        .filter(|(_, rate)| rate.is_finite())
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Rows per second drained by `connections` loops over connections of their own, timed from
/// the first claim sent to the last completion answered.
async fn client_drain(db: &BenchDb, pool: &PgPool, count: i64, connections: usize) -> Result<f64> {
    fill(pool, count).await?;
    let mut conns = db.connections(connections).await?;
    for conn in &mut conns {
        // Prepared (and cached) before the clock starts, as a long-lived client has them.
        sqlx::raw_sql("select 1")
            .execute(&mut *conn)
            .await
            .context("open a connection")?;
    }
    let started = Instant::now();
    let loops: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(drain_loop(conn)))
        .collect();
    let mut drained = 0;
    for handle in loops {
        drained += handle.await.context("join a per-row drain loop")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let completed = completed(pool).await?;
    if completed != count || drained != count {
        return Err(Error::new(format!(
            "the per-row drain completed {completed} (loops counted {drained}) of {count} rows"
        )));
    }
    Ok(count as f64 / seconds)
}

/// Claims and completes rows on one connection until a claim finds none; rows it completed.
async fn drain_loop(mut conn: PgConnection) -> Result<i64> {
    let mut done = 0;
    loop {
        let claimed: Option<i64> = sqlx::query_scalar(CLAIM)
            .fetch_optional(&mut conn)
            .await
            .context("claim a row")?;
        let Some(id) = claimed else {
            conn.close().await.ok();
            return Ok(done);
        };
        sqlx::query(COMPLETE)
            .bind(id)
            .execute(&mut conn)
            .await
            .context("complete a row")?;
        done += 1;
    }
}

/// A fresh minimal queue of `count` queued rows, vacuumed, its pages written out.
async fn fill(pool: &PgPool, count: i64) -> Result<()> {
    sqlx::raw_sql(
        r"drop table if exists bench_queue;
          create table bench_queue (
              id bigint generated always as identity primary key,
              status text not null,
              payload jsonb not null,
              claimed_at timestamptz
          );
          create index bench_queue_queued_idx on bench_queue (id) where status = 'queued'",
    )
    .execute(pool)
    .await
    .context("create the minimal queue table")?;
    sqlx::query(
        r"insert into bench_queue (status, payload)
          select 'queued', '{}' from generate_series(1, $1)",
    )
    .bind(count)
    .execute(pool)
    .await
    .context("fill the minimal queue")?;
    sqlx::raw_sql("vacuum (analyze) bench_queue")
        .execute(pool)
        .await
        .context("vacuum the minimal queue")?;
    checkpoint(pool).await
}

async fn completed(pool: &PgPool) -> Result<i64> {
    sqlx::query_scalar("select count(*) from bench_queue where status = 'completed'")
        .fetch_one(pool)
        .await
        .context("count the completed rows")
}

/// pgbench's script: the same two statements; the claim wrapped so it always yields one row
/// (`0` when every queued row is locked by another client near the end), which `\gset` needs.
const PGBENCH_SCRIPT: &str = "with c as (update bench_queue set status = 'running', claimed_at = now() \
     where id = (select id from bench_queue where status = 'queued' order by id limit 1 \
     for update skip locked) returning id) select coalesce((select id from c), 0) as id \\gset\n\
     update bench_queue set status = 'completed' where id = :id;\n";

/// pgbench, prepared statements, `PGBENCH_CLIENTS` clients, `count / clients` transactions
/// each; rows completed per second of pgbench's own clock. None when pgbench is not on PATH.
pub async fn pgbench_drain(db: &BenchDb, pool: &PgPool, count: i64) -> Result<Option<f64>> {
    let Some(pgbench) = external::on_path("pgbench") else {
        return Ok(None);
    };
    fill(pool, count).await?;
    let dir = std::env::temp_dir().join(format!("seedcore-bench-{}", db.name));
    std::fs::create_dir_all(&dir).context(format_args!("create {}", dir.display()))?;
    let script = dir.join("per_row.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).context("write the pgbench script")?;
    let outcome = run_pgbench(&pgbench, &script, &db.url, count).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (tps, transactions) = outcome?;
    let completed = completed(pool).await?;
    if transactions <= 0.0 || completed == 0 {
        return Err(Error::new(format!(
            "pgbench ran {transactions} transactions and completed {completed} rows"
        )));
    }
    Ok(Some(completed_rate(tps, transactions, completed)))
}

async fn run_pgbench(pgbench: &Path, script: &Path, url: &str, count: i64) -> Result<(f64, f64)> {
    let per_client = (count as usize).div_ceil(PGBENCH_CLIENTS);
    let mut command = external::command_in(pgbench, &std::env::temp_dir());
    command.args([
        "-n",
        "-M",
        "prepared",
        "-c",
        &PGBENCH_CLIENTS.to_string(),
        "-j",
        "2",
        "-t",
        &per_client.to_string(),
        "-f",
    ]);
    command.arg(script).arg(url);
    let output = external::run(command, "pgbench", PGBENCH_LIMIT).await?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_pgbench(&text).context(format_args!(
        "read pgbench's tps and transactions from: {text}"
    ))
}

/// (tps without connection time, transactions processed) from pgbench's summary.
pub fn parse_pgbench(text: &str) -> Option<(f64, f64)> {
    let tps = text
        .lines()
        .find(|line| line.starts_with("tps = ") && line.contains("without initial connection"))
        .and_then(|line| line["tps = ".len()..].split_whitespace().next())
        .and_then(|n| n.parse().ok())?;
    let transactions = text
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.trim().parse().ok())?;
    Some((tps, transactions))
}

/// Rows per second when `transactions` ran at `tps` and `completed` of them found a row.
pub fn completed_rate(tps: f64, transactions: f64, completed: i64) -> f64 {
    tps * completed as f64 / transactions
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "pgbench (15.10 (Debian 15.10-0+deb12u1))
transaction type: /tmp/per_row.sql
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
number of transactions per client: 1250
number of transactions actually processed: 20000/20000
number of failed transactions: 0 (0.000%)
latency average = 2.412 ms
initial connection time = 21.505 ms
tps = 6633.377062 (without initial connection time)
";

    #[test]
    fn pgbench_summary_is_read() {
        assert_eq!(parse_pgbench(SUMMARY), Some((6633.377062, 20000.0)));
        assert_eq!(parse_pgbench("tps = 12 (including)\n"), None);
    }

    #[test]
    fn empty_claims_do_not_count_as_rows() {
        assert_eq!(completed_rate(6000.0, 20000.0, 20000), 6000.0);
        assert_eq!(completed_rate(6000.0, 20000.0, 19000), 5700.0);
    }

    #[test]
    fn the_best_connection_count_wins() {
        assert_eq!(
            best_of(&[(8, 5000.0), (16, 6400.0), (32, 6100.0)]),
            Some((16, 6400.0))
        );
        assert_eq!(best_of(&[]), None);
    }
}
