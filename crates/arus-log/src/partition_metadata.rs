//! `partition.metadata`: the topic id a partition directory belongs to (Kafka
//! `PartitionMetadataFile`, KIP-516).
//!
//! # Format (version 0)
//! Text, exactly as Kafka writes it — two lines, the second without a line end:
//! ```text
//! version: 0
//! topic_id: cJYYckkJRKC2Bk2zWCIoGw
//! ```
//! The topic id is Kafka's `Uuid.toString()`: the 16 bytes in URL-safe base64 without
//! padding (22 characters). Written to `partition.metadata.tmp`, fsynced and renamed over
//! the file, then the directory is fsynced. Arus's own record of topic ids is its metadata
//! file; this one is for Kafka's tools and for a directory moved to a Kafka broker.

use std::io;
use std::path::{Path, PathBuf};

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";
pub const PARTITION_METADATA_VERSION: i32 = 0;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka `Uuid.toString()`.
pub fn topic_id_to_string(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= u32::from(b) << (16 - 8 * i);
        }
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Kafka `Uuid.fromString` (22 characters of URL-safe base64).
pub fn topic_id_from_string(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 22 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = [0u8; 16];
    let mut k = 0;
    for &c in s {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            if k == 16 {
                return None;
            }
            out[k] = (bits >> nbits) as u8;
            k += 1;
        }
    }
    // The last character carries 4 padding bits, which must be zero (canonical form).
    (k == 16 && bits & ((1 << nbits) - 1) == 0).then_some(out)
}

pub fn encode(topic_id: &[u8; 16]) -> String {
    format!(
        "version: {PARTITION_METADATA_VERSION}\ntopic_id: {}",
        topic_id_to_string(topic_id)
    )
}

/// Kafka `PartitionMetadataReadBuffer`: `version: 0` then `topic_id: <id>`.
pub fn decode(text: &str) -> Result<[u8; 16], String> {
    let mut lines = text.lines();
    let field = |line: Option<&str>, key: &str| -> Result<String, String> {
        let line = line.ok_or_else(|| format!("missing {key}"))?;
        match line.split_once(": ") {
            Some((k, v)) if k == key => Ok(v.trim().to_string()),
            _ => Err(format!("expected {key}, found {line:?}")),
        }
    };
    let version = field(lines.next(), "version")?;
    if version.parse::<i32>() != Ok(PARTITION_METADATA_VERSION) {
        return Err(format!("unrecognised version {version}"));
    }
    let id = field(lines.next(), "topic_id")?;
    topic_id_from_string(&id).ok_or_else(|| format!("malformed topic id {id:?}"))
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(PARTITION_METADATA_FILE)
}

/// The topic id recorded in `dir`: `Ok(None)` without a file, the inner `Err` if it cannot
/// be parsed.
pub fn read(dir: &Path) -> io::Result<Option<Result<[u8; 16], String>>> {
    match std::fs::read_to_string(path(dir)) {
        Ok(t) => Ok(Some(decode(&t))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Some(Err("not UTF-8".into()))),
        Err(e) => Err(e),
    }
}

/// Records `topic_id` in `dir` unless the file already says so (Kafka writes it once,
/// when the log gets its topic id). Returns whether it wrote.
pub fn record(dir: &Path, topic_id: &[u8; 16]) -> Result<bool, (PathBuf, io::Error)> {
    match read(dir) {
        Ok(Some(Ok(id))) if &id == topic_id => return Ok(false),
        Ok(Some(Ok(id))) => {
            tracing::warn!(dir = %dir.display(), found = %topic_id_to_string(&id), expected = %topic_id_to_string(topic_id), "partition.metadata names another topic id; rewriting it");
        }
        Ok(Some(Err(why))) => {
            tracing::warn!(dir = %dir.display(), "unreadable partition.metadata ({why}); rewriting it");
        }
        Ok(None) => {}
        Err(e) => return Err((path(dir), e)),
    }
    crate::leader_epoch::write_atomically(&path(dir), encode(topic_id).as_bytes())?;
    // Kafka's `atomicMoveWithFallback` flushes the parent directory too.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (dir.to_path_buf(), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_what_kafka_wrote() {
        let fixture = include_str!("../tests/fixtures/kafka-4.4/fx-0/partition.metadata");
        let id = decode(fixture).unwrap();
        assert_eq!(topic_id_to_string(&id), "cJYYckkJRKC2Bk2zWCIoGw");
        assert_eq!(encode(&id), fixture);
    }

    #[test]
    fn uuid_strings_round_trip() {
        for id in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
            let s = topic_id_to_string(&id);
            assert_eq!(s.len(), 22);
            assert_eq!(topic_id_from_string(&s), Some(id));
        }
        assert_eq!(topic_id_to_string(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(topic_id_from_string("AAAAAAAAAAAAAAAAAAAAAB"), None);
        assert_eq!(topic_id_from_string("AAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(topic_id_from_string("AAAAAAAAAAAAAAAAAAAAA+"), None);
        for bad in [
            "",
            "version: 1\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA",
            "version: 0\n",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_writes_once() {
        let d = tempfile::tempdir().unwrap();
        let id = *b"0123456789abcdef";
        assert!(record(d.path(), &id).unwrap());
        assert!(!record(d.path(), &id).unwrap());
        assert_eq!(read(d.path()).unwrap(), Some(Ok(id)));
        assert!(record(d.path(), &[7; 16]).unwrap());
        assert_eq!(read(d.path()).unwrap(), Some(Ok([7; 16])));
    }
}
