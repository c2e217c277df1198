//! Dynamic configs: IncrementalAlterConfigs and AlterConfigs for TOPIC and BROKER resources
//! (Kafka's `ConfigurationControlManager`, `ControllerConfigurationValidator` and
//! `ConfigResourceExistenceChecker`). What a config may hold is known to the broker (topic
//! and broker config definitions live in `arus-broker`), so value validation is a trait the
//! driver supplies.

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;
use arus_protocol::metadata::{ClearElrRecord, ConfigRecord};

use crate::error::ControllerError;
use crate::records::MetadataRecord;
use crate::state::{ClusterState, RESOURCE_BROKER, RESOURCE_TOPIC};

/// A config resource: Kafka's `ConfigResource` (type id and name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    pub resource_type: i8,
    pub name: String,
}

impl ConfigResource {
    /// A TOPIC resource.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type: RESOURCE_TOPIC,
            name: name.into(),
        }
    }

    /// A BROKER resource (`""` is the cluster-wide default).
    pub fn broker(name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type: RESOURCE_BROKER,
            name: name.into(),
        }
    }
}

/// Config knowledge the controller does not own: supplied by the driver.
pub trait ConfigValidator {
    /// Validates the complete set of dynamic configs `resource` would have after the change
    /// (`existing` is what it has now). An `Err` is returned to the client as is (Kafka
    /// answers INVALID_CONFIG with the `ConfigException` message).
    fn validate(
        &self,
        resource: &ConfigResource,
        new_configs: &BTreeMap<String, String>,
        existing: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError>;

    /// Whether `key` is a LIST config (APPEND and SUBTRACT apply to it).
    fn is_list(&self, resource: &ConfigResource, key: &str) -> bool;

    /// The default value of `key` (APPEND to an unset list starts from it).
    fn default_value(&self, resource: &ConfigResource, key: &str) -> Option<String>;
}

/// One IncrementalAlterConfigs operation (`AlterConfigOp.OpType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl ConfigOp {
    /// From the request's `config_operation` byte and value.
    pub fn from_request(op: i8, value: Option<&str>) -> Result<ConfigOp, ControllerError> {
        let v = || value.unwrap_or_default().to_owned();
        Ok(match op {
            0 => ConfigOp::Set(v()),
            1 => ConfigOp::Delete,
            2 => ConfigOp::Append(v()),
            3 => ConfigOp::Subtract(v()),
            other => {
                return Err(ControllerError::new(
                    ErrorCode::InvalidRequest,
                    format!("Unknown alter configs operation {other}"),
                ));
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            ConfigOp::Set(_) => "SET",
            ConfigOp::Delete => "DELETE",
            ConfigOp::Append(_) => "APPEND",
            ConfigOp::Subtract(_) => "SUBTRACT",
        }
    }
}

/// What config decisions read besides the request.
pub struct ConfigContext<'a> {
    pub state: &'a ClusterState,
    /// This controller's node id (its BROKER resource exists even if no broker has it).
    pub node_id: i32,
    /// KIP-966 ELR: min.insync.replicas changes clear ELRs, and some are refused.
    pub elr_enabled: bool,
    pub validator: &'a dyn ConfigValidator,
}

/// Kafka's `MAX_CONFIG_VALUE_SIZE` (a ConfigRecord value is a Java string of at most
/// `Short.MAX_VALUE` characters).
const MAX_CONFIG_VALUE_SIZE: usize = 32767;

fn invalid_config(message: &str) -> ControllerError {
    ControllerError::new(ErrorCode::InvalidConfig, message)
}

/// Kafka 4.4's ELR guards on `min.insync.replicas` (`isDisallowedBrokerMinIsrTransition`,
/// `isDisallowedClusterMinIsrTransition`).
fn check_min_isr_change(cx: &ConfigContext<'_>, r: &ConfigRecord) -> Result<(), ControllerError> {
    if !cx.elr_enabled || r.name != "min.insync.replicas" || r.resource_type != RESOURCE_BROKER {
        return Ok(());
    }
    if !r.resource_name.is_empty() {
        return Err(invalid_config(
            "Broker-level min.insync.replicas cannot be altered while ELR is enabled.",
        ));
    }
    if r.value.is_none() {
        return Err(invalid_config(
            "Cluster-level min.insync.replicas cannot be removed while ELR is enabled.",
        ));
    }
    Ok(())
}

/// Kafka's `createClearElrRecordsAsNeeded`: with ELR, a changed `min.insync.replicas`
/// clears the ELRs of the topic (TOPIC) or of every topic (BROKER).
pub fn clear_elr_records(elr_enabled: bool, records: &[MetadataRecord]) -> Vec<MetadataRecord> {
    if !elr_enabled {
        return Vec::new();
    }
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Config(c) if c.name == "min.insync.replicas" => {
                Some(MetadataRecord::ClearElr(ClearElrRecord {
                    topic_name: if c.resource_type == RESOURCE_TOPIC {
                        c.resource_name.clone()
                    } else {
                        String::new()
                    },
                }))
            }
            _ => None,
        })
        .collect()
}

