//! UpdateFeatures (KIP-584/KIP-778), as Kafka 4.4's controller answers it
//! (`QuorumController.updateFeatures`): one top-level error for the whole request, and on
//! success per-feature results for versions 0 and 1 only.

use arus_protocol::ErrorCode;
use arus_protocol::messages::UpdateFeaturesRequest;
use arus_protocol::messages::update_features_response::{
    UpdatableFeatureResult, UpdateFeaturesResponse,
};

use crate::Broker;
use crate::features::live::UpdateError;
use crate::features::{FeatureUpdate, UpgradeType};

pub fn update(broker: &Broker, r: UpdateFeaturesRequest, version: i16) -> UpdateFeaturesResponse {
    // Kafka's controller reads `UpgradeType` at every version: at v0 (where the field does
    // not exist) it is its default, upgrade, and `AllowDowngrade` is not consulted.
    let updates: Vec<FeatureUpdate> = r
        .feature_updates
        .iter()
        .map(|u| FeatureUpdate {
            feature: u.feature.clone(),
            level: u.max_version_level,
            upgrade_type: if version == 0 {
                UpgradeType::Upgrade
            } else {
                UpgradeType::from_code(u.upgrade_type)
            },
        })
        .collect();
    match broker.features.update(&updates, r.validate_only) {
        Ok(finalized) => {
            crate::driven::features_changed(broker, &finalized);
            UpdateFeaturesResponse {
                error_code: 0,
                error_message: None,
                results: if version <= 1 {
                    r.feature_updates
                        .iter()
                        .map(|u| UpdatableFeatureResult {
                            feature: u.feature.clone(),
                            error_code: 0,
                            error_message: Some("NONE".into()),
                            ..Default::default()
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                ..Default::default()
            }
        }
        Err(UpdateError::Refused(e)) => UpdateFeaturesResponse {
            error_code: e.code().code(),
            error_message: Some(format!(
                "The update failed for all features since the following feature had an error: {}",
                e.message
            )),
            ..Default::default()
        },
        Err(UpdateError::Driven) => UpdateFeaturesResponse {
            error_code: ErrorCode::NotController.code(),
            error_message: Some(UpdateError::Driven.to_string()),
            ..Default::default()
        },
        Err(UpdateError::Storage(e)) => {
            tracing::warn!(error = %e, "cannot persist the finalized feature levels");
            UpdateFeaturesResponse {
                error_code: ErrorCode::KafkaStorageError.code(),
                error_message: Some(format!(
                    "The update failed for all features since the following feature had an error: {e}"
                )),
                ..Default::default()
            }
        }
    }
}
