//! Web-search syntax (as PostgreSQL's `websearch_to_tsquery` reads it) translated to an FTS5
//! query, so `search=` means the same on both backends: words are all required, `"a phrase"`
//! is a phrase, `or` between two terms makes either enough, `-word` excludes.
//!
//! Every term is written as an FTS5 string, so nothing a user types is FTS5 syntax.

/// The FTS5 query for `input`, or None when it asks for nothing positive (no term, or only
/// exclusions), which matches no fact (as on PostgreSQL).
pub fn fts5_query(input: &str) -> Option<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let mut join_next = false;
    for (term, negated) in terms(input) {
        if !negated && term.eq_ignore_ascii_case("or") {
            join_next = !groups.is_empty();
            continue;
        }
        let quoted = quote(&term);
        if negated {
            excluded.push(quoted);
        } else if join_next {
            groups.last_mut().expect("a group to join").push(quoted);
        } else {
            groups.push(vec![quoted]);
        }
        join_next = false;
    }
    if groups.is_empty() {
        return None;
    }
    let positive: Vec<String> = groups
        .iter()
        .map(|g| format!("({})", g.join(" OR ")))
        .collect();
    let mut query = positive.join(" AND ");
    if !excluded.is_empty() {
        query = format!("({query}) NOT ({})", excluded.join(" OR "));
    }
    Some(query)
}

/// Splits the input into terms: quoted phrases and bare words, each maybe negated by `-`.
fn terms(input: &str) -> Vec<(String, bool)> {
    let mut terms = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        let term: String = if chars.peek() == Some(&'"') {
            chars.next();
            chars.by_ref().take_while(|&c| c != '"').collect()
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            word
        };
        if term.chars().any(char::is_alphanumeric) {
            terms.push((term, negated));
        }
    }
    terms
}

/// An FTS5 string: double quotes around, inner quotes doubled.
fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_all_required_and_quoted() {
        assert_eq!(
            fts5_query("green apples").as_deref(),
            Some(r#"("green") AND ("apples")"#)
        );
    }

    #[test]
    fn or_joins_its_neighbours_and_a_minus_excludes() {
        assert_eq!(
            fts5_query("apples or pears -rotten").as_deref(),
            Some(r#"(("apples" OR "pears")) NOT ("rotten")"#)
        );
    }

    #[test]
    fn a_quoted_phrase_stays_one_term() {
        assert_eq!(
            fts5_query(r#""green apples" pie"#).as_deref(),
            Some(r#"("green apples") AND ("pie")"#)
        );
    }

    #[test]
    fn fts5_syntax_typed_by_a_user_is_just_text() {
        assert_eq!(
            fts5_query(r#"NEAR(a b) col:x a"b"#).as_deref(),
            Some(r#"("NEAR(a") AND ("b)") AND ("col:x") AND ("a""b")"#)
        );
    }

    #[test]
    fn only_exclusions_or_punctuation_ask_for_nothing() {
        assert_eq!(fts5_query("-apples"), None);
        assert_eq!(fts5_query("  !!  "), None);
        assert_eq!(fts5_query("or"), None);
    }
}