fn invalid_request(message: impl Into<String>) -> ControllerError {
    ControllerError::new(ErrorCode::InvalidRequest, message)
}

/// `ControllerConfigurationValidator.validate(resource)`: the resource name alone.
pub fn validate_resource_name(resource: &ConfigResource) -> Result<(), ControllerError> {
    match resource.resource_type {
        RESOURCE_TOPIC => {
            if resource.name.is_empty() {
                return Err(invalid_request("Default topic resources are not allowed."));
            }
            crate::topics::validate_topic_name(&resource.name)
        }
        RESOURCE_BROKER => {
            if resource.name.is_empty() {
                return Ok(());
            }
            match resource.name.parse::<i32>() {
                Err(_) => Err(invalid_request(
                    "Unable to parse broker name as a base 10 number.",
                )),
                Ok(id) if id < 0 => Err(invalid_request("Invalid negative broker ID.")),
                Ok(_) => Ok(()),
            }
        }
        RESOURCE_CLIENT_METRICS => Ok(()),
        RESOURCE_GROUP => {
            if resource.name.is_empty() {
                Err(invalid_request("Default group resources are not allowed."))
            } else {
                Ok(())
            }
        }
        other => Err(invalid_request(format!(
            "Unknown resource type {}",
            resource_type_name(other)
        ))),
    }
}

/// The CLIENT_METRICS config resource type (KIP-714).
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
/// The GROUP config resource type (KIP-848).
pub const RESOURCE_GROUP: i8 = 32;

/// Kafka's `ConfigResource.Type` names, as its messages print them.
fn resource_type_name(t: i8) -> &'static str {
    match t {
        1 => "ANY",
        RESOURCE_TOPIC => "TOPIC",
        RESOURCE_BROKER => "BROKER",
        8 => "BROKER_LOGGER",
        RESOURCE_CLIENT_METRICS => "CLIENT_METRICS",
        RESOURCE_GROUP => "GROUP",
        _ => "UNKNOWN",
    }
}

/// `QuorumController.ConfigResourceExistenceChecker`.
fn check_exists(
    state: &ClusterState,
    node_id: i32,
    resource: &ConfigResource,
) -> Result<(), ControllerError> {
    match resource.resource_type {
        RESOURCE_BROKER if !resource.name.is_empty() => {
            let id: i32 = resource
                .name
                .parse()
                .map_err(|_| invalid_request(format!("Invalid broker name {}", resource.name)))?;
            if state.brokers.contains_key(&id) || id == node_id {
                Ok(())
            } else {
                Err(ControllerError::new(
                    ErrorCode::BrokerIdNotRegistered,
                    format!("No node with id {id} found."),
                ))
            }
        }
        RESOURCE_TOPIC if !state.topic_ids.contains_key(&resource.name) => {
            Err(ControllerError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("The topic '{}' does not exist.", resource.name),
            ))
        }
        _ => Ok(()),
    }
}

fn config_record(resource: &ConfigResource, name: &str, value: Option<String>) -> ConfigRecord {
    ConfigRecord {
        resource_type: resource.resource_type,
        resource_name: resource.name.clone(),
        name: name.to_owned(),
        value,
    }
}

