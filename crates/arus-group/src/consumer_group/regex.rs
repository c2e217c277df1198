//! Regular-expression subscriptions (`SubscribedTopicRegex`, KIP-848), as Kafka 4.4's
//! `GroupMetadataManager.maybeUpdateRegularExpressions` and `TopicRegexResolver` do them.
//!
//! A group keeps, per regex some member subscribes to, its resolution: the topics whose
//! whole name matches (RE2/J `Matcher.matches`), the metadata version it was computed at and
//! when. It is persisted as `ConsumerGroupRegularExpressionKey/Value` (record type 16, value
//! version 0: `Topics`, `Version`, `Timestamp`), written on every resolution and tombstoned
//! when no member subscribes to the regex any more. A member's subscribed topics are its
//! names plus the resolution of its regex.
//!
//! Kafka resolves on a background thread and bumps the group epoch when the result comes
//! back; Arus resolves within the heartbeat (the topic list is in memory), so a resolution
//! lands one heartbeat earlier than Kafka's. The refresh rule is Kafka's: all of the group's
//! regexes are re-resolved together, at most every [`REGEX_BATCH_REFRESH_MIN_INTERVAL_MS`]
//! after the last resolution, when a member subscribes to a regex nobody subscribed to, when
//! a regex has no resolution, when a topic was created since the last resolution, or when
//! `group.consumer.regex.refresh.interval.ms` has passed. Like Kafka's resolver, internal
//! topics are not filtered out (a regex such as `.*` matches `__consumer_offsets`).
//!
//! Syntax: Kafka compiles with RE2/J; Arus with the `regex` crate, which implements RE2's
//! syntax and linear-time matching. Known differences: RE2/J accepts `\Q…\E` quoting and
//! `\pN`-style one-letter classes the same way, but the `regex` crate rejects `\Q…\E`; the
//! `regex` crate's `\d`, `\w`, `\s` and `\b` are Unicode-aware where RE2/J's are ASCII (topic
//! names are ASCII, so matching is the same); error descriptions are mapped to RE2's
//! wording for the common kinds and otherwise fall back to RE2's generic wording.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::ErrorCode;
use arus_protocol::coordinator::ConsumerGroupRegularExpressionValue;
use regex_syntax::ast::ErrorKind;

use super::{ConsumerGroup, GroupError, Member, TopicMetadataSource};
use crate::records::CoordinatorRecord;

/// Kafka's `REGEX_BATCH_REFRESH_MIN_INTERVAL_MS`: a group's regexes are re-resolved at most
/// this often (unless a member subscribes to a regex not resolved yet).
pub const REGEX_BATCH_REFRESH_MIN_INTERVAL_MS: i64 = 10_000;
/// `group.consumer.regex.refresh.interval.ms`'s default.
pub const DEFAULT_REGEX_REFRESH_INTERVAL_MS: i64 = 600_000;

/// A regex's resolution (Kafka's `ResolvedRegularExpression`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedRegex {
    pub topics: BTreeSet<String>,
    /// The topic-metadata version it was resolved at.
    pub version: i64,
    /// When it was resolved (ms).
    pub timestamp: i64,
}

/// The member's regex, if it subscribes with one (an empty regex means none: the Java
/// client sends `""` to clear it).
pub fn effective(regex: &Option<String>) -> Option<&str> {
    regex.as_deref().filter(|r| !r.is_empty())
}

/// Kafka's `Utils.throwIfRegularExpressionIsInvalid`.
pub fn validate(regex: &str) -> Result<(), GroupError> {
    compile(regex).map(|_| ()).map_err(|description| {
        tracing::info!(regex, %description, "refusing SubscribedTopicRegex");
        GroupError::new(
            ErrorCode::InvalidRegularExpression,
            format!(
                "SubscribedTopicRegex `{regex}` is not a valid regular expression: {description}."
            ),
        )
    })
}

/// Compiles `regex` for whole-name matching, or returns RE2's description of why not.
fn compile(regex: &str) -> Result<regex::Regex, String> {
    // Parse the bare pattern first: wrapping an unbalanced one such as `a)(b` would make it
    // valid.
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(regex) {
        return Err(re2_description(e.kind()).to_string());
    }
    regex::Regex::new(&format!("^(?:{regex})$")).map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => "expression too large".to_string(),
        _ => "invalid or unsupported Perl syntax".to_string(),
    })
}

/// RE2's `ErrorCode` description for a parse error.
fn re2_description(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::GroupUnclosed => "missing closing )",
        ErrorKind::GroupUnopened => "unexpected )",
        ErrorKind::ClassUnclosed => "missing closing ]",
        ErrorKind::ClassRangeInvalid | ErrorKind::ClassRangeLiteral => {
            "invalid character class range"
        }
        ErrorKind::ClassEscapeInvalid | ErrorKind::EscapeUnrecognized => "invalid escape sequence",
        ErrorKind::EscapeUnexpectedEof => "trailing backslash at end of expression",
        ErrorKind::RepetitionMissing => "missing argument to repetition operator",
        ErrorKind::RepetitionCountInvalid
        | ErrorKind::RepetitionCountDecimalEmpty
        | ErrorKind::RepetitionCountUnclosed => "invalid repeat count",
        ErrorKind::GroupNameDuplicate { .. } => "duplicate capture group name",
        ErrorKind::GroupNameEmpty
        | ErrorKind::GroupNameInvalid
        | ErrorKind::GroupNameUnexpectedEof => "invalid named capture",
        ErrorKind::NestLimitExceeded(_) => "expression nests too deeply",
        _ => "invalid or unsupported Perl syntax",
    }
}

