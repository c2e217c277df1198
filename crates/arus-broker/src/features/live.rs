//! The finalized levels a running broker serves, changed by UpdateFeatures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::Mutex;
use tracing::{info, warn};

use super::store::{self, FeatureStoreError};
use super::{FeatureUpdate, Finalized, TRANSACTION_VERSION, UpdateRefused, plan_update};

/// Why an update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Refused(#[from] UpdateRefused),
    /// The new levels could not be made durable: nothing changed.
    #[error(transparent)]
    Storage(#[from] FeatureStoreError),
    /// In a cluster, the controller finalizes levels and they arrive with the metadata.
    #[error("finalized feature levels are changed by the controller in a cluster")]
    Driven,
}

pub struct Features {
    dir: PathBuf,
    finalized: Mutex<Finalized>,
    /// In a cluster the levels follow the metadata ([`Features::apply_from_metadata`]):
    /// the file is no longer written, and only validate-only updates are made here.
    driven: std::sync::atomic::AtomicBool,
}

impl Features {
    pub fn open(dir: &std::path::Path) -> Result<Features, FeatureStoreError> {
        Ok(Features {
            dir: dir.to_path_buf(),
            finalized: Mutex::new(store::load_or_init(dir)?),
            driven: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The levels of a broker driven by the cluster metadata: no `arus-features.json` is read
    /// or written (the image's FeatureLevelRecords replace these defaults before the broker
    /// serves clients, which waits for its metadata to catch up).
    pub fn open_driven(dir: &std::path::Path) -> Features {
        Features {
            dir: dir.to_path_buf(),
            finalized: Mutex::new(Finalized::fresh()),
            driven: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Switches to the cluster mode (see the `driven` field).
    pub fn set_driven(&self) {
        self.driven.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Replaces the finalized levels with those of the cluster metadata (FeatureLevelRecords;
    /// a feature absent is at level 0), with `epoch` the metadata offset they were read at
    /// (Kafka's FinalizedFeaturesEpoch in KRaft). A level this release cannot serve is
    /// logged: the controller only finalizes levels every registered broker supports.
    pub fn apply_from_metadata(&self, levels: BTreeMap<String, i16>, epoch: i64) -> Finalized {
        self.set_driven();
        for (name, level) in &levels {
            let supported =
                super::supported(name).is_some_and(|f| f.min <= *level && *level <= f.max);
            if *level != 0 && !supported {
                warn!(feature = %name, level, "the cluster finalized a feature level this broker does not support");
            }
        }
        let mut current = self.finalized.lock();
        if current.levels != levels {
            info!(
                ?levels,
                epoch, "finalized feature levels from the cluster metadata"
            );
        }
        *current = Finalized { epoch, levels };
        current.clone()
    }

    pub fn snapshot(&self) -> Finalized {
        self.finalized.lock().clone()
    }

    pub fn level(&self, name: &str) -> i16 {
        self.finalized.lock().level(name)
    }

    pub fn transaction_version(&self) -> i16 {
        self.level(TRANSACTION_VERSION)
    }

    /// Validates `updates` and, unless `validate_only`, persists the new levels with the
    /// next epoch before they take effect (the lock is held across the write, so two
    /// updates cannot interleave).
    pub fn update(
        &self,
        updates: &[FeatureUpdate],
        validate_only: bool,
    ) -> Result<Finalized, UpdateError> {
        let mut current = self.finalized.lock();
        let levels = plan_update(&current, updates).inspect_err(|e| {
            warn!(error = %e.message, "UpdateFeatures refused");
        })?;
        if validate_only || updates.is_empty() {
            return Ok(current.clone());
        }
        if self.driven.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(UpdateError::Driven);
        }
        let next = Finalized {
            epoch: current.epoch + 1,
            levels,
        };
        store::save(&self.dir, &next)?;
        for u in updates {
            info!(
                feature = u.feature,
                level = u.level,
                epoch = next.epoch,
                "finalized feature level changed"
            );
        }
        *current = next.clone();
        Ok(next)
    }
}
