//! The types a caller passes to and gets from the store's reads: pages, the task and fact list
//! queries with their orders and filters, tag counts, and the escaping of literal LIKE patterns.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::task_filter::TaskFilter;
use crate::model::{Cursor, Fact, Task, TaskStatus};

/// One page of a list and the number of rows matching before paging.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// Rows matching the filters, whatever `limit` and `offset` say.
    pub total: i64,
    /// The rows of this page, in the list's order.
    pub items: Vec<T>,
}

/// Filters, order and paging for the task list.
#[derive(Clone, Debug, Default)]
pub struct TaskQuery {
    /// Only tasks in this status.
    pub status: Option<TaskStatus>,
    /// The other filters, shared with bulk actions.
    pub filter: TaskFilter,
    /// The order; newest created first by default.
    pub sort: TaskSort,
    /// Continue after this position of the sort (keyset paging).
    pub cursor: Option<Cursor>,
    /// How `total` is counted; exactly by default.
    pub count: CountMode,
    /// Most tasks to return.
    pub limit: i64,
    /// Tasks to skip before the page starts.
    pub offset: i64,
}

impl TaskQuery {
    /// Whether the query uses more than the original service's parameters: the answer then
    /// carries `next_cursor` (and says when its total is an estimate).
    pub fn is_extended(&self) -> bool {
        self.filter.is_extended()
            || self.sort != TaskSort::default()
            || self.cursor.is_some()
            || self.count != CountMode::Exact
    }

    /// Whether it filters on nothing but perhaps the status: the counters know the total.
    pub fn counted_by_status(&self) -> bool {
        self.filter == TaskFilter::default()
    }
}

/// The orders of the task list: by creation or last update time, either way, ties broken by
/// id in the same direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskSort {
    /// Newest created first (the contract's order).
    #[default]
    CreatedDesc,
    /// Oldest created first.
    CreatedAsc,
    /// Most recently updated first.
    UpdatedDesc,
    /// Least recently updated first.
    UpdatedAsc,
}

impl TaskSort {
    /// Every order, as the API spells them.
    pub const NAMES: [&str; 4] = ["-created_at", "created_at", "-updated_at", "updated_at"];

    /// The order spelt `text` (`-` for descending).
    pub fn parse(text: &str) -> Option<TaskSort> {
        match text {
            "-created_at" => Some(TaskSort::CreatedDesc),
            "created_at" => Some(TaskSort::CreatedAsc),
            "-updated_at" => Some(TaskSort::UpdatedDesc),
            "updated_at" => Some(TaskSort::UpdatedAsc),
            _ => None,
        }
    }

    /// The time column sorted on.
    pub fn column(self) -> &'static str {
        match self {
            TaskSort::CreatedDesc | TaskSort::CreatedAsc => "created_at",
            TaskSort::UpdatedDesc | TaskSort::UpdatedAsc => "updated_at",
        }
    }

    /// Whether the latest comes first.
    pub fn descending(self) -> bool {
        matches!(self, TaskSort::CreatedDesc | TaskSort::UpdatedDesc)
    }

    /// `asc` or `desc`.
    pub fn direction(self) -> &'static str {
        if self.descending() { "desc" } else { "asc" }
    }

    /// The comparison that keeps the rows past a cursor.
    pub fn past(self) -> &'static str {
        if self.descending() { "<" } else { ">" }
    }

    /// The position of `task` in this order.
    pub fn cursor_of(self, task: &Task) -> Cursor {
        match self {
            TaskSort::CreatedDesc | TaskSort::CreatedAsc => Cursor::new(task.created_at, task.id),
            TaskSort::UpdatedDesc | TaskSort::UpdatedAsc => Cursor::new(task.updated_at, task.id),
        }
    }
}

/// A page of tasks with what the extended list reports.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPage {
    /// None with `count=none`.
    pub total: Option<i64>,
    /// True when `total` is an estimate.
    pub total_estimated: bool,
    /// The rows of this page, in the query's order.
    pub items: Vec<Task>,
    /// Where the next page starts, when this one was full.
    pub next_cursor: Option<Cursor>,
}

impl TaskPage {
    /// A page of `query`'s list with its total; a full page tells where the next one starts.
    pub(crate) fn new(
        query: &TaskQuery,
        (total, total_estimated): (Option<i64>, bool),
        items: Vec<Task>,
    ) -> TaskPage {
        let full = items.len() as i64 == query.limit;
        let next_cursor = items
            .last()
            .filter(|_| full)
            .map(|task| query.sort.cursor_of(task));
        TaskPage {
            total,
            total_estimated,
            items,
            next_cursor,
        }
    }
}

