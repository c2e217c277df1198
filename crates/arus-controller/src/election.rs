//! Leadership and ISR changes for brokers that come and go (Kafka's
//! `ReplicationControlManager.generateLeaderAndIsrUpdates` and its callers), and the
//! ElectLeaders command.

use arus_protocol::ErrorCode;
use arus_protocol::Uuid;
use arus_protocol::metadata::{
    BrokerRegistrationChangeRecord, FenceBrokerRecord, UnfenceBrokerRecord, UnregisterBrokerRecord,
};

use crate::config::ControllerConfig;
use crate::error::ControllerError;
use crate::features::MetadataVersion;
use crate::partition_change::{ChangeContext, Election, PartitionChangeBuilder};
use crate::records::MetadataRecord;
use crate::state::{ClusterState, NO_LEADER, PartitionInfo, RESOURCE_BROKER, RESOURCE_TOPIC};

/// Which partitions a broker event looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Partitions whose ISR holds this broker (`partitionsWithBrokerInIsr`).
    InIsr(i32),
    /// Partitions whose ELR holds this broker (`partitionsWithBrokerInElr`).
    InElr(i32),
    /// Partitions without a leader (`partitionsWithNoLeader`).
    NoLeader,
}

/// What one partition change aims at (the optional parts of Kafka's
/// `PartitionChangeBuilder` setters).
pub struct ChangeSpec<'x> {
    /// Who may lead (Kafka's `LeaderAcceptor`).
    pub acceptable: &'x dyn Fn(i32) -> bool,
    pub election: Election,
    /// The ISR to move to (unchanged when `None`).
    pub target_isr: Option<Vec<i32>>,
    /// The replica list to move to (unchanged when `None`; a reassignment's merged list).
    pub target_replicas: Option<Vec<i32>>,
    /// A reassignment's adding replicas (unchanged when `None`).
    pub target_adding: Option<Vec<i32>>,
    /// A reassignment's removing replicas (unchanged when `None`).
    pub target_removing: Option<Vec<i32>>,
    /// A broker that shut down uncleanly: kept out of the new ELR.
    pub unclean_shutdown: Option<i32>,
    /// The leader recovery state to move to (AlterPartition).
    pub target_recovery: Option<i8>,
}

/// Read-only helpers over the state and the static config.
pub struct Decider<'a> {
    pub state: &'a ClusterState,
    pub config: &'a ControllerConfig,
}

impl<'a> Decider<'a> {
    pub fn new(state: &'a ClusterState, config: &'a ControllerConfig) -> Self {
        Decider { state, config }
    }

    /// The finalized `metadata.version`.
    pub fn metadata_version(&self) -> MetadataVersion {
        MetadataVersion(self.state.feature_level(crate::features::METADATA_VERSION))
    }

    /// Kafka's `isElrFeatureEnabled`.
    pub fn elr_enabled(&self) -> bool {
        self.state
            .feature_level(crate::features::ELIGIBLE_LEADER_REPLICAS_VERSION)
            >= 1
            && self.metadata_version().is_elr_supported()
    }

    /// A topic config as Kafka's `resolveEffectiveTopicConfig` resolves it: the topic's
    /// override, else this controller node's dynamic config, else the cluster-wide dynamic
    /// default (`None` means the static value).
    fn topic_config(&self, topic: &str, name: &str) -> Option<String> {
        let node = self.config.node_id.to_string();
        self.state
            .resource_configs(RESOURCE_TOPIC, topic)
            .and_then(|c| c.get(name))
            .or_else(|| {
                self.state
                    .resource_configs(RESOURCE_BROKER, &node)
                    .and_then(|c| c.get(name))
            })
            .or_else(|| {
                self.state
                    .resource_configs(RESOURCE_BROKER, "")
                    .and_then(|c| c.get(name))
            })
            .cloned()
    }

