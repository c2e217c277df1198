//! Finalized features: `metadata.version` and the others, and UpdateFeatures (Kafka's
//! `FeatureControlManager.updateFeatures`, `QuorumFeatures.reasonNotSupported`,
//! `Features.validateVersion`).

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;
use arus_protocol::metadata::FeatureLevelRecord;

use crate::error::ControllerError;
use crate::records::MetadataRecord;
use crate::state::ClusterState;

/// `metadata.version`.
pub const METADATA_VERSION: &str = "metadata.version";
/// `eligible.leader.replicas.version` (KIP-966).
pub const ELIGIBLE_LEADER_REPLICAS_VERSION: &str = "eligible.leader.replicas.version";

/// Kafka 4.4's `metadata.version` levels, names and `didMetadataChange` flags, oldest
/// first (`MetadataVersion`).
const METADATA_VERSIONS: &[(i16, &str, bool)] = &[
    (7, "3.3-IV3", true),
    (8, "3.4-IV0", true),
    (9, "3.5-IV0", false),
    (10, "3.5-IV1", false),
    (11, "3.5-IV2", true),
    (12, "3.6-IV0", false),
    (13, "3.6-IV1", true),
    (14, "3.6-IV2", true),
    (15, "3.7-IV0", true),
    (16, "3.7-IV1", false),
    (17, "3.7-IV2", true),
    (18, "3.7-IV3", false),
    (19, "3.7-IV4", false),
    (20, "3.8-IV0", false),
    (21, "3.9-IV0", false),
    (22, "4.0-IV0", false),
    (23, "4.0-IV1", true),
    (24, "4.0-IV2", false),
    (25, "4.0-IV3", false),
    (26, "4.1-IV0", false),
    (27, "4.1-IV1", false),
    (28, "4.2-IV0", false),
    (29, "4.2-IV1", false),
    (30, "4.3-IV0", true),
    (31, "4.4-IV0", false),
    (32, "4.4-IV1", true),
    (33, "4.4-IV2", true),
];

/// Kafka 4.4's `MetadataVersion.MINIMUM_VERSION` (3.3-IV3).
pub const MINIMUM_METADATA_VERSION: i16 = 7;
/// Kafka 4.4's `LATEST_PRODUCTION` (4.4-IV2).
pub const LATEST_METADATA_VERSION: i16 = 33;
/// Kafka 4.4's `latestTesting()` (4.5-IV0, unstable).
pub const LATEST_TESTING_METADATA_VERSION: i16 = 34;

/// A `metadata.version` feature level, with the capability checks Kafka derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetadataVersion(pub i16);

impl MetadataVersion {
    /// Kafka's name for the level (`4.4-IV2`), or the number when unknown.
    pub fn name(self) -> String {
        METADATA_VERSIONS
            .iter()
            .find(|(l, _, _)| *l == self.0)
            .map(|(_, n, _)| (*n).to_owned())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// Whether Kafka 4.4 knows this level.
    pub fn is_known(self) -> bool {
        METADATA_VERSIONS.iter().any(|(l, _, _)| *l == self.0)
    }

    /// Kafka's `checkIfMetadataChanged`: whether any level in `(low, high]` changed the
    /// metadata format (a downgrade across it could lose information).
    pub fn metadata_changed_between(a: MetadataVersion, b: MetadataVersion) -> bool {
        let (low, high) = if a <= b { (a.0, b.0) } else { (b.0, a.0) };
        METADATA_VERSIONS
            .iter()
            .any(|(l, _, changed)| *l > low && *l <= high && *changed)
    }

    /// 3.3-IV2+: fencing and unfencing are `BrokerRegistrationChangeRecord`s.
    pub fn is_broker_registration_change_record_supported(self) -> bool {
        self.0 >= 6
    }

    /// 3.3-IV3+: brokers have an in-controlled-shutdown state in the log.
    pub fn is_in_controlled_shutdown_state_supported(self) -> bool {
        self.0 >= 7
    }

    /// Before 3.6-IV0 an ISR shrink bumped the leader epoch.
    pub fn is_leader_epoch_bump_required_on_isr_shrink(self) -> bool {
        self.0 < 12
    }

    /// 3.7-IV2+: replicas are assigned to log directories (KIP-858).
    pub fn is_directory_assignment_supported(self) -> bool {
        self.0 >= 17
    }

    /// 4.0-IV1+: eligible leader replicas (KIP-966).
    pub fn is_elr_supported(self) -> bool {
        self.0 >= 23
    }
}

/// The feature ranges Kafka 4.4.0 supports (its `kafka-features describe`).
pub fn kafka_44_supported_features() -> BTreeMap<String, (i16, i16)> {
    [
        (ELIGIBLE_LEADER_REPLICAS_VERSION, (0, 1)),
        ("group.version", (0, 1)),
        ("kraft.version", (0, 1)),
        (
            METADATA_VERSION,
            (MINIMUM_METADATA_VERSION, LATEST_METADATA_VERSION),
        ),
        ("share.version", (0, 2)),
        ("streams.version", (0, 1)),
        ("transaction.version", (0, 2)),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_owned(), r))
    .collect()
}

/// Kafka's `VersionRange.toString`.
fn range_to_string((min, max): (i16, i16)) -> String {
    if min == max {
        min.to_string()
    } else if max == i16::MAX {
        format!("{min}+")
    } else {
        format!("{min}-{max}")
    }
}

/// Kafka's `QuorumFeatures.reasonNotSupported`.
fn reason_not_supported(level: i16, what: &str, range: (i16, i16)) -> Option<String> {
    if level >= range.0 && level <= range.1 {
        None
    } else if range.1 == 0 {
        Some(format!("{what} does not support this feature."))
    } else {
        Some(format!(
            "{what} only supports versions {}",
            range_to_string(range)
        ))
    }
}

