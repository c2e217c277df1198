//! ListTransactions v2 `TransactionalIdPattern` (KIP-1152), as Kafka's
//! `TransactionStateManager.listTransactionStates`: a null or empty pattern lists every
//! transactional id; any other is a regular expression that must match the *whole* id
//! (RE2J's `Matcher.matches`); one that does not compile is INVALID_REGULAR_EXPRESSION for
//! the whole request.
//!
//! Kafka compiles with RE2J; the `regex` crate implements the same RE2 syntax (no
//! backreferences, no look-around) in linear time. Known differences: `regex` makes `\w`,
//! `\d`, `\s` and `\b` Unicode-aware where RE2J's are ASCII (`(?-u:\w)` restores ASCII),
//! does not know `\Q...\E` quoting, and refuses a pattern whose compiled form exceeds its
//! size limit (10 MiB), which RE2J might accept.

use regex::Regex;

/// A compiled pattern; `None` inside matches everything.
#[derive(Debug)]
pub struct TransactionalIdPattern(Option<Regex>);

#[derive(Debug, thiserror::Error)]
#[error("Transaction ID pattern `{pattern}` is not a valid regular expression: {source}.")]
pub struct InvalidPattern {
    pattern: String,
    #[source]
    source: regex::Error,
}

impl TransactionalIdPattern {
    pub fn compile(pattern: Option<&str>) -> Result<TransactionalIdPattern, InvalidPattern> {
        let Some(pattern) = pattern.filter(|p| !p.is_empty()) else {
            return Ok(TransactionalIdPattern(None));
        };
        let invalid = |source| InvalidPattern {
            pattern: pattern.to_string(),
            source,
        };
        // Checked alone first: anchoring must not turn an invalid pattern such as `a)|(b`
        // into a valid one.
        Regex::new(pattern).map_err(invalid)?;
        let anchored = Regex::new(&format!("^(?:{pattern})$")).map_err(invalid)?;
        Ok(TransactionalIdPattern(Some(anchored)))
    }

    pub fn matches(&self, transactional_id: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|re| re.is_match(transactional_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_match_everything() {
        for p in [None, Some("")] {
            let pattern = TransactionalIdPattern::compile(p).unwrap();
            assert!(pattern.matches("anything"));
            assert!(pattern.matches(""));
        }
    }

    #[test]
    fn the_whole_id_must_match() {
        let p = TransactionalIdPattern::compile(Some("tx-[0-9]+")).unwrap();
        assert!(p.matches("tx-1"));
        assert!(p.matches("tx-42"));
        assert!(!p.matches("my-tx-1"), "a match inside is not enough");
        assert!(!p.matches("tx-1-suffix"));
        let alternation = TransactionalIdPattern::compile(Some("a|b")).unwrap();
        assert!(alternation.matches("a") && alternation.matches("b"));
        assert!(!alternation.matches("ab"), "anchoring covers every branch");
    }

    #[test]
    fn invalid_patterns_are_refused_with_kafkas_message() {
        for bad in ["[", "a)|(b", "(?=x)", "\\1"] {
            let e = TransactionalIdPattern::compile(Some(bad)).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!(
                    "Transaction ID pattern `{bad}` is not a valid regular expression: "
                )),
                "{e}"
            );
        }
    }
}
