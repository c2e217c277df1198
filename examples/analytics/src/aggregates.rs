//! The per-group state. Each consumer group owns one aggregate; every change marks a key
//! dirty, and the dirty keys are published to the compacted `analytics-events` topic in the
//! same transaction as the group's offsets (see `pipeline`), so the topic's committed state
//! always matches the committed offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::{PageView, UserEvent};
use crate::topics::{PAGE_VIEWS, USER_EVENTS};

/// A consumed record, copied out of librdkafka's buffer so processing does not borrow the
/// consumer.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl SourceRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

pub enum Parsed {
    User(UserEvent),
    Page(PageView),
}

/// Decodes and re-validates a record. The key must be the user id: the API keys by user so
/// one user's events stay in order on one partition, and a record breaking that is suspect.
pub fn parse(rec: &SourceRecord) -> Result<Parsed, String> {
    let payload = rec.payload.as_deref().ok_or("record has no value")?;
    let key = rec
        .key
        .as_deref()
        .map(std::str::from_utf8)
        .transpose()
        .map_err(|_| "key is not UTF-8")?
        .ok_or("record has no key")?;
    let (parsed, user_id) = match rec.topic.as_str() {
        USER_EVENTS => {
            let e: UserEvent =
                serde_json::from_slice(payload).map_err(|e| format!("invalid user event: {e}"))?;
            e.validate()?;
            let id = e.user_id.clone();
            (Parsed::User(e), id)
        }
        PAGE_VIEWS => {
            let p: PageView =
                serde_json::from_slice(payload).map_err(|e| format!("invalid page view: {e}"))?;
            p.validate()?;
            let id = p.user_id.clone();
            (Parsed::Page(p), id)
        }
        other => return Err(format!("unexpected topic {other}")),
    };
    if key != user_id {
        return Err(format!("record key {key:?} is not the user id {user_id:?}"));
    }
    Ok(parsed)
}

/// What a consumer group computes. Its keys are namespaced by the group id in
/// `analytics-events`.
pub trait Aggregate: Send + 'static {
    /// Folds one record in; an `Err` is the dead-letter reason and changes nothing.
    fn apply(&mut self, rec: &SourceRecord) -> Result<(), String>;
    /// Replays one state record (latest wins).
    fn restore(&mut self, key: &str, value: Value) -> Result<(), String>;
    /// The current value of one state key, as written to `analytics-events`.
    fn value_of(&self, key: &str) -> Value;
    /// The keys changed since the last [`Aggregate::take_dirty`].
    fn dirty(&mut self) -> &mut BTreeSet<String>;
    fn dead_letters(&mut self) -> &mut u64;

    fn record_dead_letter(&mut self) {
        *self.dead_letters() += 1;
        self.dirty().insert(DEAD_LETTERS_KEY.into());
    }

    /// The changed keys and their current values, clearing the dirty set.
    fn take_dirty(&mut self) -> Vec<(String, Value)> {
        std::mem::take(self.dirty())
            .into_iter()
            .map(|key| {
                let value = self.value_of(&key);
                (key, value)
            })
            .collect()
    }
}

/// The state key of a group's dead-letter count.
const DEAD_LETTERS_KEY: &str = "dead-letters";

fn count_of(value: &Value, field: &str) -> Result<u64, String> {
    value
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("state value lacks a numeric {field:?}"))
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicStats {
    pub messages: u64,
    pub bytes: u64,
    pub partitions: BTreeMap<i32, u64>,
}

/// Operational counts: volume per topic and partition, per `source` header, dead letters.
#[derive(Debug, Default)]
pub struct StatsAggregate {
    pub topics: BTreeMap<String, TopicStats>,
    pub sources: BTreeMap<String, u64>,
    pub dead_letters: u64,
    dirty: BTreeSet<String>,
}

impl StatsAggregate {
    pub fn view(&self) -> Value {
        json!({
            "topics": self.topics,
            "sources": self.sources,
            "dead_letters": self.dead_letters,
            "total_messages": self.topics.values().map(|t| t.messages).sum::<u64>(),
        })
    }
}

