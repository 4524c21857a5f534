//! M2, the cost of metrics on W3's create phase: `POST /api/v1/tasks` from W3's connections
//! for a fixed time against `serve` with metrics on (and scraped every second, as Prometheus
//! would) and against `serve` with `SEEDCORE_METRICS_ENABLED=false`, each on a database of its
//! own; the figure is the rate with metrics over the rate without. The target is within 5 %.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{
    db::with_database,
    error::Result,
    load::{LoadResult, closed_loop, expect_ok, http_client},
    process::Seedcore,
    report::{Better, Measure, RunOutcome},
    workloads::{Context, SETTLE, progress},
};

const TASK: &str = r#"{"type":"noop","run_immediately":true}"#;
/// How often the scraper asks while metrics are on.
const SCRAPE_EVERY: Duration = Duration::from_secs(1);

pub async fn run(ctx: &Context) -> Result<Vec<RunOutcome>> {
    let mut runs = Vec::new();
    for run in 1..=ctx.plan.runs {
        // Alternate which goes first, so a drift of the machine does not favour one side.
        let on_first = run % 2 == 1;
        progress(format_args!("m2 run {run}/{}", ctx.plan.runs));
        let (on, off) = if on_first {
            let on = one_side(ctx, true).await?;
            (on, one_side(ctx, false).await?)
        } else {
            let off = one_side(ctx, false).await?;
            (one_side(ctx, true).await?, off)
        };
        runs.push(outcome(ctx, &on, &off));
    }
    Ok(runs)
}

/// W3's create phase against a fresh `serve` with metrics on or off.
async fn one_side(ctx: &Context, metrics: bool) -> Result<LoadResult> {
    with_database(&ctx.admin, async |db| {
        let enabled = if metrics { "true" } else { "false" };
        let env = [
            ("SEEDCORE_WORKER_CONCURRENCY", "0"),
            ("SEEDCORE_METRICS_ENABLED", enabled),
        ];
        let mut serve = Seedcore::spawn(&ctx.seedcore, &["serve"], &db.url, &env)?;
        let base = serve.wait_for_address().await?;
        tokio::time::sleep(SETTLE).await;
        let client = http_client()?;
        let (stop, stopped) = watch::channel(false);
        let scraper = metrics.then(|| tokio::spawn(scrape(client.clone(), base.clone(), stopped)));
        let posts = post_tasks(&client, &base, ctx.plan.connections, ctx.plan.api_duration).await;
        let _ = stop.send(true);
        if let Some(scraper) = scraper {
            let _ = scraper.await;
        }
        serve.ensure_running()?;
        posts.require_success("POST /api/v1/tasks")
    })
    .await
}

/// Scrapes `/metrics` every [`SCRAPE_EVERY`] until `stop`.
async fn scrape(client: reqwest::Client, base: String, mut stop: watch::Receiver<bool>) {
    let url = format!("{base}/metrics");
    loop {
        if let Err(err) = expect_ok(client.get(&url)).await {
            progress(format_args!("m2 scrape failed: {err}"));
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(SCRAPE_EVERY) => {}
        }
    }
}

async fn post_tasks(
    client: &reqwest::Client,
    base: &str,
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let url = Arc::new(format!("{base}/api/v1/tasks"));
    let client = client.clone();
    closed_loop(connections, duration, move |_, _| {
        let request = client
            .post(url.as_str())
            .header("content-type", "application/json")
            .body(TASK);
        async move { expect_ok(request).await.map(drop) }
    })
    .await
}

fn outcome(ctx: &Context, on: &LoadResult, off: &LoadResult) -> RunOutcome {
    let mut out = RunOutcome::default();
    out.push(
        Measure::new(
            "create_rate_metrics_on",
            "creates, metrics on",
            "req/s",
            Better::Higher,
            on.rate(),
        )
        .against(
            "create_rate_metrics_off",
            "creates, metrics off",
            off.rate(),
        ),
    );
    out.push(
        Measure::new(
            "create_p99_metrics_on",
            "create p99, metrics on",
            "ms",
            Better::Lower,
            on.latencies.p99(),
        )
        .against(
            "create_p99_metrics_off",
            "create p99, metrics off",
            off.latencies.p99(),
        ),
    );
    out.note(format!(
        "POST /api/v1/tasks from {} keep-alive connections for {} s to `serve` \
         (SEEDCORE_WORKER_CONCURRENCY=0), each side on a fresh database: on = metrics \
         recorded and /metrics scraped every {} s; off = SEEDCORE_METRICS_ENABLED=false; the \
         side that goes first alternates per run; target: ratio on / off of at least 0.95",
        ctx.plan.connections,
        ctx.plan.api_duration.as_secs_f64(),
        SCRAPE_EVERY.as_secs(),
    ));
    for note in [on.error_note("metrics on"), off.error_note("metrics off")]
        .into_iter()
        .flatten()
    {
        out.note(note);
    }
    out
}
