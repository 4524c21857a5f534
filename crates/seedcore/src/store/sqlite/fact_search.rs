//! The fact list on SQLite with every filter of [`FactQuery`]: the `where` clause, the page
//! (newest first, or best rank first with `search=`) and the total.
//!
//! Differences from PostgreSQL, by necessity: `q` folds ASCII case only; full-text search is
//! FTS5 with Porter stemming (English); `meta.<key>` containment is supported for scalars and
//! objects (matched leaf by leaf) but not arrays; `count=estimate` beyond the cap reports the
//! capped count (SQLite has no planner estimate to offer).

use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite};

use super::{FactRow, SqliteStore, counting::count_matches, rows::stamp};
use crate::store::{FactPage, FactQuery, MetaFilter, StoreError, StoreResult};

/// `q` is found with `instr` on lowercased text rather than LIKE: the same ASCII-only case
/// folding, nothing in `q` is a wildcard, and no limit on the pattern's length (LIKE refuses
/// patterns over 50,000 bytes). serde_json writes non-ASCII text raw, so a value inside the
/// metadata matches as it was written.
fn filters(builder: &mut QueryBuilder<Sqlite>, query: &FactQuery) -> StoreResult<()> {
    builder.push(" where true");
    if let Some(q) = &query.q {
        builder
            .push(" and (instr(lower(text), lower(")
            .push_bind(q.clone())
            .push(")) > 0 or instr(lower(meta_data), lower(")
            .push_bind(q.clone())
            .push(")) > 0)");
    }
    if let Some(search) = &query.search {
        // A search that asks for nothing positive matches nothing, as on PostgreSQL.
        let fts = super::fts::fts5_query(search).unwrap_or_else(|| "\"\"".into());
        builder
            .push(" and facts.rowid in (select rowid from facts_fts where facts_fts match ")
            .push_bind(fts)
            .push(")");
    }
    for tag in &query.tags {
        builder
            .push(" and exists (select 1 from json_each(facts.tags) where value = ")
            .push_bind(tag.clone())
            .push(")");
    }
    if !query.any_tags.is_empty() {
        builder.push(" and exists (select 1 from json_each(facts.tags) where value in (");
        let mut values = builder.separated(", ");
        for tag in &query.any_tags {
            values.push_bind(tag.clone());
        }
        builder.push("))");
    }
    for filter in &query.meta {
        meta_filter(builder, filter)?;
    }
    if let Some(after) = query.created_after {
        builder.push(" and created_at > ").push_bind(stamp(after));
    }
    if let Some(before) = query.created_before {
        builder.push(" and created_at < ").push_bind(stamp(before));
    }
    Ok(())
}

/// One `meta.<key>` filter: any of its values matches.
fn meta_filter(builder: &mut QueryBuilder<Sqlite>, filter: &MetaFilter) -> StoreResult<()> {
    builder.push(" and (false");
    for value in &filter.values {
        let mut leaves = Vec::new();
        leaf_paths(&format!("$.{}", json_key(&filter.key)), value, &mut leaves)?;
        builder.push(" or (true");
        for (path, leaf) in leaves {
            leaf_condition(builder, "meta_data", path, leaf);
        }
        builder.push(")");
    }
    builder.push(")");
    Ok(())
}

/// The scalar leaves of `value` with their JSON paths; containment of an object means every
/// leaf is there. Arrays would need element matching, which this store does not do.
fn leaf_paths<'v>(
    path: &str,
    value: &'v Value,
    out: &mut Vec<(String, &'v Value)>,
) -> StoreResult<()> {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                leaf_paths(&format!("{path}.{}", json_key(key)), inner, out)?;
            }
            Ok(())
        }
        Value::Array(_) => Err(StoreError::Unsupported(
            "the sqlite store cannot match a metadata filter holding a JSON array".into(),
        )),
        scalar => {
            out.push((path.to_string(), scalar));
            Ok(())
        }
    }
}

