//! Producer ids handed out by InitProducerId, unique for the life of the log directory.
//!
//! Kafka's controller allocates blocks of 1000 ids and records each block in the metadata
//! log; a restarted broker asks for a fresh block, so an id is never handed out twice even
//! if the broker died in the middle of a block. Arus does the same with a file:
//!
//! On-disk format (`producer-id-block`, version 1), one line of text:
//! `1 <next block start>\n` — every id below `<next block start>` may have been used.
//! The line is written to `producer-id-block.tmp`, fsynced, renamed over the old file and
//! the directory fsynced *before* any id of the new block is returned, so a crash leaves
//! either the old or the new reservation, and never one below an id already handed out.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arus_protocol::ErrorCode;
use arus_txn::ProducerIdSource;
use tracing::error;

pub const PRODUCER_ID_FILE: &str = "producer-id-block";
const FORMAT_VERSION: u32 = 1;
/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const BLOCK_SIZE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug)]
pub struct ProducerIdBlocks {
    dir: PathBuf,
    /// Next id to hand out.
    next: i64,
    /// End (exclusive) of the block reserved on disk.
    reserved_end: i64,
}

impl ProducerIdBlocks {
    /// The first id of the next block: every id below it may have been handed out.
    pub fn next_block_start(&self) -> i64 {
        self.reserved_end
    }

    /// Reads the reservation in `dir`; the first id handed out will start a new block.
    pub fn open(dir: &Path) -> Result<ProducerIdBlocks, ProducerIdError> {
        let path = dir.join(PRODUCER_ID_FILE);
        let start = match fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ProducerIdError::Io { path, source }),
        };
        Ok(ProducerIdBlocks {
            dir: dir.to_path_buf(),
            next: start,
            reserved_end: start,
        })
    }

    fn reserve(&mut self) -> Result<(), ProducerIdError> {
        let end = self.reserved_end.saturating_add(BLOCK_SIZE);
        let path = self.dir.join(PRODUCER_ID_FILE);
        let tmp = self.dir.join(format!("{PRODUCER_ID_FILE}.tmp"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ProducerIdError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(format!("{FORMAT_VERSION} {end}\n").as_bytes())
            .map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        self.reserved_end = end;
        Ok(())
    }
}

fn parse(path: &Path, text: &str) -> Result<i64, ProducerIdError> {
    let corrupt = |reason: &str| ProducerIdError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut parts = text.split_whitespace();
    let version: u32 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("missing format version"))?;
    if version != FORMAT_VERSION {
        return Err(corrupt(&format!(
            "format version {version}; this Arus reads {FORMAT_VERSION}"
        )));
    }
    let start: i64 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt("missing next block start"))?;
    if start < 0 {
        return Err(corrupt("negative next block start"));
    }
    Ok(start)
}

impl ProducerIdSource for ProducerIdBlocks {
    fn next_producer_id(&mut self) -> Result<i64, ErrorCode> {
        if self.next >= self.reserved_end {
            if let Err(e) = self.reserve() {
                error!(error = %e, "cannot reserve a block of producer ids");
                // Kafka answers a failed block allocation with a retriable error.
                return Err(ErrorCode::CoordinatorLoadInProgress);
            }
            self.next = self.reserved_end - BLOCK_SIZE;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts_even_mid_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = ProducerIdBlocks::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next_producer_id().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        // A restart (clean or not) starts a fresh block above everything reserved.
        let mut b = ProducerIdBlocks::open(dir.path()).unwrap();
        assert_eq!(b.next_producer_id().unwrap(), BLOCK_SIZE);
        for _ in 0..BLOCK_SIZE {
            b.next_producer_id().unwrap();
        }
        assert_eq!(b.next_producer_id().unwrap(), 2 * BLOCK_SIZE + 1);
        let mut c = ProducerIdBlocks::open(dir.path()).unwrap();
        assert_eq!(c.next_producer_id().unwrap(), 3 * BLOCK_SIZE);
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_reuse() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(PRODUCER_ID_FILE), "1 banana\n").unwrap();
        assert!(matches!(
            ProducerIdBlocks::open(dir.path()),
            Err(ProducerIdError::Corrupt { .. })
        ));
        fs::write(dir.path().join(PRODUCER_ID_FILE), "7 100\n").unwrap();
        assert!(ProducerIdBlocks::open(dir.path()).is_err());
    }
}
