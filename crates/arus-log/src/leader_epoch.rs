//! The leader-epoch cache of a partition and its `leader-epoch-checkpoint` file (Kafka
//! `LeaderEpochFileCache` / `LeaderEpochCheckpointFile`): for each leader epoch, the first
//! offset written in it.
//!
//! # `leader-epoch-checkpoint` (Kafka `CheckpointFile`, version 0)
//! Text, `\n` line ends: the version, the number of entries, then one `epoch startOffset`
//! line per entry in increasing order of both:
//! ```text
//! 0
//! 1
//! 0 0
//! ```
//! Written to `leader-epoch-checkpoint.tmp`, fsynced and renamed over the file (Kafka's
//! `Utils.atomicMoveWithFallback`), so a crash leaves the old or the new file. A missing or
//! unreadable file is rebuilt from the log at open (see [`crate::Log::open`]).
//!
//! Arus is a single node whose leader epoch is always 0, so the cache holds at most the
//! entry `0 <first offset>`; the rules below are Kafka's all the same:
//! - `assign(epoch, start)`: added when the epoch differs from the latest entry's or
//!   starts earlier; entries with an epoch or start offset at or above it are dropped.
//! - `truncate_from_start(start)` (log start moved): entries starting at or below it are
//!   dropped and the last of them comes back starting at `start`.
//! - `truncate_from_end(end)` (log truncated): entries starting at or after `end` go.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
pub const LEADER_EPOCH_CHECKPOINT_VERSION: i32 = 0;
/// A checkpoint with more entries than this is corrupt (Arus writes at most one).
const MAX_ENTRIES: usize = 1 << 16;

