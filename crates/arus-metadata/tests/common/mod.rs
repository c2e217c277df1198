//! Random metadata records for the property tests, drawn from small pools of ids and
//! names so that records refer to each other and many of them apply. Every record is one
//! Kafka 4.4 also accepts and can write back at metadata.version 4.4-IV2 (valid ACL codes,
//! parsable principals), so `kafka_replay.rs` can replay the same sequences in Kafka.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use arus_metadata::MetadataRecord;
use arus_protocol::Uuid;
use arus_protocol::metadata::client_quota_record::EntityData;
use arus_protocol::metadata::register_broker_record::BrokerEndpoint;
use arus_protocol::metadata::*;
use proptest::prelude::*;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
const FEATURES: [&str; 4] = [
    "metadata.version",
    "group.version",
    "transaction.version",
    "kraft.version",
];

fn uuid(i: u8) -> Uuid {
    Uuid([i + 1; 16])
}

fn replicas() -> impl Strategy<Value = Vec<i32>> {
    proptest::sample::subsequence(vec![0, 1, 2, 3, 4], 1..4).prop_shuffle()
}

fn opt_list() -> impl Strategy<Value = Option<Vec<i32>>> {
    proptest::option::of(proptest::collection::vec(0..5i32, 0..3))
}

fn topic_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        // Mostly the id that goes with the name, sometimes another (a re-created topic).
        2 => (0..4usize, prop_oneof![4 => Just(0u8), 1 => Just(4u8)]).prop_map(|(n, shift)| {
            TopicRecord {
                name: NAMES[n].into(),
                topic_id: uuid(n as u8 + shift),
            }
            .into()
        }),
        4 => (0..5u8, 0..3i32, replicas(), 0..3usize, opt_list(), 0..3i32).prop_map(
            |(id, p, replicas, leader, elr, epoch)| PartitionRecord {
                partition_id: p,
                topic_id: uuid(id),
                isr: replicas.clone(),
                leader: replicas.get(leader).copied().unwrap_or(-1),
                leader_epoch: epoch,
                partition_epoch: epoch,
                directories: if leader == 2 {
                    replicas.iter().map(|r| uuid(*r as u8 + 10)).collect()
                } else {
                    vec![]
                },
                replicas,
                eligible_leader_replicas: elr,
                ..Default::default()
            }
            .into()
        ),
        4 => (
            (0..5u8, 0..3i32, -2..5i32, opt_list()),
            (proptest::option::of(replicas()), opt_list(), opt_list(), -1..2i8)
        )
            .prop_map(
                |((id, p, leader, isr), (replicas, elr, lkelr, lrs))| PartitionChangeRecord {
                    partition_id: p,
                    topic_id: uuid(id),
                    isr,
                    leader,
                    replicas,
                    eligible_leader_replicas: elr,
                    last_known_elr: lkelr,
                    leader_recovery_state: lrs,
                    ..Default::default()
                }
                .into()
            ),
        1 => (0..5u8).prop_map(|id| RemoveTopicRecord { topic_id: uuid(id) }.into()),
        1 => (0..5usize).prop_map(|n| ClearElrRecord {
            topic_name: NAMES.get(n).copied().unwrap_or("").into(),
        }
        .into()),
    ]
}

fn cluster_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        (
            0..4i32,
            0..3i64,
            any::<bool>(),
            proptest::option::of(0..2u8)
        )
            .prop_map(|(id, epoch, fenced, rack)| RegisterBrokerRecord {
                broker_id: id,
                broker_epoch: epoch,
                incarnation_id: uuid(id as u8),
                end_points: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: format!("host{id}"),
                    port: 9092,
                    security_protocol: 0,
                }],
                rack: rack.map(|r| format!("r{r}")),
                fenced,
                log_dirs: vec![uuid(20)],
                ..Default::default()
            }
            .into()),
        (0..4i32).prop_map(|id| UnregisterBrokerRecord {
            broker_id: id,
            broker_epoch: 0,
        }
        .into()),
        (0..4i32, 0..3i64).prop_map(|(id, epoch)| FenceBrokerRecord { id, epoch }.into()),
        (0..4i32, 0..3i64).prop_map(|(id, epoch)| UnfenceBrokerRecord { id, epoch }.into()),
        (0..4i32, 0..3i64, -1..2i8, 0..2i8, any::<bool>()).prop_map(
            |(id, epoch, fenced, ics, dirs)| BrokerRegistrationChangeRecord {
                broker_id: id,
                broker_epoch: epoch,
                fenced,
                in_controlled_shutdown: ics,
                log_dirs: if dirs { vec![uuid(21)] } else { vec![] },
                cordoned_log_dirs: dirs.then(Vec::new),
            }
            .into()
        ),
        (0..2i32).prop_map(|id| RegisterControllerRecord {
            controller_id: 3000 + id,
            incarnation_id: uuid(30),
            ..Default::default()
        }
        .into()),
        (0..2i32).prop_map(|id| UnregisterControllerRecord {
            controller_id: 3000 + id,
        }
        .into()),
        (0..4usize, 0..30i16).prop_map(|(f, level)| FeatureLevelRecord {
            name: FEATURES[f].into(),
            feature_level: level,
        }
        .into()),
    ]
}

