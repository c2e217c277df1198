//! Names of partition directories inside a log directory (Kafka's `UnifiedLog.logDirName`,
//! `logFutureDirName`, `logDeleteDirName`):
//!
//! - `<topic>-<partition>`: the partition's current replica;
//! - `<topic>-<partition>.<id>-future`: the copy a move (AlterReplicaLogDirs) is filling;
//! - `<topic>-<partition>.<id>-delete`: the old copy a move set aside at its commit point.
//!
//! `<id>` is 32 lowercase hex digits; a move uses the same id for its future and delete
//! directories, which ties them together for crash recovery ([`super::discovery`]).

use crate::topics::validate_topic_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Current,
    Future(String),
    Delete(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionDirName {
    pub topic: String,
    pub partition: i32,
    pub kind: Kind,
}

const FUTURE: &str = "-future";
const DELETE: &str = "-delete";

pub fn current(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

pub fn future(topic: &str, partition: i32, id: &str) -> String {
    format!("{topic}-{partition}.{id}{FUTURE}")
}

pub fn delete(topic: &str, partition: i32, id: &str) -> String {
    format!("{topic}-{partition}.{id}{DELETE}")
}

/// A fresh move id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn parse_current(name: &str) -> Option<(String, i32)> {
    let (topic, digits) = name.rsplit_once('-')?;
    // Only the canonical spelling (no sign, no leading zero).
    let partition = digits
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0 && i.to_string() == digits)?;
    validate_topic_name(topic).ok()?;
    Some((topic.to_string(), partition))
}

/// What a directory entry's name says, or `None` for anything else (strays set aside,
/// `.lock`, the metadata files...).
pub fn parse(name: &str) -> Option<PartitionDirName> {
    for (suffix, is_future) in [(FUTURE, true), (DELETE, false)] {
        if let Some(rest) = name.strip_suffix(suffix) {
            let (base, id) = rest.rsplit_once('.')?;
            if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let (topic, partition) = parse_current(base)?;
            let id = id.to_string();
            let kind = if is_future {
                Kind::Future(id)
            } else {
                Kind::Delete(id)
            };
            return Some(PartitionDirName {
                topic,
                partition,
                kind,
            });
        }
    }
    let (topic, partition) = parse_current(name)?;
    Some(PartitionDirName {
        topic,
        partition,
        kind: Kind::Current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let id = new_id();
        for (name, kind) in [
            (current("a.b-c", 3), Kind::Current),
            (future("a.b-c", 3, &id), Kind::Future(id.clone())),
            (delete("a.b-c", 3, &id), Kind::Delete(id.clone())),
        ] {
            assert_eq!(
                parse(&name),
                Some(PartitionDirName {
                    topic: "a.b-c".into(),
                    partition: 3,
                    kind
                })
            );
        }
    }

    #[test]
    fn other_entries_are_not_partitions() {
        for name in [
            ".lock",
            "arus-metadata.json",
            "t-01",
            "t-1.0123-future",
            "t-0.0123456789abcdef0123456789abcdef-stray",
            "-1",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
