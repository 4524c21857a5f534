//! F1, fact search: facts loaded in bulk, then the latency of four searches through the API
//! against the same search as a plain sequential scan in SQL, and create throughput through the
//! API against single-row inserts into a plain copy of the table.

use std::{sync::Arc, time::Instant};

use hyper::body::Bytes;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    corpus::{
        COMMON_EVERY, COMMON_WORD, QUERY_TAG, RARE_EVERY, RARE_WORD, TAGS, WORDS, fact, fact_body,
    },
    db::{BenchDb, with_database},
    error::{Context as _, Error, Result},
    http1::{self, HttpConn},
    load::{LoadResult, closed_loop_owning, expect_ok, http_client, sequential},
    process::{Seedcore, db_init},
    report::{Better, Measure, RunOutcome},
    stats::Latencies,
    workloads::{Context, SETTLE, Table, progress, vacuum_analyze},
};

/// Facts per insert statement.
const LOAD_CHUNK: i64 = 100_000;

/// One of the measured searches.
struct Search {
    q: Option<&'static str>,
    tag: Option<&'static str>,
    /// `count=` of the request; None asks for the default exact total.
    count: Option<&'static str>,
    p50: (&'static str, &'static str),
    p99: (&'static str, &'static str),
}

const SEARCHES: [Search; 5] = [
    Search {
        q: Some(RARE_WORD),
        tag: None,
        count: None,
        p50: ("q_rare_p50_ms", "q=rare p50"),
        p99: ("q_rare_p99_ms", "q=rare p99"),
    },
    Search {
        q: Some(COMMON_WORD),
        tag: None,
        count: None,
        p50: ("q_common_p50_ms", "q=common p50"),
        p99: ("q_common_p99_ms", "q=common p99"),
    },
    Search {
        q: None,
        tag: Some(QUERY_TAG),
        count: None,
        p50: ("tag_p50_ms", "tag p50"),
        p99: ("tag_p99_ms", "tag p99"),
    },
    Search {
        q: Some(RARE_WORD),
        tag: Some(QUERY_TAG),
        count: None,
        p50: ("q_rare_tag_p50_ms", "q=rare&tag p50"),
        p99: ("q_rare_tag_p99_ms", "q=rare&tag p99"),
    },
    Search {
        q: Some(COMMON_WORD),
        tag: None,
        count: Some("estimate"),
        p50: ("q_common_estimate_p50_ms", "q=common&count=estimate p50"),
        p99: ("q_common_estimate_p99_ms", "q=common&count=estimate p99"),
    },
];

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    with_database(&ctx.admin, async |db| all_runs(ctx, db).await).await
}

/// The load is done once (it is the expensive part); the measurements `runs` times on it.
async fn all_runs(ctx: &Context, db: &BenchDb) -> Result<Vec<RunOutcome>> {
    let plan = &ctx.plan;
    db_init(&ctx.seedcore, &db.url).await?;
    let pool = db.pool(plan.connections as u32).await?;
    let loaded = prepare(plan, &pool).await?;
    let env = [("SEEDCORE_WORKER_CONCURRENCY", "0")];
    let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
    let base = serve.wait_for_address().await?;
    tokio::time::sleep(SETTLE).await;
    let mut seqscan = seqscan_session(db).await?;

    let mut runs = Vec::new();
    for run in 1..=plan.runs {
        progress(format_args!("f1 run {run}/{}", plan.runs));
        let mut out = RunOutcome::default();
        if run == 1 {
            let rate = loaded.rate;
            out.push(Measure::new(
                "load",
                "bulk load",
                "facts/s",
                Better::Higher,
                rate,
            ));
        }
        for search in &SEARCHES {
            measure_search(ctx, &base, &mut seqscan, search, &mut out).await?;
        }
        measure_create(ctx, &base, db, &mut out).await?;
        serve.ensure_running()?;
        for note in notes(ctx, &loaded.matches) {
            out.note(note);
        }
        runs.push(out);
    }
    seqscan.close().await.ok();
    drop(serve);
    pool.close().await;
    Ok(runs)
}

/// What the load left for the measurements.
struct Loaded {
    /// Facts per second.
    rate: f64,
    /// How many facts each of SEARCHES matches.
    matches: Vec<i64>,
}

/// Loads the facts, analyzes them and makes the plain copy the create baseline inserts into.
async fn prepare(plan: &crate::cli::Plan, pool: &PgPool) -> Result<Loaded> {
    progress(format_args!("f1 loading {} facts", plan.facts));
    let rate = load_facts(pool, plan.facts).await?;
    vacuum_analyze(pool, Table::Facts).await?;
    let matches = match_counts(pool).await?;
    sqlx::raw_sql("create table bench_plain_facts (like facts including all)")
        .execute(pool)
        .await
        .context("create the plain facts table")?;
    Ok(Loaded { rate, matches })
}

