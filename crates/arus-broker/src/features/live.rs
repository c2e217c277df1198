//! The finalized levels a running broker serves, changed by UpdateFeatures.

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
}

pub struct Features {
    dir: PathBuf,
    finalized: Mutex<Finalized>,
}

impl Features {
    pub fn open(dir: &std::path::Path) -> Result<Features, FeatureStoreError> {
        Ok(Features {
            dir: dir.to_path_buf(),
            finalized: Mutex::new(store::load_or_init(dir)?),
        })
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