fn other_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        (
            prop_oneof![Just(2i8), Just(4i8)],
            0..4usize,
            0..3u8,
            proptest::option::of(0..3u8)
        )
            .prop_map(|(rtype, n, key, value)| ConfigRecord {
                resource_type: rtype,
                resource_name: if rtype == 4 && n == 3 {
                    String::new()
                } else {
                    NAMES[n].into()
                },
                name: format!("key{key}"),
                value: value.map(|v| format!("v{v}")),
            }
            .into()),
        (0..10_000i64).prop_map(|next| ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 0,
            next_producer_id: next,
        }
        .into()),
        (0..2u8, 0..2u8, 0..100i32, any::<bool>()).prop_map(|(e, k, v, remove)| {
            ClientQuotaRecord {
                entity: vec![EntityData {
                    entity_type: "user".into(),
                    entity_name: (e == 0).then(|| "alice".into()),
                }],
                key: format!("quota{k}"),
                value: f64::from(v) / 4.0,
                remove,
            }
            .into()
        }),
        (0..3u8).prop_map(|i| AccessControlEntryRecord {
            id: uuid(40 + i),
            resource_type: 2,
            resource_name: "a".into(),
            pattern_type: 3,
            principal: format!("User:u{i}"),
            host: "*".into(),
            operation: 2,
            permission_type: 3,
        }
        .into()),
        (0..3u8).prop_map(|i| RemoveAccessControlEntryRecord { id: uuid(40 + i) }.into()),
        (0..2u8, 1..3i8).prop_map(|(n, m)| UserScramCredentialRecord {
            name: NAMES[n as usize].into(),
            mechanism: m,
            iterations: 4096,
            ..Default::default()
        }
        .into()),
        (0..2u8, 1..3i8).prop_map(|(n, m)| RemoveUserScramCredentialRecord {
            name: NAMES[n as usize].into(),
            mechanism: m,
        }
        .into()),
        (0..2u8).prop_map(|t| DelegationTokenRecord {
            token_id: format!("t{t}"),
            owner: "User:a".into(),
            requester: "User:b".into(),
            renewers: vec!["User:c".into()],
            issue_timestamp: 1,
            max_timestamp: 3,
            expiration_timestamp: 2,
        }
        .into()),
        (0..2u8).prop_map(|t| RemoveDelegationTokenRecord {
            token_id: format!("t{t}"),
        }
        .into()),
        Just(NoOpRecord {}.into()),
    ]
}

pub fn transaction_records() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        Just(BeginTransactionRecord { name: None }.into()),
        Just(EndTransactionRecord {}.into()),
        Just(AbortTransactionRecord { reason: None }.into()),
    ]
}

pub fn any_record() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        12 => topic_records(),
        4 => cluster_records(),
        4 => other_records(),
        1 => transaction_records(),
    ]
}

pub fn is_transaction_marker(r: &MetadataRecord) -> bool {
    matches!(
        r,
        MetadataRecord::BeginTransaction(_)
            | MetadataRecord::EndTransaction(_)
            | MetadataRecord::AbortTransaction(_)
    )
}

// ----- Apache Kafka 4.4 on this machine -----

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Kafka's classpath, or why the comparison cannot run.
pub fn kafka_classpath() -> Result<String, String> {
    let file = std::env::var_os("ARUS_KAFKA_CLASSPATH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("compat/work/reference-classpath.txt"));
    let classpath = std::fs::read_to_string(&file)
        .map_err(|e| format!("no Kafka classpath at {} ({e})", file.display()))?;
    let java = Command::new("java").arg("-version").output();
    if !java.is_ok_and(|o| o.status.success()) {
        return Err("`java` is not installed".into());
    }
    Ok(classpath.trim().to_string())
}

/// Kafka's classpath, or `None` after saying why the comparison named `what` is skipped;
/// with `ARUS_KAFKA_SERDE_REQUIRED` set, a missing classpath or `java` fails instead.
pub fn kafka_classpath_or_skip(what: &str) -> Option<String> {
    match kafka_classpath() {
        Ok(cp) => Some(cp),
        Err(why) if std::env::var_os("ARUS_KAFKA_SERDE_REQUIRED").is_some() => {
            panic!("{what} required but cannot run: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {what} not run: {why}");
            None
        }
    }
}

/// Runs one of the `kafka-serde/*.java` programs with Kafka's classpath, `input` on its
/// standard input; its standard output.
pub fn run_java(classpath: &str, program: &str, input: &str) -> String {
    use std::io::Write;
    let program = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kafka-serde")
        .join(program);
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(&program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start java");
    let mut stdin = child.stdin.take().expect("java stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("run java");
    writer.join().unwrap().expect("write to java");
    assert!(
        output.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("java output is UTF-8")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
