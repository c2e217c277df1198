//! Properties over random record sequences (`common/mod.rs`):
//! - a record that fails to replay leaves the delta as it was;
//! - the image's snapshot (`to_records`), framed to bytes and back, replayed onto an empty
//!   image gives an equal image, and loading it onto the image itself reports no change;
//! - replaying a sequence in one delta or split over two gives the same image.

mod common;

use arus_metadata::{MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord};
use common::{any_record, is_transaction_marker};
use proptest::prelude::*;

/// Replays what applies, checking that what fails changes nothing; returns the records
/// that applied.
fn replay_valid(delta: &mut MetadataDelta, records: &[MetadataRecord]) -> Vec<MetadataRecord> {
    let at = MetadataProvenance::new(1, 1);
    let mut applied = Vec::new();
    for r in records {
        let before = delta.apply(at);
        let in_txn = delta.in_transaction();
        match delta.replay(r) {
            Ok(()) => applied.push(r.clone()),
            Err(e) => {
                assert_eq!(delta.apply(at), before, "{e} changed the delta");
                assert_eq!(delta.in_transaction(), in_txn);
            }
        }
    }
    applied
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshot_replays_to_an_equal_image(records in proptest::collection::vec(any_record(), 0..80)) {
        let empty = MetadataImage::empty("cluster");
        let mut delta = MetadataDelta::new(&empty);
        replay_valid(&mut delta, &records);
        let at = MetadataProvenance::new(records.len() as i64, 3);
        let image = delta.apply(at);

        let snapshot = image.to_records();
        let mut rebuilt = MetadataDelta::new(&empty);
        for record in &snapshot {
            let framed = record.encode().unwrap();
            let decoded = MetadataRecord::decode(framed).unwrap();
            prop_assert_eq!(&decoded, record);
            rebuilt.replay(&decoded).unwrap();
        }
        prop_assert_eq!(&rebuilt.apply(at), &image);
        // The snapshot of the rebuilt image is the same records.
        prop_assert_eq!(rebuilt.apply(at).to_records(), snapshot.clone());

        // Loading the image's own snapshot onto it changes nothing for any node.
        let mut reload = MetadataDelta::for_snapshot(&image);
        reload.replay_all(&snapshot).unwrap();
        prop_assert_eq!(&reload.apply(at), &image);
        prop_assert!(reload.deleted_topic_ids().is_empty());
        prop_assert!(reload.changed_brokers().is_empty());
        prop_assert!(reload.changed_configs().is_empty());
        for node in 0..5 {
            prop_assert!(reload.local_changes(node).is_empty(), "node {}", node);
        }
    }

    #[test]
    fn one_delta_or_two_give_the_same_image(
        records in proptest::collection::vec(any_record(), 0..60),
        split in 0usize..60,
    ) {
        let records: Vec<MetadataRecord> =
            records.into_iter().filter(|r| !is_transaction_marker(r)).collect();
        let empty = MetadataImage::empty("cluster");
        let at = MetadataProvenance::new(9, 1);
        let mut whole = MetadataDelta::new(&empty);
        let applied = replay_valid(&mut whole, &records);

        let split = split.min(applied.len());
        let mut first = MetadataDelta::new(&empty);
        first.replay_all(&applied[..split]).unwrap();
        let middle = first.apply(at);
        let mut second = MetadataDelta::new(&middle);
        second.replay_all(&applied[split..]).unwrap();
        prop_assert_eq!(second.apply(at), whole.apply(at));
    }
}
