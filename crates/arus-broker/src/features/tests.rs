use super::store::{FEATURES_FILE, load_or_init, save};
use super::*;

fn up(feature: &str, level: i16, t: UpgradeType) -> FeatureUpdate {
    FeatureUpdate {
        feature: feature.into(),
        level,
        upgrade_type: t,
    }
}

fn refused(current: &Finalized, u: FeatureUpdate) -> String {
    plan_update(current, &[u]).unwrap_err().message
}

#[test]
fn fresh_defaults_are_kafka_4_4s_and_upgrades_keep_transactions_v1() {
    let f = Finalized::fresh();
    assert_eq!(f.level(METADATA_VERSION), 33);
    assert_eq!(f.level(TRANSACTION_VERSION), 2);
    assert_eq!(f.level(GROUP_VERSION), 1);
    let u = Finalized::upgraded();
    assert_eq!(u.level(TRANSACTION_VERSION), 1);
    assert_eq!(u.level(GROUP_VERSION), 1);
    assert_eq!(u.level(METADATA_VERSION), 33);
    // Share and streams groups are not built: never supported, so never advertised.
    assert!(supported("share.version").is_none());
    assert!(supported("streams.version").is_none());
}

#[test]
fn upgrades_and_downgrades_follow_kafka() {
    let f = Finalized::fresh();
    let tv1 = plan_update(
        &f,
        &[up(TRANSACTION_VERSION, 1, UpgradeType::SafeDowngrade)],
    )
    .unwrap();
    assert_eq!(tv1[TRANSACTION_VERSION], 1);
    let unsafe_ok = plan_update(
        &f,
        &[up(TRANSACTION_VERSION, 0, UpgradeType::UnsafeDowngrade)],
    )
    .unwrap();
    assert_eq!(unsafe_ok[TRANSACTION_VERSION], 0);
    // Same level: accepted, no change.
    assert!(plan_update(&f, &[up(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)]).is_ok());
    assert!(
        plan_update(
            &f,
            &[up(TRANSACTION_VERSION, 2, UpgradeType::SafeDowngrade)]
        )
        .is_ok()
    );
    assert_eq!(
        refused(&f, up(TRANSACTION_VERSION, 1, UpgradeType::Upgrade)),
        "Invalid update version 1 for feature transaction.version. Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade."
    );
    let mut low = f.clone();
    low.levels.insert(TRANSACTION_VERSION.into(), 1);
    assert_eq!(
        refused(&low, up(TRANSACTION_VERSION, 2, UpgradeType::SafeDowngrade)),
        "Invalid update version 2 for feature transaction.version. Can't downgrade to a newer version."
    );
    assert!(plan_update(&low, &[up(TRANSACTION_VERSION, 2, UpgradeType::Upgrade)]).is_ok());
}

#[test]
fn out_of_range_unknown_and_bad_types_are_refused_with_kafkas_messages() {
    let f = Finalized::fresh();
    assert_eq!(
        refused(&f, up(TRANSACTION_VERSION, 3, UpgradeType::Upgrade)),
        "Invalid update version 3 for feature transaction.version. Local controller 1 only supports versions 0-2"
    );
    assert_eq!(
        refused(&f, up("foo.bar", 1, UpgradeType::Upgrade)),
        "Invalid update version 1 for feature foo.bar. Local controller 1 does not support this feature."
    );
    assert_eq!(
        refused(&f, up("share.version", 2, UpgradeType::Upgrade)),
        "Invalid update version 2 for feature share.version. Local controller 1 does not support this feature."
    );
    assert_eq!(
        refused(&f, up(METADATA_VERSION, 34, UpgradeType::Upgrade)),
        "Invalid update version 34 for feature metadata.version. Local controller 1 only supports versions 7-33"
    );
    assert_eq!(
        refused(&f, up(METADATA_VERSION, 6, UpgradeType::SafeDowngrade)),
        "Invalid update version 6 for feature metadata.version. Local controller 1 only supports versions 7-33"
    );
    assert_eq!(
        refused(&f, up(GROUP_VERSION, -1, UpgradeType::SafeDowngrade)),
        "Invalid update version -1 for feature group.version. A feature version cannot be less than 0."
    );
    assert_eq!(
        refused(&f, up(GROUP_VERSION, 0, UpgradeType::Unknown)),
        "Invalid update version 0 for feature group.version. The controller does not support the given upgrade type."
    );
}

