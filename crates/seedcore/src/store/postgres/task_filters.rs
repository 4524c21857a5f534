//! The conditions of [`TaskFilter`] on PostgreSQL, pushed by the task list and by bulk actions
//! alike, so that an action on "all N matching" reads exactly the tasks the list shows.
//!
//! Each condition starts with ` and `: the caller has opened the `where` clause. Columns are
//! unqualified, so the conditions read from `tasks`, `task_history` or the view `all_tasks`.

use sqlx::{Postgres, QueryBuilder, types::Json};

use crate::store::{TaskFilter, like_literal};

/// Appends a condition for every filter given.
pub(super) fn push_task_filters(builder: &mut QueryBuilder<Postgres>, filter: &TaskFilter) {
    let exact = [
        ("type", &filter.task_type),
        ("queue", &filter.queue),
        ("domain", &filter.domain),
    ];
    for (column, value) in exact {
        if let Some(value) = value {
            builder
                .push(format_args!(" and {column} = "))
                .push_bind(value.clone());
        }
    }
    if let Some(workflow) = filter.workflow_id {
        builder.push(" and workflow_id = ").push_bind(workflow);
    }
    if let Some(parent) = filter.parent {
        // The predicate of the children indexes first, so that the planner may use them.
        builder
            .push(" and depends_on <> '{}' and depends_on @> array[")
            .push_bind(parent)
            .push("]::uuid[]");
    }
    if let Some(after) = filter.created_after {
        builder.push(" and created_at > ").push_bind(after);
    }
    if let Some(before) = filter.created_before {
        builder.push(" and created_at < ").push_bind(before);
    }
    if let Some(q) = &filter.q {
        let pattern = format!("%{}%", like_literal(q));
        builder
            .push(" and (params::text ilike ")
            .push_bind(pattern.clone())
            .push(r" escape '\' or error ilike ")
            .push_bind(pattern)
            .push(r" escape '\')");
    }
    // Containment of the one-path object is equality at the path for a scalar: numbers compare
    // by value, and a value of another type (or inside an array) is not contained.
    for param in &filter.params {
        builder
            .push(" and params @> ")
            .push_bind(Json(param.contained()));
    }
}
