//! How the client prints: human tables by default, the server's JSON with `--json`.
//!
//! Invariant: with `--json`, stdout holds only JSON (one document, or JSON lines where a
//! command streams), so that it can be piped into another command; progress and notes go to
//! stderr.

use comfy_table::{ContentArrangement, LineStyle, Table, TableStyle, presets};
use indicatif::{ProgressState, ProgressStyle};

/// Columns apart, a rule under the header, nothing else.
const LIST_STYLE: TableStyle =
    presets::NOTHING.header_separator(LineStyle::new(' ', '─', ' ', ' '));
use serde_json::Value;

/// Prints `value` as pretty JSON on stdout.
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints a table with `headers` over `rows`.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_style(LIST_STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    print_trimmed(&table);
}

/// Prints the table's lines without the padding its last column leaves.
fn print_trimmed(table: &Table) {
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
}

/// Prints one object as a two-column table of its keys and values.
pub fn record(value: &Value, keys: &[&str]) {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    for key in keys {
        if let Some(field) = value.get(*key) {
            table.add_row(vec![key.to_string(), cell_long(field)]);
        }
    }
    print_trimmed(&table);
}

/// A value in a table cell: strings bare, null as `-`, timestamps to the second.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) if looks_like_timestamp(s) => short_time(s),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value in a record: objects and arrays as pretty JSON, the rest as [`cell`].
fn cell_long(value: &Value) -> String {
    match value {
        Value::Object(_) | Value::Array(_) => {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        }
        other => cell(other),
    }
}

/// The field `key` of `value` as a cell.
pub fn field(value: &Value, key: &str) -> String {
    cell(value.get(key).unwrap_or(&Value::Null))
}

/// `2026-12-05T00:14:35.123456Z` as `2026-12-05 00:14:35`.
pub fn short_time(s: &str) -> String {
    let seconds = s.get(..19).unwrap_or(s);
    seconds.replacen('T', " ", 1)
}

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
}

/// Counts per status (`{"queued": 2, "completed": 5}`) as `completed 5, queued 2`.
pub fn counts(value: &Value) -> String {
    match value.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// The items of a list answer (`{"items": [...]}`), empty when there are none.
pub fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A progress bar's style from `template`, where `{rate}` reads as `1234 <unit>/s`.
pub fn progress_style(template: &str, unit: &'static str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0} {unit}/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}
