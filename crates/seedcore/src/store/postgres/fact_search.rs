//! The fact list on PostgreSQL with every filter of [`FactQuery`]: the `where` clause, the
//! page (newest first, or best rank first with `search=`), and the total, read from the
//! counters or as `counting` finds it.
//!
//! Every statement here runs unprepared (see [`fact_filters`] for why). A `q=` page is read
//! after its total, and when that total is exact and small, from all its matches (see
//! [`FEW_MATCHES`]); every other page runs beside its total.

use sqlx::{Postgres, QueryBuilder, types::Json};

use super::{FactRow, PgStore, counting::count_matches};
use crate::store::{CountMode, FactPage, FactQuery, StoreResult, like_literal};

/// The columns of a fact as the API shows it, of the facts aliased `f`.
pub(super) const FACT_COLUMNS: &str =
    "f.id, f.text, f.tags, f.meta_data, f.created_at, f.updated_at";

/// The rows a fact search reads, as `f` (facts) and `v` (their search vectors). The vectors
/// live in a table of their own so that `facts` rows stay narrow (see the fact_vectors
/// migration); a vector row carries its fact's tags and creation time too. A search without
/// `search=` reads facts alone; one with `search=` reads the vectors alone, unless it also
/// filters on the text or the metadata, which joins the facts.
fn fact_source(query: &FactQuery) -> &'static str {
    let reads_facts = query.q.is_some() || !query.meta.is_empty();
    match (&query.search, reads_facts) {
        (None, _) => " from facts f",
        (Some(_), false) => " from fact_vectors v",
        (Some(_), true) => " from facts f join fact_vectors v on v.id = f.id",
    }
}

/// The alias of the table a search reads tags and creation times from (both tables hold them).
fn tags_and_times(query: &FactQuery) -> &'static str {
    match query.search {
        Some(_) => "v",
        None => "f",
    }
}

/// The full-text query of `search=`, in the language the vectors were built with.
const TS_QUERY: &str = "websearch_to_tsquery((select value from seedcore_settings \
                        where key = 'fts_language')::regconfig, ";

/// The `where` clause of a fact search.
///
/// Statements built with it run unprepared (`persistent(false)`): the right plan depends on the
/// values (a rare word is a trigram bitmap, a common one an ordered walk of the newest facts),
/// and a prepared statement switches to one generic plan after five runs: 300 ms instead of
/// 1.7 ms for a common word's page on a million facts, 16 ms instead of 1 ms for a rare word
/// with a tag (the generic plan intersects with the tag's whole posting list).
fn fact_filters(builder: &mut QueryBuilder<Postgres>, query: &FactQuery) {
    let at = tags_and_times(query);
    builder.push(" where true");
    if let Some(q) = &query.q {
        let pattern = format!("%{}%", like_literal(q));
        builder
            .push(" and (f.text ilike ")
            .push_bind(pattern.clone())
            .push(r" escape '\' or f.meta_data::text ilike ")
            .push_bind(pattern)
            .push(r" escape '\')");
    }
    if let Some(search) = &query.search {
        builder
            .push(" and v.search_vector @@ ")
            .push(TS_QUERY)
            .push_bind(search.clone())
            .push(")");
    }
    if !query.tags.is_empty() {
        builder
            .push(format_args!(" and {at}.tags @> "))
            .push_bind(query.tags.clone());
    }
    if !query.any_tags.is_empty() {
        builder
            .push(format_args!(" and {at}.tags && "))
            .push_bind(query.any_tags.clone());
    }
    for filter in &query.meta {
        builder.push(" and (false");
        for value in &filter.values {
            let contained = serde_json::json!({ filter.key.as_str(): value });
            builder
                .push(" or f.meta_data @> ")
                .push_bind(Json(contained));
        }
        builder.push(")");
    }
    if let Some(after) = query.created_after {
        builder
            .push(format_args!(" and {at}.created_at > "))
            .push_bind(after);
    }
    if let Some(before) = query.created_before {
        builder
            .push(format_args!(" and {at}.created_at < "))
            .push_bind(before);
    }
}

/// When the query filters on nothing but at most one tag, the counter to read: "" for all facts,
/// else the tag. Totals of other filters are counted from the rows.
fn counted_filter(query: &FactQuery) -> Option<&str> {
    let only_tags = query.q.is_none()
        && query.search.is_none()
        && query.any_tags.is_empty()
        && query.meta.is_empty()
        && query.created_after.is_none()
        && query.created_before.is_none();
    match query.tags.as_slice() {
        [] if only_tags => Some(""),
        [tag] if only_tags => Some(tag),
        _ => None,
    }
}

