//! [`NodeConfig`]: who this node is and how it reaches the others, from Kafka's keys.
//!
//! Two shapes, both the same code afterwards:
//!
//! - **An explicit KRaft node**: `process.roles` is set. Everything is validated as Kafka's
//!   `KafkaConfig.validateValues` does, with its messages: `node.id` is required, the voters
//!   (`controller.quorum.voters`) or the bootstrap controllers
//!   (`controller.quorum.bootstrap.servers`) must be given, controller listeners must appear
//!   in `listeners` (controller role) or must not (broker only), and so on. Its directories
//!   must have been formatted (`arus storage format`), as Kafka 4 requires.
//! - **The implicit one-node cluster**: no `process.roles`. `arus serve` with no
//!   configuration is a cluster of one node that is both broker and controller and the only
//!   voter ([`Quorum::Implicit`]). Its controller runs in process, so it opens no
//!   controller listener (none is needed to reach itself, and an extra port would only
//!   surprise whoever runs `arus serve --listeners …`); its directories are formatted on
//!   first start with a random cluster id. `node.id` defaults to 1.
//!
//! Security protocols other than PLAINTEXT are parsed (so that Kafka's own errors come
//! first) and then refused: Arus does not implement TLS or SASL yet.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::listeners::{self, Endpoint, ListenerError, SecurityProtocol};
use crate::quorum::{self, HostPort, QuorumError, Voter};

/// Arus's default `listeners` (Kafka's is `PLAINTEXT://:9092`): a local broker.
pub const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";
/// Arus's default `log.dirs` (Kafka's is `/tmp/kraft-combined-logs`).
pub const DEFAULT_LOG_DIRS: &str = "./arus-data";
/// Kafka's default `listener.security.protocol.map`.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";
/// The node id of the implicit one-node cluster.
pub const IMPLICIT_NODE_ID: i32 = 1;

/// Kafka's `ProcessRole`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProcessRole {
    Broker,
    Controller,
}

impl ProcessRole {
    pub fn name(self) -> &'static str {
        match self {
            ProcessRole::Broker => "broker",
            ProcessRole::Controller => "controller",
        }
    }
}

/// How this node finds the controller quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Quorum {
    /// `controller.quorum.voters`: a static voter set (kraft.version 0).
    Static(Vec<Voter>),
    /// `controller.quorum.bootstrap.servers`: a dynamic quorum (KIP-853); the voters are in
    /// the metadata log, first written by `storage format --standalone` or
    /// `--initial-controllers`.
    Bootstrap(Vec<HostPort>),
    /// No `process.roles`: this node alone, in process.
    Implicit,
}

/// The liveness and election timeouts (all milliseconds), Kafka's keys and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `broker.heartbeat.interval.ms` (2000).
    pub broker_heartbeat_interval_ms: i64,
    /// `broker.session.timeout.ms` (9000).
    pub broker_session_timeout_ms: i64,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: i64,
    /// `controller.quorum.election.backoff.max.ms` (1000).
    pub election_backoff_max_ms: i64,
    /// `controller.quorum.fetch.timeout.ms` (2000).
    pub fetch_timeout_ms: i64,
    /// `controller.quorum.request.timeout.ms` (2000).
    pub request_timeout_ms: i64,
    /// `controller.quorum.retry.backoff.ms` (20).
    pub retry_backoff_ms: i64,
}

/// Where the metadata log lives and how it is bounded, Kafka's keys and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataLogConfig {
    /// `metadata.log.dir`, by default the first of `log.dirs`.
    pub dir: PathBuf,
    /// `metadata.log.segment.bytes` (1 GiB, at least 8 MiB).
    pub segment_bytes: i64,
    /// `metadata.log.segment.ms` (7 days).
    pub segment_ms: i64,
    /// `metadata.max.retention.bytes` (100 MiB).
    pub max_retention_bytes: i64,
    /// `metadata.max.retention.ms` (7 days).
    pub max_retention_ms: i64,
    /// `metadata.log.max.record.bytes.between.snapshots` (20 MiB).
    pub max_record_bytes_between_snapshots: i64,
    /// `metadata.log.max.snapshot.interval.ms` (1 hour).
    pub max_snapshot_interval_ms: i64,
}