/// The JSON at `path` of `column` equals the scalar `leaf`: same JSON type, same value (numbers
/// by value, integer or real).
pub(super) fn leaf_condition(
    builder: &mut QueryBuilder<Sqlite>,
    column: &str,
    path: String,
    leaf: &Value,
) {
    builder
        .push(format_args!(" and json_type({column}, "))
        .push_bind(path.clone())
        .push(")");
    match leaf {
        Value::Null => builder.push(" = 'null'"),
        Value::Bool(true) => builder.push(" = 'true'"),
        Value::Bool(false) => builder.push(" = 'false'"),
        Value::String(s) => builder
            .push(format_args!(" = 'text' and json_extract({column}, "))
            .push_bind(path)
            .push(") = ")
            .push_bind(s.clone()),
        Value::Number(n) => builder
            .push(format_args!(
                " in ('integer', 'real') and json_extract({column}, "
            ))
            .push_bind(path)
            .push(") = ")
            .push_bind(n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(_) | Value::Object(_) => builder.push(" is null and false"),
    };
}

/// A key as a JSON path step: quoted, so dots and spaces in keys are taken literally.
pub(super) fn json_key(key: &str) -> String {
    format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) async fn search(store: &SqliteStore, query: &FactQuery) -> StoreResult<FactPage> {
    let total = count(store, query).await?;
    let mut list = QueryBuilder::new("select facts.*, ");
    match &query.search {
        // bm25 is lower for better matches; the text weighs ten times the metadata.
        Some(search) => list
            .push("(select -bm25(facts_fts, 10.0, 1.0) from facts_fts where facts_fts match ")
            .push_bind(super::fts::fts5_query(search).unwrap_or_else(|| "\"\"".into()))
            .push(" and facts_fts.rowid = facts.rowid) as rank"),
        None => list.push("null as rank"),
    };
    list.push(" from facts");
    filters(&mut list, query)?;
    if let Some(cursor) = &query.cursor {
        list.push(" and (created_at, id) < (")
            .push_bind(stamp(cursor.at))
            .push(", ")
            .push_bind(cursor.id.to_string())
            .push(")");
    }
    list.push(match query.search {
        Some(_) => " order by rank desc, created_at desc, id desc limit ",
        None => " order by created_at desc, id desc limit ",
    });
    list.push_bind(query.limit)
        .push(" offset ")
        .push_bind(query.offset);
    let rows: Vec<RankedRow> = list.build_query_as().fetch_all(&store.reader).await?;
    let items = rows
        .into_iter()
        .map(|row| Ok((row.fact.into_fact()?, row.rank.map(|r| r as f32))))
        .collect::<StoreResult<_>>()?;
    Ok(FactPage::new(query, total, items))
}

#[derive(sqlx::FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    fact: FactRow,
    rank: Option<f64>,
}

async fn count(store: &SqliteStore, query: &FactQuery) -> StoreResult<(Option<i64>, bool)> {
    count_matches(store, query.count, |matches| {
        matches.push(" from facts");
        filters(matches, query)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_filter_becomes_one_condition_per_leaf() {
        let value = json!({"author": {"name": "Ada", "born": 1815}});
        let mut leaves = Vec::new();
        leaf_paths("$", &value, &mut leaves).unwrap();
        let paths: Vec<&str> = leaves.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, [r#"$."author"."name""#, r#"$."author"."born""#]);
    }

    #[test]
    fn an_array_filter_is_refused_as_unsupported() {
        let mut leaves = Vec::new();
        let err = leaf_paths("$", &json!({"a": [1]}), &mut leaves).unwrap_err();
        assert!(matches!(err, StoreError::Unsupported(_)));
    }

    #[test]
    fn keys_with_dots_and_quotes_stay_one_path_step() {
        assert_eq!(json_key(r#"a.b"c"#), r#""a.b\"c""#);
    }
}
