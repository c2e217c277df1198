//! JBOD: every entry of `log.dirs` holds partitions (Kafka's `LogManager` with several log
//! directories).
//!
//! - **Where things live.** Each partition lives in exactly one directory, as
//!   `<dir>/<topic>-<partition>/` (owned by `arus-log`). Broker-wide files (the topic
//!   metadata `arus-metadata.json`, `dynamic-configs.json`, the producer-id reservation) live
//!   in the metadata directory: `metadata.log.dir`, by default the first entry of
//!   `log.dirs`, as Kafka keeps its KRaft metadata log there. Every directory (the metadata
//!   directory too, if it is not a log directory) is locked (`.lock`, [`crate::dir_lock`]).
//!   Every directory also holds Kafka's `meta.properties` (cluster id, node id, directory
//!   id), written by `arus storage format` or at start-up (`arus_node::storage`); the
//!   metadata directory holds the bootstrap file of a formatted cluster.
//! - **Placement** of a new partition: [`placement::next_log_dirs`].
//! - **Discovery** at start-up: [`discovery`] finds every partition in whichever directory
//!   holds it, finishes or abandons an interrupted move, and refuses to start when one
//!   partition is in two directories.
//! - **Moves** between directories (AlterReplicaLogDirs): [`mover`].
//! - **Failure**: an I/O error on a directory's partition takes that directory offline
//!   ([`LogDir::fail`], Kafka's `LogDirFailureChannel`); its partitions then answer
//!   KAFKA_STORAGE_ERROR and the other directories keep serving. When every log directory,
//!   or the metadata directory, is offline the broker stops ([`LogDirs::fatal`]), as Kafka
//!   halts.

pub mod discovery;
pub mod mover;
pub mod names;
pub mod placement;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use tokio::sync::watch;

/// One entry of `log.dirs`.
#[derive(Debug)]
pub struct LogDir {
    /// Position in `log.dirs`.
    pub index: usize,
    /// Absolute (not canonical) path, as Kafka reports and matches it
    /// (`File.getAbsolutePath`).
    pub path: PathBuf,
    online: AtomicBool,
    owner: Weak<LogDirs>,
}

impl LogDir {
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Takes the directory offline after an I/O error on it (Kafka's
    /// `LogDirFailureChannel.maybeAddOfflineLogDir`): logged once, for the operator.
    pub fn fail(&self, cause: &dyn std::fmt::Display) {
        if self.online.swap(false, Ordering::AcqRel) {
            tracing::error!(
                dir = %self.path.display(),
                error = %cause,
                "log directory failed: it is offline, its partitions answer KAFKA_STORAGE_ERROR until the broker restarts; replace or repair the disk"
            );
            if let Some(owner) = self.owner.upgrade() {
                owner.check_fatal();
            }
        }
    }

    /// The error a partition of an offline directory answers with.
    pub fn offline_error(&self) -> std::io::Error {
        std::io::Error::other(format!("Log directory {} is offline", self.path.display()))
    }
}

/// Whether an I/O error means the directory's disk failed. A full disk (and a quota) is
/// not a failure in Arus: the write is refused and later ones succeed once space returns
/// (see `crates/arus/tests/disk_full.rs`); Kafka would take the directory offline. A
/// descriptor shortage is the process's, not the directory's.
pub fn is_dir_failure(e: &std::io::Error) -> bool {
    !matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EMFILE | libc::ENFILE)
    )
}

/// Every configured directory and the metadata directory.
#[derive(Debug)]
pub struct LogDirs {
    dirs: Vec<Arc<LogDir>>,
    /// Where broker-wide files live (see the module docs).
    pub metadata_dir: PathBuf,
    /// Set once the broker must stop: why.
    fatal: watch::Sender<Option<String>>,
    /// Moves between directories in progress.
    pub moves: Arc<mover::Moves>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogDirsError {
    #[error("log.dirs is empty")]
    Empty,
    #[error("log.dirs names {0} twice")]
    Duplicate(String),
    #[error("cannot resolve log directory {}: {source}", path.display())]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn absolute(path: &Path) -> Result<PathBuf, LogDirsError> {
    // Without a trailing `/` or `.` components, as `getAbsolutePath` spells it.
    std::path::absolute(path)
        .map(|p| p.components().collect())
        .map_err(|source| LogDirsError::Resolve {
            path: path.to_path_buf(),
            source,
        })
}

impl LogDirs {
    pub fn new(log_dirs: &[PathBuf], metadata_dir: &Path) -> Result<Arc<LogDirs>, LogDirsError> {
        if log_dirs.is_empty() {
            return Err(LogDirsError::Empty);
        }
        let paths = log_dirs
            .iter()
            .map(|p| absolute(p))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, p) in paths.iter().enumerate() {
            if paths[..i].contains(p) {
                return Err(LogDirsError::Duplicate(p.display().to_string()));
            }
        }
        let metadata_dir = absolute(metadata_dir)?;
        Ok(Arc::new_cyclic(|owner| LogDirs {
            dirs: paths
                .into_iter()
                .enumerate()
                .map(|(index, path)| {
                    Arc::new(LogDir {
                        index,
                        path,
                        online: AtomicBool::new(true),
                        owner: owner.clone(),
                    })
                })
                .collect(),
            metadata_dir,
            fatal: watch::channel(None).0,
            moves: Arc::default(),
        }))
    }

