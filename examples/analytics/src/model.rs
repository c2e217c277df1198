//! The events the app accepts over HTTP and writes to Kafka.
//!
//! The same structs are used on both sides of the topic: the API validates what clients send,
//! and the consumers validate again what they read, because anything with access to the topic
//! (another producer, a script, a bug) can write to it, and a record that fails here is a
//! dead letter rather than a crash.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const MAX_USER_ID: usize = 128;
const MAX_EVENT_TYPE: usize = 64;
const MAX_PAGE: usize = 512;
const MAX_PROPERTIES_BYTES: usize = 8 * 1024;
/// Cap on one batch so a single request cannot hold an unbounded number of in-flight records.
pub const MAX_BATCH: usize = 1000;

/// A product event (`click`, `signup`, `purchase`...). Goes to `user-events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEvent {
    /// Set by the API; absent in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub user_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
    /// Milliseconds since the epoch; the API stamps receipt time when the client gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// A page view. Goes to `page-views`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageView {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub user_id: String,
    pub page: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// One element of `POST /events/batch-events`: `{"kind": "user-event", ...}` or
/// `{"kind": "page-view", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum BatchItem {
    UserEvent(UserEvent),
    PageView(PageView),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub events: Vec<BatchItem>,
}

fn check_user_id(user_id: &str) -> Result<(), String> {
    if user_id.trim().is_empty() {
        return Err("user_id must not be empty".into());
    }
    if user_id.len() > MAX_USER_ID {
        return Err(format!("user_id longer than {MAX_USER_ID} bytes"));
    }
    Ok(())
}

fn check_timestamp(ts: Option<i64>) -> Result<(), String> {
    match ts {
        Some(t) if t < 0 => Err("timestamp must be milliseconds since the epoch".into()),
        _ => Ok(()),
    }
}

impl UserEvent {
    pub fn validate(&self) -> Result<(), String> {
        check_user_id(&self.user_id)?;
        let t = &self.event_type;
        if t.is_empty() || t.len() > MAX_EVENT_TYPE {
            return Err(format!("event_type must be 1..={MAX_EVENT_TYPE} bytes"));
        }
        // Event types become keys in the compacted aggregate topic and labels on the
        // dashboard: keep them to a safe alphabet.
        if !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(
                "event_type may only contain ASCII letters, digits, '_', '-' and '.'".into(),
            );
        }
        if let Some(props) = &self.properties {
            let size = serde_json::to_vec(props)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > MAX_PROPERTIES_BYTES {
                return Err(format!(
                    "properties larger than {MAX_PROPERTIES_BYTES} bytes"
                ));
            }
        }
        check_timestamp(self.timestamp)
    }
}

impl PageView {
    pub fn validate(&self) -> Result<(), String> {
        check_user_id(&self.user_id)?;
        if !self.page.starts_with('/') || self.page.len() > MAX_PAGE {
            return Err(format!(
                "page must be a path starting with '/' of at most {MAX_PAGE} bytes"
            ));
        }
        if self.page.chars().any(char::is_control) {
            return Err("page must not contain control characters".into());
        }
        check_timestamp(self.timestamp)
    }
}

impl BatchItem {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            BatchItem::UserEvent(e) => e.validate(),
            BatchItem::PageView(p) => p.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        assert!(
            serde_json::from_str::<UserEvent>(r#"{"user_id":"u","event_type":"x","oops":1}"#)
                .is_err()
        );
        let e: UserEvent = serde_json::from_str(r#"{"user_id":" ","event_type":"click"}"#).unwrap();
        assert!(e.validate().is_err());
        let e: UserEvent =
            serde_json::from_str(r#"{"user_id":"u1","event_type":"cl ick"}"#).unwrap();
        assert!(e.validate().is_err());
        let p: PageView = serde_json::from_str(r#"{"user_id":"u1","page":"home"}"#).unwrap();
        assert!(p.validate().is_err());
        let p: PageView = serde_json::from_str(r#"{"user_id":"u1","page":"/home"}"#).unwrap();
        assert!(p.validate().is_ok());
    }

    #[test]
    fn batch_items_are_tagged_by_kind() {
        let b: Batch = serde_json::from_str(
            r#"{"events":[{"kind":"user-event","user_id":"u","event_type":"click"},
                          {"kind":"page-view","user_id":"u","page":"/"}]}"#,
        )
        .unwrap();
        assert!(matches!(b.events[0], BatchItem::UserEvent(_)));
        assert!(matches!(b.events[1], BatchItem::PageView(_)));
        assert!(serde_json::from_str::<Batch>(r#"{"events":[{"kind":"nope"}]}"#).is_err());
        assert!(
            serde_json::from_str::<Batch>(
                r#"{"events":[{"kind":"page-view","user_id":"u","page":"/","x":1}]}"#
            )
            .is_err()
        );
    }
}