    /// Kafka's `getTopicEffectiveMinIsr`.
    pub fn min_isr(&self, topic: &str) -> i32 {
        self.topic_config(topic, "min.insync.replicas")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.config.default_min_insync_replicas)
    }

    /// Kafka's `uncleanLeaderElectionEnabledForTopic`.
    pub fn unclean_enabled(&self, topic: &str) -> bool {
        match self.topic_config(topic, "unclean.leader.election.enable") {
            Some(v) => v.trim().eq_ignore_ascii_case("true"),
            None => self.config.unclean_leader_election_enable,
        }
    }

    fn default_dir(&self, broker: i32) -> Uuid {
        self.state
            .brokers
            .get(&broker)
            .map(|b| b.default_dir())
            .unwrap_or(crate::state::DIR_UNASSIGNED)
    }

    /// Builds one partition's change with Kafka's defaults for this cluster.
    pub fn change(
        &self,
        topic_name: &str,
        topic_id: Uuid,
        partition_id: i32,
        partition: &PartitionInfo,
        spec: ChangeSpec<'_>,
    ) -> Option<arus_protocol::metadata::PartitionChangeRecord> {
        let mv = self.metadata_version();
        let default_dir = |b: i32| self.default_dir(b);
        let ctx = ChangeContext {
            is_acceptable_leader: spec.acceptable,
            min_isr: self.min_isr(topic_name),
            elr_enabled: self.elr_enabled(),
            bump_epoch_on_isr_shrink: mv.is_leader_epoch_bump_required_on_isr_shrink(),
            directory_assignment: mv.is_directory_assignment_supported(),
            default_dir: &default_dir,
        };
        let mut builder = PartitionChangeBuilder::new(partition, topic_id, partition_id, ctx)
            .election(spec.election);
        if let Some(isr) = spec.target_isr {
            builder = builder.target_isr(isr);
        }
        if let Some(replicas) = spec.target_replicas {
            builder = builder.target_replicas(replicas);
        }
        if let Some(adding) = spec.target_adding {
            builder = builder.target_adding(adding);
        }
        if let Some(removing) = spec.target_removing {
            builder = builder.target_removing(removing);
        }
        if let Some(b) = spec.unclean_shutdown {
            builder = builder.unclean_shutdown_replicas(vec![b]);
        }
        if let Some(state) = spec.target_recovery {
            builder = builder.target_leader_recovery_state(state);
        }
        builder.build()
    }

    /// Kafka's `generateLeaderAndIsrUpdates`: for every partition in `scope`, drop
    /// `to_remove` and `unclean_shutdown` from the ISR and elect a leader among acceptable
    /// brokers (`to_add` counts as acceptable even while still fenced).
    fn leader_and_isr_updates(
        &self,
        context: &str,
        to_remove: i32,
        to_add: i32,
        unclean_shutdown: i32,
        scope: Scope,
        out: &mut Vec<MetadataRecord>,
    ) {
        let before = out.len();
        let acceptable = |r: i32| {
            r != to_remove && r != unclean_shutdown && (r == to_add || self.state.is_active(r))
        };
        for topic in self.state.topics.values() {
            for (&pid, p) in &topic.partitions {
                let in_scope = match scope {
                    Scope::InIsr(b) => p.isr.contains(&b),
                    Scope::InElr(b) => p.elr.contains(&b),
                    Scope::NoLeader => p.leader == NO_LEADER,
                };
                if !in_scope {
                    continue;
                }
                let election = if self.unclean_enabled(&topic.name) {
                    Election::Unclean
                } else {
                    Election::Online
                };
                let target_isr: Vec<i32> = p
                    .isr
                    .iter()
                    .copied()
                    .filter(|&r| r != to_remove && r != unclean_shutdown)
                    .collect();
                let spec = ChangeSpec {
                    acceptable: &acceptable,
                    election,
                    target_isr: Some(target_isr),
                    target_replicas: None,
                    target_adding: None,
                    target_removing: None,
                    unclean_shutdown: (unclean_shutdown != NO_LEADER).then_some(unclean_shutdown),
                    target_recovery: None,
                };
                if let Some(rec) = self.change(&topic.name, topic.id, pid, p, spec) {
                    out.push(MetadataRecord::PartitionChange(rec));
                }
            }
        }
        if out.len() != before {
            tracing::info!("{context}: changing {} partition(s)", out.len() - before);
        }
    }

    /// Kafka's `handleBrokerFenced`: leadership and ISR membership move away, then the
    /// broker is marked fenced.
    pub fn broker_fenced(&self, broker: i32, out: &mut Vec<MetadataRecord>) {
        let Some(reg) = self.state.brokers.get(&broker) else {
            return;
        };
        self.leader_and_isr_updates(
            "handleBrokerFenced",
            broker,
            NO_LEADER,
            NO_LEADER,
            Scope::InIsr(broker),
            out,
        );
        if self
            .metadata_version()
            .is_broker_registration_change_record_supported()
        {
            out.push(MetadataRecord::BrokerRegistrationChange(
                BrokerRegistrationChangeRecord {
                    broker_id: broker,
                    broker_epoch: reg.epoch,
                    fenced: 1,
                    ..BrokerRegistrationChangeRecord::default()
                },
            ));
        } else {
            out.push(MetadataRecord::FenceBroker(FenceBrokerRecord {
                id: broker,
                epoch: reg.epoch,
            }));
        }
    }

    /// Kafka's `handleBrokerUnfenced`: the broker is unfenced, then leaderless partitions
    /// that can take it as leader do.
    pub fn broker_unfenced(&self, broker: i32, epoch: i64, out: &mut Vec<MetadataRecord>) {
        if self
            .metadata_version()
            .is_broker_registration_change_record_supported()
        {
            out.push(MetadataRecord::BrokerRegistrationChange(
                BrokerRegistrationChangeRecord {
                    broker_id: broker,
                    broker_epoch: epoch,
                    fenced: -1,
                    ..BrokerRegistrationChangeRecord::default()
                },
            ));
        } else {
            out.push(MetadataRecord::UnfenceBroker(UnfenceBrokerRecord {
                id: broker,
                epoch,
            }));
        }
        self.leader_and_isr_updates(
            "handleBrokerUnfenced",
            NO_LEADER,
            broker,
            NO_LEADER,
            Scope::NoLeader,
            out,
        );
    }

    /// Kafka's `handleBrokerInControlledShutdown`.
    pub fn broker_in_controlled_shutdown(
        &self,
        broker: i32,
        epoch: i64,
        out: &mut Vec<MetadataRecord>,
    ) {
        let already = self
            .state
            .brokers
            .get(&broker)
            .is_some_and(|b| b.in_controlled_shutdown);
        if self
            .metadata_version()
            .is_in_controlled_shutdown_state_supported()
            && !already
        {
            out.push(MetadataRecord::BrokerRegistrationChange(
                BrokerRegistrationChangeRecord {
                    broker_id: broker,
                    broker_epoch: epoch,
                    in_controlled_shutdown: 1,
                    ..BrokerRegistrationChangeRecord::default()
                },
            ));
        }
        self.leader_and_isr_updates(
            &format!("enterControlledShutdown[{broker}]"),
            broker,
            NO_LEADER,
            NO_LEADER,
            Scope::InIsr(broker),
            out,
        );
    }

    /// Kafka 4.4's `handleBrokerShutdown`, run when a new incarnation of a broker registers:
    /// with ELR, an unclean shutdown takes the broker out of every ISR and ELR; otherwise it
    /// leaves every ISR and leadership.
    pub fn broker_shutdown(&self, broker: i32, clean: bool, out: &mut Vec<MetadataRecord>) {
        if self.elr_enabled() && !clean {
            self.leader_and_isr_updates(
                "handleBrokerUncleanShutdown",
                NO_LEADER,
                NO_LEADER,
                broker,
                Scope::InIsr(broker),
                out,
            );
            self.leader_and_isr_updates(
                "handleBrokerUncleanShutdown",
                NO_LEADER,
                NO_LEADER,
                broker,
                Scope::InElr(broker),
                out,
            );
        } else {
            self.leader_and_isr_updates(
                "handleBrokerShutdown",
                broker,
                NO_LEADER,
                NO_LEADER,
                Scope::InIsr(broker),
                out,
            );
        }
    }

    /// Kafka's `handleBrokerUnregistered`.
    pub fn broker_unregistered(&self, broker: i32, epoch: i64, out: &mut Vec<MetadataRecord>) {
        self.leader_and_isr_updates(
            "handleBrokerUnregistered",
            broker,
            NO_LEADER,
            NO_LEADER,
            Scope::InIsr(broker),
            out,
        );
        self.leader_and_isr_updates(
            "handleBrokerUnregistered",
            broker,
            NO_LEADER,
            NO_LEADER,
            Scope::InElr(broker),
            out,
        );
        out.push(MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: broker,
            broker_epoch: epoch,
        }));
    }

    /// Whether `broker` leads any partition (`BrokersToIsrs.hasLeaderships`).
    pub fn has_leaderships(&self, broker: i32) -> bool {
        self.state
            .topics
            .values()
            .any(|t| t.partitions.values().any(|p| p.leader == broker))
    }

    /// Kafka's `electLeader` for one partition: `Ok(Some(record))` when leadership moves,
    /// an error with Kafka's code otherwise.
    pub fn elect_leader(
        &self,
        topic: &str,
        partition_id: i32,
        election_type: ElectionType,
    ) -> Result<arus_protocol::metadata::PartitionChangeRecord, ControllerError> {
        let Some(info) = self.state.topic_by_name(topic) else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("No such topic as {topic}"),
            ));
        };
        let Some(p) = info.partitions.get(&partition_id) else {
            return Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("No such partition as {topic}-{partition_id}"),
            ));
        };
        let not_needed = match election_type {
            ElectionType::Preferred => p.leader == p.preferred_replica(),
            ElectionType::Unclean => p.leader != NO_LEADER,
        };
        if not_needed {
            return Err(ControllerError::code_only(ErrorCode::ElectionNotNeeded));
        }
        let election = match election_type {
            ElectionType::Preferred => Election::Preferred,
            ElectionType::Unclean => Election::Unclean,
        };
        let acceptable = |r: i32| self.state.is_active(r);
        let spec = ChangeSpec {
            acceptable: &acceptable,
            election,
            target_isr: None,
            target_replicas: None,
            target_adding: None,
            target_removing: None,
            unclean_shutdown: None,
            target_recovery: None,
        };
        self.change(topic, info.id, partition_id, p, spec)
            .ok_or_else(|| {
                ControllerError::code_only(match election_type {
                    ElectionType::Preferred => ErrorCode::PreferredLeaderNotAvailable,
                    ElectionType::Unclean => ErrorCode::EligibleLeadersNotAvailable,
                })
            })
    }
}

