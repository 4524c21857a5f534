//! Path ids: a whole UUID, or a prefix of one that must resolve to a single row.
//!
//! A prefix is matched against the canonical form (lowercase, hyphenated). Rather than a text
//! scan, it becomes a range of UUIDs `[prefix000…, prefixfff…]`, which the primary key index
//! answers directly: canonical text order and UUID byte order agree.

use uuid::Uuid;

/// Hyphen positions in the canonical 36-character form.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// A parsed path id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdRef {
    /// The id parsed as a UUID: looked up exactly.
    Exact(Uuid),
    /// A prefix of the canonical form, as sent.
    Prefix {
        /// The prefix as sent.
        raw: String,
        /// The inclusive UUID range the prefix covers; None when no canonical id can start with
        /// it (a hyphen out of place).
        range: Option<(Uuid, Uuid)>,
    },
}

/// The id is neither a UUID nor a usable prefix.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("Input should be a UUID or a prefix of 4 to 35 hexadecimal digits and hyphens, got '{0}'")]
pub struct InvalidId(pub String);

impl IdRef {
    /// Reads a path id: a UUID (any case, hyphens optional), else a prefix of 4 to 35
    /// hexadecimal digits and hyphens.
    pub fn parse(raw: &str) -> Result<IdRef, InvalidId> {
        if let Ok(id) = Uuid::try_parse(raw) {
            return Ok(IdRef::Exact(id));
        }
        let prefix_like =
            (4..=35).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !prefix_like {
            return Err(InvalidId(raw.to_string()));
        }
        Ok(IdRef::Prefix {
            raw: raw.to_string(),
            range: prefix_range(&raw.to_ascii_lowercase()),
        })
    }

    /// The id as the client sent it, for messages.
    pub fn as_sent(&self) -> String {
        match self {
            IdRef::Exact(id) => id.to_string(),
            IdRef::Prefix { raw, .. } => raw.clone(),
        }
    }
}

fn prefix_range(prefix: &str) -> Option<(Uuid, Uuid)> {
    let mut digits = String::with_capacity(32);
    for (i, c) in prefix.chars().enumerate() {
        match (HYPHENS.contains(&i), c) {
            (true, '-') => {}
            (false, c) if c.is_ascii_hexdigit() => digits.push(c),
            _ => return None,
        }
    }
    let pad = 32 - digits.len();
    let low = format!("{digits}{}", "0".repeat(pad));
    let high = format!("{digits}{}", "f".repeat(pad));
    Some((Uuid::try_parse(&low).ok()?, Uuid::try_parse(&high).ok()?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ID: &str = "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn a_uuid_in_any_case_with_or_without_hyphens_is_exact() {
        let id = Uuid::parse_str(ID).unwrap();
        assert_eq!(IdRef::parse(ID), Ok(IdRef::Exact(id)));
        assert_eq!(IdRef::parse(&ID.to_uppercase()), Ok(IdRef::Exact(id)));
        assert_eq!(IdRef::parse(&ID.replace('-', "")), Ok(IdRef::Exact(id)));
    }

    #[test]
    fn a_prefix_covers_exactly_the_ids_that_start_with_it() {
        let IdRef::Prefix {
            range: Some((low, high)),
            ..
        } = IdRef::parse("0F8E2C4A-1b").unwrap()
        else {
            panic!("expected a prefix with a range")
        };
        assert_eq!(low.to_string(), "0f8e2c4a-1b00-0000-0000-000000000000");
        assert_eq!(high.to_string(), "0f8e2c4a-1bff-ffff-ffff-ffffffffffff");
        let id = Uuid::parse_str(ID).unwrap();
        assert!(low <= id && id <= high);
    }

    #[test]
    fn a_prefix_with_a_misplaced_hyphen_matches_nothing() {
        assert_eq!(
            IdRef::parse("0f8e-2c"),
            Ok(IdRef::Prefix {
                raw: "0f8e-2c".into(),
                range: None
            })
        );
    }

    #[test]
    fn too_short_too_long_or_non_hex_ids_are_invalid() {
        for raw in [
            "abc",
            "",
            "not-a-uuid",
            "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b0",
            "ghij",
        ] {
            assert_eq!(IdRef::parse(raw), Err(InvalidId(raw.into())), "{raw}");
        }
    }

    #[test]
    fn thirty_five_characters_is_still_a_prefix() {
        assert!(matches!(
            IdRef::parse(&ID[..35]),
            Ok(IdRef::Prefix { range: Some(_), .. })
        ));
    }

    /// A canonical id written in a random mix of cases.
    fn any_case(text: &str, upper: &[bool]) -> String {
        text.chars()
            .zip(upper.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_parses_as_exactly_what_the_contract_says(raw in "\\PC{0,40}|[0-9a-fA-F-]{0,40}") {
            let prefix_like = (4..=35).contains(&raw.len())
                && raw.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            match IdRef::parse(&raw) {
                Ok(IdRef::Exact(id)) => prop_assert_eq!(Uuid::try_parse(&raw).ok(), Some(id)),
                Ok(IdRef::Prefix { raw: kept, .. }) => {
                    prop_assert!(prefix_like && Uuid::try_parse(&raw).is_err());
                    prop_assert_eq!(kept, raw);
                }
                Err(InvalidId(kept)) => {
                    prop_assert!(!prefix_like && Uuid::try_parse(&raw).is_err());
                    prop_assert_eq!(kept, raw);
                }
            }
        }

        #[test]
        fn every_prefix_of_an_id_in_any_case_covers_that_id(
            bytes in any::<[u8; 16]>(),
            len in 4usize..=35,
            upper in proptest::collection::vec(any::<bool>(), 1..36),
        ) {
            let id = Uuid::from_bytes(bytes);
            let prefix = any_case(&id.to_string()[..len], &upper);
            let Ok(IdRef::Prefix { range: Some((low, high)), .. }) = IdRef::parse(&prefix) else {
                return Err(TestCaseError::fail(format!("{prefix} is not a usable prefix")));
            };
            prop_assert!(low <= id && id <= high);
            let canonical = prefix.to_ascii_lowercase();
            prop_assert!(low.to_string().starts_with(&canonical));
            prop_assert!(high.to_string().starts_with(&canonical));
        }

        #[test]
        fn a_prefix_range_holds_only_ids_that_start_with_the_prefix(
            raw in "[0-9a-f-]{4,35}",
            bytes in any::<[u8; 16]>(),
        ) {
            let parsed = IdRef::parse(&raw).unwrap();
            let id = Uuid::from_bytes(bytes);
            if let IdRef::Prefix { range, .. } = parsed {
                let inside = range.is_some_and(|(low, high)| low <= id && id <= high);
                prop_assert_eq!(inside, id.to_string().starts_with(&raw));
            }
        }

        #[test]
        fn a_whole_id_in_any_of_its_forms_and_cases_is_exact(
            bytes in any::<[u8; 16]>(),
            form in 0usize..4,
            upper in proptest::collection::vec(any::<bool>(), 1..45),
        ) {
            let id = Uuid::from_bytes(bytes);
            let text = match form {
                0 => id.hyphenated().to_string(),
                1 => id.simple().to_string(),
                2 => id.braced().to_string(),
                _ => id.urn().to_string(),
            };
            let text = any_case(&text, &upper);
            prop_assert_eq!(IdRef::parse(&text), Ok(IdRef::Exact(id)));
        }
    }
}
