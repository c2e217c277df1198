//! CreateTopics, DeleteTopics and CreatePartitions (Kafka's
//! `ReplicationControlManager.createTopics`, `deleteTopics`, `createPartitions`, and the
//! request handling of `ControllerApis.deleteTopics`).

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use arus_protocol::messages::create_topics_request::CreatableTopic;
use arus_protocol::metadata::{PartitionRecord, RemoveTopicRecord, TopicRecord};
use arus_protocol::{ErrorCode, Uuid};

use crate::configs::{
    ConfigContext, ConfigOp, ConfigResource, ConfigValidator, clear_elr_records, incremental_alter,
};
use crate::election::Decider;
use crate::error::ControllerError;
use crate::java_random::JavaRandom;
use crate::partition_change::RECOVERED;
use crate::placement::{UsableBroker, place, validate_manual_assignment};
use crate::records::MetadataRecord;

/// Kafka's `MAX_PARTITIONS_PER_BATCH`.
pub const MAX_PARTITIONS_PER_BATCH: i64 = 10_000;

/// Kafka's topic name rule (`Topic.validate`, 4.4 wording): INVALID_TOPIC_EXCEPTION.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let reason = if name.is_empty() {
        Some("the empty string is not allowed".to_owned())
    } else if name == "." {
        Some("'.' is not allowed".to_owned())
    } else if name == ".." {
        Some("'..' is not allowed".to_owned())
    } else if name.chars().count() > 249 {
        Some(format!(
            "the length of '{name}' is longer than the max allowed length 249"
        ))
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some(format!(
            "'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"
        ))
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(ControllerError::new(
            ErrorCode::InvalidTopicException,
            format!("Topic name is invalid: {r}"),
        )),
    }
}

/// Kafka's `Topic.unifyCollisionChars`: `.` and `_` collide in metric names.
fn unify_collision_chars(name: &str) -> String {
    name.replace('.', "_")
}

/// Where new topic ids come from (Kafka uses `Uuid.randomUuid()`); injected so the
/// controller stays deterministic under test.
pub trait TopicIdSource {
    /// A fresh id, never the zero id nor one of Kafka's reserved ids.
    fn next_topic_id(&mut self) -> Uuid;
}

/// A deterministic id source (splitmix64 over a seed), for tests and simulations.
#[derive(Debug, Clone)]
pub struct SeededTopicIds(u64);

