//! The conditions of [`TaskFilter`] on SQLite, pushed by the task list and by bulk actions
//! alike, so that an action on "all N matching" reads exactly the tasks the list shows.
//!
//! Each condition starts with ` and `: the caller has opened the `where` clause on `tasks`.
//! Differences from PostgreSQL, by necessity: `q` folds ASCII case only and reads the
//! parameters as stored (compact JSON, `{"a":1}` where PostgreSQL writes `{"a": 1}`).

use sqlx::{QueryBuilder, Sqlite};

use super::{
    fact_search::{json_key, leaf_condition},
    rows::stamp,
};
use crate::store::TaskFilter;

/// Whether the equality and time conditions may use an index: bulk actions walk the primary
/// key and write `+column` to keep SQLite from choosing another index (see `actions`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Indexes {
    /// Let the planner choose.
    Any,
    /// Keep the conditions off indexes.
    Unused,
}

/// Appends a condition for every filter given.
pub(super) fn push_task_filters(
    builder: &mut QueryBuilder<Sqlite>,
    filter: &TaskFilter,
    indexes: Indexes,
) {
    let plus = if indexes == Indexes::Unused { "+" } else { "" };
    let exact = [
        ("type", filter.task_type.clone()),
        ("queue", filter.queue.clone()),
        ("domain", filter.domain.clone()),
        ("workflow_id", filter.workflow_id.map(|id| id.to_string())),
    ];
    for (column, value) in exact {
        if let Some(value) = value {
            builder
                .push(format_args!(" and {plus}{column} = "))
                .push_bind(value);
        }
    }
    if let Some(parent) = filter.parent {
        builder
            .push(" and id in (select task_id from task_dependencies where depends_on = ")
            .push_bind(parent.to_string())
            .push(")");
    }
    if let Some(after) = filter.created_after {
        builder
            .push(format_args!(" and {plus}created_at > "))
            .push_bind(stamp(after));
    }
    if let Some(before) = filter.created_before {
        builder
            .push(format_args!(" and {plus}created_at < "))
            .push_bind(stamp(before));
    }
    if let Some(q) = &filter.q {
        // instr rather than LIKE: nothing in `q` is a wildcard, and no limit on its length.
        builder
            .push(" and (instr(lower(params), lower(")
            .push_bind(q.clone())
            .push(")) > 0 or instr(lower(coalesce(error, '')), lower(")
            .push_bind(q.clone())
            .push(")) > 0)");
    }
    for param in &filter.params {
        let path: String = param.path.iter().fold("$".to_owned(), |path, key| {
            format!("{path}.{}", json_key(key))
        });
        leaf_condition(builder, "params", path, &param.value);
    }
}
