//! The partition's `leader-epoch-checkpoint` file: where it lives, how it is read at open and
//! how it is written durably. The cache itself (Kafka's `LeaderEpochFileCache`: for each
//! leader epoch, the first offset written in it) and the file's text format (Kafka's
//! `LeaderEpochCheckpointFile`, version 0) are `arus-replication`'s
//! [`LeaderEpochCache`] and [`arus_replication::checkpoint`]; this module only does the I/O,
//! so the log and the replication decisions share one implementation.
//!
//! # `leader-epoch-checkpoint` (Kafka `CheckpointFile`, version 0)
//! Text, `\n` line ends: the version, the number of entries, then one `epoch startOffset`
//! line per entry in increasing order of both:
//! ```text
//! 0
//! 1
//! 0 0
//! ```
//! Written to `leader-epoch-checkpoint.tmp`, fsynced, renamed over the file and the
//! directory fsynced (Kafka's `Utils.atomicMoveWithFallback` with `needFlushParentDir`), so a
//! crash leaves the old or the new file. A missing or unreadable file is rebuilt from the log
//! at open (see [`crate::Log::open`]). Entries are applied one by one with
//! [`LeaderEpochCache::assign`] when read, as Kafka's constructor does, so a file whose
//! entries are out of order is repaired rather than trusted.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use arus_replication::{EpochEntry, LEADER_EPOCH_CHECKPOINT_FILENAME, LeaderEpochCache};
use arus_replication::{decode_checkpoint, encode_checkpoint};

pub fn path(dir: &Path) -> PathBuf {
    dir.join(LEADER_EPOCH_CHECKPOINT_FILENAME)
}

/// `Ok(None)` if there is no file; `Ok(Some(Err(reason)))` if it cannot be used.
pub fn read(dir: &Path) -> io::Result<Option<Result<LeaderEpochCache, String>>> {
    let bytes = match fs::read(path(dir)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let cache = decode_checkpoint(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|entries| LeaderEpochCache::from_entries(&entries).map_err(|e| e.to_string()));
    Ok(Some(cache))
}

/// Replaces the file with `cache`'s entries durably: temp file, fsync, rename, fsync of the
/// directory.
pub fn write(dir: &Path, cache: &LeaderEpochCache) -> Result<(), (PathBuf, io::Error)> {
    write_atomically(&path(dir), &encode_checkpoint(&cache.entries()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (dir.to_path_buf(), e))
}

/// Kafka's checkpoint write: `<path>.tmp`, fsync, rename over `path`. The caller fsyncs the
/// directory when the rename itself must be durable.
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

    fn entries(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn writes_reads_and_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        assert!(read(d.path()).unwrap().is_none());
        let mut c = LeaderEpochCache::new();
        c.assign(0, 0).unwrap();
        c.assign(4, 17).unwrap();
        write(d.path(), &c).unwrap();
        assert_eq!(fs::read(path(d.path())).unwrap(), b"0\n2\n0 0\n4 17\n");
        assert_eq!(read(d.path()).unwrap().unwrap().unwrap(), c);
        c.truncate_from_end(17);
        write(d.path(), &c).unwrap();
        assert_eq!(fs::read(path(d.path())).unwrap(), b"0\n1\n0 0\n");
        assert!(!d.path().join("leader-epoch-checkpoint.tmp").exists());
    }

    #[test]
    fn an_empty_file_is_an_empty_cache_and_garbage_is_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::write(path(d.path()), b"").unwrap();
        assert!(read(d.path()).unwrap().unwrap().unwrap().is_empty());
        for bad in [
            &b"1\n0\n"[..],
            b"0\n2\n0 0\n",
            b"0\n1\nx 0\n",
            b"0\n1\n-1 0\n",
            &[0xff],
        ] {
            fs::write(path(d.path()), bad).unwrap();
            assert!(read(d.path()).unwrap().unwrap().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn out_of_order_entries_are_repaired_as_kafka_loads_them() {
        let d = tempfile::tempdir().unwrap();
        fs::write(path(d.path()), b"0\n2\n3 5\n2 6\n").unwrap();
        let c = read(d.path()).unwrap().unwrap().unwrap();
        assert_eq!(entries(&c), [(2, 6)]);
    }

    #[test]
    fn reads_what_kafka_wrote() {
        let fixture = include_bytes!("../tests/fixtures/kafka-4.4/fx-0/leader-epoch-checkpoint");
        let d = tempfile::tempdir().unwrap();
        fs::write(path(d.path()), fixture).unwrap();
        let c = read(d.path()).unwrap().unwrap().unwrap();
        assert_eq!(entries(&c), [(0, 0)]);
        write(d.path(), &c).unwrap();
        assert_eq!(fs::read(path(d.path())).unwrap(), fixture);
    }
}
