//! One broker per data directory: an exclusive advisory lock on `<log.dirs>/.lock`, taken
//! before anything in the directory is read or written, as Kafka's `LogManager.lockLogDirs`.
//! Two brokers on the same segments would both append and both truncate on recovery.
//!
//! `.lock` format: the holder's pid in decimal and a newline, for the message a second broker
//! prints; the lock itself is `flock(2)` on the open file, so the kernel releases it when the
//! holder exits, however it exits, and a stale file from a crash never blocks a start.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    #[error(
        "log directory {} is in use by another broker{}: stop it or choose another log.dirs",
        dir.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    InUse { dir: PathBuf, holder: Option<u32> },
    #[error("cannot lock log directory {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Holds the lock until dropped (or [`DirLock::release`]).
#[derive(Debug)]
pub struct DirLock {
    file: Option<File>,
}

impl DirLock {
    /// Creates the directory if needed and locks it, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock, DirLockError> {
        let io = |source| DirLockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        crate::store::create_dir_all_durable(dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(DirLockError::InUse {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // The pid is only a hint for the message above: not fsynced, and a failure to write
        // it does not matter (the lock is held).
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        Ok(DirLock { file: Some(file) })
    }

    /// Releases the lock now (at shutdown, once nothing writes to the directory any more).
    pub fn release(&mut self) {
        self.file = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut first = DirLock::acquire(&data).unwrap();
        match DirLock::acquire(&data) {
            Err(DirLockError::InUse { dir, holder }) => {
                assert_eq!(dir, data);
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        first.release();
        let _again = DirLock::acquire(&data).expect("released at shutdown");
    }

    #[test]
    fn a_stale_lock_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999\n").unwrap();
        DirLock::acquire(dir.path()).unwrap();
    }
}
