//! The caps on what a client may send, beyond the body size: how large a task's `params`, a
//! fact's `meta_data` and text may be, how many items a list and a repeated query parameter
//! may hold, and how far away a delay or a date may point. Every value over a cap is refused
//! with a 422 that names the field and the cap; nothing is clamped or cut silently.
//!
//! Invariants:
//! - the sizes are settable ([`Limits`], installed once at start by [`install`]); until then,
//!   and in processes that never install any, the defaults apply;
//! - the counts and the time horizons are fixed: they protect the stores (a query of thousands
//!   of conditions, a timestamp past what the databases hold) rather than express a policy;
//! - each cap is declared on a spec in the field tables, so the OpenAPI document states it.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;

/// The settable sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `params` of a task, in bytes of compact JSON.
    pub params_bytes: usize,
    /// Largest `meta_data` of a fact, in bytes of compact JSON.
    pub meta_data_bytes: usize,
    /// Longest text of a fact, in characters.
    pub fact_text_chars: usize,
}

/// The defaults of [`Limits`], also what the OpenAPI document states. Each is the default body
/// size (1 MiB), so that any single create the body limit lets through is taken as before; the
/// caps bound what the larger bodies carry: a bulk item, a workflow step, a schedule's template,
/// or any request once the body limit is raised.
pub const DEFAULT_LIMITS: Limits = Limits {
    params_bytes: 1_048_576,
    meta_data_bytes: 1_048_576,
    fact_text_chars: 1_048_576,
};

/// The default cap on a handler's result, in bytes of compact JSON: room for the envelope
/// around an `echo` of the largest params.
pub const DEFAULT_RESULT_BYTES: usize = 2_097_152;

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

static INSTALLED: OnceLock<Limits> = OnceLock::new();

/// Makes `limits` the process's sizes. Only the first call counts (a process is configured
/// once); it returns false when the sizes had already been set to something else.
pub fn install(limits: Limits) -> bool {
    *INSTALLED.get_or_init(|| limits) == limits
}

/// The process's sizes: those installed, else the defaults.
pub fn current() -> Limits {
    INSTALLED.get().copied().unwrap_or(DEFAULT_LIMITS)
}

/// Which settable size a field is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// [`Limits::params_bytes`].
    ParamsBytes,
    /// [`Limits::meta_data_bytes`].
    MetaDataBytes,
    /// [`Limits::fact_text_chars`].
    FactTextChars,
}

impl Size {
    /// The cap in `limits`.
    pub fn of(self, limits: &Limits) -> usize {
        match self {
            Size::ParamsBytes => limits.params_bytes,
            Size::MetaDataBytes => limits.meta_data_bytes,
            Size::FactTextChars => limits.fact_text_chars,
        }
    }

    /// The cap unless configured otherwise.
    pub const fn default_cap(self) -> usize {
        match self {
            Size::ParamsBytes => DEFAULT_LIMITS.params_bytes,
            Size::MetaDataBytes => DEFAULT_LIMITS.meta_data_bytes,
            Size::FactTextChars => DEFAULT_LIMITS.fact_text_chars,
        }
    }

    /// The environment variable that sets it.
    pub fn setting(self) -> &'static str {
        match self {
            Size::ParamsBytes => "SEEDCORE_MAX_PARAMS_BYTES",
            Size::MetaDataBytes => "SEEDCORE_MAX_META_DATA_BYTES",
            Size::FactTextChars => "SEEDCORE_MAX_FACT_TEXT_CHARS",
        }
    }

    /// What the cap counts.
    pub fn unit(self) -> &'static str {
        match self {
            Size::ParamsBytes | Size::MetaDataBytes => "bytes as compact JSON",
            Size::FactTextChars => "characters",
        }
    }

    /// The sentence the document adds to the field's description.
    pub fn note(self) -> String {
        format!(
            "At most {} {} (the default; set by {}).",
            thousands(self.default_cap()),
            self.unit(),
            self.setting()
        )
    }
}

/// Most tags one fact carries.
pub const MAX_TAGS: usize = 100;
/// Most characters in one tag.
pub const MAX_TAG_CHARS: usize = 200;
/// Most tasks one task depends on.
pub const MAX_PARENTS: usize = 1000;
/// Most facts one task refers to.
pub const MAX_ATTACHED_FACTS: usize = 1000;
/// Most values one query parameter may repeat (e.g. `tag`), and most `meta.<key>` filters.
pub const MAX_QUERY_VALUES: usize = 100;
/// Most name/value pairs a query string may hold, known names or not.
pub const MAX_QUERY_PAIRS: usize = 4000;
/// Longest delay a task may ask for: ten years of 365 days, in seconds.
pub const MAX_DELAY_SECONDS: f64 = 315_360_000.0;
/// Longest an attempt may be given: a year of 365 days, in seconds.
pub const MAX_TIMEOUT_SECONDS: f64 = 31_536_000.0;
/// How far from now, either way, a `run_at` may be: ten years of 365 days.
pub const RUN_AT_HORIZON_DAYS: i64 = 3650;

/// The size of `value` as compact JSON, counted up to `cap + 1` bytes at most: a value far over
/// the cap costs no more to measure than one just over it.
pub fn json_bytes_up_to(value: &impl Serialize, cap: usize) -> usize {
    let mut counter = Counter {
        count: 0,
        stop: cap.saturating_add(1),
    };
    // The only error is the counter's own stop, which is the answer.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.count.min(counter.stop)
}

/// Whether `value`, as compact JSON, is over `cap` bytes.
pub fn json_over(value: &Value, cap: usize) -> bool {
    json_bytes_up_to(value, cap) > cap
}

struct Counter {
    count: usize,
    stop: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count = self.count.saturating_add(buf.len());
        if self.count >= self.stop {
            return Err(std::io::Error::other("over the cap"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `1234567` as `1,234,567`, for messages people read.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn measuring_stops_just_past_the_cap() {
        let big = json!({"text": "x".repeat(10_000)});
        assert_eq!(json_bytes_up_to(&big, 100), 101);
        assert_eq!(json_bytes_up_to(&json!({"a": 1}), 100), 7);
        assert!(json_over(&big, 100));
        assert!(!json_over(&json!({"a": 1}), 7));
        assert!(json_over(&json!({"a": 1}), 6));
    }

    #[test]
    fn large_numbers_are_written_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(262_144), "262,144");
        assert_eq!(thousands(1_048_576), "1,048,576");
    }

    #[test]
    fn every_size_names_its_setting_and_default() {
        assert_eq!(
            Size::ParamsBytes.note(),
            "At most 1,048,576 bytes as compact JSON (the default; set by SEEDCORE_MAX_PARAMS_BYTES)."
        );
        assert_eq!(Size::FactTextChars.default_cap(), 1_048_576);
    }
}