impl Aggregate for StatsAggregate {
    fn apply(&mut self, rec: &SourceRecord) -> Result<(), String> {
        parse(rec)?;
        let t = self.topics.entry(rec.topic.clone()).or_default();
        t.messages += 1;
        t.bytes += rec.payload.as_ref().map_or(0, |p| p.len() as u64);
        *t.partitions.entry(rec.partition).or_default() += 1;
        self.dirty.insert(format!("topic:{}", rec.topic));
        let source = rec.header("source").unwrap_or("unknown").to_owned();
        self.dirty.insert(format!("source:{source}"));
        *self.sources.entry(source).or_default() += 1;
        Ok(())
    }

    fn value_of(&self, key: &str) -> Value {
        if let Some(topic) = key.strip_prefix("topic:") {
            json!(self.topics.get(topic))
        } else if let Some(source) = key.strip_prefix("source:") {
            json!({ "count": self.sources.get(source).copied().unwrap_or(0) })
        } else {
            json!({ "count": self.dead_letters })
        }
    }

    fn dirty(&mut self) -> &mut BTreeSet<String> {
        &mut self.dirty
    }

    fn dead_letters(&mut self) -> &mut u64 {
        &mut self.dead_letters
    }

    fn restore(&mut self, key: &str, value: Value) -> Result<(), String> {
        if let Some(topic) = key.strip_prefix("topic:") {
            let stats = serde_json::from_value(value).map_err(|e| e.to_string())?;
            self.topics.insert(topic.to_owned(), stats);
        } else if let Some(source) = key.strip_prefix("source:") {
            self.sources
                .insert(source.to_owned(), count_of(&value, "count")?);
        } else if key == DEAD_LETTERS_KEY {
            self.dead_letters = count_of(&value, "count")?;
        } else {
            return Err(format!("unknown stats key {key:?}"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct UserActivity {
    pub last_seen_ms: i64,
    pub events: u64,
}

/// Product analytics: counts per event type, views per page, and each user's last activity.
#[derive(Debug, Default)]
pub struct AnalyticsAggregate {
    pub event_types: BTreeMap<String, u64>,
    pub pages: BTreeMap<String, u64>,
    pub users: HashMap<String, UserActivity>,
    pub dead_letters: u64,
    dirty: BTreeSet<String>,
}

impl AnalyticsAggregate {
    fn touch_user(&mut self, user_id: &str, ts: i64) {
        let u = self
            .users
            .entry(user_id.to_owned())
            .or_insert(UserActivity {
                last_seen_ms: ts,
                events: 0,
            });
        // Partitions are consumed independently, so a user's events may arrive out of time
        // order across topics: last-seen only moves forward.
        u.last_seen_ms = u.last_seen_ms.max(ts);
        u.events += 1;
        self.dirty.insert(format!("user:{user_id}"));
    }

    /// Users whose last event is no older than `window_ms` before `now_ms`, newest first.
    pub fn active_users(&self, now_ms: i64, window_ms: i64) -> Vec<(&str, UserActivity)> {
        let mut active: Vec<_> = self
            .users
            .iter()
            .filter(|(_, u)| u.last_seen_ms >= now_ms - window_ms)
            .map(|(id, u)| (id.as_str(), *u))
            .collect();
        active.sort_by(|a, b| b.1.last_seen_ms.cmp(&a.1.last_seen_ms).then(a.0.cmp(b.0)));
        active
    }

    /// Pages by views, most viewed first (ties by path, so the order is stable).
    pub fn top_pages(&self, limit: usize) -> Vec<(&str, u64)> {
        let mut pages: Vec<_> = self.pages.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        pages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        pages.truncate(limit);
        pages
    }
}

impl Aggregate for AnalyticsAggregate {
    fn apply(&mut self, rec: &SourceRecord) -> Result<(), String> {
        let fallback_ts = rec.timestamp_ms.unwrap_or(0);
        match parse(rec)? {
            Parsed::User(e) => {
                *self.event_types.entry(e.event_type.clone()).or_default() += 1;
                self.dirty.insert(format!("event-type:{}", e.event_type));
                self.touch_user(&e.user_id, e.timestamp.unwrap_or(fallback_ts));
            }
            Parsed::Page(p) => {
                *self.pages.entry(p.page.clone()).or_default() += 1;
                self.dirty.insert(format!("page:{}", p.page));
                self.touch_user(&p.user_id, p.timestamp.unwrap_or(fallback_ts));
            }
        }
        Ok(())
    }

    fn value_of(&self, key: &str) -> Value {
        if let Some(t) = key.strip_prefix("event-type:") {
            json!({ "count": self.event_types.get(t).copied().unwrap_or(0) })
        } else if let Some(p) = key.strip_prefix("page:") {
            json!({ "views": self.pages.get(p).copied().unwrap_or(0) })
        } else if let Some(u) = key.strip_prefix("user:") {
            json!(self.users.get(u))
        } else {
            json!({ "count": self.dead_letters })
        }
    }

    fn dirty(&mut self) -> &mut BTreeSet<String> {
        &mut self.dirty
    }

    fn dead_letters(&mut self) -> &mut u64 {
        &mut self.dead_letters
    }

    fn restore(&mut self, key: &str, value: Value) -> Result<(), String> {
        if let Some(t) = key.strip_prefix("event-type:") {
            self.event_types
                .insert(t.to_owned(), count_of(&value, "count")?);
        } else if let Some(p) = key.strip_prefix("page:") {
            self.pages.insert(p.to_owned(), count_of(&value, "views")?);
        } else if let Some(u) = key.strip_prefix("user:") {
            let activity = serde_json::from_value(value).map_err(|e| e.to_string())?;
            self.users.insert(u.to_owned(), activity);
        } else if key == DEAD_LETTERS_KEY {
            self.dead_letters = count_of(&value, "count")?;
        } else {
            return Err(format!("unknown analytics key {key:?}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(topic: &str, key: &str, payload: &str) -> SourceRecord {
        SourceRecord {
            topic: topic.into(),
            partition: 0,
            offset: 0,
            key: Some(key.as_bytes().to_vec()),
            payload: Some(payload.as_bytes().to_vec()),
            timestamp_ms: Some(1_000),
            headers: vec![("source".into(), b"test".to_vec())],
        }
    }

    #[test]
    fn bad_records_are_errors_and_change_nothing() {
        let mut a = AnalyticsAggregate::default();
        assert!(a.apply(&rec(USER_EVENTS, "u1", "not json")).is_err());
        assert!(
            a.apply(&rec(
                USER_EVENTS,
                "u2",
                r#"{"user_id":"u1","event_type":"click"}"#
            ))
            .is_err()
        );
        assert!(
            a.apply(&rec(PAGE_VIEWS, "u1", r#"{"user_id":"u1","page":"nope"}"#))
                .is_err()
        );
        assert!(a.event_types.is_empty() && a.pages.is_empty() && a.users.is_empty());
        assert!(a.take_dirty().is_empty());
    }

    #[test]
    fn analytics_state_round_trips_through_dirty_snapshots() {
        let mut a = AnalyticsAggregate::default();
        a.apply(&rec(
            USER_EVENTS,
            "u1",
            r#"{"user_id":"u1","event_type":"click","timestamp":5000}"#,
        ))
        .unwrap();
        a.apply(&rec(PAGE_VIEWS, "u2", r#"{"user_id":"u2","page":"/a"}"#))
            .unwrap();
        a.apply(&rec(
            PAGE_VIEWS,
            "u1",
            r#"{"user_id":"u1","page":"/a","timestamp":3000}"#,
        ))
        .unwrap();
        a.record_dead_letter();
        let mut b = AnalyticsAggregate::default();
        for (k, v) in a.take_dirty() {
            b.restore(&k, v).unwrap();
        }
        assert_eq!(b.event_types, a.event_types);
        assert_eq!(b.pages.get("/a"), Some(&2));
        assert_eq!(b.users, a.users);
        assert_eq!(
            b.users["u1"],
            UserActivity {
                last_seen_ms: 5000,
                events: 2
            }
        );
        assert_eq!(b.dead_letters, 1);
        assert!(a.take_dirty().is_empty(), "dirty set is cleared");
        assert_eq!(
            b.active_users(6000, 2000).len(),
            1,
            "u2 (ts 1000) is outside the window"
        );
        assert_eq!(b.top_pages(10), vec![("/a", 2)]);
    }

    #[test]
    fn stats_state_round_trips() {
        let mut s = StatsAggregate::default();
        s.apply(&rec(
            USER_EVENTS,
            "u1",
            r#"{"user_id":"u1","event_type":"click"}"#,
        ))
        .unwrap();
        s.record_dead_letter();
        let mut t = StatsAggregate::default();
        for (k, v) in s.take_dirty() {
            t.restore(&k, v).unwrap();
        }
        assert_eq!(t.topics, s.topics);
        assert_eq!(t.sources.get("test"), Some(&1));
        assert_eq!(t.dead_letters, 1);
    }
}
