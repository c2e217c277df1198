//! DescribeLogDirs and AlterReplicaLogDirs (Kafka's `ReplicaManager.describeLogDirs` and
//! `alterReplicaLogDirs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use arus_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use arus_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse,
};
use tracing::warn;

use crate::broker::Broker;
use crate::log_dirs::mover::THROTTLE_KEY;
use crate::log_dirs::{LogDir, names};

/// Size of the volume holding `dir`: (total, usable) bytes as Java's `FileStore`
/// `getTotalSpace` / `getUsableSpace` (`f_blocks` and `f_bavail` blocks).
fn volume_space(dir: &LogDir) -> std::io::Result<(i64, i64)> {
    let path = std::ffi::CString::new(dir.path.as_os_str().as_encoded_bytes())
        .map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` a valid out-parameter.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u128;
    // Kafka reports Long.MAX_VALUE when the JDK overflows (JDK-8162520).
    let clamp = |blocks: u128| i64::try_from(blocks * frsize).unwrap_or(i64::MAX);
    Ok((clamp(st.f_blocks as u128), clamp(st.f_bavail as u128)))
}

pub fn describe(broker: &Arc<Broker>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    // `topics: null` asks for every partition (Kafka's `isAllTopicPartitions`); a list
    // names partitions, and those this broker does not host are simply absent.
    let wanted: Option<HashSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic;
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let dirs = &broker.log_dirs;
    // Per directory, per topic: the partitions it holds (current and future replicas).
    let mut per_dir: Vec<BTreeMap<String, Vec<DescribeLogDirsPartition>>> =
        vec![BTreeMap::new(); dirs.all().len()];
    for topic in broker.topics.all() {
        for p in topic.partitions() {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&(topic.name.clone(), p.index)))
            {
                continue;
            }
            let location = p.location();
            if location.is_online() {
                per_dir[location.index]
                    .entry(topic.name.clone())
                    .or_default()
                    .push(DescribeLogDirsPartition {
                        partition_index: p.index,
                        partition_size: p.size_bytes() as i64,
                        // Kafka: max(HW - LEO, 0). On one node the high watermark is the
                        // log end offset (the only replica is the whole ISR): always 0.
                        offset_lag: (p.high_watermark() - p.log_end_offset()).max(0),
                        is_future_key: false,
                        ..Default::default()
                    });
            }
            if let Some(m) = dirs.moves.get(&topic.name, p.index)
                && m.dest.is_online()
            {
                use std::sync::atomic::Ordering;
                per_dir[m.dest.index]
                    .entry(topic.name.clone())
                    .or_default()
                    .push(DescribeLogDirsPartition {
                        partition_index: p.index,
                        partition_size: m.copied_bytes.load(Ordering::Acquire) as i64,
                        // The current replica's log end minus the future's; the future's
                        // end is known per segment (see `MoveState::copied_offset`), so
                        // this is at most the true lag.
                        offset_lag: (p.log_end_offset() - m.copied_offset.load(Ordering::Acquire))
                            .max(0),
                        is_future_key: true,
                        ..Default::default()
                    });
            }
        }
    }
    let results = dirs
        .all()
        .iter()
        .zip(per_dir)
        .map(|(dir, topics)| {
            let log_dir = dir.path.display().to_string();
            if !dir.is_online() {
                warn!(dir = %log_dir, "Unable to describe replica dirs: the log directory is offline");
                return DescribeLogDirsResult {
                    error_code: ErrorCode::KafkaStorageError.code(),
                    log_dir,
                    ..Default::default()
                };
            }
            match volume_space(dir) {
                Ok((total_bytes, usable_bytes)) => DescribeLogDirsResult {
                    error_code: ErrorCode::None.code(),
                    log_dir,
                    topics: topics
                        .into_iter()
                        .map(|(name, mut partitions)| {
                            partitions.sort_by_key(|p| p.partition_index);
                            DescribeLogDirsTopic {
                                name,
                                partitions,
                                ..Default::default()
                            }
                        })
                        .collect(),
                    total_bytes,
                    usable_bytes,
                    is_cordoned: false,
                    ..Default::default()
                },
                Err(e) => {
                    // Kafka: an IOException here is a KAFKA_STORAGE_ERROR for the directory.
                    warn!(dir = %log_dir, error = %e, "Unable to describe replica dirs");
                    DescribeLogDirsResult {
                        error_code: ErrorCode::KafkaStorageError.code(),
                        log_dir,
                        ..Default::default()
                    }
                }
            }
        })
        .collect();
    DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: ErrorCode::None.code(),
        results,
        ..Default::default()
    }
}

/// Kafka's `ReplicaManager.alterReplicaLogDirs` for one partition.
fn alter_one(broker: &Arc<Broker>, path: &str, topic: &str, index: i32) -> ErrorCode {
    let dirs = &broker.log_dirs;
    // Kafka refuses names whose future directory would pass the 255-byte file name limit.
    if names::future(topic, index, &"0".repeat(32)).len() > 255 {
        warn!(
            topic,
            partition = index,
            "Unable to alter log dirs: The topic name is too long."
        );
        return ErrorCode::InvalidTopicException;
    }
    let Some(dest) = dirs.by_path(path) else {
        warn!(
            topic,
            partition = index,
            dir = path,
            "Unable to alter log dirs: Log dir {path} is not found in the config."
        );
        return ErrorCode::LogDirNotFound;
    };
    if !dest.is_online() {
        warn!(
            topic,
            partition = index,
            dir = path,
            "Unable to alter log dirs: Log directory {path} is offline"
        );
        return ErrorCode::KafkaStorageError;
    }
    let known = broker.topics.get(topic);
    let Some(partition) = known.as_ref().and_then(|t| t.partition(index)) else {
        warn!(
            topic,
            partition = index,
            "Unable to alter log dirs: This server does not host this topic-partition."
        );
        // Kafka answers REPLICA_NOT_AVAILABLE for a partition the metadata knows but this
        // broker does not host; one the metadata does not know is
        // UNKNOWN_TOPIC_OR_PARTITION (checked against Kafka 4.4).
        return if known.is_some_and(|t| t.has_partition(index)) {
            ErrorCode::ReplicaNotAvailable
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
    };
    if !partition.is_online() {
        warn!(
            topic,
            partition = index,
            "Unable to alter log dirs: Partition {topic}-{index} is offline"
        );
        return ErrorCode::KafkaStorageError;
    }
    // A move elsewhere is stopped (Kafka's `futureReplicaDirChanged`).
    match dirs.moves.get(topic, index) {
        Some(m) if m.dest.index == dest.index => return ErrorCode::None,
        Some(_) => dirs.moves.cancel(topic, index),
        None => {}
    }
    if partition.location().index == dest.index {
        return ErrorCode::None;
    }
    // Kafka creates no future replica while a directory is offline, so that one partition
    // never gets copies in several directories.
    if let Some(offline) = dirs.all().iter().find(|d| !d.is_online()) {
        warn!(
            topic,
            partition = index,
            "Unable to alter log dirs: Can not create log for {topic}-{index} because log directories {} are offline",
            offline.path.display()
        );
        return ErrorCode::KafkaStorageError;
    }
    let rate = broker
        .config
        .explicit
        .get(THROTTLE_KEY)
        .and_then(|v| v.trim().parse::<u64>().ok());
    dirs.moves.start(partition, dest.clone(), rate);
    ErrorCode::None
}

pub fn alter(
    broker: &Arc<Broker>,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    // Kafka collects the request into a map (partition -> directory): the last entry for a
    // partition wins, and each partition is answered once.
    let mut order: Vec<(String, i32)> = Vec::new();
    let mut target: std::collections::HashMap<(String, i32), String> = Default::default();
    for dir in request.dirs {
        for topic in dir.topics {
            for p in topic.partitions {
                let key = (topic.name.clone(), p);
                if target.insert(key.clone(), dir.path.clone()).is_none() {
                    order.push(key);
                }
            }
        }
    }
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for (topic, index) in order {
        let path = &target[&(topic.clone(), index)];
        let error_code = alter_one(broker, path, &topic, index).code();
        let partition = AlterReplicaLogDirPartitionResult {
            partition_index: index,
            error_code,
            ..Default::default()
        };
        match results.iter_mut().find(|r| r.topic_name == topic) {
            Some(r) => r.partitions.push(partition),
            None => results.push(AlterReplicaLogDirTopicResult {
                topic_name: topic,
                partitions: vec![partition],
                ..Default::default()
            }),
        }
    }
    AlterReplicaLogDirsResponse {
        throttle_time_ms: 0,
        results,
        ..Default::default()
    }
}
