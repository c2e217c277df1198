//! The facade the broker's controller driver calls: one method per command, `tick` for
//! session expiry, `replay` for committed records.
//!
//! Like Kafka's active controller, the driver replays the controller's own records as soon
//! as they are appended (so the next command sees them), and rebuilds the controller from
//! the committed log or snapshot ([`Controller::from_records`]) if an append fails or
//! leadership is lost.

use std::collections::BTreeMap;

use arus_protocol::Uuid;
use arus_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use arus_protocol::messages::list_partition_reassignments_response::OngoingTopicReassignment;
use arus_protocol::messages::{
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, AlterPartitionRequest,
    AlterPartitionResponse, BrokerHeartbeatRequest, BrokerRegistrationRequest,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, UpdateFeaturesRequest,
};

use crate::brokers::{self, HeartbeatReply};
use crate::config::ControllerConfig;
use crate::configs::{self, ConfigOp, ConfigResource, ConfigValidator};
use crate::election::{Decider, ElectionType};
use crate::error::ControllerError;
use crate::features::{self, UpgradeType};
use crate::heartbeats::Heartbeats;
use crate::java_random::JavaRandom;
use crate::placement::UsableBroker;
use crate::producer_ids::{self, ProducerIdsBlock};
use crate::records::MetadataRecord;
use crate::state::{ClusterState, ReplayError};
use crate::topics::{self, CreateTopicsEnv, CreateTopicsResults, DeleteTopicResult, TopicIdSource};

/// Records to append and the command's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome<T> {
    /// Records to append to the metadata log, in order, as one atomic batch.
    pub records: Vec<MetadataRecord>,
    /// What the client is told once the records are committed.
    pub response: T,
}

impl<T> Outcome<T> {
    fn new(records: Vec<MetadataRecord>, response: T) -> Self {
        Outcome { records, response }
    }
}

/// Per-topic results in request order: `(topic, outcome)`.
pub type TopicResults = Vec<(String, Result<(), ControllerError>)>;

/// Per-resource config results in request order.
pub type ConfigResults = Vec<(ConfigResource, Result<(), ControllerError>)>;

/// Per-partition ElectLeaders results: `(topic, [(partition, outcome)])`.
pub type ElectLeadersResults = Vec<(String, Vec<(i32, Result<(), ControllerError>)>)>;

/// Per-partition AlterPartitionReassignments results, as [`ElectLeadersResults`].
pub type ReassignmentResults = Vec<(String, Vec<(i32, Result<(), ControllerError>)>)>;

/// Kafka's KRaft controller decisions over the replayed cluster state.
pub struct Controller {
    config: ControllerConfig,
    state: ClusterState,
    heartbeats: Heartbeats,
    random: JavaRandom,
}

impl Controller {
    /// An empty controller. `placement_seed` seeds the replica placer's `java.util.Random`.
    pub fn new(config: ControllerConfig, placement_seed: i64) -> Self {
        let heartbeats = Heartbeats::new(config.session_timeout_ms);
        Controller {
            config,
            state: ClusterState::new(),
            heartbeats,
            random: JavaRandom::new(placement_seed),
        }
    }

    /// A controller rebuilt from committed records (a snapshot's, then the log's), with
    /// fresh broker sessions starting at `now_ms` (Kafka's `ClusterControlManager.activate`).
    pub fn from_records<'r>(
        config: ControllerConfig,
        placement_seed: i64,
        records: impl IntoIterator<Item = (&'r MetadataRecord, i64)>,
        now_ms: i64,
    ) -> Result<Self, ReplayError> {
        let mut c = Controller::new(config, placement_seed);
        for (r, offset) in records {
            c.state.replay(r, offset)?;
        }
        c.activate(now_ms);
        Ok(c)
    }