/// Kafka's `MAX_ELECTIONS_PER_IMBALANCE`: elections per periodic run.
pub const MAX_ELECTIONS_PER_IMBALANCE: usize = 1_000;

impl Decider<'_> {
    /// Kafka's `maybeBalancePartitionLeaders` (the `auto.leader.rebalance.enable` task):
    /// preferred elections for partitions not led by their first replica, at most
    /// [`MAX_ELECTIONS_PER_IMBALANCE`]. The flag says whether more may remain.
    pub fn balance_partition_leaders(&self) -> (Vec<MetadataRecord>, bool) {
        let mut out = Vec::new();
        'topics: for topic in self.state.topics.values() {
            for (&pid, p) in &topic.partitions {
                if out.len() >= MAX_ELECTIONS_PER_IMBALANCE {
                    break 'topics;
                }
                if p.leader == p.preferred_replica() {
                    continue;
                }
                let acceptable = |r: i32| self.state.is_active(r);
                let spec = ChangeSpec {
                    acceptable: &acceptable,
                    election: Election::Preferred,
                    target_isr: None,
                    target_replicas: None,
                    target_adding: None,
                    target_removing: None,
                    unclean_shutdown: None,
                    target_recovery: None,
                };
                if let Some(r) = self.change(&topic.name, topic.id, pid, p, spec) {
                    out.push(MetadataRecord::PartitionChange(r));
                }
            }
        }
        let more = out.len() >= MAX_ELECTIONS_PER_IMBALANCE;
        (out, more)
    }

    /// Kafka's `maybeElectUncleanLeaders`: for leaderless partitions of topics with
    /// `unclean.leader.election.enable=true`, an unclean election.
    pub fn elect_unclean_leaders(&self) -> (Vec<MetadataRecord>, bool) {
        let mut out = Vec::new();
        'topics: for topic in self.state.topics.values() {
            if !self.unclean_enabled(&topic.name) {
                continue;
            }
            for &pid in topic.partitions.keys() {
                if out.len() >= MAX_ELECTIONS_PER_IMBALANCE {
                    break 'topics;
                }
                if topic.partitions[&pid].leader != NO_LEADER {
                    continue;
                }
                match self.elect_leader(&topic.name, pid, ElectionType::Unclean) {
                    Ok(r) => {
                        tracing::error!(topic = %topic.name, partition = pid, "triggering unclean leader election for offline partition");
                        out.push(MetadataRecord::PartitionChange(r));
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic.name, partition = pid, error = %e, "cannot trigger unclean leader election for offline partition")
                    }
                }
            }
        }
        let more = out.len() >= MAX_ELECTIONS_PER_IMBALANCE;
        (out, more)
    }
}

/// ElectLeaders' election type (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    /// From the request's `election_type` byte.
    pub fn from_byte(b: i8) -> Result<ElectionType, ControllerError> {
        match b {
            0 => Ok(ElectionType::Preferred),
            1 => Ok(ElectionType::Unclean),
            other => Err(ControllerError::new(
                ErrorCode::InvalidRequest,
                format!("Unknown election type {other}"),
            )),
        }
    }
}
