//! Scenario tests over the [`Controller`] facade: a harness that plays the driver (appends
//! each outcome's records at the next offset and replays them) with injected time.

mod alter_partition;
mod brokers;
mod election;
mod image_agreement;
mod partition_change_kafka;
mod placement_kafka;
mod property;
mod reassignment;
mod scenario_kafka;
mod topics;

use std::collections::BTreeMap;

use arus_protocol::Uuid;
use arus_protocol::messages::broker_registration_request::{Feature, Listener};
use arus_protocol::messages::create_topics_request::CreatableTopic;
use arus_protocol::messages::{
    BrokerHeartbeatRequest, BrokerRegistrationRequest, CreateTopicsRequest,
};

use crate::features::{
    ELIGIBLE_LEADER_REPLICAS_VERSION, LATEST_METADATA_VERSION, METADATA_VERSION,
};
use crate::*;

pub const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

/// Plays the controller's driver.
pub struct Harness {
    pub c: Controller,
    pub next_offset: i64,
    pub now: i64,
    pub ids: SeededTopicIds,
    pub epochs: BTreeMap<i32, i64>,
    pub incarnations: BTreeMap<i32, u8>,
    /// The same records replayed by `arus-metadata`, as every node will: the controller's
    /// state must agree with it.
    pub image: arus_metadata::MetadataImage,
}

pub fn dir_of(broker: i32) -> Uuid {
    let mut b = [0xAAu8; 16];
    b[..4].copy_from_slice(&broker.to_be_bytes());
    Uuid(b)
}

fn incarnation_of(broker: i32, generation: u8) -> Uuid {
    let mut b = [0x11u8; 16];
    b[..4].copy_from_slice(&broker.to_be_bytes());
    b[15] = generation;
    Uuid(b)
}

impl Harness {
    /// A controller bootstrapped with Kafka 4.4's default finalized features; `elr`
    /// chooses `eligible.leader.replicas.version` (1 is Kafka 4.4's default).
    pub fn new(elr: bool) -> Self {
        let mut c = Controller::new(ControllerConfig::new(CLUSTER_ID, 3000), 42);
        let mut levels = BTreeMap::new();
        levels.insert(METADATA_VERSION.to_owned(), LATEST_METADATA_VERSION);
        levels.insert(ELIGIBLE_LEADER_REPLICAS_VERSION.to_owned(), i16::from(elr));
        levels.insert("group.version".to_owned(), 1);
        levels.insert("transaction.version".to_owned(), 2);
        let records = Controller::bootstrap_records(&levels, 1);
        c.replay_batch(&records, 0).unwrap();
        let image = arus_metadata::MetadataImage::empty(CLUSTER_ID)
            .with_records(
                &records,
                arus_metadata::MetadataProvenance::new(records.len() as i64 - 1, 1),
            )
            .unwrap();
        Harness {
            image,
            c,
            next_offset: records.len() as i64,
            now: 1_000,
            ids: SeededTopicIds::new(7),
            epochs: BTreeMap::new(),
            incarnations: BTreeMap::new(),
        }
    }

    /// Appends and replays a batch, returning its base offset.
    pub fn apply(&mut self, records: &[MetadataRecord]) -> i64 {
        let base = self.next_offset;
        self.c.replay_batch(records, base).unwrap();
        self.next_offset += records.len() as i64;
        if !records.is_empty() {
            self.image = self
                .image
                .with_records(
                    records,
                    arus_metadata::MetadataProvenance::new(self.next_offset - 1, 1),
                )
                .unwrap_or_else(|e| {
                    panic!("arus-metadata refused the controller's batch {records:?}: {e}")
                });
        }
        base
    }