/// The node's identity, roles, listeners and quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// `node.id` (or its deprecated synonym `broker.id`).
    pub node_id: i32,
    /// `process.roles`, sorted (broker before controller), never empty.
    pub roles: Vec<ProcessRole>,
    /// Every listener to bind, broker and controller ones, in `listeners` order.
    pub listeners: Vec<Endpoint>,
    /// The broker listeners as advertised to clients and other brokers (Kafka's
    /// `effectiveAdvertisedBrokerListeners`): `advertised.listeners`, else `listeners`,
    /// without the controller listeners. A wildcard host or port 0 is resolved by the
    /// server once it has bound (see `arus_broker::BrokerConfig::advertised`).
    pub advertised_listeners: Vec<Endpoint>,
    /// `controller.listener.names`, normalised (upper case). Empty in the implicit mode.
    pub controller_listener_names: Vec<String>,
    /// `inter.broker.listener.name`, else the listener of `security.inter.broker.protocol`.
    pub inter_broker_listener_name: String,
    /// The effective `listener.security.protocol.map`.
    pub security_protocols: BTreeMap<String, SecurityProtocol>,
    pub quorum: Quorum,
    /// `broker.rack`.
    pub rack: Option<String>,
    pub timeouts: Timeouts,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    pub metadata_log: MetadataLogConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeConfigError {
    /// Kafka's `ConfigException(name, value, message)`.
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("Missing required configuration \"{0}\" which has no default value.")]
    Missing(String),
    /// Kafka's `ConfigException(message)`.
    #[error("{0}")]
    Rule(String),
    /// Kafka's Scala `require`, which throws `IllegalArgumentException`.
    #[error("requirement failed: {0}")]
    Requirement(String),
    #[error(transparent)]
    Listener(#[from] ListenerError),
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    #[error(
        "listener {listener} uses security protocol {protocol}: Arus supports only PLAINTEXT listeners so far (TLS and SASL are not implemented)"
    )]
    UnsupportedProtocol {
        listener: String,
        protocol: SecurityProtocol,
    },
}

/// Reads Kafka's typed values from the explicit properties.
struct Props<'a>(&'a BTreeMap<String, String>);

impl Props<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn number(
        &self,
        key: &str,
        default: i64,
        kind: &str,
        min: i64,
    ) -> Result<i64, NodeConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let max = if kind == "INT" {
            i64::from(i32::MAX)
        } else {
            i64::MAX
        };
        let n: i64 = v
            .parse()
            .ok()
            .filter(|n| (i64::from(i32::MIN)..=max).contains(n) || kind == "LONG")
            .ok_or_else(|| NodeConfigError::Invalid {
                key: key.into(),
                value: v.into(),
                reason: format!("Not a number of type {kind}"),
            })?;
        if n < min {
            return Err(NodeConfigError::Invalid {
                key: key.into(),
                value: v.into(),
                reason: format!("Value must be at least {min}"),
            });
        }
        Ok(n)
    }

    fn int(&self, key: &str, default: i64) -> Result<i64, NodeConfigError> {
        self.number(key, default, "INT", i64::from(i32::MIN))
    }

    fn long(&self, key: &str, default: i64) -> Result<i64, NodeConfigError> {
        self.number(key, default, "LONG", i64::MIN)
    }
}

