//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, and DescribeConfigs
//! for the broker. Dynamic broker configs are not supported yet: altering the broker
//! resource is refused with a message saying so.

use std::collections::BTreeMap;

use arus_protocol::ErrorCode;
use arus_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use arus_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use arus_protocol::messages::incremental_alter_configs_response as incremental;
use arus_protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use crate::broker::Broker;
use crate::broker_config::BROKER_KEYS;
use crate::config_defs::{ConfigType, TOPIC_CONFIGS, topic_config};
use crate::topic_settings::{ConfigSource, validate_overrides};
use crate::topics::TopicError;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

struct Entry {
    name: String,
    value: String,
    source: ConfigSource,
    kind: ConfigType,
    doc: &'static str,
    read_only: bool,
    synonyms: Vec<(String, String, ConfigSource)>,
}

fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (ErrorCode, String)> {
    let topic = broker.topics.get(name).ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("Topic {name} does not exist."),
    ))?;
    Ok(topic
        .settings()
        .describe(&broker.config)
        .into_iter()
        .map(|d| Entry {
            name: d.name.to_string(),
            value: d.value,
            source: d.source,
            kind: d.def.kind,
            doc: d.def.doc,
            read_only: false,
            synonyms: d.synonyms,
        })
        .collect())
}

fn broker_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (ErrorCode, String)> {
    if name.is_empty() {
        // The cluster-wide default resource holds only dynamic defaults; there are none yet.
        return Ok(Vec::new());
    }
    if name.parse::<i32>().ok() != Some(broker.node_id()) {
        return Err((
            ErrorCode::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} but received {name}",
                broker.node_id()
            ),
        ));
    }
    let explicit = &broker.config.explicit;
    let mut entries: Vec<Entry> = BROKER_KEYS
        .iter()
        .map(|(key, default, doc)| {
            let (value, source) = match explicit.get(*key) {
                Some(v) => (v.clone(), ConfigSource::StaticBrokerConfig),
                None => (default.to_string(), ConfigSource::DefaultConfig),
            };
            Entry {
                name: key.to_string(),
                synonyms: vec![(key.to_string(), value.clone(), source)],
                value,
                source,
                kind: ConfigType::String,
                doc,
                read_only: true,
            }
        })
        .collect();
    for def in TOPIC_CONFIGS {
        let Some(syn) = def.broker_synonym else {
            continue;
        };
        if entries.iter().any(|e| e.name == syn) {
            continue;
        }
        let (value, source) = match explicit.get(syn) {
            Some(v) => (v.clone(), ConfigSource::StaticBrokerConfig),
            None => (def.default.to_string(), ConfigSource::DefaultConfig),
        };
        entries.push(Entry {
            name: syn.to_string(),
            synonyms: vec![(syn.to_string(), value.clone(), source)],
            value,
            source,
            kind: def.kind,
            doc: def.doc,
            read_only: true,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

pub fn describe(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let entries = match r.resource_type {
                RESOURCE_TOPIC => topic_entries(broker, &r.resource_name),
                RESOURCE_BROKER => broker_entries(broker, &r.resource_name),
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("Resource type {other} is not supported by DescribeConfigs yet"),
                )),
            };
            match entries {
                Ok(entries) => DescribeConfigsResult {
                    error_code: ErrorCode::None.code(),
                    error_message: None,
                    resource_type: r.resource_type,
                    resource_name: r.resource_name,
                    configs: entries
                        .into_iter()
                        .filter(|e| {
                            r.configuration_keys
                                .as_ref()
                                .is_none_or(|keys| keys.is_empty() || keys.contains(&e.name))
                        })
                        .map(|e| DescribeConfigsResourceResult {
                            // IsDefault exists only in v0 and is not ignorable.
                            is_default: version == 0 && e.source == ConfigSource::DefaultConfig,
                            config_source: e.source as i8,
                            read_only: e.read_only,
                            is_sensitive: false,
                            synonyms: if request.include_synonyms && version >= 1 {
                                e.synonyms
                                    .into_iter()
                                    .map(|(name, value, source)| DescribeConfigsSynonym {
                                        name,
                                        value: Some(value),
                                        source: source as i8,
                                        ..Default::default()
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            config_type: e.kind as i8,
                            documentation: (request.include_documentation && version >= 3)
                                .then(|| e.doc.to_string()),
                            name: e.name,
                            value: Some(e.value),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
                Err((code, message)) => DescribeConfigsResult {
                    error_code: code.code(),
                    error_message: Some(message),
                    resource_type: r.resource_type,
                    resource_name: r.resource_name,
                    configs: Vec::new(),
                    ..Default::default()
                },
            }
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

/// Applies `change` to a topic's overrides, validating the result; `validate_only` checks
/// without applying.
fn alter_topic(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), (ErrorCode, String)>,
) -> Result<(), (ErrorCode, String)> {
    let topic = broker.topics.get(name).ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("Topic {name} does not exist."),
    ))?;
    let mut overrides = topic.settings().overrides.clone();
    change(&mut overrides)?;
    validate_overrides(&overrides).map_err(|e| (ErrorCode::InvalidConfig, e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    broker
        .topics
        .set_configs(&topic, overrides)
        .map_err(|e: TopicError| (e.code(), e.to_string()))
}

fn broker_alter_refusal(broker: &Broker, name: &str) -> (ErrorCode, String) {
    if !name.is_empty() && name.parse::<i32>().ok() != Some(broker.node_id()) {
        return (
            ErrorCode::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} but received {name}",
                broker.node_id()
            ),
        );
    }
    (
        ErrorCode::InvalidRequest,
        "Dynamic broker configs are not supported yet; set them in server.properties and restart."
            .into(),
    )
}

pub fn alter(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            let result = match r.resource_type {
                RESOURCE_TOPIC => {
                    alter_topic(broker, &r.resource_name, request.validate_only, |o| {
                        // Legacy AlterConfigs replaces the whole set of overrides.
                        o.clear();
                        for c in &r.configs {
                            let value = c.value.clone().ok_or_else(|| {
                                (
                                    ErrorCode::InvalidRequest,
                                    format!("Null value not supported for : {}", c.name),
                                )
                            })?;
                            o.insert(c.name.clone(), value);
                        }
                        Ok(())
                    })
                }
                RESOURCE_BROKER => Err(broker_alter_refusal(broker, &r.resource_name)),
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            let (code, message) = match result {
                Ok(()) => (ErrorCode::None, None),
                Err((c, m)) => (c, Some(m)),
            };
            AlterConfigsResourceResponse {
                error_code: code.code(),
                error_message: message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn incremental_alter(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> incremental::IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|r| {
            let result = match r.resource_type {
                RESOURCE_TOPIC => alter_topic(broker, &r.resource_name, request.validate_only, |o| {
                    for c in &r.configs {
                        let def = topic_config(&c.name).ok_or_else(|| {
                            (ErrorCode::InvalidConfig, format!("Unknown topic config name: {}", c.name))
                        })?;
                        let value = c.value.clone().unwrap_or_default();
                        match c.config_operation {
                            OP_SET => {
                                o.insert(c.name.clone(), value);
                            }
                            OP_DELETE => {
                                o.remove(&c.name);
                            }
                            OP_APPEND | OP_SUBTRACT => {
                                if def.kind != ConfigType::List {
                                    return Err((
                                        ErrorCode::InvalidConfig,
                                        format!("Config value append/subtract is not allowed for config key {} which is not of type LIST", c.name),
                                    ));
                                }
                                let current = o.get(&c.name).cloned().unwrap_or_else(|| {
                                    broker.config.topic_default(&c.name).map(|(v, _)| v).unwrap_or_default()
                                });
                                let mut items: Vec<String> = current
                                    .split(',')
                                    .map(|s| s.trim().to_string())
                                    .filter(|s| !s.is_empty())
                                    .collect();
                                for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                                    if c.config_operation == OP_APPEND {
                                        if !items.iter().any(|i| i == v) {
                                            items.push(v.to_string());
                                        }
                                    } else {
                                        items.retain(|i| i != v);
                                    }
                                }
                                o.insert(c.name.clone(), items.join(","));
                            }
                            other => {
                                return Err((ErrorCode::InvalidRequest, format!("Unknown config operation {other}")));
                            }
                        }
                    }
                    Ok(())
                }),
                RESOURCE_BROKER => Err(broker_alter_refusal(broker, &r.resource_name)),
                other => Err((ErrorCode::InvalidRequest, format!("Unsupported resource type {other}"))),
            };
            let (code, message) = match result {
                Ok(()) => (ErrorCode::None, None),
                Err((c, m)) => (c, Some(m)),
            };
            incremental::AlterConfigsResourceResponse {
                error_code: code.code(),
                error_message: message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    incremental::IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