/// Inserts `count` facts: 6–12 filler words each, the common word in every COMMON_EVERY-th
/// and the rare word in every RARE_EVERY-th, 0–5 distinct tags, a small metadata object;
/// created_at one millisecond apart. Returns facts per second.
async fn load_facts(pool: &PgPool, count: i64) -> Result<f64> {
    let started = Instant::now();
    let mut first = 1;
    while first <= count {
        let last = (first + LOAD_CHUNK - 1).min(count);
        sqlx::query(
            r"insert into facts (id, text, tags, meta_data, created_at, updated_at)
              select gen_random_uuid(),
                     (select string_agg($1[1 + floor(random() * cardinality($1))::int], ' ')
                      from generate_series(1, 6 + (g % 7)::int))
                     || case when g % $4 = 3 then ' ' || $3 else '' end
                     || case when g % $6 = 7 then ' ' || $5 else '' end,
                     array(select distinct $2[1 + floor(random() * cardinality($2))::int]
                           from generate_series(1, (g % 6)::int)),
                     jsonb_build_object('source', 'bench', 'n', g, 'lang', 'en'),
                     ts, ts
              from (select g, now() - ($7 - g) * interval '1 ms' as ts
                    from generate_series($8::bigint, $9::bigint) g) s",
        )
        .bind(&WORDS[..])
        .bind(&TAGS[..])
        .bind(COMMON_WORD)
        .bind(COMMON_EVERY)
        .bind(RARE_WORD)
        .bind(RARE_EVERY)
        .bind(count)
        .bind(first)
        .bind(last)
        .execute(pool)
        .await
        .context("load facts")?;
        if count >= 10 * LOAD_CHUNK {
            progress(format_args!("f1 loaded {last} of {count}"));
        }
        first = last + 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// How many facts each search matches, for the notes.
async fn match_counts(pool: &PgPool) -> Result<Vec<i64>> {
    let mut counts = Vec::new();
    for search in &SEARCHES {
        let total: i64 = sqlx::query_scalar(COUNT_SQL)
            .bind(search.q.map(like_pattern))
            .bind(search.tag.map(|t| vec![t]))
            .fetch_one(pool)
            .await
            .context("count the matches")?;
        counts.push(total);
    }
    Ok(counts)
}

/// A connection that cannot use indexes: the plain `ILIKE '%word%'` sequential scan.
async fn seqscan_session(db: &BenchDb) -> Result<PgConnection> {
    let mut conn = db.connect().await?;
    sqlx::raw_sql(
        r"set enable_indexscan = off;
          set enable_bitmapscan = off;
          set enable_indexonlyscan = off",
    )
    .execute(&mut conn)
    .await
    .context("turn index scans off")?;
    Ok(conn)
}

/// The filter seedcore applies for `q` and `tag` (see its store), with absent parts as null.
const COUNT_SQL: &str = r"select count(*) from facts
    where ($1::text is null or text ilike $1 escape '\' or meta_data::text ilike $1 escape '\')
      and ($2::text[] is null or tags @> $2)";

const PAGE_SQL: &str = r"select id, text, tags, meta_data, created_at, updated_at from facts
    where ($1::text is null or text ilike $1 escape '\' or meta_data::text ilike $1 escape '\')
      and ($2::text[] is null or tags @> $2)
    order by created_at desc, id desc
    limit 50";

fn like_pattern(word: &str) -> String {
    // The query words are plain letters: nothing to escape.
    format!("%{word}%")
}

async fn measure_search(
    ctx: &Context,
    base: &str,
    seqscan: &mut PgConnection,
    search: &Search,
    out: &mut RunOutcome,
) -> Result<()> {
    let api = api_search(base, search, ctx.plan.search_requests).await?;
    let scan = seqscan_search(seqscan, search, ctx.plan.seqscan_samples).await?;
    out.push(
        Measure::new(search.p50.0, search.p50.1, "ms", Better::Lower, api.p50()).against(
            "seqscan_p50_ms",
            "ILIKE seq scan p50",
            scan.p50(),
        ),
    );
    out.push(
        Measure::new(search.p99.0, search.p99.1, "ms", Better::Lower, api.p99()).against(
            "seqscan_p99_ms",
            "ILIKE seq scan p99",
            scan.p99(),
        ),
    );
    Ok(())
}

async fn api_search(base: &str, search: &Search, requests: usize) -> Result<Latencies> {
    let client = http_client()?;
    let mut url = format!("{base}/api/v1/facts?limit=50");
    if let Some(q) = search.q {
        url.push_str(&format!("&q={q}"));
    }
    if let Some(tag) = search.tag {
        url.push_str(&format!("&tag={tag}"));
    }
    if let Some(count) = search.count {
        url.push_str(&format!("&count={count}"));
    }
    sequential(requests, |_| {
        let request = client.get(&url);
        let url = &url;
        async move {
            expect_ok(request)
                .await
                .map(drop)
                .map_err(|err| Error::new(format!("GET {url}: {err}")))
        }
    })
    .await
}

/// The same count and page seedcore runs, on the connection without index scans.
async fn seqscan_search(
    conn: &mut PgConnection,
    search: &Search,
    samples: usize,
) -> Result<Latencies> {
    let pattern = search.q.map(like_pattern);
    let tags = search.tag.map(|t| vec![t]);
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let _total: i64 = sqlx::query_scalar(COUNT_SQL)
            .bind(&pattern)
            .bind(&tags)
            .fetch_one(&mut *conn)
            .await
            .context("run the seq-scan count")?;
        sqlx::query(PAGE_SQL)
            .bind(&pattern)
            .bind(&tags)
            .fetch_all(&mut *conn)
            .await
            .context("run the seq-scan page")?;
        times.push(crate::load::ms(started.elapsed()));
    }
    Ok(Latencies::new(times))
}

/// `POST /api/v1/facts` against single-row inserts into a plain copy of `facts` (same
/// indexes), each from the same number of connections for the same time.
async fn measure_create(
    ctx: &Context,
    base: &str,
    db: &BenchDb,
    out: &mut RunOutcome,
) -> Result<()> {
    let plan = &ctx.plan;
    let path = http1::path("/api/v1/facts")?;
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..VARIANTS).map(|v| fact_body(v).into()).collect());
    let conns = HttpConn::open_many(base, plan.connections).await?;
    let api = closed_loop_owning(conns, plan.fact_create_duration, move |mut conn, w, i| {
        let (path, body) = (path.clone(), bodies[variant(w, i)].clone());
        async move {
            let done = conn.post_json(&path, body).await;
            (conn, done)
        }
    })
    .await
    .require_success("POST /api/v1/facts")?;

    let conns = db.connections(plan.connections).await?;
    let sql = plain_inserts(conns, plan).await?;
    out.push(
        Measure::new(
            "create_rps",
            "POST /facts",
            "req/s",
            Better::Higher,
            api.rate(),
        )
        .against("sql_insert_rps", "SQL insert", sql.rate()),
    );
    for note in [api.error_note("POST /facts"), sql.error_note("SQL insert")]
        .into_iter()
        .flatten()
    {
        out.note(note);
    }
    Ok(())
}

/// Facts the create phases cycle through.
const VARIANTS: u64 = RARE_EVERY as u64;

fn variant(worker: usize, iteration: u64) -> usize {
    ((worker as u64 * 131 + iteration) % VARIANTS) as usize
}

async fn plain_inserts(conns: Vec<PgConnection>, plan: &crate::cli::Plan) -> Result<LoadResult> {
    let facts: Arc<Vec<_>> = Arc::new((0..VARIANTS).map(fact).collect());
    closed_loop_owning(conns, plan.fact_create_duration, move |mut conn, w, i| {
        let facts = facts.clone();
        async move {
            let fact = &facts[variant(w, i)];
            let done = sqlx::query(
                r"insert into bench_plain_facts (id, text, tags, meta_data)
                  values ($1, $2, $3, $4)",
            )
            .bind(Uuid::new_v4())
            .bind(&fact.text)
            .bind(&fact.tags)
            .bind(sqlx::types::Json(&fact.meta_data))
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(|err| err.to_string());
            (conn, done)
        }
    })
    .await
    .require_success("insert into the plain facts table")
}

fn notes(ctx: &Context, matches: &[i64]) -> Vec<String> {
    let plan = &ctx.plan;
    let facts = plan.facts.max(1) as f64;
    let described: Vec<String> = SEARCHES
        .iter()
        .zip(matches)
        .map(|(s, n)| {
            format!(
                "{} matches {n} ({:.3} %)",
                describe(s),
                *n as f64 * 100.0 / facts
            )
        })
        .collect();
    vec![
        format!(
            "{} facts of 6–12 words from a {}-word list, 0–5 of {} tags, metadata \
             {{source, n, lang}}, loaded by insert … select generate_series then `vacuum \
             (analyze) facts`; {}",
            plan.facts,
            WORDS.len(),
            TAGS.len(),
            described.join("; ")
        ),
        format!(
            "latency: {} sequential GET /api/v1/facts?…&limit=50 per search (count + page); \
             baseline: the same count + page statements on a session with index scans off \
             (enable_indexscan/bitmapscan/indexonlyscan = off), {} samples each",
            plan.search_requests, plan.seqscan_samples
        ),
        format!(
            "create: POST /api/v1/facts from {} keep-alive connections of the load generator's \
             own for {:?} (serve with SEEDCORE_WORKER_CONCURRENCY=0) against single-row inserts \
             into a plain copy of facts with the same indexes, each connection the client's own \
             (no pool)",
            plan.connections, plan.fact_create_duration
        ),
    ]
}

fn describe(search: &Search) -> String {
    match (search.q, search.tag) {
        (Some(q), Some(tag)) => format!("q={q}&tag={tag}"),
        (Some(q), None) => format!("q={q}"),
        (None, Some(tag)) => format!("tag={tag}"),
        (None, None) => "everything".into(),
    }
}