#[test]
fn metadata_version_never_goes_down() {
    let f = Finalized::fresh();
    assert_eq!(
        refused(&f, up(METADATA_VERSION, 30, UpgradeType::SafeDowngrade)),
        "Unsupported metadata.version downgrade from 33 to 30. Refusing to perform the requested downgrade because it might delete metadata information."
    );
    assert_eq!(
        refused(&f, up(METADATA_VERSION, 32, UpgradeType::UnsafeDowngrade)),
        "Unsupported metadata.version downgrade from 33 to 32. Unsafe metadata downgrade is not supported in this version."
    );
    let mut old = f.clone();
    old.levels.insert(METADATA_VERSION.into(), 25);
    let up33 = plan_update(&old, &[up(METADATA_VERSION, 33, UpgradeType::Upgrade)]).unwrap();
    assert_eq!(up33[METADATA_VERSION], 33);
}

#[test]
fn one_bad_update_refuses_the_whole_request() {
    let f = Finalized::fresh();
    let e = plan_update(
        &f,
        &[
            up(GROUP_VERSION, 0, UpgradeType::SafeDowngrade),
            up(TRANSACTION_VERSION, 5, UpgradeType::Upgrade),
        ],
    )
    .unwrap_err();
    assert!(e.message.contains("transaction.version"), "{}", e.message);
}

#[test]
fn the_file_is_created_once_and_read_back() {
    let fresh = tempfile::tempdir().unwrap();
    let f = load_or_init(fresh.path()).unwrap();
    assert_eq!(f, Finalized::fresh());
    assert!(fresh.path().join(FEATURES_FILE).exists());
    let mut changed = f.clone();
    changed.epoch = 4;
    changed.levels.insert(TRANSACTION_VERSION.into(), 1);
    save(fresh.path(), &changed).unwrap();
    assert_eq!(load_or_init(fresh.path()).unwrap(), changed);
    assert!(!fresh.path().join(format!("{FEATURES_FILE}.tmp")).exists());

    // A directory the previous release used (it always wrote arus-metadata.json).
    let old = tempfile::tempdir().unwrap();
    std::fs::write(old.path().join("arus-metadata.json"), b"{}").unwrap();
    assert_eq!(load_or_init(old.path()).unwrap(), Finalized::upgraded());
}

#[test]
fn unreadable_or_unsupported_files_stop_the_start() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(FEATURES_FILE), b"{not json").unwrap();
    assert!(matches!(
        load_or_init(d.path()),
        Err(store::FeatureStoreError::Corrupt { .. })
    ));
    std::fs::write(
        d.path().join(FEATURES_FILE),
        br#"{"version":1,"epoch":1,"features":{"transaction.version":3}}"#,
    )
    .unwrap();
    assert!(matches!(
        load_or_init(d.path()),
        Err(store::FeatureStoreError::Unsupported { .. })
    ));
}

#[test]
fn live_updates_persist_and_bump_the_epoch() {
    let d = tempfile::tempdir().unwrap();
    let live = live::Features::open(d.path()).unwrap();
    let e0 = live.snapshot().epoch;
    let checked = live
        .update(
            &[up(TRANSACTION_VERSION, 1, UpgradeType::SafeDowngrade)],
            true,
        )
        .unwrap();
    assert_eq!(checked.epoch, e0, "validate_only changes nothing");
    assert_eq!(live.transaction_version(), 2);
    let after = live
        .update(
            &[up(TRANSACTION_VERSION, 1, UpgradeType::SafeDowngrade)],
            false,
        )
        .unwrap();
    assert_eq!(after.epoch, e0 + 1);
    assert_eq!(live.transaction_version(), 1);
    assert!(
        live.update(&[up(TRANSACTION_VERSION, 9, UpgradeType::Upgrade)], false)
            .is_err()
    );
    assert_eq!(
        live.snapshot().epoch,
        e0 + 1,
        "a refused update changes nothing"
    );
    drop(live);
    let reopened = live::Features::open(d.path()).unwrap();
    assert_eq!(reopened.transaction_version(), 1);
    assert_eq!(reopened.snapshot().epoch, e0 + 1);
}

#[test]
fn a_formatted_directory_starts_with_the_levels_storage_format_chose() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(arus_node::storage::BOOTSTRAP_FILE),
        "version=1\nfeature.metadata.version=33\nfeature.transaction.version=0\nfeature.kraft.version=1\n",
    )
    .unwrap();
    let f = load_or_init(dir.path()).unwrap();
    assert_eq!(f.level(TRANSACTION_VERSION), 0);
    assert_eq!(f.level(GROUP_VERSION), 1);
    assert_eq!(f.level("kraft.version"), 0);
    std::fs::write(
        dir.path().join(arus_node::storage::BOOTSTRAP_FILE),
        "version=7\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(FEATURES_FILE)).unwrap();
    assert!(load_or_init(dir.path()).is_err());
}
