//! The W3C Trace Context `traceparent` header: `00-<trace id>-<parent id>-<flags>`, lowercase
//! hex, 32, 16 and 2 digits (<https://www.w3.org/TR/trace-context/#traceparent-header>).
//!
//! A task created with a valid header keeps it; its executions log the trace id, and a remote
//! executor receives a child of it (same trace id and flags, a fresh parent id). An invalid
//! header is ignored, as the recommendation tells a receiver to do: the request is not refused
//! for it, the task simply starts no trace.
//!
//! Invariants: [`TraceParent::parse`] never panics and accepts exactly the valid forms; a parsed
//! value's trace id and parent id are never all zeros, its version never `ff`; it always
//! prints as a version-00 header of 55 characters.

use std::{convert::Infallible, fmt};

use axum::{extract::FromRequestParts, http::request::Parts};

/// Length of a version-00 header.
pub const LEN: usize = 55;

/// A valid `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// The header's value parsed; None when it is not a valid `traceparent`. Version 00 is
    /// exactly 55 characters; a later version may carry more after a `-`, which is dropped
    /// (the recommendation's rule for versions a receiver does not know).
    pub fn parse(header: &str) -> Option<TraceParent> {
        let bytes = header.as_bytes();
        if bytes.len() < LEN {
            return None;
        }
        let version = hex_byte(&bytes[0..2])?;
        let tail_ok = match version {
            0 => bytes.len() == LEN,
            0xff => false,
            _ => bytes.len() == LEN || bytes[LEN] == b'-',
        };
        if !tail_ok || bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(&bytes[3..35])?;
        let parent_id: [u8; 8] = hex_bytes(&bytes[36..52])?;
        let flags = hex_byte(&bytes[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The parent (span) id, 16 lowercase hex digits.
    pub fn parent_id(&self) -> String {
        hex::encode(self.parent_id)
    }

    /// A header for a call made on behalf of this one: the same trace and flags, a new random
    /// parent id (never all zeros).
    pub fn child(&self) -> TraceParent {
        let mut parent_id = [0u8; 8];
        while parent_id == [0; 8] {
            parent_id = rand::random();
        }
        TraceParent { parent_id, ..*self }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.parent_id(),
            self.flags
        )
    }
}

/// The request's `traceparent` when it has exactly one and it is valid; None otherwise (an
/// invalid or repeated header is ignored, never refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceParentHeader(pub Option<TraceParent>);

impl TraceParentHeader {
    /// The header as a task stores it.
    pub fn stored(&self) -> Option<String> {
        self.0.map(|parent| parent.to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TraceParentHeader {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let mut values = parts.headers.get_all("traceparent").iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Ok(TraceParentHeader(None));
        };
        let parsed = value.to_str().ok().and_then(TraceParent::parse);
        if parsed.is_none() {
            tracing::debug!("invalid traceparent header ignored");
        }
        Ok(TraceParentHeader(parsed))
    }
}

/// Two lowercase hex digits as a byte.
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let [out] = hex_bytes::<1>(pair)?;
    Some(out)
}

/// `2 * N` lowercase hex digits as bytes; uppercase is not the header's form.
fn hex_bytes<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N
        || !digits
            .iter()
            .all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_parses_and_prints_back() {
        let parsed = TraceParent::parse(VALID).unwrap();
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.parent_id(), "00f067aa0ba902b7");
        assert_eq!(parsed.to_string(), VALID);
    }

    #[test]
    fn malformed_headers_are_not_trace_parents() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_as_far_as_version_00_goes() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert_eq!(TraceParent::parse(later).unwrap().to_string(), VALID);
    }

    /// The recommendation's grammar, written independently of the parser.
    fn valid_by_the_grammar(header: &str) -> bool {
        let grammar =
            regex::Regex::new(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$")
                .unwrap();
        let Some(parts) = grammar.captures(header) else {
            return false;
        };
        let version = &parts[1];
        version != "ff"
            && !(version == "00" && parts.get(4).is_some())
            && parts[2].bytes().any(|b| b != b'0')
            && parts[3].bytes().any(|b| b != b'0')
    }

    /// Headers near the valid form: hex fields of any case and length, any separators and tails.
    fn near_valid() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            prop_oneof![
                4 => Just("00".to_string()),
                2 => "[0-9a-fA-F]{2}",
                1 => Just("ff".to_string()),
                1 => "[0-9a-z]{1,3}"
            ],
            prop_oneof![4 => "[0-9a-f]{32}", 1 => "0{32}", 1 => "[0-9a-fA-F]{30,33}"],
            prop_oneof![4 => "[0-9a-f]{16}", 1 => "0{16}", 1 => "[0-9a-fA-F]{15,17}"],
            prop_oneof![4 => "[0-9a-f]{2}", 1 => "[0-9a-zA-Z]{1,3}"],
            prop_oneof![4 => Just(String::new()), 1 => "-\\PC{0,8}", 1 => "\\PC{1,4}"],
            prop_oneof![8 => Just("-".to_string()), 1 => "[_ ]"],
        )
            .prop_map(|(version, trace, parent, flags, tail, sep)| {
                format!("{version}-{trace}{sep}{parent}-{flags}{tail}")
            })
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_exactly_when_the_grammar_accepts_it(header in "\\PC{0,64}") {
            proptest::prop_assert_eq!(
                TraceParent::parse(&header).is_some(),
                valid_by_the_grammar(&header)
            );
        }

        #[test]
        fn near_valid_headers_parse_exactly_when_valid_and_print_back(header in near_valid()) {
            let parsed = TraceParent::parse(&header);
            proptest::prop_assert_eq!(parsed.is_some(), valid_by_the_grammar(&header), "{}", header);
            if let Some(parsed) = parsed {
                proptest::prop_assert_eq!(parsed.to_string(), format!("00{}", &header[2..LEN]));
            }
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_and_gets_a_new_parent() {
        let parent = TraceParent::parse(VALID).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.parent_id(), parent.parent_id());
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
        assert!(child.to_string().ends_with("-01"));
    }
}