/// Validation shared by both APIs (Kafka's `validateAlterConfig`).
fn validate_alter(
    cx: &ConfigContext<'_>,
    resource: &ConfigResource,
    altered: &[ConfigRecord],
    implicitly_deleted: &[ConfigRecord],
    newly_created: bool,
) -> Result<(), ControllerError> {
    let existing = cx
        .state
        .resource_configs(resource.resource_type, &resource.name)
        .cloned()
        .unwrap_or_default();
    let mut all = existing.clone();
    for r in altered {
        check_min_isr_change(cx, r)?;
        match &r.value {
            Some(v) if v.chars().count() > MAX_CONFIG_VALUE_SIZE => {
                return Err(invalid_config(
                    "The configuration value cannot be added because it exceeds the maximum value size of 32767 bytes.",
                ));
            }
            Some(v) => {
                all.insert(r.name.clone(), v.clone());
            }
            None => {
                all.remove(&r.name);
            }
        }
    }
    for r in implicitly_deleted {
        check_min_isr_change(cx, r)?;
        all.remove(&r.name);
    }
    validate_resource_name(resource)?;
    cx.validator.validate(resource, &all, &existing)?;
    if !newly_created {
        check_exists(cx.state, cx.node_id, resource)?;
    }
    Ok(())
}

/// IncrementalAlterConfigs for one resource: the `ConfigRecord`s, or the resource's error.
/// `newly_created` skips the existence check (a topic being created in the same batch).
pub fn incremental_alter(
    cx: &ConfigContext<'_>,
    resource: &ConfigResource,
    ops: &[(String, ConfigOp)],
    newly_created: bool,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let validator = cx.validator;
    let current = cx
        .state
        .resource_configs(resource.resource_type, &resource.name);
    let mut records = Vec::new();
    for (key, op) in ops {
        let current_value = current.and_then(|c| c.get(key)).cloned();
        let new_value = match op {
            ConfigOp::Set(v) => Some(v.clone()),
            ConfigOp::Delete => None,
            ConfigOp::Append(v) | ConfigOp::Subtract(v) => {
                if !validator.is_list(resource, key) {
                    return Err(ControllerError::new(
                        ErrorCode::InvalidConfig,
                        format!(
                            "Can't {} to key {key} because its type is not LIST.",
                            op.name()
                        ),
                    ));
                }
                let base = current_value
                    .clone()
                    .or_else(|| validator.default_value(resource, key));
                let mut parts: Vec<String> = base
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                if matches!(op, ConfigOp::Append(_)) {
                    for item in v.split(',') {
                        if !parts.iter().any(|p| p == item) {
                            parts.push(item.to_owned());
                        }
                    }
                } else {
                    for item in v.split(',') {
                        if let Some(i) = parts.iter().position(|p| p == item) {
                            parts.remove(i);
                        }
                    }
                }
                Some(parts.join(","))
            }
        };
        // BROKER records are written even when unchanged, so brokers reload (KAFKA-14136).
        if current_value != new_value || resource.resource_type == RESOURCE_BROKER {
            records.push(config_record(resource, key, new_value));
        }
    }
    validate_alter(cx, resource, &records, &[], newly_created)?;
    Ok(records.into_iter().map(MetadataRecord::Config).collect())
}

/// Legacy AlterConfigs for one resource: the given configs replace all dynamic configs of
/// the resource (keys not named are deleted; a null value deletes too).
pub fn legacy_alter(
    cx: &ConfigContext<'_>,
    resource: &ConfigResource,
    new_configs: &BTreeMap<String, Option<String>>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let empty = BTreeMap::new();
    let current = cx
        .state
        .resource_configs(resource.resource_type, &resource.name)
        .unwrap_or(&empty);
    let altered: Vec<ConfigRecord> = new_configs
        .iter()
        .filter(|(k, v)| current.get(*k) != v.as_ref() || resource.resource_type == RESOURCE_BROKER)
        .map(|(k, v)| config_record(resource, k, v.clone()))
        .collect();
    let deleted: Vec<ConfigRecord> = current
        .keys()
        .filter(|k| !new_configs.contains_key(*k))
        .map(|k| config_record(resource, k, None))
        .collect();
    validate_alter(cx, resource, &altered, &deleted, false)?;
    Ok(altered
        .into_iter()
        .chain(deleted)
        .map(MetadataRecord::Config)
        .collect())
}

/// A validator that accepts everything (tests, and tools that validate elsewhere).
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAllConfigs;

impl ConfigValidator for AcceptAllConfigs {
    fn validate(
        &self,
        _resource: &ConfigResource,
        _new_configs: &BTreeMap<String, String>,
        _existing: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        Ok(())
    }

    fn is_list(&self, _resource: &ConfigResource, _key: &str) -> bool {
        false
    }

    fn default_value(&self, _resource: &ConfigResource, _key: &str) -> Option<String> {
        None
    }
}
