//! Small checkpoint files in the partition directory, and the recovery procedure they drive.
//!
//! # `recovery-point` ([`RECOVERY_POINT_FILE`], version [`RECOVERY_POINT_VERSION`])
//! Text, two lines: the format version, then an offset below which every batch was known
//! to be fsynced when the file was written:
//! ```text
//! 1
//! 12345
//! ```
//! Written (temp file, fsync, rename) when a segment rolls, on truncation, on close and
//! after recovery. Missing or unparseable means 0 (scan everything).
//!
//! # `.clean-shutdown` ([`CLEAN_SHUTDOWN_FILE`], version [`CLEAN_SHUTDOWN_VERSION`])
//! Same two-line layout; the offset is the log end offset at close. Written last by
//! `Log::close` after everything was fsynced; removed (and the directory fsynced) by
//! `Log::open` before the log can be appended to again.
//!
//! # Recovery (`Log::open`)
//! - Every segment is opened; its `.index`/`.timeindex` are sanity-checked (header, sizes,
//!   monotonic entries, last offset entry points at a batch with that offset) and the
//!   batches after the last index entry are walked (header sanity, no CRC) to find the end.
//! - With a valid marker whose log end matches what was found: nothing more is scanned.
//!   Otherwise the scan starts at the segment containing the recovery point (or just the
//!   last segment if only the marker's offset disagreed).
//! - Scanned segments — and any segment whose indexes failed their check — are read batch
//!   by batch, validating header sanity (magic 2, `batchLength >= 49`, batch fits in the
//!   file, offsets increasing) and CRC-32C. At the first torn or corrupt batch the `.log`
//!   is truncated and every later segment deleted; the same happens when a segment ends
//!   after the next one starts, or — at or above the recovery point only — before it
//!   (lost unflushed data; below the recovery point such a gap was left by the log
//!   cleaner, see [`crate::lifecycle`], and a non-active segment then extends to the next
//!   one's base). The scanned segment's indexes are rebuilt and it is fsynced. The log end
//!   is the last valid batch's last offset + 1.
//! - Before all this, an interrupted segment swap is completed or rolled back and
//!   `.deleted` leftovers are removed; afterwards the log start offset is read from its
//!   checkpoint (see [`crate::lifecycle`]).
//! - An empty directory becomes a new log at offset 0.
//!
//! # Producer state (after the above)
//! - Snapshots above the log end are deleted. The newest snapshot at or below a limit is
//!   loaded — the log end after a clean shutdown, else the recovery point (only state
//!   derived from fsynced data, with fsynced `.txnindex` entries, is trusted) — falling
//!   back to older ones when one fails to decode, or to an empty state at the log start.
//! - `.txnindex` entries are loaded (valid prefix of each file); those with
//!   `last_offset` at or above where replay starts are dropped.
//! - Batch headers from there to the log end are replayed (control batches also have their
//!   marker record read), re-adding ongoing transactions and aborted entries. A clean
//!   start with the close-time snapshot at the log end reads no batch.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::LogError;

pub const RECOVERY_POINT_FILE: &str = "recovery-point";
pub const RECOVERY_POINT_VERSION: u32 = 1;
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";
pub const CLEAN_SHUTDOWN_VERSION: u32 = 1;

/// Reads a `version\noffset\n` file; `None` if missing, of another version, or malformed.
pub fn read_offset_file(path: &Path, version: u32) -> Option<i64> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim().parse::<u32>().ok()? != version {
        return None;
    }
    let off: i64 = lines.next()?.trim().parse().ok()?;
    (off >= 0).then_some(off)
}

/// Atomically replaces `path` with a `version\noffset\n` file (temp file + fsync + rename).
/// The caller fsyncs the directory when the rename itself must be durable.
pub fn write_offset_file(path: &Path, version: u32, offset: i64) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{version}\n{offset}\n").as_bytes())?;
        f.sync_data()
    };
    if let Err(source) = write() {
        // On a full disk the half-written temp file would hold space the log needs to
        // resume (`Log::open` removes any that a crash leaves).
        let _ = fs::remove_file(&tmp);
        return Err(LogError::Io { path: tmp, source });
    }
    fs::rename(&tmp, path).map_err(|e| LogError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}