/// Filters and paging for the fact list.
#[derive(Clone, Debug, Default)]
pub struct FactQuery {
    /// Case-insensitive substring of the text or of the metadata as JSON text; taken literally.
    pub q: Option<String>,
    /// Full-text search (stemmed words, ranked); results are ordered by rank.
    pub search: Option<String>,
    /// The fact carries every one of these tags.
    pub tags: Vec<String>,
    /// The fact carries at least one of these tags.
    pub any_tags: Vec<String>,
    /// Each filter must match a top-level metadata key.
    pub meta: Vec<MetaFilter>,
    /// Only facts created strictly after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only facts created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this position of the newest-first order (keyset paging).
    pub cursor: Option<Cursor>,
    /// How `total` is counted; exactly by default.
    pub count: CountMode,
    /// Most facts to return.
    pub limit: i64,
    /// Facts to skip before the page starts.
    pub offset: i64,
}

impl FactQuery {
    /// Whether the query uses more than the original service's `q`, `tag`, `limit`, `offset`.
    pub fn is_extended(&self) -> bool {
        self.search.is_some()
            || !self.any_tags.is_empty()
            || !self.meta.is_empty()
            || self.created_after.is_some()
            || self.created_before.is_some()
            || self.cursor.is_some()
            || self.count != CountMode::Exact
    }
}

/// `meta.<key>=<value>`: the metadata's `key` holds (contains, for objects and arrays) one of
/// `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaFilter {
    /// The top-level metadata key.
    pub key: String,
    /// Accepted values; the filter matches when any one of them does.
    pub values: Vec<Value>,
}

/// How the total of a task or fact list is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CountMode {
    /// Every match is counted (the contract's behaviour).
    #[default]
    Exact,
    /// The planner's estimate when it expects more than [`ESTIMATE_EXACT_UP_TO`] matches;
    /// otherwise counted exactly, up to that many (an estimate beyond).
    Estimate,
    /// No total.
    None,
}

/// With `count=estimate`, totals up to this are still counted exactly.
pub const ESTIMATE_EXACT_UP_TO: i64 = 10_000;

/// A page of facts with what the extended list reports.
#[derive(Clone, Debug, PartialEq)]
pub struct FactPage {
    /// None with `count=none`.
    pub total: Option<i64>,
    /// True when `total` is the planner's estimate.
    pub total_estimated: bool,
    /// Each fact with its full-text rank when the query searched.
    pub items: Vec<(Fact, Option<f32>)>,
    /// Where the next page starts, when this one was full and ordered by recency.
    pub next_cursor: Option<Cursor>,
}

impl FactPage {
    /// A page of `query`'s list with its total: where the next page starts is known when the
    /// page is full and ordered by recency (not by rank).
    pub(crate) fn new(
        query: &FactQuery,
        (total, total_estimated): (Option<i64>, bool),
        items: Vec<(Fact, Option<f32>)>,
    ) -> FactPage {
        let full = items.len() as i64 == query.limit;
        let next_cursor = (full && query.search.is_none())
            .then(|| {
                items
                    .last()
                    .map(|(fact, _)| Cursor::new(fact.created_at, fact.id))
            })
            .flatten();
        FactPage {
            total,
            total_estimated,
            items,
            next_cursor,
        }
    }

    /// The page as the original service's list shows it: the total (0 with `count=none`) and
    /// the facts without ranks.
    pub fn into_page(self) -> Page<Fact> {
        Page {
            total: self.total.unwrap_or_default(),
            items: self.items.into_iter().map(|(fact, _)| fact).collect(),
        }
    }
}

/// A tag and how many facts carry it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct TagCount {
    /// The tag as stored.
    pub tag: String,
    /// Facts carrying it.
    pub count: i64,
}

/// Tasks or facts, for operations that apply to either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// Rows of the `tasks` table.
    Task,
    /// Rows of the `facts` table.
    Fact,
}

/// Escapes `%`, `_` and `\` so that a LIKE pattern matches the text literally.
pub fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_and_the_escape_character_are_escaped() {
        assert_eq!(like_literal(r"50%_off\now"), r"50\%\_off\\now");
        assert_eq!(like_literal("plain"), "plain");
    }
}