    pub fn registration(
        &self,
        id: i32,
        rack: Option<&str>,
        generation: u8,
    ) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            broker_id: id,
            cluster_id: CLUSTER_ID.to_owned(),
            incarnation_id: incarnation_of(id, generation),
            listeners: vec![Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092 + id as u16,
                security_protocol: 0,
            }],
            features: crate::features::kafka_44_supported_features()
                .into_iter()
                .map(|(name, (min, max))| Feature {
                    name,
                    min_supported_version: min,
                    max_supported_version: max,
                })
                .collect(),
            rack: rack.map(str::to_owned),
            log_dirs: vec![dir_of(id)],
            previous_broker_epoch: self.epochs.get(&id).copied().unwrap_or(-1),
            ..BrokerRegistrationRequest::default()
        }
    }

    /// Registers broker `id` (a new incarnation each call) and returns its epoch.
    pub fn register(&mut self, id: i32, rack: Option<&str>) -> Result<i64, ControllerError> {
        let generation = self.incarnations.get(&id).map_or(0, |g| g + 1);
        let mut req = self.registration(id, rack, generation);
        // A crashed broker does not know its previous epoch.
        req.previous_broker_epoch = -1;
        let out = self.c.register_broker(&req, self.next_offset, self.now)?;
        self.apply(&out.records);
        self.incarnations.insert(id, generation);
        self.epochs.insert(id, out.response);
        Ok(out.response)
    }

    pub fn heartbeat_req(
        &self,
        id: i32,
        want_fence: bool,
        want_shut_down: bool,
    ) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest {
            broker_id: id,
            broker_epoch: self.epochs[&id],
            current_metadata_offset: self.next_offset - 1,
            want_fence,
            want_shut_down,
            ..BrokerHeartbeatRequest::default()
        }
    }

    /// A caught-up heartbeat; applies its records.
    pub fn heartbeat(&mut self, id: i32, want_shut_down: bool) -> HeartbeatReply {
        let req = self.heartbeat_req(id, false, want_shut_down);
        let out = self
            .c
            .broker_heartbeat(&req, self.next_offset, self.now)
            .unwrap();
        self.apply(&out.records);
        out.response
    }

    /// Registers and unfences brokers with the given racks (ids 0..).
    pub fn brokers(&mut self, racks: &[Option<&str>]) {
        for (id, rack) in racks.iter().enumerate() {
            self.register(id as i32, *rack).unwrap();
        }
        for id in 0..racks.len() as i32 {
            assert!(!self.heartbeat(id, false).is_fenced);
        }
    }

    /// Advances time, heartbeating `alive` brokers every second, applying `tick`s.
    pub fn advance(&mut self, ms: i64, alive: &[i32]) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 1_000).min(end);
            for &id in alive {
                self.heartbeat(id, false);
            }
            loop {
                let recs = self.c.tick(self.now);
                if recs.is_empty() {
                    break;
                }
                self.apply(&recs);
            }
        }
    }

    pub fn create(
        &mut self,
        name: &str,
        partitions: i32,
        rf: i16,
    ) -> Result<CreatedTopic, ControllerError> {
        let req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: rf,
                ..CreatableTopic::default()
            }],
            ..CreateTopicsRequest::default()
        };
        let out = self
            .c
            .create_topics(&req, &mut self.ids, &AcceptAllConfigs)?;
        self.apply(&out.records);
        out.response.into_iter().next().unwrap().1
    }

    pub fn partition(&self, topic: &str, p: i32) -> PartitionInfo {
        self.c.state().topic_by_name(topic).unwrap().partitions[&p].clone()
    }

    /// The invariants every state must keep, and agreement with `arus-metadata`'s image.
    pub fn check_invariants(&self) {
        image_agreement::assert_agrees(self.c.state(), &self.image);
        let s = self.c.state();
        for t in s.topics.values() {
            for (pid, p) in &t.partitions {
                if p.leader >= 0 {
                    let b = &s.brokers[&p.leader];
                    assert!(
                        !b.fenced,
                        "{}-{pid}: fenced broker {} leads",
                        t.name, p.leader
                    );
                    assert!(
                        p.isr.contains(&p.leader),
                        "{}-{pid}: leader {} outside ISR {:?}",
                        t.name,
                        p.leader,
                        p.isr
                    );
                }
                for r in &p.isr {
                    assert!(
                        p.replicas.contains(r),
                        "{}-{pid}: ISR {:?} outside replicas",
                        t.name,
                        p.isr
                    );
                }
            }
        }
    }
}