impl NodeConfig {
    /// The node configuration from the explicitly set properties (file, environment and
    /// command line already layered).
    pub fn from_properties(
        explicit: &BTreeMap<String, String>,
    ) -> Result<NodeConfig, NodeConfigError> {
        let p = Props(explicit);
        let explicit_roles = p.get("process.roles").is_some();
        let roles = parse_roles(&p)?;
        let node_id = node_id(&p, explicit_roles)?;
        let controller_listener_names: Vec<String> = p
            .list("controller.listener.names")
            .iter()
            .map(|n| listeners::normalised(n))
            .collect();
        let listeners_value = p.get("listeners").unwrap_or(DEFAULT_LISTENERS).to_string();
        let security_protocols =
            effective_protocol_map(&p, &listeners_value, &controller_listener_names)?;
        let listeners = listeners::parse_endpoints(&listeners_value, &security_protocols, true)?;
        if listeners.is_empty() {
            return Err(NodeConfigError::Rule(
                "listeners must contain at least one listener".into(),
            ));
        }
        let is_controller_listener = |e: &Endpoint| controller_listener_names.contains(&e.name);
        let advertised_listeners: Vec<Endpoint> = match p.get("advertised.listeners") {
            Some(v) if !v.is_empty() => {
                let advertised = listeners::parse_endpoints(v, &security_protocols, false)?;
                // Kafka's check; an unset advertised.listeners keeps Arus's substitution of
                // 127.0.0.1 for a wildcard listener. (An empty host is not 0.0.0.0 to Kafka.)
                if v.split(',').any(|e| e.trim().contains("://0.0.0.0:")) {
                    return Err(NodeConfigError::Requirement(
                        "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.".into(),
                    ));
                }
                advertised
            }
            _ => listeners.clone(),
        }
        .into_iter()
        .filter(|e| !is_controller_listener(e))
        .collect();
        let inter_broker_listener_name = inter_broker_listener(&p)?;
        let quorum = if explicit_roles {
            let voters = quorum::parse_voters(p.get("controller.quorum.voters").unwrap_or(""))?;
            let bootstrap = quorum::parse_bootstrap_servers(
                p.get("controller.quorum.bootstrap.servers").unwrap_or(""),
            )?;
            if !voters.is_empty() {
                Quorum::Static(voters)
            } else {
                Quorum::Bootstrap(bootstrap)
            }
        } else {
            Quorum::Implicit
        };
        let rack = p
            .get("broker.rack")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let timeouts = Timeouts {
            broker_heartbeat_interval_ms: p.int("broker.heartbeat.interval.ms", 2000)?,
            broker_session_timeout_ms: p.int("broker.session.timeout.ms", 9000)?,
            election_timeout_ms: p.number(
                "controller.quorum.election.timeout.ms",
                1000,
                "INT",
                0,
            )?,
            election_backoff_max_ms: p.number(
                "controller.quorum.election.backoff.max.ms",
                1000,
                "INT",
                0,
            )?,
            fetch_timeout_ms: p.number("controller.quorum.fetch.timeout.ms", 2000, "INT", 0)?,
            request_timeout_ms: p.number("controller.quorum.request.timeout.ms", 2000, "INT", 0)?,
            retry_backoff_ms: p.number("controller.quorum.retry.backoff.ms", 20, "INT", 0)?,
        };
        let log_dirs = log_dirs(&p)?;
        let metadata_log = MetadataLogConfig {
            dir: match p.get("metadata.log.dir") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => log_dirs[0].clone(),
            },
            segment_bytes: p.number(
                "metadata.log.segment.bytes",
                1 << 30,
                "INT",
                8 * 1024 * 1024,
            )?,
            segment_ms: p.number("metadata.log.segment.ms", 604_800_000, "LONG", 1)?,
            max_retention_bytes: p.long("metadata.max.retention.bytes", 100 * 1024 * 1024)?,
            max_retention_ms: p.long("metadata.max.retention.ms", 604_800_000)?,
            max_record_bytes_between_snapshots: p.number(
                "metadata.log.max.record.bytes.between.snapshots",
                20 * 1024 * 1024,
                "LONG",
                1,
            )?,
            max_snapshot_interval_ms: p.number(
                "metadata.log.max.snapshot.interval.ms",
                3_600_000,
                "LONG",
                0,
            )?,
        };
        let config = NodeConfig {
            node_id,
            roles,
            listeners,
            advertised_listeners,
            controller_listener_names,
            inter_broker_listener_name,
            security_protocols,
            quorum,
            rack,
            timeouts,
            log_dirs,
            metadata_log,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn is_broker(&self) -> bool {
        self.roles.contains(&ProcessRole::Broker)
    }

    pub fn is_controller(&self) -> bool {
        self.roles.contains(&ProcessRole::Controller)
    }

    /// Whether this is the implicit one-node cluster (no `process.roles`).
    pub fn is_implicit(&self) -> bool {
        self.quorum == Quorum::Implicit
    }

    /// `process.roles` as Kafka prints it (`broker,controller`).
    pub fn roles_string(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The listeners named in `controller.listener.names`, in `listeners` order.
    pub fn controller_listeners(&self) -> Vec<&Endpoint> {
        self.listeners
            .iter()
            .filter(|e| self.controller_listener_names.contains(&e.name))
            .collect()
    }

    /// The listeners clients and brokers connect to.
    pub fn broker_listeners(&self) -> Vec<&Endpoint> {
        self.listeners
            .iter()
            .filter(|e| !self.controller_listener_names.contains(&e.name))
            .collect()
    }

    /// The ids of the static voters (empty for a dynamic quorum; this node for the
    /// implicit one).
    pub fn voter_ids(&self) -> Vec<i32> {
        match &self.quorum {
            Quorum::Static(v) => v.iter().map(|v| v.id).collect(),
            Quorum::Bootstrap(_) => Vec::new(),
            Quorum::Implicit => vec![self.node_id],
        }
    }

    /// Kafka's `validateValues`, for the KRaft roles; then Arus's own limits.
    fn validate(&self) -> Result<(), NodeConfigError> {
        for e in self.listeners.iter().chain(&self.advertised_listeners) {
            if e.security_protocol != SecurityProtocol::Plaintext {
                return Err(NodeConfigError::UnsupportedProtocol {
                    listener: e.name.clone(),
                    protocol: e.security_protocol,
                });
            }
        }
        if !self.is_implicit() {
            self.validate_kraft()?;
        }
        if self.is_broker() {
            let advertised: Vec<&str> = self
                .advertised_listeners
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            if advertised.is_empty() {
                return Err(NodeConfigError::Requirement(
                    "There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?".into(),
                ));
            }
            if !advertised.contains(&self.inter_broker_listener_name.as_str()) {
                return Err(NodeConfigError::Requirement(format!(
                    "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on currently configured listeners are {}",
                    advertised.join(",")
                )));
            }
            let names: Vec<&str> = self.listeners.iter().map(|e| e.name.as_str()).collect();
            if !advertised.iter().all(|a| names.contains(a)) {
                return Err(NodeConfigError::Requirement(format!(
                    "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found {}. The valid options based on the current configuration are {}",
                    advertised.join(","),
                    names.join(",")
                )));
            }
        }
        Ok(())
    }

    fn validate_kraft(&self) -> Result<(), NodeConfigError> {
        let voter_ids = self.voter_ids();
        let no_quorum = match &self.quorum {
            Quorum::Static(v) => v.is_empty(),
            Quorum::Bootstrap(b) => b.is_empty(),
            Quorum::Implicit => false,
        };
        if no_quorum {
            return Err(NodeConfigError::Rule(
                "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap controllers or controller.quorum.voters must contain a parseable set of controllers."
                    .into(),
            ));
        }
        let voters_display = || {
            format!(
                "Set({})",
                voter_ids
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let controller_listeners = self.controller_listeners();
        let names: Vec<&str> = self.listeners.iter().map(|e| e.name.as_str()).collect();
        if self.is_controller() {
            if controller_listeners.is_empty() {
                return Err(NodeConfigError::Requirement(
                    "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role"
                        .into(),
                ));
            }
            if matches!(self.quorum, Quorum::Static(_)) && !voter_ids.contains(&self.node_id) {
                return Err(NodeConfigError::Rule(format!(
                    "If process.roles contains the 'controller' role, the node id {} must be included in the set of voters controller.quorum.voters={}",
                    self.node_id,
                    voters_display()
                )));
            }
            if !self
                .controller_listener_names
                .iter()
                .all(|n| names.contains(&n.as_str()))
            {
                return Err(NodeConfigError::Requirement(
                    "controller.listener.names must only contain values appearing in the 'listeners' configuration when running the KRaft controller role"
                        .into(),
                ));
            }
            if !self.is_broker() && controller_listeners.len() != self.listeners.len() {
                return Err(NodeConfigError::Requirement(
                    "The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller"
                        .into(),
                ));
            }
        } else {
            if voter_ids.contains(&self.node_id) {
                return Err(NodeConfigError::Requirement(format!(
                    "If process.roles contains just the 'broker' role, the node id {} must not be included in the set of voters controller.quorum.voters={}",
                    self.node_id,
                    voters_display()
                )));
            }
            if self.controller_listener_names.is_empty() {
                return Err(NodeConfigError::Requirement(
                    "controller.listener.names must contain at least one value when running KRaft with just the broker role"
                        .into(),
                ));
            }
            if !controller_listeners.is_empty() {
                return Err(NodeConfigError::Requirement(
                    "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role"
                        .into(),
                ));
            }
            for name in &self.controller_listener_names {
                if !self.security_protocols.contains_key(name) {
                    return Err(NodeConfigError::Rule(format!(
                        "Controller listener with name {name} defined in controller.listener.names not found in listener.security.protocol.map  (an explicit security mapping for each controller listener is required if listener.security.protocol.map is non-empty, or if there are security protocols other than PLAINTEXT in use)"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn parse_roles(p: &Props<'_>) -> Result<Vec<ProcessRole>, NodeConfigError> {
    let Some(value) = p.get("process.roles") else {
        return Ok(vec![ProcessRole::Broker, ProcessRole::Controller]);
    };
    let mut roles = Vec::new();
    for r in p.list("process.roles") {
        let role = match r.as_str() {
            "broker" => ProcessRole::Broker,
            "controller" => ProcessRole::Controller,
            _ => {
                return Err(NodeConfigError::Invalid {
                    key: "process.roles".into(),
                    value: value.into(),
                    reason: "String must be one of: broker, controller".into(),
                });
            }
        };
        if roles.contains(&role) {
            return Err(NodeConfigError::Invalid {
                key: "process.roles".into(),
                value: value.into(),
                reason: "Duplicate entries found.".into(),
            });
        }
        roles.push(role);
    }
    if roles.is_empty() {
        return Err(NodeConfigError::Invalid {
            key: "process.roles".into(),
            value: value.into(),
            reason: "Empty list".into(),
        });
    }
    roles.sort();
    Ok(roles)
}

fn node_id(p: &Props<'_>, explicit_roles: bool) -> Result<i32, NodeConfigError> {
    let parse = |key: &str| -> Result<Option<i32>, NodeConfigError> {
        match p.get(key) {
            None => Ok(None),
            Some(_) => {
                let n = p.number(key, 0, "INT", if key == "node.id" { 0 } else { -1 })?;
                Ok(Some(n as i32))
            }
        }
    };
    let node = parse("node.id")?;
    let broker = parse("broker.id")?;
    match (node, broker) {
        (Some(n), Some(b)) if n != b => Err(NodeConfigError::Rule(
            "You must set `node.id` to the same value as `broker.id`.".into(),
        )),
        (Some(n), _) | (None, Some(n)) if n >= 0 => Ok(n),
        _ if explicit_roles => Err(NodeConfigError::Missing("node.id".into())),
        _ => Ok(IMPLICIT_NODE_ID),
    }
}

/// Kafka's `effectiveListenerSecurityProtocolMap`: the configured map; when it is not set,
/// the default map plus PLAINTEXT for every controller listener, unless SSL or SASL is in
/// use anywhere.
fn effective_protocol_map(
    p: &Props<'_>,
    listeners_value: &str,
    controller_names: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>, NodeConfigError> {
    let explicit = p.get("listener.security.protocol.map");
    let mut map = listeners::parse_protocol_map(explicit.unwrap_or(DEFAULT_PROTOCOL_MAP))?;
    if explicit.is_none() {
        let ssl_or_sasl = |name: &str| matches!(name, "SSL" | "SASL_SSL" | "SASL_PLAINTEXT");
        let in_use = controller_names.iter().any(|n| ssl_or_sasl(n))
            || listeners_value
                .split(',')
                .filter_map(listeners::listener_name_of)
                .any(|n| ssl_or_sasl(&n));
        if !in_use {
            for name in controller_names {
                map.entry(name.clone())
                    .or_insert(SecurityProtocol::Plaintext);
            }
        }
    }
    Ok(map)
}

/// `inter.broker.listener.name`, else the listener named after
/// `security.inter.broker.protocol` (Kafka refuses both at once).
fn inter_broker_listener(p: &Props<'_>) -> Result<String, NodeConfigError> {
    match (p.get("inter.broker.listener.name"), p.get("security.inter.broker.protocol")) {
        (Some(_), Some(_)) => Err(NodeConfigError::Rule(
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set."
                .into(),
        )),
        (Some(name), None) => Ok(listeners::normalised(name)),
        (None, Some(protocol)) => SecurityProtocol::for_name(protocol)
            .map(|p| p.name().to_string())
            .ok_or_else(|| NodeConfigError::Invalid {
                key: "security.inter.broker.protocol".into(),
                value: protocol.into(),
                reason: "String must be one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL".into(),
            }),
        (None, None) => Ok("PLAINTEXT".into()),
    }
}

fn log_dirs(p: &Props<'_>) -> Result<Vec<PathBuf>, NodeConfigError> {
    let value = p
        .get("log.dirs")
        .or_else(|| p.get("log.dir"))
        .unwrap_or(DEFAULT_LOG_DIRS);
    let dirs: Vec<PathBuf> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        return Err(NodeConfigError::Invalid {
            key: "log.dirs".into(),
            value: value.into(),
            reason: "at least one log directory is required".into(),
        });
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<NodeConfig, NodeConfigError> {
        let map = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        NodeConfig::from_properties(&map)
    }

    const COMBINED: &str = "process.roles=broker,controller
node.id=2
controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://h2:9092
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
broker.rack=r1";

    #[test]
    fn no_configuration_is_the_implicit_one_node_cluster() {
        let c = config("").unwrap();
        assert!(c.is_implicit());
        assert_eq!(c.node_id, 1);
        assert_eq!(c.roles_string(), "broker,controller");
        assert_eq!(c.voter_ids(), [1]);
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://127.0.0.1:9092");
        assert!(c.controller_listeners().is_empty());
        assert_eq!(c.metadata_log.dir, PathBuf::from("./arus-data"));
        assert_eq!(c.timeouts.broker_session_timeout_ms, 9000);
    }

    #[test]
    fn a_combined_node_of_three() {
        let c = config(COMBINED).unwrap();
        assert!(c.is_broker() && c.is_controller() && !c.is_implicit());
        assert_eq!(c.voter_ids(), [1, 2, 3]);
        assert_eq!(c.controller_listeners()[0].port, 9093);
        assert_eq!(
            c.controller_listeners()[0].security_protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(c.advertised_listeners.len(), 1);
        assert_eq!(c.advertised_listeners[0].host, "h2");
        assert_eq!(c.rack.as_deref(), Some("r1"));
        // Without advertised.listeners the controller listener is not advertised.
        let c = config(&COMBINED.replace("advertised.listeners=PLAINTEXT://h2:9092", "")).unwrap();
        assert_eq!(c.advertised_listeners.len(), 1);
        assert_eq!(c.advertised_listeners[0].name, "PLAINTEXT");
    }

    #[test]
    fn kafkas_kraft_rules() {
        let err = |text: &str| config(text).unwrap_err().to_string();
        assert_eq!(
            err(&COMBINED.replace("node.id=2", "")),
            "Missing required configuration \"node.id\" which has no default value."
        );
        assert!(
            err(&COMBINED.replace("node.id=2", "node.id=4"))
                .contains("the node id 4 must be included in the set of voters")
        );
        assert!(
            err(&COMBINED.replace("controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093", ""))
                .starts_with("If using process.roles, either controller.quorum.bootstrap.servers")
        );
        assert!(
            err(&COMBINED.replace("controller.listener.names=CONTROLLER", ""))
                .contains("No security protocol defined for listener CONTROLLER")
        );
        assert!(
            err(&COMBINED.replace("process.roles=broker,controller", "process.roles=broker"))
                .contains("must not be included in the set of voters")
        );
        assert!(
            err(&COMBINED.replace(
                "process.roles=broker,controller",
                "process.roles=controller"
            ))
            .contains("must only contain KRaft controller listeners")
        );
        assert!(
            err(&COMBINED.replace(
                "process.roles=broker,controller",
                "process.roles=broker,nope"
            ))
            .contains("String must be one of: broker, controller")
        );
        assert!(
            err(&COMBINED.replace(
                "inter.broker.listener.name=PLAINTEXT",
                "inter.broker.listener.name=OTHER"
            ))
            .contains(
                "inter.broker.listener.name must be a listener name defined in advertised.listeners"
            )
        );
        assert!(err("node.id=-1").contains("Value must be at least 0"));
        assert!(
            err("advertised.listeners=PLAINTEXT://0.0.0.0:9092")
                .contains("cannot use the nonroutable meta-address 0.0.0.0")
        );
        assert!(err("node.id=1\nbroker.id=2").contains("same value as `broker.id`"));
        assert!(err("metadata.log.segment.bytes=5").contains("Value must be at least 8388608"));
        assert!(err("broker.session.timeout.ms=x").contains("Not a number of type INT"));
    }

    #[test]
    fn a_broker_only_node_and_a_dynamic_quorum() {
        let c = config(
            "process.roles=broker
node.id=4
controller.quorum.bootstrap.servers=h1:9093
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://:9092",
        )
        .unwrap();
        assert_eq!(
            c.quorum,
            Quorum::Bootstrap(vec![HostPort {
                host: "h1".into(),
                port: 9093
            }])
        );
        assert!(c.voter_ids().is_empty());
        assert!(c.controller_listeners().is_empty());
    }

    #[test]
    fn security_protocols_other_than_plaintext_are_refused() {
        let e = config("listeners=SSL://:9093").unwrap_err();
        assert!(
            matches!(e, NodeConfigError::UnsupportedProtocol { .. }),
            "{e}"
        );
        let e = config(
            "listeners=INTERNAL://:9093\nlistener.security.protocol.map=INTERNAL:SASL_PLAINTEXT\ninter.broker.listener.name=INTERNAL",
        )
        .unwrap_err();
        assert!(e.to_string().contains("SASL_PLAINTEXT"), "{e}");
        // A listener named freely but mapped to PLAINTEXT works.
        let c = config(
            "listeners=CLIENT://:9092\nlistener.security.protocol.map=CLIENT:PLAINTEXT\ninter.broker.listener.name=CLIENT",
        )
        .unwrap();
        assert_eq!(c.listeners[0].name, "CLIENT");
    }
}