    /// A controller over a committed image (e.g. a loaded snapshot), via its
    /// `to_records()`; every record counts as committed at the image's offset.
    pub fn from_image(
        config: ControllerConfig,
        placement_seed: i64,
        image: &arus_metadata::MetadataImage,
        now_ms: i64,
    ) -> Result<Self, ReplayError> {
        let offset = image.provenance().offset;
        let records = image.to_records();
        Controller::from_records(
            config,
            placement_seed,
            records.iter().map(|r| (r, offset)),
            now_ms,
        )
    }

    /// Starts a session for every registered broker, as Kafka does when a controller
    /// becomes active: sessions are not in the log, so every broker gets a full timeout.
    pub fn activate(&mut self, now_ms: i64) {
        self.heartbeats = Heartbeats::new(self.config.session_timeout_ms);
        for b in self.state.brokers.values() {
            self.heartbeats.register(b.id, b.fenced);
            let dead_incarnation = self.config.own_broker_in_process && b.id == self.config.node_id;
            if !b.fenced && !dead_incarnation {
                self.heartbeats.track_contact(b.id, b.epoch, now_ms);
            }
        }
    }

    /// The replayed state (read-only).
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// The static configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Applies one committed (or, on the active controller, just appended) record.
    pub fn replay(&mut self, record: &MetadataRecord, offset: i64) -> Result<(), ReplayError> {
        let before = match record {
            MetadataRecord::RegisterBroker(r) => self
                .state
                .brokers
                .get(&r.broker_id)
                .map(|b| b.incarnation_id),
            _ => None,
        };
        self.state.replay(record, offset)?;
        match record {
            MetadataRecord::RegisterBroker(r) => {
                if before != Some(r.incarnation_id) {
                    self.heartbeats.remove(r.broker_id);
                }
                if !self.heartbeats.has_session(r.broker_id) {
                    self.heartbeats.register(r.broker_id, r.fenced);
                }
            }
            MetadataRecord::UnregisterBroker(r) => self.heartbeats.remove(r.broker_id),
            _ => {}
        }
        Ok(())
    }

    /// Replays a batch whose first record is at `base_offset`.
    pub fn replay_batch(
        &mut self,
        records: &[MetadataRecord],
        base_offset: i64,
    ) -> Result<(), ReplayError> {
        for (i, r) in records.iter().enumerate() {
            self.replay(r, base_offset + i as i64)?;
        }
        Ok(())
    }

    /// Replays a batch committed as one entry of a log whose offsets count entries, not
    /// records (arus-raft's metadata log: one Raft entry per batch). Every record is at
    /// `offset`, the offset brokers report having applied once they have the batch: a
    /// registration batch that also moves leaderships must not put the broker's
    /// registration offset past what it can ever report.
    pub fn replay_entry(
        &mut self,
        records: &[MetadataRecord],
        offset: i64,
    ) -> Result<(), ReplayError> {
        for r in records {
            self.replay(r, offset)?;
        }
        Ok(())
    }

