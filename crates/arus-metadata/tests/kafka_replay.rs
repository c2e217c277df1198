//! Differential test of the replay semantics against Apache Kafka 4.4 itself: random record
//! sequences (`common/mod.rs`, a fixed seed) are replayed by `MetadataDelta` here and by
//! Kafka's own `MetadataDelta` in `kafka-serde/ReplayDump.java`; the snapshot Kafka's image
//! writer makes of its image must hold the same records as our `to_records()`, Kafka must
//! refuse exactly the records we refuse, and after each record Kafka's
//! `TopicsDelta.localChanges(node)` must match our `LocalChanges` for nodes 0-4.
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
//! Kafka's `directoryIds` compares directory `Uuid` objects by reference (`!=`), so it
//! also lists a directory restated with the same value; ours compares values, so only
//! "ours is a subset of Kafka's" is required there.
//!
//! Needs `java` and Kafka's classpath, as `kafka_serde.rs`; skipped without them.

mod common;

use arus_metadata::image::PartitionError;
use std::collections::{BTreeMap, BTreeSet};

use arus_metadata::{
    DeltaError, LocalChanges, MetadataDelta, MetadataImage, MetadataProvenance, MetadataRecord,
};
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

/// One node's local changes after one record, as comparable sets (the format of
/// `ReplayDump.java`'s LC lines).
#[derive(Debug, Default, PartialEq)]
struct Local {
    leaders: BTreeSet<String>,
    followers: BTreeSet<String>,
    deletes: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl Local {
    fn ours(c: &LocalChanges) -> Local {
        Local {
            leaders: c
                .leaders
                .iter()
                .map(|p| format!("{}:{}:{}", p.topic_id, p.partition, p.newly_elected))
                .collect(),
            followers: c
                .followers
                .iter()
                .map(|p| format!("{}:{}", p.topic_id, p.partition))
                .collect(),
            deletes: c
                .deletes
                .iter()
                .map(|d| format!("{}:{}", d.topic_name, d.partition))
                .collect(),
            dirs: c
                .directory_ids
                .iter()
                .map(|(tp, dir)| format!("{}:{}={}", tp.topic_id, tp.partition, dir))
                .collect(),
        }
    }

    /// Parses "leaders=a,b followers=... deletes=... dirs=...".
    fn kafka(line: &str) -> Local {
        let mut local = Local::default();
        for field in line.split(' ') {
            let (name, items) = field.split_once('=').unwrap();
            let set: BTreeSet<String> = items
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            match name {
                "leaders" => local.leaders = set,
                "followers" => local.followers = set,
                "deletes" => local.deletes = set,
                "dirs" => local.dirs = set,
                other => panic!("unknown field {other}"),
            }
        }
        local
    }

    fn is_empty(&self) -> bool {
        *self == Local::default()
    }
}

/// What we expect Kafka to say about one sequence.
struct Expected {
    sent: Vec<MetadataRecord>,
    refused: Vec<usize>,
    snapshot: Vec<MetadataRecord>,
    /// (record index, node) -> non-empty local changes.
    local: BTreeMap<(usize, i32), Local>,
}

/// Replays a sequence record by record (a delta each, as `ReplayDump.java` does), cutting
/// it before a record we refuse on purpose.
fn replay_ours(records: Vec<MetadataRecord>) -> Expected {
    let mut image = MetadataImage::empty("cluster");
    let mut expected = Expected {
        sent: Vec::new(),
        refused: Vec::new(),
        snapshot: Vec::new(),
        local: BTreeMap::new(),
    };
    for r in records {
        let index = expected.sent.len();
        let mut delta = MetadataDelta::new(&image);
        match delta.replay(&r) {
            Ok(()) => {
                for node in 0..5 {
                    let local = Local::ours(&delta.local_changes(node));
                    if !local.is_empty() {
                        expected.local.insert((index, node), local);
                    }
                }
                image = delta.apply(MetadataProvenance::new(index as i64, 1));
            }
            Err(e) if kafka_accepts(&e) => break,
            Err(_) => expected.refused.push(index),
        }
        expected.sent.push(r);
    }
    expected.snapshot = image.to_records();
    expected
}

#[test]
fn replay_matches_kafka_metadata_delta() {
    let Some(classpath) = common::kafka_classpath_or_skip("Kafka replay comparison") else {
        return;
    };
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(common::any_record(), 0..80);
    let mut input = String::new();
    let mut expected = Vec::new();
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
        let ours = replay_ours(records);
        input.push_str("BEGIN\n");
        for r in &ours.sent {
            input.push_str(&common::hex(&r.encode().unwrap()));
            input.push('\n');
        }
        input.push_str("END\n");
        expected.push(ours);
    }

