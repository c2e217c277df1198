//! The finalized feature levels on disk.
//!
//! Format (`arus-features.json` in the log directory, format version 1):
//! ```json
//! {"version":1,"epoch":3,"features":{"group.version":1,"metadata.version":33,"transaction.version":2}}
//! ```
//! `epoch` is the FinalizedFeaturesEpoch ApiVersions reports; it increases by one with each
//! change. Written whole to `arus-features.json.tmp`, fsynced, renamed over the old file and
//! the directory fsynced (`crate::store::replace_atomically`), so a crash leaves the old or
//! the new levels, never a mix. A directory without the file gets Kafka 4.4's defaults if it
//! is new, or the previous release's behaviour if it already holds data (see
//! [`load_or_init`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Finalized, supported};

pub const FEATURES_FILE: &str = "arus-features.json";
const FORMAT_VERSION: u32 = 1;
/// A file the previous release always wrote into a directory it used.
const METADATA_FILE: &str = "arus-metadata.json";

#[derive(Debug, thiserror::Error)]
pub enum FeatureStoreError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid feature file: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has format version {found}, this release reads {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{path} finalizes {feature} at {level}, which this release does not support")]
    Unsupported {
        path: PathBuf,
        feature: String,
        level: i16,
    },
    #[error("bad bootstrap file: {reason}")]
    Bootstrap { reason: String },
}

#[derive(Serialize, Deserialize)]
struct FeatureFile {
    version: u32,
    epoch: i64,
    features: BTreeMap<String, i16>,
}

/// Reads the finalized levels, creating the file on first start: Kafka 4.4's defaults for a
/// new directory, [`Finalized::upgraded`] for one the previous release made. A level this
/// release cannot serve stops the start (Kafka refuses to start a broker whose supported
/// range excludes a finalized level).
pub fn load_or_init(dir: &Path) -> Result<Finalized, FeatureStoreError> {
    let path = dir.join(FEATURES_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bootstrap = arus_node::storage::read_bootstrap(dir)
                .map_err(|reason| FeatureStoreError::Bootstrap { reason })?;
            let initial = if dir.join(METADATA_FILE).exists() {
                tracing::info!(
                    "no {FEATURES_FILE}: a directory of the previous release, finalizing the levels it served (transaction.version 1); upgrade with kafka-features"
                );
                Finalized::upgraded()
            } else if let Some(bootstrap) = bootstrap {
                from_bootstrap(&bootstrap)
            } else {
                Finalized::fresh()
            };
            save(dir, &initial)?;
            return Ok(initial);
        }
        Err(source) => return Err(FeatureStoreError::Io { path, source }),
    };
    let file: FeatureFile =
        serde_json::from_slice(&bytes).map_err(|source| FeatureStoreError::Corrupt {
            path: path.clone(),
            source,
        })?;
    if file.version != FORMAT_VERSION {
        return Err(FeatureStoreError::Version {
            path,
            found: file.version,
        });
    }
    for (name, &level) in &file.features {
        let ok = match supported(name) {
            Some(f) => (f.min..=f.max).contains(&level) || level == 0,
            None => level == 0,
        };
        if !ok {
            return Err(FeatureStoreError::Unsupported {
                path,
                feature: name.clone(),
                level,
            });
        }
    }
    Ok(Finalized {
        epoch: file.epoch,
        levels: file.features,
    })
}

/// The levels `arus storage format` chose (`--release-version`, `--feature`): the
/// supported features at their bootstrap levels, the others at Kafka 4.4's defaults.
/// `kraft.version` belongs to the quorum, not to this file.
fn from_bootstrap(bootstrap: &arus_node::storage::Bootstrap) -> Finalized {
    let mut f = Finalized::fresh();
    for (name, level) in &bootstrap.features {
        if let Some(known) = f.levels.get_mut(name) {
            *known = *level;
        }
    }
    f
}

/// Atomically replaces the file with `f`.
pub fn save(dir: &Path, f: &Finalized) -> Result<(), FeatureStoreError> {
    let file = FeatureFile {
        version: FORMAT_VERSION,
        epoch: f.epoch,
        features: f.levels.clone(),
    };
    let path = dir.join(FEATURES_FILE);
    let bytes = serde_json::to_vec(&file).map_err(|source| FeatureStoreError::Corrupt {
        path: path.clone(),
        source,
    })?;
    crate::store::replace_atomically(dir, FEATURES_FILE, &bytes)
        .map_err(|(path, source)| FeatureStoreError::Io { path, source })
}
