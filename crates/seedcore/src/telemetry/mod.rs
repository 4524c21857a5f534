//! Logging: `LOG_LEVEL` (the original's names, any case) or a tracing filter, RUST_LOG winning;
//! `LOG_FORMAT` picks human-readable text (the default) or one JSON object per line.
//!
//! Every log line written while a request is handled carries that request's span (its id,
//! method, route; see [`request`]), and every line written while a task's handler runs carries
//! the task's span (task id, attempt, worker, queue, type; see `engine`). In JSON the span's
//! fields are the object under `span`; the event's own fields are at the top level beside
//! `timestamp`, `level`, `target` and `message`.

pub mod request;
pub mod traceparent;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Turns a `LOG_LEVEL` value into a tracing filter directive. A plain level keeps the server's
/// routine notices ("relation already exists, skipping") out of the log unless asked for.
pub fn filter_directive(level: &str) -> String {
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "critical" | "fatal" => "error".to_string(),
        "warning" => "warn".into(),
        "notset" => "trace".into(),
        other => other.into(),
    };
    match level.as_str() {
        "info" => format!("{level},sqlx::postgres::notice=warn"),
        _ => level,
    }
}

/// Installs the global subscriber once; later calls (tests) keep the first.
pub fn init(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(filter_directive(&config.log_level)).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder
            .with_ansi(colours_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Colour codes only for a person at a terminal: not in captured logs (files, journald, a
/// supervisor's pipe) and not when `NO_COLOR` is set to anything.
fn colours_wanted(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_names_map_to_tracing_levels() {
        assert_eq!(filter_directive("DEBUG"), "debug");
        assert_eq!(filter_directive("info"), "info,sqlx::postgres::notice=warn");
        assert_eq!(filter_directive("Warning"), "warn");
        assert_eq!(filter_directive("CRITICAL"), "error");
        assert_eq!(filter_directive("seedcore=debug"), "seedcore=debug");
    }

    #[test]
    fn logs_are_coloured_only_at_a_terminal_without_no_color() {
        assert!(colours_wanted(true, None));
        assert!(colours_wanted(true, Some("".into())));
        assert!(!colours_wanted(true, Some("1".into())));
        assert!(!colours_wanted(false, None));
    }
}