/// Kafka's `TopicRegexResolver.resolveRegularExpressions`: each regex's matching topic names.
/// A regex that does not compile (only possible from records written elsewhere) resolves to
/// nothing, as Kafka logs and ignores it.
pub fn resolve<'a>(
    regexes: impl IntoIterator<Item = &'a str>,
    topic_names: &[String],
    version: i64,
    now_ms: i64,
) -> BTreeMap<String, ResolvedRegex> {
    let mut out = BTreeMap::new();
    for r in regexes {
        let topics = match compile(r) {
            Ok(re) => topic_names
                .iter()
                .filter(|n| re.is_match(n))
                .cloned()
                .collect(),
            Err(description) => {
                tracing::error!(regex = r, %description, "cannot parse a subscribed regex; ignoring it");
                BTreeSet::new()
            }
        };
        out.insert(
            r.to_string(),
            ResolvedRegex {
                topics,
                version,
                timestamp: now_ms,
            },
        );
    }
    out
}

/// What the group's regex state looks like when a heartbeat considers refreshing it.
pub struct RefreshInputs {
    /// A member subscribes to a regex no member subscribed to before.
    pub new_regex: bool,
    pub now_ms: i64,
    /// The latest timestamp among the group's resolutions (Kafka's
    /// `lastResolvedRegularExpressionRefreshTimeMs`), `None` if it has none.
    pub last_refresh_ms: Option<i64>,
    /// The metadata version of the group's resolutions.
    pub last_version: i64,
    /// The version of the last topic-metadata change that created a topic.
    pub topics_version: i64,
    pub subscribed: usize,
    pub resolved: usize,
    pub refresh_interval_ms: i64,
}

/// Kafka's refresh decision in `maybeUpdateRegularExpressions`.
pub fn needs_refresh(i: &RefreshInputs) -> bool {
    if i.subscribed == 0 && !i.new_regex {
        return false;
    }
    // Kafka checks the batch interval before anything else: even a regex nobody subscribed
    // to yet waits for it (the member gets its topics at a later heartbeat).
    let Some(last) = i.last_refresh_ms else {
        return true;
    };
    if i.now_ms <= last + REGEX_BATCH_REFRESH_MIN_INTERVAL_MS {
        return false;
    }
    i.new_regex
        || i.subscribed != i.resolved
        || i.last_version < i.topics_version
        || i.now_ms > last + i.refresh_interval_ms
}

/// The `ConsumerGroupRegularExpression` record (`None`: tombstone).
pub fn record(group_id: &str, regex: &str, r: Option<&ResolvedRegex>) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupRegularExpression {
        group_id: group_id.to_string(),
        regex: regex.to_string(),
        value: r.map(|r| ConsumerGroupRegularExpressionValue {
            topics: r.topics.iter().cloned().collect(),
            version: r.version,
            timestamp: r.timestamp,
        }),
    }
}

/// A replayed record's resolution.
pub fn from_value(v: &ConsumerGroupRegularExpressionValue) -> ResolvedRegex {
    ResolvedRegex {
        topics: v.topics.iter().cloned().collect(),
        version: v.version,
        timestamp: v.timestamp,
    }
}

/// The regex part of a heartbeat ([`update`]).
pub(super) struct RegexUpdate {
    pub(super) resolved: BTreeMap<String, ResolvedRegex>,
    pub(super) records: Vec<CoordinatorRecord>,
    pub(super) bump: bool,
}

