//! The total of a list on PostgreSQL as [`CountMode`] asks for it: every match counted, the
//! planner's estimate when it expects many, or none. The fact and task lists share it.

use serde_json::Value;
use sqlx::{Postgres, QueryBuilder, types::Json};

use super::PgStore;
use crate::store::{CountMode, ESTIMATE_EXACT_UP_TO, StoreResult};

/// The total of the rows `matches` selects (it pushes ` from ... where ...`), and whether it is
/// an estimate. Statements run unprepared: the best plan depends on the values.
pub(super) async fn count_matches(
    store: &PgStore,
    mode: CountMode,
    matches: impl Fn(&mut QueryBuilder<Postgres>),
) -> StoreResult<(Option<i64>, bool)> {
    match mode {
        CountMode::None => Ok((None, false)),
        CountMode::Exact => {
            let mut count = QueryBuilder::new("select count(*)");
            matches(&mut count);
            let total = count
                .build_query_scalar()
                .persistent(false)
                .fetch_one(&store.pool)
                .await?;
            Ok((Some(total), false))
        }
        CountMode::Estimate => estimate(store, matches).await,
    }
}

async fn estimate(
    store: &PgStore,
    matches: impl Fn(&mut QueryBuilder<Postgres>),
) -> StoreResult<(Option<i64>, bool)> {
    // The planner first (a millisecond): when it expects many matches, its estimate is the
    // answer, and no match is visited.
    let expected = planner_estimate(store, &matches).await?;
    if expected > ESTIMATE_EXACT_UP_TO {
        return Ok((Some(expected), true));
    }
    // It expects few: count them, stopping one past the cap in case it was wrong.
    let mut capped = QueryBuilder::new("select count(*) from (select 1");
    matches(&mut capped);
    capped
        .push(" limit ")
        .push_bind(ESTIMATE_EXACT_UP_TO + 1)
        .push(") capped");
    let counted: i64 = capped
        .build_query_scalar()
        .persistent(false)
        .fetch_one(&store.pool)
        .await?;
    if counted <= ESTIMATE_EXACT_UP_TO {
        return Ok((Some(counted), false));
    }
    Ok((Some(expected.max(counted)), true))
}

/// The planner's row estimate for the rows `matches` selects.
async fn planner_estimate(
    store: &PgStore,
    matches: &impl Fn(&mut QueryBuilder<Postgres>),
) -> StoreResult<i64> {
    let mut explain = QueryBuilder::new("explain (format json) select 1");
    matches(&mut explain);
    let plan: Json<Value> = explain
        .build_query_scalar()
        .persistent(false)
        .fetch_one(&store.pool)
        .await?;
    Ok(plan.0[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64)
}