    /// Whether any log directory is offline.
    pub fn any_offline(&self) -> bool {
        self.dirs.iter().any(|d| !d.is_online())
    }

    pub fn all(&self) -> &[Arc<LogDir>] {
        &self.dirs
    }

    pub fn get(&self, index: usize) -> Option<&Arc<LogDir>> {
        self.dirs.get(index)
    }

    /// The directory whose absolute path is exactly `path` (Kafka compares
    /// `getAbsolutePath` strings).
    pub fn by_path(&self, path: &str) -> Option<&Arc<LogDir>> {
        self.dirs.iter().find(|d| d.path.as_os_str() == path)
    }

    /// An I/O error on a broker-wide file of the metadata directory: the directory goes
    /// offline if it is a log directory, and the broker stops either way.
    pub fn metadata_failed(&self, cause: &dyn std::fmt::Display) {
        match self.dirs.iter().find(|d| d.path == self.metadata_dir) {
            Some(d) => d.fail(cause),
            None => {
                tracing::error!(dir = %self.metadata_dir.display(), error = %cause, "the metadata log directory failed");
                self.send_fatal(format!(
                    "the metadata log directory {} is offline",
                    self.metadata_dir.display()
                ));
            }
        }
    }

    fn send_fatal(&self, reason: String) {
        tracing::error!(%reason, "shutting down the broker");
        self.fatal.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn check_fatal(&self) {
        let reason = if self.dirs.iter().all(|d| !d.is_online()) {
            Some("all log directories are offline".to_string())
        } else {
            self.dirs
                .iter()
                .find(|d| d.path == self.metadata_dir && !d.is_online())
                .map(|d| format!("the metadata log directory {} is offline", d.path.display()))
        };
        if let Some(reason) = reason {
            self.send_fatal(reason);
        }
    }

    /// Resolves (with the reason) once the broker cannot go on: every log directory, or the
    /// metadata directory, is offline. Kafka halts then.
    pub async fn fatal(&self) -> String {
        let mut rx = self.fatal.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            // The sender lives as long as `self`.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directory_offline_is_fatal_but_one_is_not() {
        let dirs =
            LogDirs::new(&[PathBuf::from("/a"), PathBuf::from("/b")], Path::new("/a")).unwrap();
        dirs.get(1).unwrap().fail(&"EIO");
        assert!(dirs.fatal.borrow().is_none());
        assert!(dirs.get(0).unwrap().is_online());
        dirs.get(0).unwrap().fail(&"EIO");
        assert!(dirs.fatal.borrow().is_some());
    }

    #[test]
    fn the_metadata_directory_offline_is_fatal() {
        let dirs =
            LogDirs::new(&[PathBuf::from("/a"), PathBuf::from("/b")], Path::new("/b")).unwrap();
        dirs.get(1).unwrap().fail(&"EIO");
        assert!(
            dirs.fatal
                .borrow()
                .as_ref()
                .is_some_and(|r| r.contains("metadata"))
        );
    }

    #[test]
    fn a_failed_metadata_directory_outside_log_dirs_is_fatal() {
        let dirs = LogDirs::new(&[PathBuf::from("/a")], Path::new("/meta")).unwrap();
        dirs.metadata_failed(&"EIO");
        assert!(dirs.get(0).unwrap().is_online());
        assert!(dirs.fatal.borrow().is_some());
    }

    #[test]
    fn a_directory_named_twice_is_refused() {
        assert!(matches!(
            LogDirs::new(
                &[PathBuf::from("/a"), PathBuf::from("/a/")],
                Path::new("/a")
            ),
            Err(LogDirsError::Duplicate(_))
        ));
    }

    #[test]
    fn a_full_disk_is_not_a_directory_failure() {
        assert!(!is_dir_failure(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_dir_failure(&std::io::Error::from_raw_os_error(
            libc::EIO
        )));
    }
}