    let output = common::run_java(&classpath, "ReplayDump.java", &input);
    let mut results = output.split("DONE\n");
    let (mut snapshot_records, mut refusals, mut local_changes) = (0, 0, 0);
    for (i, ours) in expected.iter().enumerate() {
        let block = results
            .next()
            .unwrap_or_else(|| panic!("no output for sequence {i}"));
        let mut kafka = Vec::new();
        let mut kafka_refused = Vec::new();
        let mut kafka_local = BTreeMap::new();
        for line in block.lines() {
            if let Some(hex) = line.strip_prefix("REC ") {
                let bytes = Bytes::from(common::unhex(hex));
                kafka.push(MetadataRecord::decode(bytes).unwrap());
            } else if let Some(err) = line.strip_prefix("ERR ") {
                let index: usize = err.split(' ').next().unwrap().parse().unwrap();
                kafka_refused.push(index);
            } else if let Some(lc) = line.strip_prefix("LC ") {
                let mut parts = lc.splitn(3, ' ');
                let index: usize = parts.next().unwrap().parse().unwrap();
                let node: i32 = parts.next().unwrap().parse().unwrap();
                kafka_local.insert((index, node), Local::kafka(parts.next().unwrap()));
            } else {
                panic!("sequence {i}: unexpected output from Kafka: {line}");
            }
        }
        assert_eq!(
            kafka_refused, ours.refused,
            "sequence {i}: refused records differ (Kafka, ours)\n{:#?}",
            ours.sent
        );
        refusals += ours.refused.len();

        let keys: BTreeSet<&(usize, i32)> = kafka_local.keys().chain(ours.local.keys()).collect();
        for key in keys {
            let empty = Local::default();
            let k = kafka_local.get(key).unwrap_or(&empty);
            let o = ours.local.get(key).unwrap_or(&empty);
            let same = k.leaders == o.leaders
                && k.followers == o.followers
                && k.deletes == o.deletes
                && o.dirs.is_subset(&k.dirs);
            assert!(
                same,
                "sequence {i}, record {}, node {}: local changes differ\nKafka: {k:#?}\nours: {o:#?}\nrecord: {:#?}",
                key.0, key.1, ours.sent[key.0]
            );
            local_changes += 1;
        }

        let (theirs, mine) = (canonical(&kafka), canonical(&ours.snapshot));
        if theirs != mine {
            let only_ours: Vec<_> = mine.iter().filter(|r| !theirs.contains(r)).collect();
            let only_kafka: Vec<_> = theirs.iter().filter(|r| !mine.contains(r)).collect();
            panic!(
                "sequence {i}: snapshots differ\nonly ours: {:#?}\nonly Kafka's: {:#?}\nrecords: {:#?}",
                only_ours.iter().map(|r| &r.1).collect::<Vec<_>>(),
                only_kafka.iter().map(|r| &r.1).collect::<Vec<_>>(),
                ours.sent
            );
        }
        snapshot_records += mine.len();
    }
    eprintln!(
        "{SEQUENCES} sequences: {snapshot_records} snapshot records, {refusals} refusals, \
         {local_changes} non-empty local changes compared"
    );
    // The sequences build real images, refuse records and move replicas.
    assert!(snapshot_records > SEQUENCES * 6);
    assert!(refusals > SEQUENCES);
    assert!(local_changes > SEQUENCES);
}