impl SeededTopicIds {
    pub fn new(seed: u64) -> Self {
        SeededTopicIds(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TopicIdSource for SeededTopicIds {
    fn next_topic_id(&mut self) -> Uuid {
        loop {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
            b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
            let id = Uuid(b);
            // Kafka's randomUuid skips ids whose string form starts with '-' (unusable on
            // command lines) and the reserved low ids.
            if b[0] & 0xfc != 0xf8 && b[..8] != [0; 8] {
                return id;
            }
        }
    }
}

/// The outcome of one topic in CreateTopics.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedTopic {
    pub name: String,
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// Per-topic results of CreateTopics, in request order.
pub type CreateTopicsResults = Vec<(String, Result<CreatedTopic, ControllerError>)>;

/// Inputs CreateTopics needs beside the state.
pub struct CreateTopicsEnv<'e> {
    pub usable_brokers: &'e [UsableBroker],
    pub random: &'e mut JavaRandom,
    pub ids: &'e mut dyn TopicIdSource,
    pub validator: &'e dyn ConfigValidator,
}

fn total_requested_partitions(d: &Decider<'_>, topics: &[CreatableTopic]) -> i64 {
    topics
        .iter()
        .map(|t| {
            if !t.assignments.is_empty() {
                t.assignments.len() as i64
            } else if t.num_partitions == -1 {
                i64::from(d.config.default_num_partitions)
            } else {
                i64::from(t.num_partitions.max(0))
            }
        })
        .sum()
}

/// CreateTopics: TopicRecord, ConfigRecords, PartitionRecords for every topic that can be
/// created, and a result per topic. A request-level error (too many partitions) fails all.
pub fn create_topics(
    d: &Decider<'_>,
    env: CreateTopicsEnv<'_>,
    topics: &[CreatableTopic],
    validate_only: bool,
) -> Result<(Vec<MetadataRecord>, CreateTopicsResults), ControllerError> {
    if total_requested_partitions(d, topics) > MAX_PARTITIONS_PER_BATCH {
        return Err(ControllerError::new(
            ErrorCode::PolicyViolation,
            "Excessively large number of partitions per request.",
        ));
    }
    let CreateTopicsEnv {
        usable_brokers,
        random,
        ids,
        validator,
    } = env;
    let mut errors: BTreeMap<String, ControllerError> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for t in topics {
        if !seen.insert(t.name.as_str()) {
            errors.insert(
                t.name.clone(),
                ControllerError::new(ErrorCode::InvalidRequest, "Duplicate topic name."),
            );
        }
    }
    // Kafka's validateNewTopicNames, then TOPIC_ALREADY_EXISTS overriding it.
    let colliding: BTreeMap<String, &str> = d
        .state
        .topic_ids
        .keys()
        .filter(|n| n.contains('.') || n.contains('_'))
        .map(|n| (unify_collision_chars(n), n.as_str()))
        .collect();
    for t in topics {
        if errors.contains_key(&t.name) {
            continue;
        }
        if let Err(e) = validate_topic_name(&t.name) {
            errors.insert(t.name.clone(), e);
        }
        if (t.name.contains('.') || t.name.contains('_'))
            && let Some(existing) = colliding.get(&unify_collision_chars(&t.name))
        {
            errors.insert(
                t.name.clone(),
                ControllerError::new(
                    ErrorCode::InvalidTopicException,
                    format!(
                        "Topic '{}' collides with existing topic: {existing}",
                        t.name
                    ),
                ),
            );
        }
    }
    for t in topics {
        let duplicate = errors
            .get(&t.name)
            .is_some_and(|e| e.code == ErrorCode::InvalidRequest);
        if d.state.topic_ids.contains_key(&t.name) && !duplicate {
            errors.insert(
                t.name.clone(),
                ControllerError::new(
                    ErrorCode::TopicAlreadyExists,
                    format!("Topic '{}' already exists.", t.name),
                ),
            );
        }
    }
    // Kafka's computeConfigChanges: null config values are refused.
    for t in topics {
        if errors.contains_key(&t.name) {
            continue;
        }
        let nulls: Vec<&str> = t
            .configs
            .iter()
            .filter(|c| c.value.is_none())
            .map(|c| c.name.as_str())
            .collect();
        if !nulls.is_empty() {
            errors.insert(
                t.name.clone(),
                ControllerError::new(
                    ErrorCode::InvalidConfig,
                    format!(
                        "Null value not supported for topic configs: {}",
                        nulls.join(",")
                    ),
                ),
            );
        }
    }
    let mut records = Vec::new();
    let mut created: BTreeMap<String, CreatedTopic> = BTreeMap::new();
    for t in topics {
        if errors.contains_key(&t.name) || created.contains_key(&t.name) {
            continue;
        }
        let ops: Vec<(String, ConfigOp)> = t
            .configs
            .iter()
            .filter_map(|c| c.value.clone().map(|v| (c.name.clone(), ConfigOp::Set(v))))
            .collect();
        let config_records = if ops.is_empty() {
            Vec::new()
        } else {
            let cx = ConfigContext {
                state: d.state,
                node_id: d.config.node_id,
                elr_enabled: d.elr_enabled(),
                validator,
            };
            match incremental_alter(&cx, &ConfigResource::topic(t.name.clone()), &ops, true) {
                Ok(mut r) => {
                    let clear = clear_elr_records(cx.elr_enabled, &r);
                    r.extend(clear);
                    r
                }
                Err(e) => {
                    errors.insert(t.name.clone(), e);
                    continue;
                }
            }
        };
        match create_topic(d, usable_brokers, random, t) {
            Ok(parts) => {
                let topic_id = ids.next_topic_id();
                let rf = parts.first().map(|p| p.replicas.len()).unwrap_or(0) as i16;
                created.insert(
                    t.name.clone(),
                    CreatedTopic {
                        name: t.name.clone(),
                        topic_id,
                        num_partitions: parts.len() as i32,
                        replication_factor: rf,
                    },
                );
                records.push(MetadataRecord::Topic(TopicRecord {
                    name: t.name.clone(),
                    topic_id,
                }));
                // ConfigRecords go after the TopicRecord and before the PartitionRecords.
                records.extend(config_records);
                for (pid, mut p) in parts.into_iter().enumerate() {
                    p.topic_id = topic_id;
                    p.partition_id = pid as i32;
                    records.push(MetadataRecord::Partition(p));
                }
            }
            Err(e) => {
                errors.insert(t.name.clone(), e);
            }
        }
    }
    let mut results = Vec::with_capacity(topics.len());
    let mut answered = BTreeSet::new();
    for t in topics {
        if !answered.insert(t.name.as_str()) {
            continue;
        }
        let r = match errors.get(&t.name) {
            Some(e) => Err(e.clone()),
            None => match created.get(&t.name) {
                Some(c) => Ok(c.clone()),
                None => continue,
            },
        };
        results.push((t.name.clone(), r));
    }
    tracing::info!(
        validate_only,
        created = created.len(),
        failed = errors.len(),
        "CreateTopics"
    );
    Ok((if validate_only { Vec::new() } else { records }, results))
}

/// A new partition: replicas, ISR = the active replicas, leader = the first of them.
fn new_partition(d: &Decider<'_>, replicas: Vec<i32>, isr: Vec<i32>) -> PartitionRecord {
    let directories = if d.metadata_version().is_directory_assignment_supported() {
        replicas
            .iter()
            .map(|r| {
                d.state
                    .brokers
                    .get(r)
                    .map(|b| b.default_dir())
                    .unwrap_or(crate::state::DIR_UNASSIGNED)
            })
            .collect()
    } else {
        Vec::new()
    };
    let elr = d.elr_enabled().then(Vec::new);
    PartitionRecord {
        leader: isr.first().copied().unwrap_or(crate::state::NO_LEADER),
        replicas,
        isr,
        directories,
        leader_recovery_state: RECOVERED,
        leader_epoch: 0,
        partition_epoch: 0,
        eligible_leader_replicas: elr.clone(),
        last_known_elr: elr,
        ..PartitionRecord::default()
    }
}

fn all_fenced(rf: impl std::fmt::Display) -> ControllerError {
    ControllerError::new(
        ErrorCode::InvalidReplicationFactor,
        format!(
            "Unable to replicate the partition {rf} time(s): All brokers are currently fenced or in controlled shutdown."
        ),
    )
}

/// Kafka's `createTopic` for one topic: its partitions (topic id and index filled later).
fn create_topic(
    d: &Decider<'_>,
    usable: &[UsableBroker],
    random: &mut JavaRandom,
    t: &CreatableTopic,
) -> Result<Vec<PartitionRecord>, ControllerError> {
    let active = |id: &i32| d.state.is_active(*id);
    if !t.assignments.is_empty() {
        if t.replication_factor != -1 {
            return Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ));
        }
        if t.num_partitions != -1 {
            return Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ));
        }
        let mut parts: BTreeMap<i32, PartitionRecord> = BTreeMap::new();
        let mut rf = None;
        for a in &t.assignments {
            if parts.contains_key(&a.partition_index) {
                return Err(ControllerError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Found multiple manual partition assignments for partition {}",
                        a.partition_index
                    ),
                ));
            }
            validate_manual_assignment(&a.broker_ids, rf, |id| d.state.brokers.contains_key(&id))?;
            rf = Some(a.broker_ids.len());
            let isr: Vec<i32> = a.broker_ids.iter().copied().filter(active).collect();
            if isr.is_empty() {
                return Err(ControllerError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                        a.partition_index
                    ),
                ));
            }
            parts.insert(
                a.partition_index,
                new_partition(d, a.broker_ids.clone(), isr),
            );
        }
        for i in 0..parts.len() as i32 {
            if !parts.contains_key(&i) {
                return Err(ControllerError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    "partitions should be a consecutive 0-based integer sequence",
                ));
            }
        }
        return Ok(parts.into_values().collect());
    }
    if t.replication_factor < -1 || t.replication_factor == 0 {
        return Err(ControllerError::new(
            ErrorCode::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if t.num_partitions < -1 || t.num_partitions == 0 {
        return Err(ControllerError::new(
            ErrorCode::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    let num_partitions = if t.num_partitions == -1 {
        d.config.default_num_partitions
    } else {
        t.num_partitions
    };
    let rf = if t.replication_factor == -1 {
        d.config.default_replication_factor
    } else {
        t.replication_factor
    };
    let assignments = place(random, usable, num_partitions, i32::from(rf))
        .map_err(|e| e.into_controller_error(i32::from(rf)))?;
    assignments
        .into_iter()
        .map(|replicas| {
            let isr: Vec<i32> = replicas.iter().copied().filter(active).collect();
            if isr.is_empty() {
                return Err(all_fenced(rf));
            }
            Ok(new_partition(d, replicas, isr))
        })
        .collect()
}

/// CreatePartitions for one topic: the new PartitionRecords.
pub fn create_partitions(
    d: &Decider<'_>,
    usable: &[UsableBroker],
    random: &mut JavaRandom,
    topic: &CreatePartitionsTopic,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let Some(info) = d.state.topic_by_name(&topic.name) else {
        return Err(ControllerError::code_only(
            ErrorCode::UnknownTopicOrPartition,
        ));
    };
    let current = info.partitions.len() as i32;
    if topic.count == current {
        return Err(ControllerError::new(
            ErrorCode::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    } else if topic.count < current {
        return Err(ControllerError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                topic.name, topic.count
            ),
        ));
    }
    let additional = topic.count - current;
    if let Some(assignments) = &topic.assignments
        && assignments.len() as i32 != additional
    {
        return Err(ControllerError::new(
            ErrorCode::InvalidReplicaAssignment,
            format!(
                "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                assignments.len()
            ),
        ));
    }
    let Some(first) = info.partitions.values().next() else {
        return Err(ControllerError::new(
            ErrorCode::UnknownServerError,
            format!(
                "Invalid state: topic {} appears to have no partitions.",
                topic.name
            ),
        ));
    };
    let rf = first.replicas.len();
    let active = |id: &i32| d.state.is_active(*id);
    let assignments: Vec<Vec<i32>> = match &topic.assignments {
        Some(assignments) => {
            let mut out = Vec::with_capacity(assignments.len());
            for (i, a) in assignments.iter().enumerate() {
                validate_manual_assignment(&a.broker_ids, Some(rf), |id| {
                    d.state.brokers.contains_key(&id)
                })?;
                if !a.broker_ids.iter().any(active) {
                    return Err(ControllerError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                            current + i as i32
                        ),
                    ));
                }
                out.push(a.broker_ids.clone());
            }
            out
        }
        None => place(random, usable, additional, rf as i32).map_err(|e| {
            ControllerError::new(ErrorCode::InvalidReplicationFactor, e.to_string())
        })?,
    };
    let mut records = Vec::with_capacity(assignments.len());
    for (i, replicas) in assignments.into_iter().enumerate() {
        let isr: Vec<i32> = replicas.iter().copied().filter(active).collect();
        if isr.is_empty() {
            return Err(all_fenced(rf));
        }
        let mut p = new_partition(d, replicas, isr);
        p.topic_id = info.id;
        p.partition_id = current + i as i32;
        records.push(MetadataRecord::Partition(p));
    }
    Ok(records)
}

/// Kafka's `deleteTopic`: a RemoveTopicRecord, or UNKNOWN_TOPIC_ID.
pub fn delete_topic(d: &Decider<'_>, id: Uuid) -> Result<MetadataRecord, ControllerError> {
    if !d.state.topics.contains_key(&id) {
        return Err(ControllerError::new(
            ErrorCode::UnknownTopicId,
            "This server does not host this topic ID.",
        ));
    }
    Ok(MetadataRecord::RemoveTopic(RemoveTopicRecord {
        topic_id: id,
    }))
}

/// One result of DeleteTopics: `(name, id, outcome)` as Kafka's `DeletableTopicResult`.
pub type DeleteTopicResult = (Option<String>, Uuid, Result<(), ControllerError>);

/// DeleteTopics as Kafka's `ControllerApis.deleteTopics` resolves it (without the
/// authorization steps, which are the broker's): `names` from v0–v5's `topic_names`, and
/// `(name, id)` pairs from v6+'s `topics`.
pub fn delete_topics(
    d: &Decider<'_>,
    names: &[String],
    topics: &[(Option<String>, Uuid)],
) -> (Vec<MetadataRecord>, Vec<DeleteTopicResult>) {
    let invalid = |m: &str| Err(ControllerError::new(ErrorCode::InvalidRequest, m));
    let mut results: Vec<DeleteTopicResult> = Vec::new();
    let mut provided_names: Vec<String> = Vec::new();
    let mut dup_names: BTreeSet<String> = BTreeSet::new();
    let mut provided_ids: Vec<Uuid> = Vec::new();
    let mut dup_ids: BTreeSet<Uuid> = BTreeSet::new();
    let add_name = |n: &str, provided: &mut Vec<String>, dups: &mut BTreeSet<String>| {
        if dups.contains(n) || provided.iter().any(|p| p == n) {
            dups.insert(n.to_owned());
            provided.retain(|p| p != n);
        } else {
            provided.push(n.to_owned());
        }
    };
    for n in names {
        add_name(n, &mut provided_names, &mut dup_names);
    }
    for (name, id) in topics {
        match name {
            None if *id == Uuid::ZERO => results.push((
                None,
                Uuid::ZERO,
                invalid("Neither topic name nor id were specified."),
            )),
            None => {
                if dup_ids.contains(id) || provided_ids.contains(id) {
                    dup_ids.insert(*id);
                    provided_ids.retain(|p| p != id);
                } else {
                    provided_ids.push(*id);
                }
            }
            Some(n) if *id == Uuid::ZERO => add_name(n, &mut provided_names, &mut dup_names),
            Some(n) => results.push((
                Some(n.clone()),
                *id,
                invalid("You may not specify both topic name and topic id."),
            )),
        }
    }
    for n in &dup_names {
        results.push((
            Some(n.clone()),
            Uuid::ZERO,
            invalid("Duplicate topic name."),
        ));
    }
    for id in &dup_ids {
        results.push((None, *id, invalid("Duplicate topic id.")));
    }
    let mut to_delete: Vec<(String, Uuid)> = Vec::new();
    for id in provided_ids {
        if id == Uuid::ZERO {
            continue;
        }
        match d.state.topics.get(&id) {
            Some(t) => to_delete.push((t.name.clone(), id)),
            None => results.push((
                None,
                id,
                Err(ControllerError::code_only(ErrorCode::UnknownTopicId)),
            )),
        }
    }
    for n in provided_names {
        match d.state.topic_ids.get(&n) {
            None => results.push((
                Some(n),
                Uuid::ZERO,
                Err(ControllerError::code_only(
                    ErrorCode::UnknownTopicOrPartition,
                )),
            )),
            Some(&id) if to_delete.iter().any(|(_, i)| *i == id) => {
                to_delete.retain(|(_, i)| *i != id);
                results.push((
                    Some(n),
                    id,
                    invalid("The provided topic name maps to an ID that was already supplied."),
                ));
            }
            Some(&id) => to_delete.push((n, id)),
        }
    }
    let mut records = Vec::new();
    for (name, id) in to_delete {
        match delete_topic(d, id) {
            Ok(r) => {
                tracing::info!(topic = %name, topic_id = %id, "deleting topic");
                records.push(r);
                results.push((Some(name), id, Ok(())));
            }
            Err(e) => results.push((Some(name), id, Err(e))),
        }
    }
    (records, results)
}
