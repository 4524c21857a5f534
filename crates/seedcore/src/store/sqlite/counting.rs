//! The total of a list on SQLite as [`CountMode`] asks for it: every match counted, counted up
//! to the cap (SQLite has no planner estimate to offer), or none. The fact and task lists
//! share it.

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::store::{CountMode, ESTIMATE_EXACT_UP_TO, StoreResult};

/// The total of the rows `matches` selects (it pushes ` from ... where ...`), and whether it is
/// capped (then it reports one past the cap, marked as an estimate).
pub(super) async fn count_matches(
    store: &SqliteStore,
    mode: CountMode,
    matches: impl Fn(&mut QueryBuilder<Sqlite>) -> StoreResult<()>,
) -> StoreResult<(Option<i64>, bool)> {
    let cap = match mode {
        CountMode::None => return Ok((None, false)),
        CountMode::Exact => None,
        CountMode::Estimate => Some(ESTIMATE_EXACT_UP_TO),
    };
    let mut count = QueryBuilder::new("select count(*) from (select 1");
    matches(&mut count)?;
    if let Some(cap) = cap {
        count.push(" limit ").push_bind(cap + 1);
    }
    count.push(")");
    let counted: i64 = count.build_query_scalar().fetch_one(&store.reader).await?;
    Ok((Some(counted), cap.is_some_and(|cap| counted > cap)))
}