/// Kafka's `maybeUpdateRegularExpressions`, resolving within the heartbeat (see the
/// module docs): the group's regex resolutions after this heartbeat, their records, and
/// whether the group epoch must be bumped.
pub(super) fn update(
    now_ms: i64,
    refresh_interval_ms: i64,
    g: &ConsumerGroup,
    (old, updated): (&Member, &Member),
    replaced_id: Option<&str>,
    metadata: &dyn TopicMetadataSource,
) -> Result<RegexUpdate, GroupError> {
    let gid = g.group_id.as_str();
    let others: BTreeSet<&str> = g
        .members
        .values()
        .filter(|m| m.member_id != updated.member_id && Some(m.member_id.as_str()) != replaced_id)
        .filter_map(|m| effective(&m.subscribed_topic_regex))
        .collect();
    let old_regex = effective(&old.subscribed_topic_regex);
    let new_regex = effective(&updated.subscribed_topic_regex);
    let mut resolved = g.resolved_regexes.clone();
    let mut records = Vec::new();
    let mut bump = false;
    let mut unresolved = false;
    if old_regex != new_regex {
        tracing::debug!(group = gid, member = %updated.member_id, regex = ?new_regex, "member updated its subscribed regex");
        // Kafka's REGEX_UPDATED_AND_RESOLVED bumps the epoch now; a regex without a
        // resolution bumps it when it is resolved (below, here or at a later heartbeat).
        bump = new_regex.is_none_or(|n| resolved.contains_key(n));
        if let Some(o) = old_regex
            && !others.contains(o)
            && resolved.remove(o).is_some()
        {
            records.push(record(gid, o, None));
        }
        if let Some(n) = new_regex
            && !others.contains(n)
        {
            validate(n)?;
            unresolved = true;
        }
    }
    let subscribed: BTreeSet<&str> = others.into_iter().chain(new_regex).collect();
    let topics_version = metadata.topics_version();
    let refresh = needs_refresh(&RefreshInputs {
        new_regex: unresolved,
        now_ms,
        last_refresh_ms: g.resolved_regexes.values().map(|r| r.timestamp).max(),
        last_version: g
            .resolved_regexes
            .values()
            .map(|r| r.version)
            .max()
            .unwrap_or(0),
        topics_version,
        subscribed: subscribed.len(),
        resolved: resolved.len(),
        refresh_interval_ms,
    });
    if refresh {
        let fresh = resolve(
            subscribed.iter().copied(),
            &metadata.topic_names(),
            topics_version,
            now_ms,
        );
        for (r, res) in fresh {
            if resolved.get(&r).map(|o| &o.topics) != Some(&res.topics) {
                bump = true;
            }
            records.push(record(gid, &r, Some(&res)));
            resolved.insert(r, res);
        }
        tracing::info!(group = gid, regexes = ?subscribed, "resolved the group's subscribed regexes");
    }
    Ok(RegexUpdate {
        resolved,
        records,
        bump,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_whole_names_only() {
        let r = resolve(
            ["rx-.*", "b"],
            &names(&["rx-a", "xrx-a", "rx-", "ab", "b"]),
            7,
            100,
        );
        assert_eq!(
            r["rx-.*"].topics,
            BTreeSet::from(["rx-".to_string(), "rx-a".to_string()])
        );
        assert_eq!(r["b"].topics, BTreeSet::from(["b".to_string()]));
        assert_eq!((r["b"].version, r["b"].timestamp), (7, 100));
    }

    #[test]
    fn alternation_is_anchored_as_a_whole() {
        // `^a|b$` would match "ax"; RE2/J's matches() needs the whole name.
        let r = resolve(["a|b"], &names(&["ax", "a", "xb"]), 0, 0);
        assert_eq!(r["a|b"].topics, BTreeSet::from(["a".to_string()]));
    }

    #[test]
    fn invalid_regexes_carry_kafkas_message() {
        for (re, desc) in [
            ("(", "missing closing )"),
            ("a)(b", "unexpected )"),
            ("[a", "missing closing ]"),
            ("*a", "missing argument to repetition operator"),
            ("[z-a]", "invalid character class range"),
            ("a\\", "trailing backslash at end of expression"),
        ] {
            let e = validate(re).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRegularExpression, "{re}");
            assert_eq!(
                e.message,
                format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {desc}."),
            );
        }
        assert!(validate("rx-.*").is_ok());
        assert!(validate("(?i)RX-[0-9]+").is_ok());
    }

    #[test]
    fn unparsable_stored_regex_resolves_to_nothing() {
        let r = resolve(["("], &names(&["("]), 0, 0);
        assert!(r["("].topics.is_empty());
    }

    #[test]
    fn refresh_rule() {
        let base = RefreshInputs {
            new_regex: false,
            now_ms: 100_000,
            last_refresh_ms: Some(95_000),
            last_version: 5,
            topics_version: 5,
            subscribed: 1,
            resolved: 1,
            refresh_interval_ms: DEFAULT_REGEX_REFRESH_INTERVAL_MS,
        };
        assert!(!needs_refresh(&base));
        // A new regex waits for the batch interval too (Kafka 4.4), but not for a new group.
        assert!(!needs_refresh(&RefreshInputs {
            new_regex: true,
            ..base
        }));
        assert!(needs_refresh(&RefreshInputs {
            new_regex: true,
            now_ms: 105_001,
            ..base
        }));
        assert!(needs_refresh(&RefreshInputs {
            new_regex: true,
            now_ms: 0,
            last_refresh_ms: None,
            subscribed: 1,
            resolved: 0,
            ..base
        }));
        // A new topic, but within the batch interval.
        let created = RefreshInputs {
            topics_version: 6,
            ..base
        };
        assert!(!needs_refresh(&created));
        assert!(needs_refresh(&RefreshInputs {
            now_ms: 105_001,
            ..created
        }));
        // No new topic: only when the refresh interval passed.
        assert!(!needs_refresh(&RefreshInputs {
            now_ms: 105_001,
            ..base
        }));
        assert!(needs_refresh(&RefreshInputs {
            now_ms: 95_000 + DEFAULT_REGEX_REFRESH_INTERVAL_MS + 1,
            ..base
        }));
        assert!(!needs_refresh(&RefreshInputs {
            subscribed: 0,
            now_ms: 105_001,
            ..base
        }));
    }
}