/// `(epoch, start offset)` entries, both strictly increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Kafka `LeaderEpochFileCache.assign`; true if the cache changed. Negative epochs or
    /// offsets are ignored (Kafka never assigns them).
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if epoch < 0 || start < 0 {
            return false;
        }
        let needed = self
            .entries
            .last()
            .is_none_or(|&(e, s)| e != epoch || start < s);
        if !needed {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|&(e, s)| e >= epoch || s >= start)
        {
            self.entries.pop();
        }
        self.entries.push((epoch, start));
        true
    }

    /// Kafka `truncateFromStart`; true if the cache changed.
    pub fn truncate_from_start(&mut self, start: i64) -> bool {
        let below = self.entries.partition_point(|&(_, s)| s <= start);
        if below == 0 {
            return false;
        }
        let epoch = self.entries[below - 1].0;
        let changed = below > 1 || self.entries[0].1 != start;
        self.entries.drain(..below);
        self.entries.insert(0, (epoch, start));
        changed
    }

    /// Kafka `truncateFromEnd`; true if the cache changed.
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let keep = self.entries.partition_point(|&(_, s)| s < end);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    pub fn encode(&self) -> String {
        let mut s = format!(
            "{LEADER_EPOCH_CHECKPOINT_VERSION}\n{}\n",
            self.entries.len()
        );
        for (e, o) in &self.entries {
            s.push_str(&format!("{e} {o}\n"));
        }
        s
    }

    /// Parses a checkpoint (Kafka `CheckpointReadBuffer`: the version must match, the count
    /// must equal the number of entry lines, each `epoch offset` separated by whitespace).
    pub fn decode(text: &str) -> Result<LeaderEpochCache, String> {
        // Kafka creates the file empty with the log and reads it as no entries.
        if text.is_empty() {
            return Ok(LeaderEpochCache::default());
        }
        let mut lines = text.lines();
        let version: i32 = parse(lines.next(), "version")?;
        if version != LEADER_EPOCH_CHECKPOINT_VERSION {
            return Err(format!("unrecognised version {version}"));
        }
        let count: usize = parse(lines.next(), "entry count")?;
        if count > MAX_ENTRIES {
            return Err(format!("{count} entries"));
        }
        let mut cache = LeaderEpochCache::default();
        for line in lines.by_ref().take(count) {
            let mut parts = line.split_whitespace();
            let epoch: i32 = parse(parts.next(), "epoch")?;
            let start: i64 = parse(parts.next(), "start offset")?;
            if parts.next().is_some() {
                return Err(format!("malformed line {line:?}"));
            }
            if epoch < 0
                || start < 0
                || cache
                    .entries
                    .last()
                    .is_some_and(|&(e, s)| e >= epoch || s > start)
            {
                return Err(format!("entry {line:?} out of order"));
            }
            cache.entries.push((epoch, start));
        }
        if cache.entries.len() != count || lines.any(|l| !l.trim().is_empty()) {
            return Err(format!("expected {count} entries"));
        }
        Ok(cache)
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(LEADER_EPOCH_CHECKPOINT_FILE)
    }

    /// `Ok(None)` if there is no file; `Err` with the reason if it cannot be used.
    pub fn read(dir: &Path) -> io::Result<Option<Result<LeaderEpochCache, String>>> {
        match fs::read_to_string(Self::path(dir)) {
            Ok(text) => Ok(Some(Self::decode(&text))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Ok(Some(Err("not UTF-8".to_string())))
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the file atomically (temp file, fsync, rename). The caller fsyncs the
    /// directory when the rename itself must be durable.
    pub fn write(&self, dir: &Path) -> Result<(), (PathBuf, io::Error)> {
        write_atomically(&Self::path(dir), self.encode().as_bytes())
    }
}

fn parse<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, String> {
    let f = field.ok_or_else(|| format!("missing {what}"))?;
    f.trim()
        .parse()
        .map_err(|_| format!("malformed {what} {f:?}"))
}

/// Kafka's checkpoint write: `<path>.tmp`, fsync, rename over `path`.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()
    };
    if let Err(e) = write() {
        // A half-written temp file would hold space on a full disk (open removes any left).
        let _ = fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    fs::rename(&tmp, path).map_err(|e| (path.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0));
        assert!(!c.assign(0, 5), "same epoch, later start: unchanged");
        assert!(c.assign(2, 10));
        assert!(c.assign(3, 10), "same start: the older epoch goes");
        assert_eq!(c.entries(), &[(0, 0), (3, 10)]);
        assert!(c.assign(1, 4), "lower epoch: later entries are dropped");
        assert_eq!(c.entries(), &[(0, 0), (1, 4)]);
        assert!(!c.assign(-1, 9));
        assert!(c.truncate_from_start(6));
        assert_eq!(c.entries(), &[(1, 6)]);
        assert!(!c.truncate_from_start(6));
        assert!(!c.truncate_from_start(2));
        assert!(c.assign(2, 8));
        assert!(c.truncate_from_end(8));
        assert_eq!(c.entries(), &[(1, 6)]);
        assert!(!c.truncate_from_end(7));
        assert!(c.clear());
        assert_eq!(c.encode(), "0\n0\n");
    }

    #[test]
    fn round_trip_and_rejects() {
        let mut c = LeaderEpochCache::default();
        c.assign(0, 0);
        c.assign(4, 17);
        assert_eq!(c.encode(), "0\n2\n0 0\n4 17\n");
        assert_eq!(LeaderEpochCache::decode(&c.encode()).unwrap(), c);
        assert_eq!(LeaderEpochCache::decode("").unwrap().entries(), &[]);
        for bad in [
            "\n",
            "1\n0\n",
            "0\n2\n0 0\n",
            "0\n1\n0 0\n1 1\n",
            "0\n1\n0\n",
            "0\n1\nx 0\n",
            "0\n2\n3 5\n2 6\n",
        ] {
            assert!(LeaderEpochCache::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reads_what_kafka_wrote() {
        let fixture = include_str!("../tests/fixtures/kafka-4.4/fx-0/leader-epoch-checkpoint");
        let c = LeaderEpochCache::decode(fixture).unwrap();
        assert_eq!(c.entries(), &[(0, 0)]);
        assert_eq!(c.encode(), fixture);
    }
}