/// The upgrade type of one feature update (UpdateFeatures v1+ `UpgradeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
    Unknown,
}

impl UpgradeType {
    /// From the request: v1+ carries `upgrade_type`, v0 only `allow_downgrade`.
    pub fn from_request(upgrade_type: i8, allow_downgrade: bool, version: i16) -> UpgradeType {
        if version == 0 {
            return if allow_downgrade {
                UpgradeType::SafeDowngrade
            } else {
                UpgradeType::Upgrade
            };
        }
        match upgrade_type {
            1 => UpgradeType::Upgrade,
            2 => UpgradeType::SafeDowngrade,
            3 => UpgradeType::UnsafeDowngrade,
            _ => UpgradeType::Unknown,
        }
    }
}

fn invalid_update(feature: &str, level: i16, message: &str) -> ControllerError {
    let text = format!("Invalid update version {level} for feature {feature}. {message}");
    tracing::warn!("{text}");
    ControllerError::new(ErrorCode::InvalidUpdateVersion, text)
}

fn invalid_metadata_version(level: i16, message: &str) -> ControllerError {
    let text = format!("Invalid metadata.version {level}. {message}");
    tracing::warn!("{text}");
    ControllerError::new(ErrorCode::InvalidUpdateVersion, text)
}

/// Kafka's per-feature dependencies (`FeatureVersion.dependencies`) that 4.4 declares.
fn dependencies(feature: &str, level: i16) -> Vec<(&'static str, i16)> {
    match (feature, level) {
        (ELIGIBLE_LEADER_REPLICAS_VERSION, l) if l >= 1 => vec![(METADATA_VERSION, 23)],
        ("kraft.version", l) if l >= 1 => vec![(METADATA_VERSION, 21)],
        _ => Vec::new(),
    }
}

/// UpdateFeatures: validates every update against this controller's and every registered
/// broker's supported ranges and the upgrade type, and returns the `FeatureLevelRecord`s
/// (none when `validate_only`). The first failing update fails the whole request, as in
/// Kafka.
pub fn update_features(
    state: &ClusterState,
    node_id: i32,
    local_supported: &BTreeMap<String, (i16, i16)>,
    updates: &[(String, i16, UpgradeType)],
    validate_only: bool,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut proposed: BTreeMap<String, i16> = state.features.clone();
    for (name, level, _) in updates {
        proposed.insert(name.clone(), *level);
    }
    let mut records = Vec::new();
    for (name, level, upgrade) in updates {
        update_feature(
            state,
            node_id,
            local_supported,
            name,
            *level,
            *upgrade,
            &proposed,
        )?;
        records.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: name.clone(),
            feature_level: *level,
        }));
    }
    Ok(if validate_only { Vec::new() } else { records })
}

fn update_feature(
    state: &ClusterState,
    node_id: i32,
    local_supported: &BTreeMap<String, (i16, i16)>,
    name: &str,
    level: i16,
    upgrade: UpgradeType,
    proposed: &BTreeMap<String, i16>,
) -> Result<(), ControllerError> {
    if upgrade == UpgradeType::Unknown {
        return Err(invalid_update(
            name,
            level,
            "The controller does not support the given upgrade type.",
        ));
    }
    let current = state.feature_level(name);
    if level < 0 {
        return Err(invalid_update(
            name,
            level,
            "A feature version cannot be less than 0.",
        ));
    }
    let local = local_supported.get(name).copied().unwrap_or((0, 0));
    if let Some(reason) = reason_not_supported(level, &format!("Local controller {node_id}"), local)
    {
        return Err(invalid_update(name, level, &reason));
    }
    for (id, broker) in &state.brokers {
        let range = broker
            .supported_features
            .get(name)
            .copied()
            .unwrap_or((0, 0));
        if let Some(reason) = reason_not_supported(level, &format!("Broker {id}"), range) {
            return Err(invalid_update(name, level, &reason));
        }
    }
    if level < current {
        if upgrade == UpgradeType::Upgrade {
            return Err(invalid_update(
                name,
                level,
                "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
            ));
        }
    } else if level > current && upgrade != UpgradeType::Upgrade {
        return Err(invalid_update(
            name,
            level,
            "Can't downgrade to a newer version.",
        ));
    }
    if name == METADATA_VERSION {
        let mv = MetadataVersion(level);
        if !mv.is_known() {
            return Err(invalid_metadata_version(
                level,
                &format!(
                    "Valid versions are from {MINIMUM_METADATA_VERSION} to {LATEST_TESTING_METADATA_VERSION}."
                ),
            ));
        }
        if level < current
            && MetadataVersion::metadata_changed_between(MetadataVersion(current), mv)
        {
            let reason = if upgrade == UpgradeType::UnsafeDowngrade {
                "Unsafe metadata downgrade is not supported in this version."
            } else {
                "Refusing to perform the requested downgrade because it might delete metadata information."
            };
            let text = format!(
                "Unsupported metadata.version downgrade from {current} to {level}. {reason}"
            );
            tracing::warn!("{text}");
            return Err(ControllerError::new(ErrorCode::InvalidUpdateVersion, text));
        }
        return Ok(());
    }
    let mv = proposed.get(METADATA_VERSION).copied().unwrap_or(0);
    if level >= 1 && mv < 4 {
        return Err(invalid_update(
            name,
            level,
            &format!(
                "{name} could not be set to {level} because it depends on metadata.version=4 (3.3-IV0)"
            ),
        ));
    }
    for (dep, dep_level) in dependencies(name, level) {
        if proposed.get(dep).copied().unwrap_or(0) < dep_level {
            return Err(invalid_update(
                name,
                level,
                &format!(
                    "{name} could not be set to {level} because it depends on {dep} level {dep_level}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
