//! Registered brokers and controllers (Kafka's `ClusterImage`, `BrokerRegistration`,
//! `ControllerRegistration`).

use std::collections::BTreeMap;
use std::sync::Arc;

use arus_protocol::Uuid;
use arus_protocol::metadata::register_broker_record::{BrokerEndpoint, BrokerFeature};
use arus_protocol::metadata::register_controller_record::{ControllerEndpoint, ControllerFeature};
use arus_protocol::metadata::{RegisterBrokerRecord, RegisterControllerRecord};

use super::topics::{LOST_DIRECTORY, MIGRATING_DIRECTORY, UNASSIGNED_DIRECTORY};

/// A listener of a node: name, host, port and security protocol (Kafka's
/// `SecurityProtocol` id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A supported feature range `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

/// A broker's registration as the controller recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    /// Listeners by name (Kafka keeps a map: a later endpoint of the same name wins).
    pub listeners: BTreeMap<String, Endpoint>,
    pub supported_features: BTreeMap<String, VersionRange>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub is_migrating_zk_broker: bool,
    /// Online log directories (KIP-858).
    pub directories: Vec<Uuid>,
    /// Cordoned log directories; `None` until the broker reports them.
    pub cordoned_directories: Option<Vec<Uuid>>,
}

impl BrokerRegistration {
    /// Kafka's `BrokerRegistration.fromRecord`.
    pub fn from_record(r: &RegisterBrokerRecord) -> BrokerRegistration {
        BrokerRegistration {
            id: r.broker_id,
            epoch: r.broker_epoch,
            incarnation_id: r.incarnation_id,
            listeners: r
                .end_points
                .iter()
                .map(|e| {
                    let endpoint = Endpoint {
                        name: e.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                        security_protocol: e.security_protocol,
                    };
                    (e.name.clone(), endpoint)
                })
                .collect(),
            supported_features: r
                .features
                .iter()
                .map(|f| {
                    let range = VersionRange {
                        min: f.min_supported_version,
                        max: f.max_supported_version,
                    };
                    (f.name.clone(), range)
                })
                .collect(),
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
            is_migrating_zk_broker: r.is_migrating_zk_broker,
            directories: r.log_dirs.clone(),
            cordoned_directories: r.cordoned_log_dirs.clone(),
        }
    }

    /// The record that recreates this registration (Kafka's `toRecord`).
    pub fn to_record(&self) -> RegisterBrokerRecord {
        RegisterBrokerRecord {
            broker_id: self.id,
            is_migrating_zk_broker: self.is_migrating_zk_broker,
            incarnation_id: self.incarnation_id,
            broker_epoch: self.epoch,
            end_points: self
                .listeners
                .values()
                .map(|e| BrokerEndpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            features: self
                .supported_features
                .iter()
                .map(|(name, r)| BrokerFeature {
                    name: name.clone(),
                    min_supported_version: r.min,
                    max_supported_version: r.max,
                })
                .collect(),
            rack: self.rack.clone(),
            fenced: self.fenced,
            in_controlled_shutdown: self.in_controlled_shutdown,
            log_dirs: self.directories.clone(),
            cordoned_log_dirs: self.cordoned_directories.clone(),
        }
    }

    /// The endpoint of a listener by name.
    pub fn listener(&self, name: &str) -> Option<&Endpoint> {
        self.listeners.get(name)
    }

    /// Kafka's `hasOnlineDir` (`DirectoryId.isOnline`): an unassigned or migrating
    /// directory counts as online, a lost one does not; otherwise it must be one of the
    /// broker's online directories, unless the broker reported none.
    pub fn has_online_dir(&self, dir: Uuid) -> bool {
        if dir == UNASSIGNED_DIRECTORY || dir == MIGRATING_DIRECTORY {
            return true;
        }
        if dir == LOST_DIRECTORY {
            return false;
        }
        self.directories.is_empty() || self.directories.contains(&dir)
    }
}

/// A controller's registration (KIP-919).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerRegistration {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub zk_migration_ready: bool,
    pub listeners: BTreeMap<String, Endpoint>,
    pub supported_features: BTreeMap<String, VersionRange>,
}

impl ControllerRegistration {
    pub fn from_record(r: &RegisterControllerRecord) -> ControllerRegistration {
        ControllerRegistration {
            id: r.controller_id,
            incarnation_id: r.incarnation_id,
            zk_migration_ready: r.zk_migration_ready,
            listeners: r
                .end_points
                .iter()
                .map(|e| {
                    let endpoint = Endpoint {
                        name: e.name.clone(),
                        host: e.host.clone(),
                        port: e.port,
                        security_protocol: e.security_protocol,
                    };
                    (e.name.clone(), endpoint)
                })
                .collect(),
            supported_features: r
                .features
                .iter()
                .map(|f| {
                    let range = VersionRange {
                        min: f.min_supported_version,
                        max: f.max_supported_version,
                    };
                    (f.name.clone(), range)
                })
                .collect(),
        }
    }

    pub fn to_record(&self) -> RegisterControllerRecord {
        RegisterControllerRecord {
            controller_id: self.id,
            incarnation_id: self.incarnation_id,
            zk_migration_ready: self.zk_migration_ready,
            end_points: self
                .listeners
                .values()
                .map(|e| ControllerEndpoint {
                    name: e.name.clone(),
                    host: e.host.clone(),
                    port: e.port,
                    security_protocol: e.security_protocol,
                })
                .collect(),
            features: self
                .supported_features
                .iter()
                .map(|(name, r)| ControllerFeature {
                    name: name.clone(),
                    min_supported_version: r.min,
                    max_supported_version: r.max,
                })
                .collect(),
        }
    }
}

/// Brokers and controllers by id, each map behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    pub(crate) brokers: Arc<BTreeMap<i32, Arc<BrokerRegistration>>>,
    pub(crate) controllers: Arc<BTreeMap<i32, Arc<ControllerRegistration>>>,
}

impl ClusterImage {
    pub fn broker(&self, id: i32) -> Option<&Arc<BrokerRegistration>> {
        self.brokers.get(&id)
    }

    /// Every registered broker, fenced or not, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &Arc<BrokerRegistration>> {
        self.brokers.values()
    }

    /// Unfenced brokers: those that may lead partitions and serve clients.
    pub fn live_brokers(&self) -> impl Iterator<Item = &Arc<BrokerRegistration>> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn controller(&self, id: i32) -> Option<&Arc<ControllerRegistration>> {
        self.controllers.get(&id)
    }

    pub fn controllers(&self) -> impl Iterator<Item = &Arc<ControllerRegistration>> {
        self.controllers.values()
    }
}