/// Matches up to which a `q=` page is read from all its matches rather than by walking the
/// newest facts until the page is full. The planner picks between the two from its estimate of
/// the substring's frequency, and that estimate comes from a sample: when the sample's
/// histogram happens to hold a rare word it expects 1 % of the table, and walks. On a million
/// facts that read 100,000 rows (270 ms) for a word in 500 of them, where the trigram bitmap
/// takes 3 ms. Reading every match visits at most this many rows; a walk that fills a page of
/// 50 from this many matches reads a hundredth of the table (table × page / matches).
const FEW_MATCHES: i64 = 5_000;

pub(super) async fn search(store: &PgStore, query: &FactQuery) -> StoreResult<FactPage> {
    let (total, rows) = if query.q.is_some() && query.search.is_none() {
        // The total tells how many facts match, which the page's plan depends on: counted
        // first, the page is shaped by it.
        let total = count(store, query).await?;
        let few = matches!(total, (Some(n), false) if n <= FEW_MATCHES);
        (total, page(store, query, few).await?)
    } else {
        // Two connections: the total and the page cost a round trip each, and neither waits
        // for the other.
        tokio::try_join!(count(store, query), page(store, query, false))?
    };
    let items = rows
        .into_iter()
        .map(|row| Ok((row.fact.into_fact()?, row.rank)))
        .collect::<StoreResult<_>>()?;
    Ok(FactPage::new(query, total, items))
}

async fn count(store: &PgStore, query: &FactQuery) -> StoreResult<(Option<i64>, bool)> {
    if query.count != CountMode::None
        && let Some(tag) = counted_filter(query)
    {
        let total = sqlx::query_scalar(include_str!("sql/fact_total.sql"))
            .bind(tag)
            .fetch_one(&store.pool)
            .await?;
        return Ok((Some(total), false));
    }
    count_matches(store, query.count, |matches| {
        matches.push(fact_source(query));
        fact_filters(matches, query);
    })
    .await
}

/// One page of facts matching the query, each with its rank when `search=` is given. `few`:
/// the query is known to match at most [`FEW_MATCHES`] facts.
async fn page(store: &PgStore, query: &FactQuery, few: bool) -> StoreResult<Vec<RankedFactRow>> {
    let mut list = match &query.search {
        Some(search) => ranked_page(query, search),
        None if few => page_of_few(query),
        None => newest_page(query),
    };
    Ok(list
        .build_query_as()
        .persistent(false)
        .fetch_all(&store.pool)
        .await?)
}

/// A page of facts, newest first (keyset-paged by `cursor`, or by `offset`).
fn newest_page(query: &FactQuery) -> QueryBuilder<Postgres> {
    let mut list = QueryBuilder::new("select ");
    list.push(FACT_COLUMNS).push(", null::real as rank");
    list.push(fact_source(query));
    fact_filters(&mut list, query);
    push_cursor(&mut list, query);
    list.push(" order by f.created_at desc, f.id desc");
    push_window(&mut list, query);
    list
}

/// [`newest_page`] of a query that matches few facts: all of them read through their filters'
/// indexes, then sorted. The materialized set cannot be walked in creation order, so the plan
/// does not hang on the planner's guess of how many there are.
fn page_of_few(query: &FactQuery) -> QueryBuilder<Postgres> {
    let mut list = QueryBuilder::new("with matches as materialized (select ");
    list.push(FACT_COLUMNS);
    list.push(fact_source(query));
    fact_filters(&mut list, query);
    push_cursor(&mut list, query);
    list.push(
        ") select id, text, tags, meta_data, created_at, updated_at, null::real as rank \
         from matches order by created_at desc, id desc",
    );
    push_window(&mut list, query);
    list
}

/// The keyset condition of a page after `cursor`, newest first.
fn push_cursor(list: &mut QueryBuilder<Postgres>, query: &FactQuery) {
    if let Some(cursor) = &query.cursor {
        list.push(" and (f.created_at, f.id) < (")
            .push_bind(cursor.at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
}

/// The page's `limit` and `offset`.
fn push_window(list: &mut QueryBuilder<Postgres>, query: &FactQuery) {
    list.push(" limit ")
        .push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset);
}

/// A page of `search=` matches, best rank first: ranked and cut among the vectors (and the facts
/// only when other filters need them), then the page's facts read by id.
fn ranked_page(query: &FactQuery, search: &str) -> QueryBuilder<Postgres> {
    let mut list = QueryBuilder::new("select ");
    list.push(FACT_COLUMNS)
        .push(", m.rank from (select v.id, v.created_at, ts_rank_cd(v.search_vector, ")
        .push(TS_QUERY)
        .push_bind(search.to_owned())
        .push(")) as rank");
    list.push(fact_source(query));
    fact_filters(&mut list, query);
    list.push(" order by rank desc, v.created_at desc, v.id desc limit ")
        .push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset)
        .push(") m join facts f on f.id = m.id order by m.rank desc, m.created_at desc, m.id desc");
    list
}

#[derive(sqlx::FromRow)]
struct RankedFactRow {
    #[sqlx(flatten)]
    fact: FactRow,
    rank: Option<f32>,
}