    fn decider(&self) -> Decider<'_> {
        Decider::new(&self.state, &self.config)
    }

    fn usable_brokers(&self) -> Vec<UsableBroker> {
        let mut usable: Vec<UsableBroker> = self
            .heartbeats
            .usable()
            .filter_map(|(id, fenced)| {
                self.state.brokers.get(&id).map(|b| UsableBroker {
                    id,
                    rack: b.rack.clone(),
                    fenced,
                })
            })
            .collect();
        crate::placement::sort_in_java_hashmap_order(&mut usable);
        usable
    }

    /// BrokerRegistration; the response is the broker epoch. `next_offset` is the log offset
    /// the batch will start at.
    pub fn register_broker(
        &mut self,
        request: &BrokerRegistrationRequest,
        next_offset: i64,
        now_ms: i64,
    ) -> Result<Outcome<i64>, ControllerError> {
        let d = Decider::new(&self.state, &self.config);
        let (records, epoch) =
            brokers::register_broker(&d, &mut self.heartbeats, request, next_offset, now_ms)?;
        Ok(Outcome::new(records, epoch))
    }

    /// BrokerHeartbeat.
    pub fn broker_heartbeat(
        &mut self,
        request: &BrokerHeartbeatRequest,
        next_offset: i64,
        now_ms: i64,
    ) -> Result<Outcome<HeartbeatReply>, ControllerError> {
        let d = Decider::new(&self.state, &self.config);
        let (records, reply) =
            brokers::process_heartbeat(&d, &mut self.heartbeats, request, next_offset, now_ms)?;
        Ok(Outcome::new(records, reply))
    }

    /// Session expiry: the records fencing at most one broker whose session has expired
    /// (call again after replaying them until it returns nothing).
    pub fn tick(&mut self, now_ms: i64) -> Vec<MetadataRecord> {
        let d = Decider::new(&self.state, &self.config);
        brokers::fence_one_stale_broker(&d, &mut self.heartbeats, now_ms)
    }

    /// When `tick` next has something to do (`i64::MAX` when no session can expire).
    pub fn next_tick_ms(&self) -> i64 {
        self.heartbeats.next_check_time_ms().saturating_add(1)
    }

    /// AlterPartition from a partition leader, at request version `version`.
    pub fn alter_partition(
        &mut self,
        request: &AlterPartitionRequest,
        version: i16,
    ) -> Result<Outcome<AlterPartitionResponse>, ControllerError> {
        let (records, response) =
            crate::alter_partition::alter_partition(&self.decider(), request, version)?;
        Ok(Outcome::new(records, response))
    }

    /// The `auto.leader.rebalance.enable` task (Kafka runs it every
    /// `leader.imbalance.check.interval.seconds`, 300 by default): preferred-leader elections
    /// for imbalanced partitions. `response` is true when more may remain (run again).
    pub fn balance_partition_leaders(&self) -> Outcome<bool> {
        let (records, more) = self.decider().balance_partition_leaders();
        Outcome::new(records, more)
    }

    /// The unclean-election task: leaderless partitions of topics with
    /// `unclean.leader.election.enable=true` get any live replica as leader.
    pub fn elect_unclean_leaders(&self) -> Outcome<bool> {
        let (records, more) = self.decider().elect_unclean_leaders();
        Outcome::new(records, more)
    }

    /// UnregisterBroker.
    pub fn unregister_broker(&mut self, broker_id: i32) -> Result<Outcome<()>, ControllerError> {
        Ok(Outcome::new(
            brokers::unregister_broker(&self.decider(), broker_id)?,
            (),
        ))
    }

    /// AllocateProducerIds.
    pub fn allocate_producer_ids(
        &mut self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<Outcome<ProducerIdsBlock>, ControllerError> {
        let (records, block) =
            producer_ids::allocate_producer_ids(&self.decider(), broker_id, broker_epoch)?;
        Ok(Outcome::new(records, block))
    }

    /// CreateTopics. A request-level error (POLICY_VIOLATION for too many partitions)
    /// applies to every topic of the request.
    pub fn create_topics(
        &mut self,
        request: &CreateTopicsRequest,
        ids: &mut dyn TopicIdSource,
        validator: &dyn ConfigValidator,
    ) -> Result<Outcome<CreateTopicsResults>, ControllerError> {
        let usable = self.usable_brokers();
        let d = Decider::new(&self.state, &self.config);
        let env = CreateTopicsEnv {
            usable_brokers: &usable,
            random: &mut self.random,
            ids,
            validator,
        };
        let (records, results) =
            topics::create_topics(&d, env, &request.topics, request.validate_only)?;
        Ok(Outcome::new(records, results))
    }

    /// CreatePartitions: a result per topic, in request order. More than
    /// [`topics::MAX_PARTITIONS_PER_BATCH`] new partitions in one request is a request-level
    /// POLICY_VIOLATION, as in Kafka.
    pub fn create_partitions(
        &mut self,
        request: &CreatePartitionsRequest,
    ) -> Result<Outcome<TopicResults>, ControllerError> {
        let additional: i64 = request
            .topics
            .iter()
            .filter_map(|t| {
                let current = self.state.topic_by_name(&t.name)?.partitions.len() as i64;
                (t.count >= 0 && i64::from(t.count) > current).then(|| i64::from(t.count) - current)
            })
            .sum();
        if additional > topics::MAX_PARTITIONS_PER_BATCH {
            return Err(ControllerError::new(
                arus_protocol::ErrorCode::PolicyViolation,
                "Excessively large number of additional partitions per request.",
            ));
        }
        let usable = self.usable_brokers();
        let d = Decider::new(&self.state, &self.config);
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            match topics::create_partitions(&d, &usable, &mut self.random, t) {
                Ok(r) => {
                    records.extend(r);
                    results.push((t.name.clone(), Ok(())));
                }
                Err(e) => results.push((t.name.clone(), Err(e))),
            }
        }
        if request.validate_only {
            records.clear();
        }
        Ok(Outcome::new(records, results))
    }

    /// DeleteTopics (by names for v0–v5, by `topics` for v6+).
    pub fn delete_topics(
        &mut self,
        request: &DeleteTopicsRequest,
    ) -> Outcome<Vec<DeleteTopicResult>> {
        let pairs: Vec<(Option<String>, Uuid)> = request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect();
        let (records, results) =
            topics::delete_topics(&self.decider(), &request.topic_names, &pairs);
        Outcome::new(records, results)
    }

    /// IncrementalAlterConfigs: a result per resource; records only for resources that
    /// succeeded (none with `validate_only`).
    pub fn incremental_alter_configs(
        &mut self,
        request: &IncrementalAlterConfigsRequest,
        validator: &dyn ConfigValidator,
    ) -> Outcome<ConfigResults> {
        let mut records = Vec::new();
        let cx = configs::ConfigContext {
            state: &self.state,
            node_id: self.config.node_id,
            elr_enabled: self.decider().elr_enabled(),
            validator,
        };
        let mut results = Vec::new();
        for r in &request.resources {
            let resource = ConfigResource {
                resource_type: r.resource_type,
                name: r.resource_name.clone(),
            };
            let ops: Result<Vec<(String, ConfigOp)>, ControllerError> = r
                .configs
                .iter()
                .map(|c| {
                    Ok((
                        c.name.clone(),
                        ConfigOp::from_request(c.config_operation, c.value.as_deref())?,
                    ))
                })
                .collect();
            let outcome =
                ops.and_then(|ops| configs::incremental_alter(&cx, &resource, &ops, false));
            match outcome {
                Ok(r) => {
                    records.extend(r);
                    results.push((resource, Ok(())));
                }
                Err(e) => results.push((resource, Err(e))),
            }
        }
        let clear = configs::clear_elr_records(cx.elr_enabled, &records);
        records.extend(clear);
        if request.validate_only {
            records.clear();
        }
        Outcome::new(records, results)
    }

    /// AlterConfigs (legacy: the given set replaces the resource's dynamic configs).
    pub fn alter_configs(
        &mut self,
        request: &AlterConfigsRequest,
        validator: &dyn ConfigValidator,
    ) -> Outcome<ConfigResults> {
        let mut records = Vec::new();
        let cx = configs::ConfigContext {
            state: &self.state,
            node_id: self.config.node_id,
            elr_enabled: self.decider().elr_enabled(),
            validator,
        };
        let mut results = Vec::new();
        for r in &request.resources {
            let resource = ConfigResource {
                resource_type: r.resource_type,
                name: r.resource_name.clone(),
            };
            let map: BTreeMap<String, Option<String>> = r
                .configs
                .iter()
                .map(|c| (c.name.clone(), c.value.clone()))
                .collect();
            let outcome = configs::legacy_alter(&cx, &resource, &map);
            match outcome {
                Ok(r) => {
                    records.extend(r);
                    results.push((resource, Ok(())));
                }
                Err(e) => results.push((resource, Err(e))),
            }
        }
        let clear = configs::clear_elr_records(cx.elr_enabled, &records);
        records.extend(clear);
        if request.validate_only {
            records.clear();
        }
        Outcome::new(records, results)
    }

    /// ElectLeaders: PREFERRED or UNCLEAN, for the named partitions or (null) for all.
    pub fn elect_leaders(
        &mut self,
        request: &ElectLeadersRequest,
    ) -> Result<Outcome<ElectLeadersResults>, ControllerError> {
        let election_type = ElectionType::from_byte(request.election_type)?;
        let d = self.decider();
        let mut records = Vec::new();
        let mut results = Vec::new();
        match &request.topic_partitions {
            None => {
                for (name, id) in &self.state.topic_ids {
                    let mut parts = Vec::new();
                    if let Some(t) = self.state.topics.get(id) {
                        for &pid in t.partitions.keys() {
                            match d.elect_leader(name, pid, election_type) {
                                Ok(r) => {
                                    records.push(MetadataRecord::PartitionChange(r));
                                    parts.push((pid, Ok(())));
                                }
                                // All-partition elections leave out partitions already led
                                // by the desired leader.
                                Err(e) if e.code == arus_protocol::ErrorCode::ElectionNotNeeded => {
                                }
                                Err(e) => parts.push((pid, Err(e))),
                            }
                        }
                    }
                    results.push((name.clone(), parts));
                }
            }
            Some(topics) => {
                for t in topics {
                    let mut parts = Vec::new();
                    for &pid in &t.partitions {
                        match d.elect_leader(&t.topic, pid, election_type) {
                            Ok(r) => {
                                records.push(MetadataRecord::PartitionChange(r));
                                parts.push((pid, Ok(())));
                            }
                            Err(e) => parts.push((pid, Err(e))),
                        }
                    }
                    results.push((t.topic.clone(), parts));
                }
            }
        }
        Ok(Outcome::new(records, results))
    }

    /// AlterPartitionReassignments: per partition, in request order (the records of the
    /// accepted ones form one atomic batch, as Kafka's `ControllerResult.atomicOf`).
    pub fn alter_partition_reassignments(
        &self,
        request: &AlterPartitionReassignmentsRequest,
    ) -> Outcome<ReassignmentResults> {
        let d = self.decider();
        let mut records = Vec::new();
        let mut results = Vec::new();
        for t in &request.topics {
            let mut parts = Vec::new();
            for p in &t.partitions {
                let outcome = d.alter_partition_reassignment(
                    &t.name,
                    p,
                    request.allow_replication_factor_change,
                );
                match outcome {
                    Ok(record) => {
                        records.extend(record);
                        parts.push((p.partition_index, Ok(())));
                    }
                    Err(e) => {
                        tracing::info!(topic = %t.name, partition = p.partition_index, error = %e,
                            "unable to alter partition reassignment");
                        parts.push((p.partition_index, Err(e)));
                    }
                }
            }
            results.push((t.name.clone(), parts));
        }
        Outcome::new(records, results)
    }

    /// ListPartitionReassignments: the reassignments in progress (all of them when `topics`
    /// is null, else those of the named partitions).
    pub fn list_partition_reassignments(
        &self,
        topics: Option<&[ListPartitionReassignmentsTopics]>,
    ) -> Vec<OngoingTopicReassignment> {
        crate::reassignment::list_reassignments(&self.state, topics)
    }

    /// UpdateFeatures at request version `version`. Fails whole, as Kafka does.
    pub fn update_features(
        &mut self,
        request: &UpdateFeaturesRequest,
        version: i16,
    ) -> Result<Outcome<()>, ControllerError> {
        let updates: Vec<(String, i16, UpgradeType)> = request
            .feature_updates
            .iter()
            .map(|u| {
                (
                    u.feature.clone(),
                    u.max_version_level,
                    UpgradeType::from_request(u.upgrade_type, u.allow_downgrade, version),
                )
            })
            .collect();
        let mut records = features::update_features(
            &self.state,
            self.config.node_id,
            &self.config.supported_features,
            &updates,
            request.validate_only,
        )?;
        let enables_elr = updates
            .iter()
            .any(|(n, l, _)| n == features::ELIGIBLE_LEADER_REPLICAS_VERSION && *l > 0);
        if enables_elr && !request.validate_only {
            let mut safety = self.elr_safety_records();
            safety.append(&mut records);
            records = safety;
        }
        Ok(Outcome::new(records, ()))
    }

    /// Kafka 4.4's `maybeGenerateElrSafetyRecords`, written before an UpdateFeatures that
    /// enables ELR: the cluster-level `min.insync.replicas` (the static value) if it is not
    /// set, and the removal of every broker-level one.
    fn elr_safety_records(&self) -> Vec<MetadataRecord> {
        use arus_protocol::metadata::ConfigRecord;
        const KEY: &str = "min.insync.replicas";
        let record = |name: &str, value: Option<String>| {
            MetadataRecord::Config(ConfigRecord {
                resource_type: crate::state::RESOURCE_BROKER,
                resource_name: name.to_owned(),
                name: KEY.to_owned(),
                value,
            })
        };
        let mut out = Vec::new();
        let cluster_has_it = self
            .state
            .resource_configs(crate::state::RESOURCE_BROKER, "")
            .is_some_and(|c| c.contains_key(KEY));
        if !cluster_has_it {
            out.push(record(
                "",
                Some(self.config.default_min_insync_replicas.to_string()),
            ));
        }
        let mut brokers: Vec<(i32, &str)> = self
            .state
            .configs
            .iter()
            .filter(|((t, name), c)| {
                *t == crate::state::RESOURCE_BROKER && !name.is_empty() && c.contains_key(KEY)
            })
            .filter_map(|((_, name), _)| name.parse::<i32>().ok().map(|id| (id, name.as_str())))
            .collect();
        brokers.sort_unstable();
        for (_, name) in brokers {
            out.push(record(name, None));
        }
        out
    }

    /// The records a new cluster's first active controller appends to an empty log (Kafka
    /// 4.4's `ActivationRecordsGenerator.recordsForEmptyLog`): the bootstrap feature levels
    /// (`metadata.version` first, features at level 0 left out) and, with ELR, the
    /// cluster-wide `min.insync.replicas` set to the static value, all in one metadata
    /// transaction ("Bootstrap records") when `metadata.version` supports transactions.
    pub fn bootstrap_records(
        levels: &BTreeMap<String, i16>,
        static_min_insync_replicas: i32,
    ) -> Vec<MetadataRecord> {
        use arus_protocol::metadata::{
            BeginTransactionRecord, ConfigRecord, EndTransactionRecord, FeatureLevelRecord,
        };
        let mv = levels.get(features::METADATA_VERSION).copied().unwrap_or(0);
        let transaction = mv >= 13; // 3.6-IV1: isMetadataTransactionSupported
        let mut out = Vec::new();
        if transaction {
            out.push(MetadataRecord::BeginTransaction(BeginTransactionRecord {
                name: Some("Bootstrap records".to_owned()),
            }));
        }
        let ordered = levels
            .iter()
            .filter(|(n, _)| n.as_str() == features::METADATA_VERSION)
            .chain(
                levels
                    .iter()
                    .filter(|(n, l)| n.as_str() != features::METADATA_VERSION && **l > 0),
            );
        for (name, level) in ordered {
            out.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
            }));
        }
        if levels
            .get(features::ELIGIBLE_LEADER_REPLICAS_VERSION)
            .is_some_and(|l| *l > 0)
        {
            out.push(MetadataRecord::Config(ConfigRecord {
                resource_type: crate::state::RESOURCE_BROKER,
                resource_name: String::new(),
                name: "min.insync.replicas".to_owned(),
                value: Some(static_min_insync_replicas.to_string()),
            }));
        }
        if transaction {
            out.push(MetadataRecord::EndTransaction(
                EndTransactionRecord::default(),
            ));
        }
        out
    }
}
