//! Keyset cursors: a position in a list ordered by a time and then by id, as the fact and
//! task lists hand it to clients (`next_cursor`) and take it back (`cursor`).
//!
//! Invariants: the text form is `<microseconds since the epoch>_<id without hyphens>`, and
//! [`Cursor::decode`] reads back exactly what [`Cursor::encode`] writes (and the other spellings
//! of a UUID); a decoded time lies in the years 1 to 9999, which both databases can compare
//! (a time beyond is moved to the nearer end: no stored row lies between the two, so the page
//! is the same). Which time it holds (created or updated) is the list's sort, not the cursor's.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
const EARLIEST_MICROS: i64 = -62_135_596_800_000_000;
const LATEST_MICROS: i64 = 253_402_300_799_999_999;

/// A position in a list ordered by (time, id): the next page starts just past it, in the
/// list's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The sort time of the last row of the previous page.
    pub at: DateTime<Utc>,
    /// That row's id, which breaks ties.
    pub id: Uuid,
}

impl Cursor {
    /// The position of the row with this sort time and id.
    pub fn new(at: DateTime<Utc>, id: Uuid) -> Cursor {
        Cursor { at, id }
    }

    /// The text form, as clients send it back.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.timestamp_micros(), self.id.simple())
    }

    /// Reads the text form; None when it is malformed.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (micros, id) = text.split_once('_')?;
        let micros: i64 = micros.parse().ok()?;
        let at = DateTime::from_timestamp_micros(micros.clamp(EARLIEST_MICROS, LATEST_MICROS))?;
        let id = Uuid::try_parse(id).ok()?;
        Some(Cursor { at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_text() {
        let cursor = Cursor::new(
            DateTime::from_timestamp_micros(1_764_331_200_123_456).unwrap(),
            Uuid::new_v4(),
        );
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }

    #[test]
    fn a_time_beyond_the_years_1_to_9999_is_read_as_the_nearer_end() {
        let id = "0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b";
        let early = Cursor::decode(&format!("-718697098499024741_{id}")).unwrap();
        assert_eq!(early.at.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        let late = Cursor::decode(&format!("9223372036854775807_{id}")).unwrap();
        assert_eq!(late.at.to_rfc3339(), "9999-12-31T23:59:59.999999+00:00");
    }

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "",
            "abc",
            "12_notauuid",
            "x_0f8e2c4a1b3d4e5f8a9b0c1d2e3f4a5b",
        ] {
            assert_eq!(Cursor::decode(text), None, "{text}");
        }
    }
}
