//! The controller's view of the cluster, built only by replaying committed metadata records
//! (Kafka's control managers keep the same maps: `ClusterControlManager.brokerRegistrations`,
//! `ReplicationControlManager.topics`, `ConfigurationControlManager.configData`, …).
//! Decisions read it; nothing but [`ClusterState::replay`] writes it.

use std::collections::BTreeMap;

use arus_protocol::Uuid;
use arus_protocol::metadata::register_broker_record::BrokerEndpoint;

use crate::records::MetadataRecord;

/// Kafka's `DirectoryId.MIGRATING` (a replica on a broker that registered no directories).
pub const DIR_MIGRATING: Uuid = Uuid([0; 16]);
/// Kafka's `DirectoryId.UNASSIGNED` (a broker with several directories, not yet chosen).
pub const DIR_UNASSIGNED: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/// Kafka's `DirectoryId.LOST`.
pub const DIR_LOST: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

/// `NO_LEADER` in Kafka's records.
pub const NO_LEADER: i32 = -1;
/// `NO_LEADER_CHANGE` in a `PartitionChangeRecord`.
pub const NO_LEADER_CHANGE: i32 = -2;

/// Config resource types as Kafka numbers them (`ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
/// The BROKER config resource type.
pub const RESOURCE_BROKER: i8 = 4;

/// A registered broker (Kafka's `BrokerRegistration`).
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerInfo {
    pub id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub listeners: Vec<BrokerEndpoint>,
    /// Supported feature ranges, `name -> (min, max)`.
    pub supported_features: BTreeMap<String, (i16, i16)>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub log_dirs: Vec<Uuid>,
}

impl BrokerInfo {
    /// Kafka's `isActive`: unfenced and not shutting down.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// Kafka's `ClusterControlManager.defaultDir`.
    pub fn default_dir(&self) -> Uuid {
        match self.log_dirs.as_slice() {
            [] => DIR_MIGRATING,
            [one] => *one,
            _ => DIR_UNASSIGNED,
        }
    }
}

/// One partition (Kafka's `PartitionRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub replicas: Vec<i32>,
    pub directories: Vec<Uuid>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionInfo {
    /// The preferred leader: the first replica.
    pub fn preferred_replica(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionInfo>,
}

/// Everything the controller decides from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// Finalized feature levels, `metadata.version` included.
    pub features: BTreeMap<String, i16>,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// The offset each broker's latest `RegisterBrokerRecord` committed at: a broker is
    /// unfenced only once its metadata has caught up with it.
    pub register_offsets: BTreeMap<i32, i64>,
    pub topics: BTreeMap<Uuid, TopicInfo>,
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Dynamic configs by `(resource type, resource name)`.
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// The first producer id of the next block (Kafka's `nextProducerBlock.firstProducerId`).
    pub next_producer_id: i64,
    /// The offset of the last record replayed (-1 before any).
    pub last_offset: i64,
}

/// A record that does not fit the state (a bug in the log's writer, never client input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to replay {record}: {reason}")]
pub struct ReplayError {
    pub record: &'static str,
    pub reason: String,
}

fn replay_error(record: &'static str, reason: impl Into<String>) -> ReplayError {
    ReplayError {
        record,
        reason: reason.into(),
    }
}

impl ClusterState {
    /// An empty state: no broker, no topic, nothing finalized.
    pub fn new() -> Self {
        ClusterState {
            last_offset: -1,
            ..ClusterState::default()
        }
    }

    /// The finalized level of `feature` (0 when not finalized).
    pub fn feature_level(&self, feature: &str) -> i16 {
        self.features.get(feature).copied().unwrap_or(0)
    }

    /// The topic named `name`.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicInfo> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Whether broker `id` is registered, unfenced and not shutting down.
    pub fn is_active(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(BrokerInfo::is_active)
    }

    /// The dynamic configs of one resource.
    pub fn resource_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> Option<&BTreeMap<String, String>> {
        self.configs.get(&(resource_type, name.to_owned()))
    }

