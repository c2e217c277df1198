use super::*;
use crate::state::{BrokerInfo, ClusterState};

fn state_with_broker(max_mv: i16) -> ClusterState {
    let mut s = ClusterState::new();
    s.features.insert(METADATA_VERSION.into(), 30);
    s.features
        .insert(ELIGIBLE_LEADER_REPLICAS_VERSION.into(), 0);
    let mut supported = kafka_44_supported_features();
    supported.insert(METADATA_VERSION.into(), (7, max_mv));
    s.brokers.insert(
        1,
        BrokerInfo {
            id: 1,
            epoch: 10,
            incarnation_id: arus_protocol::Uuid([1; 16]),
            listeners: vec![],
            supported_features: supported,
            rack: None,
            fenced: false,
            in_controlled_shutdown: false,
            log_dirs: vec![],
        },
    );
    s
}

fn update(
    s: &ClusterState,
    name: &str,
    level: i16,
    t: UpgradeType,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    update_features(
        s,
        3000,
        &kafka_44_supported_features(),
        &[(name.into(), level, t)],
        false,
    )
}

#[test]
fn upgrades_within_every_range_write_a_feature_level_record() {
    let s = state_with_broker(33);
    let r = update(&s, METADATA_VERSION, 33, UpgradeType::Upgrade).unwrap();
    assert_eq!(
        r,
        vec![MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: METADATA_VERSION.into(),
            feature_level: 33
        })]
    );
    assert!(
        update_features(
            &s,
            3000,
            &kafka_44_supported_features(),
            &[(METADATA_VERSION.into(), 33, UpgradeType::Upgrade)],
            true
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn a_level_a_broker_does_not_support_is_refused() {
    let s = state_with_broker(31);
    let e = update(&s, METADATA_VERSION, 33, UpgradeType::Upgrade).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidUpdateVersion);
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Invalid update version 33 for feature metadata.version. Broker 1 only supports versions 7-31"
        )
    );
    let e = update(&s, "unknown.feature", 1, UpgradeType::Upgrade).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Invalid update version 1 for feature unknown.feature. Local controller 3000 does not support this feature."
        )
    );
}

#[test]
fn downgrades_need_a_downgrade_type() {
    let s = state_with_broker(33);
    let e = update(&s, METADATA_VERSION, 28, UpgradeType::Upgrade).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Invalid update version 28 for feature metadata.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
        )
    );
    let e = update(&s, METADATA_VERSION, 33, UpgradeType::SafeDowngrade).unwrap_err();
    assert!(
        e.message
            .unwrap()
            .ends_with("Can't downgrade to a newer version.")
    );
    // 4.3-IV0 (30) changed the metadata format: a safe downgrade across it is refused.
    let e = update(&s, METADATA_VERSION, 29, UpgradeType::SafeDowngrade).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Unsupported metadata.version downgrade from 30 to 29. Refusing to perform the requested downgrade because it might delete metadata information."
        )
    );
    let mut s2 = s.clone();
    s2.features.insert(METADATA_VERSION.into(), 29);
    // 4.2-IV1 -> 4.2-IV0 changed nothing: allowed.
    assert!(update(&s2, METADATA_VERSION, 28, UpgradeType::SafeDowngrade).is_ok());
    let e = update(&s, METADATA_VERSION, 5, UpgradeType::SafeDowngrade).unwrap_err();
    assert!(e.message.unwrap().contains("only supports versions 7-33"));
}

#[test]
fn feature_dependencies_are_checked() {
    let mut s = state_with_broker(33);
    s.features.insert(METADATA_VERSION.into(), 22);
    let e = update(
        &s,
        ELIGIBLE_LEADER_REPLICAS_VERSION,
        1,
        UpgradeType::Upgrade,
    )
    .unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Invalid update version 1 for feature eligible.leader.replicas.version. eligible.leader.replicas.version could not be set to 1 because it depends on metadata.version level 23"
        )
    );
    // Upgrading both at once is fine.
    let ok = update_features(
        &s,
        3000,
        &kafka_44_supported_features(),
        &[
            (METADATA_VERSION.into(), 33, UpgradeType::Upgrade),
            (
                ELIGIBLE_LEADER_REPLICAS_VERSION.into(),
                1,
                UpgradeType::Upgrade,
            ),
        ],
        false,
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
}

#[test]
fn version_zero_requests_map_allow_downgrade() {
    assert_eq!(
        UpgradeType::from_request(0, true, 0),
        UpgradeType::SafeDowngrade
    );
    assert_eq!(UpgradeType::from_request(0, false, 0), UpgradeType::Upgrade);
    assert_eq!(
        UpgradeType::from_request(3, false, 1),
        UpgradeType::UnsafeDowngrade
    );
    assert_eq!(UpgradeType::from_request(9, false, 1), UpgradeType::Unknown);
}
