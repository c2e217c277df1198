//! Cluster metadata persisted in the log directory: the cluster id and every topic's id,
//! partition count and config overrides.
//!
//! On-disk format (`arus-metadata.json`, format version 1):
//! ```json
//! {"version":1,"cluster_id":"<22 chars>","topics":[{"name":"t","id":"<32 hex>","partitions":3,"configs":{"retention.ms":"1000"}}]}
//! ```
//! Written whole to `arus-metadata.json.tmp`, fsynced, renamed over the old file, and the
//! directory fsynced, so a crash leaves either the old or the new file, never a torn one.
//! Partition data lives beside it in `<topic>-<partition>/` directories owned by `arus-log`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const METADATA_FILE: &str = "arus-metadata.json";
pub const METADATA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopicRecord {
    pub name: String,
    /// Topic id as 32 lowercase hex digits.
    pub id: String,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MetadataFile {
    pub version: u32,
    pub cluster_id: String,
    pub topics: Vec<TopicRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("metadata file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "metadata file {path} has format version {found}; this Arus reads version {METADATA_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the metadata file, or `None` for a fresh log directory.
pub fn load(dir: &Path) -> Result<Option<MetadataFile>, StoreError> {
    let path = dir.join(METADATA_FILE);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    let file: MetadataFile =
        serde_json::from_slice(&text).map_err(|source| StoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
    if file.version != METADATA_VERSION {
        return Err(StoreError::Version {
            path,
            found: file.version,
        });
    }
    Ok(Some(file))
}

/// Atomically replaces the metadata file.
pub fn save(dir: &Path, file: &MetadataFile) -> Result<(), StoreError> {
    let path = dir.join(METADATA_FILE);
    let bytes = serde_json::to_vec_pretty(file).map_err(|source| StoreError::Corrupt {
        path: path.clone(),
        source,
    })?;
    replace_atomically(dir, METADATA_FILE, &bytes)
        .map_err(|(path, source)| StoreError::Io { path, source })
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old or the new file, never a
/// torn one: write `name.tmp`, fsync it, rename it over `name`, fsync the directory. The
/// error names the path the failing step touched. An error before the rename leaves the
/// old file and no temp file (callers then keep their old in-memory state: all or
/// nothing); only a failed directory fsync after the rename leaves the new file in place
/// but perhaps not durable.
pub(crate) fn replace_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<(), (PathBuf, std::io::Error)> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    fs::create_dir_all(dir).map_err(at(dir))?;
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        // The old file is untouched. A half-written temp file would hold space that the
        // next attempt (or an append) needs on a full disk; start-up ignores it anyway.
        let _ = fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    fs::rename(&tmp, &path).map_err(at(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// `create_dir_all` that survives a power cut: the entry of every directory it creates is
/// made durable by fsyncing that directory's parent (as Kafka's `LogManager` does for a new
/// log directory). Without it a broker started on a fresh `log.dirs` could acknowledge
/// fsynced writes whose whole directory is gone after the power fails
/// (`faults/powerloss` found this).
pub(crate) fn create_dir_all_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The missing ancestors, innermost first.
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    fs::create_dir_all(dir)?;
    for d in missing.iter().rev() {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_all_durable_creates_every_level_and_accepts_existing() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a").join("b").join("c");
        create_dir_all_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all_durable(&deep).unwrap();
        fs::write(dir.path().join("f"), b"").unwrap();
        assert!(create_dir_all_durable(&dir.path().join("f").join("x")).is_err());
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let file = MetadataFile {
            version: METADATA_VERSION,
            cluster_id: "abc".into(),
            topics: vec![TopicRecord {
                name: "t".into(),
                id: "00".repeat(16),
                partitions: 2,
                configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
            }],
        };
        save(dir.path(), &file).unwrap();
        assert_eq!(load(dir.path()).unwrap().unwrap(), file);
        fs::write(dir.path().join(METADATA_FILE), b"{not json").unwrap();
        assert!(matches!(load(dir.path()), Err(StoreError::Corrupt { .. })));
    }
}