    /// Applies one committed record at `offset`.
    pub fn replay(&mut self, record: &MetadataRecord, offset: i64) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::RegisterBroker(r) => {
                self.register_offsets.insert(r.broker_id, offset);
                self.brokers.insert(
                    r.broker_id,
                    BrokerInfo {
                        id: r.broker_id,
                        epoch: r.broker_epoch,
                        incarnation_id: r.incarnation_id,
                        listeners: r.end_points.clone(),
                        supported_features: r
                            .features
                            .iter()
                            .map(|f| {
                                (
                                    f.name.clone(),
                                    (f.min_supported_version, f.max_supported_version),
                                )
                            })
                            .collect(),
                        rack: r.rack.clone(),
                        fenced: r.fenced,
                        in_controlled_shutdown: r.in_controlled_shutdown,
                        log_dirs: r.log_dirs.clone(),
                    },
                );
            }
            MetadataRecord::UnregisterBroker(r) => {
                let b =
                    self.broker_at_epoch("UnregisterBrokerRecord", r.broker_id, r.broker_epoch)?;
                let _ = b;
                self.brokers.remove(&r.broker_id);
                self.register_offsets.remove(&r.broker_id);
            }
            MetadataRecord::FenceBroker(r) => {
                self.broker_at_epoch("FenceBrokerRecord", r.id, r.epoch)?
                    .fenced = true;
            }
            MetadataRecord::UnfenceBroker(r) => {
                self.broker_at_epoch("UnfenceBrokerRecord", r.id, r.epoch)?
                    .fenced = false;
            }
            MetadataRecord::BrokerRegistrationChange(r) => {
                let b = self.broker_at_epoch(
                    "BrokerRegistrationChangeRecord",
                    r.broker_id,
                    r.broker_epoch,
                )?;
                // BrokerRegistrationFencingChange: 1 fence, -1 unfence, 0 none.
                match r.fenced {
                    1 => b.fenced = true,
                    -1 => b.fenced = false,
                    0 => {}
                    v => {
                        return Err(replay_error(
                            "BrokerRegistrationChangeRecord",
                            format!("unknown value for fenced field: {v}"),
                        ));
                    }
                }
                // BrokerRegistrationInControlledShutdownChange: 1 in shutdown, 0 none.
                match r.in_controlled_shutdown {
                    1 => b.in_controlled_shutdown = true,
                    0 => {}
                    v => {
                        return Err(replay_error(
                            "BrokerRegistrationChangeRecord",
                            format!("unknown value for inControlledShutdown field: {v}"),
                        ));
                    }
                }
                if !r.log_dirs.is_empty() {
                    b.log_dirs = r.log_dirs.clone();
                }
            }
            MetadataRecord::Topic(r) => {
                self.topic_ids.insert(r.name.clone(), r.topic_id);
                self.topics.insert(
                    r.topic_id,
                    TopicInfo {
                        name: r.name.clone(),
                        id: r.topic_id,
                        partitions: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::Partition(r) => {
                let topic = self.topics.get_mut(&r.topic_id).ok_or_else(|| {
                    replay_error(
                        "PartitionRecord",
                        format!("no topic with id {}", r.topic_id),
                    )
                })?;
                let directories = if r.directories.is_empty() {
                    vec![DIR_MIGRATING; r.replicas.len()]
                } else {
                    r.directories.clone()
                };
                topic.partitions.insert(
                    r.partition_id,
                    PartitionInfo {
                        replicas: r.replicas.clone(),
                        directories,
                        isr: r.isr.clone(),
                        removing_replicas: r.removing_replicas.clone(),
                        adding_replicas: r.adding_replicas.clone(),
                        leader: r.leader,
                        leader_recovery_state: r.leader_recovery_state,
                        leader_epoch: r.leader_epoch,
                        partition_epoch: r.partition_epoch,
                        elr: r.eligible_leader_replicas.clone().unwrap_or_default(),
                        last_known_elr: r.last_known_elr.clone().unwrap_or_default(),
                    },
                );
            }
            MetadataRecord::PartitionChange(r) => {
                let topic = self.topics.get_mut(&r.topic_id).ok_or_else(|| {
                    replay_error(
                        "PartitionChangeRecord",
                        format!("no topic with id {}", r.topic_id),
                    )
                })?;
                let p = topic.partitions.get_mut(&r.partition_id).ok_or_else(|| {
                    replay_error(
                        "PartitionChangeRecord",
                        format!("no partition {}", r.partition_id),
                    )
                })?;
                merge_partition_change(p, r);
            }
            MetadataRecord::RemoveTopic(r) => {
                let topic = self.topics.remove(&r.topic_id).ok_or_else(|| {
                    replay_error(
                        "RemoveTopicRecord",
                        format!("Can't find topic with ID {} to remove.", r.topic_id),
                    )
                })?;
                self.topic_ids.remove(&topic.name);
                self.configs.remove(&(RESOURCE_TOPIC, topic.name));
            }
            MetadataRecord::Config(r) => {
                let key = (r.resource_type, r.resource_name.clone());
                let entry = self.configs.entry(key.clone()).or_default();
                match &r.value {
                    Some(v) => {
                        entry.insert(r.name.clone(), v.clone());
                    }
                    None => {
                        entry.remove(&r.name);
                    }
                }
                if entry.is_empty() {
                    self.configs.remove(&key);
                }
            }
            MetadataRecord::FeatureLevel(r) => {
                if r.feature_level == 0 && r.name != crate::features::METADATA_VERSION {
                    self.features.remove(&r.name);
                } else {
                    self.features.insert(r.name.clone(), r.feature_level);
                }
            }
            MetadataRecord::ProducerIds(r) => {
                self.next_producer_id = r.next_producer_id;
            }
            MetadataRecord::ClearElr(r) => {
                // Kafka's TopicsDelta: a merge clearing ELR and last-known ELR, so the
                // partition epoch moves.
                for topic in self.topics.values_mut() {
                    if !r.topic_name.is_empty() && topic.name != r.topic_name {
                        continue;
                    }
                    for p in topic.partitions.values_mut() {
                        if !p.elr.is_empty() || !p.last_known_elr.is_empty() {
                            p.elr.clear();
                            p.last_known_elr.clear();
                            p.partition_epoch += 1;
                        }
                    }
                }
            }
            // Records the controller's decisions do not depend on (ACLs, quotas, SCRAM,
            // delegation tokens, controller registrations, transactions markers, no-ops).
            _ => {}
        }
        self.last_offset = self.last_offset.max(offset);
        Ok(())
    }

    fn broker_at_epoch(
        &mut self,
        record: &'static str,
        id: i32,
        epoch: i64,
    ) -> Result<&mut BrokerInfo, ReplayError> {
        match self.brokers.get_mut(&id) {
            None => Err(replay_error(
                record,
                "no broker registration found for that id",
            )),
            Some(b) if b.epoch != epoch => Err(replay_error(
                record,
                "no broker registration with that epoch found",
            )),
            Some(b) => Ok(b),
        }
    }
}

/// Kafka's `PartitionRegistration.merge`: absent fields keep their value, a leader change
/// bumps the leader epoch, every change bumps the partition epoch.
pub fn merge_partition_change(
    p: &mut PartitionInfo,
    r: &arus_protocol::metadata::PartitionChangeRecord,
) {
    if let Some(replicas) = &r.replicas {
        p.replicas = replicas.clone();
    }
    if let Some(dirs) = &r.directories {
        p.directories = dirs.clone();
    }
    if p.directories.len() != p.replicas.len() {
        p.directories = vec![DIR_MIGRATING; p.replicas.len()];
    }
    if let Some(isr) = &r.isr {
        p.isr = isr.clone();
    }
    if let Some(v) = &r.removing_replicas {
        p.removing_replicas = v.clone();
    }
    if let Some(v) = &r.adding_replicas {
        p.adding_replicas = v.clone();
    }
    if r.leader != NO_LEADER_CHANGE {
        p.leader = r.leader;
        p.leader_epoch += 1;
    }
    if r.leader_recovery_state != -1 {
        p.leader_recovery_state = r.leader_recovery_state;
    }
    if let Some(v) = &r.eligible_leader_replicas {
        p.elr = v.clone();
    }
    if let Some(v) = &r.last_known_elr {
        p.last_known_elr = v.clone();
    }
    p.partition_epoch += 1;
}
