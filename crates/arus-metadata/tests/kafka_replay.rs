//! Differential test of the replay semantics against Apache Kafka 4.4 itself: random record
//! sequences (`common/mod.rs`, a fixed seed) are replayed by `MetadataDelta` here and by
//! Kafka's own `MetadataDelta` in `kafka-serde/ReplayDump.java`; the snapshot Kafka's image
//! writer makes of its image must hold the same records as our `to_records()`, and Kafka
//! must refuse exactly the records we refuse.
//!
//! Where we refuse on purpose what Kafka accepts (a TopicRecord reusing a topic id or
//! name, a replica change that would leave directories of another length: see
//! `DeltaError`), a sequence is cut before that record, since the images differ from there.
//!
//! Each sequence starts with `metadata.version` 4.4-IV2 and ELR enabled, so that Kafka's
//! writer keeps directories and ELRs as our snapshot does; random `metadata.version`
//! records are left out for the same reason. Kafka applies each record in a delta of its
//! own (our result does not depend on where deltas end: `snapshot_roundtrip.rs`).
//!
//! Needs `java` and Kafka's classpath, as `kafka_serde.rs`; skipped without them.

mod common;

use arus_metadata::image::PartitionError;
use arus_metadata::{DeltaError, MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord};
use arus_protocol::Bytes;
use arus_protocol::metadata::FeatureLevelRecord;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

/// `metadata.version` 4.4-IV2 (3.3-IV3 is 7, one level per version since).
const MV_4_4_IV2: i16 = 33;
const SEQUENCES: usize = 300;

fn feature(name: &str, level: i16) -> MetadataRecord {
    FeatureLevelRecord {
        name: name.into(),
        feature_level: level,
    }
    .into()
}

fn is_metadata_version(r: &MetadataRecord) -> bool {
    matches!(r, MetadataRecord::FeatureLevel(f) if f.name == "metadata.version")
}

/// Errors where we are stricter than Kafka on purpose.
fn kafka_accepts(e: &DeltaError) -> bool {
    match e {
        DeltaError::TopicIdExists(_) | DeltaError::TopicNameExists { .. } => true,
        DeltaError::InvalidPartition { source, .. } => {
            matches!(source, PartitionError::DirectoriesMismatch { .. })
        }
        _ => false,
    }
}

/// Records in a canonical order (by their encoding at the latest version), for comparing
/// snapshots written in different map orders.
fn canonical(records: &[MetadataRecord]) -> Vec<(Vec<u8>, MetadataRecord)> {
    let mut out: Vec<(Vec<u8>, MetadataRecord)> = records
        .iter()
        .map(|r| (r.encode().unwrap().to_vec(), r.clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn replay_matches_kafka_metadata_delta() {
    let Some(classpath) = common::kafka_classpath_or_skip("Kafka replay comparison") else {
        return;
    };
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(common::any_record(), 0..80);
    let mut input = String::new();
    let mut expected: Vec<(Vec<MetadataRecord>, Vec<usize>, Vec<MetadataRecord>)> = Vec::new();
    let mut refused_total = 0;
    for _ in 0..SEQUENCES {
        let random = strategy.new_tree(&mut runner).unwrap().current();
        let mut records = vec![
            feature("metadata.version", MV_4_4_IV2),
            feature("eligible.leader.replicas.version", 1),
        ];
        records.extend(
            random
                .into_iter()
                .filter(|r| !common::is_transaction_marker(r) && !is_metadata_version(r)),
        );
        let empty = MetadataImage::empty("cluster");
        let mut delta = MetadataDelta::new(&empty);
        let mut sent = Vec::new();
        let mut refused = Vec::new();
        for r in records {
            match delta.replay(&r) {
                Ok(()) => {}
                Err(e) if kafka_accepts(&e) => break,
                Err(_) => refused.push(sent.len()),
            }
            sent.push(r);
        }
        let image = delta.apply(MetadataProvenance::new(sent.len() as i64, 1));
        input.push_str("BEGIN\n");
        for r in &sent {
            input.push_str(&common::hex(&r.encode().unwrap()));
            input.push('\n');
        }
        input.push_str("END\n");
        refused_total += refused.len();
        expected.push((sent, refused, image.to_records()));
    }

    let output = common::run_java(&classpath, "ReplayDump.java", &input);
    let mut results = output.split("DONE\n");
    let mut compared_records = 0;
    for (i, (sent, refused, ours)) in expected.iter().enumerate() {
        let block = results
            .next()
            .unwrap_or_else(|| panic!("no output for sequence {i}"));
        let mut kafka = Vec::new();
        let mut kafka_refused = Vec::new();
        for line in block.lines() {
            if let Some(hex) = line.strip_prefix("REC ") {
                let bytes = Bytes::from(common::unhex(hex));
                kafka.push(MetadataRecord::decode(bytes).unwrap());
            } else if let Some(err) = line.strip_prefix("ERR ") {
                let index: usize = err.split(' ').next().unwrap().parse().unwrap();
                kafka_refused.push(index);
                if !refused.contains(&index) {
                    panic!(
                        "sequence {i}: Kafka refused record {index} that we applied: {err}\n{:#?}",
                        sent[index]
                    );
                }
            } else {
                panic!("sequence {i}: unexpected output from Kafka: {line}");
            }
        }
        if let Some(index) = refused.iter().find(|x| !kafka_refused.contains(x)) {
            panic!(
                "sequence {i}: we refused record {index}, Kafka applied it\n{:#?}",
                sent[*index]
            );
        }
        let (ours, kafka) = (canonical(ours), canonical(&kafka));
        if ours != kafka {
            let only_ours: Vec<_> = ours.iter().filter(|r| !kafka.contains(r)).collect();
            let only_kafka: Vec<_> = kafka.iter().filter(|r| !ours.contains(r)).collect();
            panic!(
                "sequence {i}: snapshots differ\nonly ours: {:#?}\nonly Kafka's: {:#?}\nrecords: {:#?}",
                only_ours.iter().map(|r| &r.1).collect::<Vec<_>>(),
                only_kafka.iter().map(|r| &r.1).collect::<Vec<_>>(),
                sent
            );
        }
        compared_records += ours.len();
    }
    eprintln!(
        "compared {compared_records} snapshot records in {SEQUENCES} sequences; \
         {refused_total} records refused by both"
    );
    // The sequences build real images, not just the two feature records each.
    assert!(
        compared_records > SEQUENCES * 6,
        "only {compared_records} records compared"
    );
    assert!(
        refused_total > SEQUENCES,
        "only {refused_total} refusals compared"
    );
}
