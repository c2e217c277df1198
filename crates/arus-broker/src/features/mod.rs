//! Cluster feature flags (KIP-584, KIP-778): the features this broker supports, the levels
//! finalized for the cluster, and UpdateFeatures' validation — Kafka 4.4's `Feature`,
//! `MetadataVersion`, `BrokerFeatures` and `FeatureControlManager` on a single KRaft node.
//!
//! Only features whose behaviour Arus implements are supported (and so advertised):
//!
//! - `metadata.version` 7 (3.3-IV3) ..= 33 (4.4-IV2), Kafka 4.4's KRaft range. Arus keeps no
//!   metadata log, so no level changes what it does; the level exists because clients and
//!   tools read it, and other features' dependencies are checked against it.
//! - `transaction.version` 0 ..= 2: level 2 makes clients use transactions v2 (KIP-890 part
//!   2: EndTxn v5 bumps the epoch, Produce v12 / TxnOffsetCommit v5 add partitions
//!   implicitly); level 0 writes `__transaction_state` values at version 0, level 1+ at 1.
//! - `group.version` 0 ..= 1: level 1 enables KIP-848 consumer groups; at 0
//!   ConsumerGroupHeartbeat / ConsumerGroupDescribe answer UNSUPPORTED_VERSION, as in Kafka.
//!
//! Not supported, so absent from ApiVersions (Kafka omits features whose maximum is 0):
//! `share.version` and `streams.version` (share groups, KIP-932, and streams groups,
//! KIP-1071, are not built), `eligible.leader.replicas.version` (KIP-966 needs replication)
//! and `kraft.version` (there is no KRaft quorum to reconfigure, KIP-853). Updating them
//! fails with Kafka's "does not support this feature".

pub mod live;
pub mod store;

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;

pub const METADATA_VERSION: &str = "metadata.version";
pub const TRANSACTION_VERSION: &str = "transaction.version";
pub const GROUP_VERSION: &str = "group.version";

/// `MetadataVersion.IBP_4_4_IV2.featureLevel()`, Kafka 4.4's latest production level.
pub const METADATA_VERSION_4_4_IV2: i16 = 33;
/// `MetadataVersion.MINIMUM_VERSION` (3.3-IV3).
pub const METADATA_VERSION_MIN: i16 = 7;

/// One supported feature: its level range, Kafka 4.4's default for a freshly formatted
/// cluster, and the level a directory made by the previous Arus release (which had no
/// feature file) is given on its first start with this release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SupportedFeature {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub fresh_default: i16,
    pub upgrade_default: i16,
}

/// Every feature Arus supports, sorted by name.
pub const SUPPORTED: &[SupportedFeature] = &[
    SupportedFeature {
        name: GROUP_VERSION,
        min: 0,
        max: 1,
        fresh_default: 1,
        // The previous release served KIP-848 groups already.
        upgrade_default: 1,
    },
    SupportedFeature {
        name: METADATA_VERSION,
        min: METADATA_VERSION_MIN,
        max: METADATA_VERSION_4_4_IV2,
        fresh_default: METADATA_VERSION_4_4_IV2,
        upgrade_default: METADATA_VERSION_4_4_IV2,
    },
    SupportedFeature {
        name: TRANSACTION_VERSION,
        min: 0,
        max: 2,
        fresh_default: 2,
        // The previous release served transactions v1 (flexible `__transaction_state`
        // values, no epoch bump per transaction): keep that until the operator upgrades.
        upgrade_default: 1,
    },
];

pub fn supported(name: &str) -> Option<&'static SupportedFeature> {
    SUPPORTED.iter().find(|f| f.name == name)
}

/// Kafka's `Feature.dependencies()` for the supported features at their supported levels:
/// (feature, level) needs (other feature, at least level). Kafka 4.4 declares none for
/// `transaction.version` and `group.version` (their bootstrap metadata versions are not
/// dependencies), so the table is empty; [`plan_update`] still checks it so that a future
/// dependency only needs a row here.
const DEPENDENCIES: &[(&str, i16, &str, i16)] = &[];

/// The finalized feature levels and their epoch, as persisted by [`store`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finalized {
    /// Increases by one on every change.
    pub epoch: i64,
    /// Every supported feature's level (0 = disabled; never reported at 0).
    pub levels: BTreeMap<String, i16>,
}

impl Finalized {
    /// The levels a new data directory starts with (Kafka 4.4's defaults).
    pub fn fresh() -> Finalized {
        Finalized {
            epoch: 0,
            levels: SUPPORTED
                .iter()
                .map(|f| (f.name.to_string(), f.fresh_default))
                .collect(),
        }
    }

    /// The levels a directory of the previous release (no feature file) starts with.
    pub fn upgraded() -> Finalized {
        Finalized {
            epoch: 0,
            levels: SUPPORTED
                .iter()
                .map(|f| (f.name.to_string(), f.upgrade_default))
                .collect(),
        }
    }

    pub fn level(&self, name: &str) -> i16 {
        self.levels.get(name).copied().unwrap_or(0)
    }
}

/// `FeatureUpdate.UpgradeType` codes (UpdateFeatures v1+ `UpgradeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    Unknown,
}

impl UpgradeType {
    pub fn from_code(code: i8) -> UpgradeType {
        match code {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

/// One requested change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureUpdate {
    pub feature: String,
    pub level: i16,
    pub upgrade_type: UpgradeType,
}

/// Why an UpdateFeatures request was refused: always INVALID_UPDATE_VERSION with Kafka's
/// message (`FeatureControlManager.invalidUpdateVersion` / `invalidMetadataVersion`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpdateRefused {
    pub message: String,
}

impl UpdateRefused {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidUpdateVersion
    }
}

/// The node id Kafka names in "Local controller N ..." (a single node is node 1).
const NODE_ID: i32 = 1;

fn invalid(feature: &str, level: i16, why: &str) -> UpdateRefused {
    UpdateRefused {
        message: format!("Invalid update version {level} for feature {feature}. {why}"),
    }
}

/// Kafka's `QuorumFeatures.reasonNotSupported` for the local controller.
fn reason_not_supported(feature: &str, level: i16) -> Option<String> {
    let what = format!("Local controller {NODE_ID}");
    match supported(feature) {
        None => Some(format!("{what} does not support this feature.")),
        Some(f) if level < f.min || level > f.max => {
            if f.max == 0 {
                Some(format!("{what} does not support this feature."))
            } else {
                Some(format!("{what} only supports versions {}-{}", f.min, f.max))
            }
        }
        Some(_) => None,
    }
}

/// Validates `updates` against `current` as Kafka's `FeatureControlManager.updateFeatures`
/// does and returns the levels after them (the caller persists them with the epoch + 1,
/// unless `validate_only`). The first refused update refuses the whole request. Updates to
/// the current level are accepted and change nothing.
pub fn plan_update(
    current: &Finalized,
    updates: &[FeatureUpdate],
) -> Result<BTreeMap<String, i16>, UpdateRefused> {
    let mut proposed = current.levels.clone();
    for u in updates {
        proposed.insert(u.feature.clone(), u.level);
    }
    for u in updates {
        check_one(current, u, &proposed)?;
    }
    // Level 0 removes a feature (Kafka's FeatureLevelRecord at 0), but every supported
    // feature keeps an entry so that the file says what was decided.
    proposed.retain(|name, _| supported(name).is_some());
    Ok(proposed)
}

fn check_one(
    current: &Finalized,
    u: &FeatureUpdate,
    proposed: &BTreeMap<String, i16>,
) -> Result<(), UpdateRefused> {
    let (name, level) = (u.feature.as_str(), u.level);
    if u.upgrade_type == UpgradeType::Unknown {
        return Err(invalid(
            name,
            level,
            "The controller does not support the given upgrade type.",
        ));
    }
    if level < 0 {
        return Err(invalid(
            name,
            level,
            "A feature version cannot be less than 0.",
        ));
    }
    if let Some(reason) = reason_not_supported(name, level) {
        return Err(invalid(name, level, &reason));
    }
    let now = current.level(name);
    if level < now && u.upgrade_type == UpgradeType::Upgrade {
        return Err(invalid(
            name,
            level,
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
        ));
    }
    if level > now && u.upgrade_type != UpgradeType::Upgrade {
        return Err(invalid(name, level, "Can't downgrade to a newer version."));
    }
    if name == METADATA_VERSION {
        if level < now {
            // Kafka 4.4 refuses every metadata.version downgrade that changes metadata,
            // and each level since 3.3-IV3 does.
            let why = if u.upgrade_type == UpgradeType::UnsafeDowngrade {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            return Err(UpdateRefused {
                message: format!(
                    "Unsupported metadata.version downgrade from {now} to {level}. {why}"
                ),
            });
        }
        return Ok(());
    }
    for &(feature, at, needs, min) in DEPENDENCIES {
        if feature == name && level >= at {
            let have = proposed.get(needs).copied().unwrap_or(0);
            if have < min {
                let why = if needs == METADATA_VERSION {
                    format!(
                        "{name} could not be set to {level} because it depends on metadata.version={min} ({have})"
                    )
                } else {
                    format!(
                        "{name} could not be set to {level} because it depends on {needs} level {min}"
                    )
                };
                return Err(invalid(name, level, &why));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
