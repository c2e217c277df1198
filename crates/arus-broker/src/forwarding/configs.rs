//! AlterConfigs and IncrementalAlterConfigs in a cluster, split as Kafka's `KafkaApis` and
//! `ConfigAdminManager.preprocess` split them: the broker answers itself what is malformed
//! (a resource named twice, a key named twice in one resource, null values, an unknown
//! resource type), a BROKER resource that names another node or whose change the broker's
//! dynamic config would refuse, and BROKER_LOGGER (this process's log levels, never the
//! controller's business). TOPIC, BROKER, GROUP and CLIENT_METRICS resources that pass go
//! to the controller in one request; the answer is put back together in the request's order.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;

use arus_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use arus_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse as IncrementalResourceResponse, IncrementalAlterConfigsResponse,
};
use arus_protocol::messages::{AlterConfigsRequest, IncrementalAlterConfigsRequest};
use arus_protocol::{ErrorCode, Request, Response};
use tracing::{error, info};

use super::{forward, unexpected};
use crate::broker::Broker;
use crate::controller_channel::ControllerChannel;
use crate::handlers::configs::{RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC};
use crate::handlers::resource_configs::{RESOURCE_CLIENT_METRICS, RESOURCE_GROUP};

/// `IncrementalAlterConfigsRequest`'s DELETE operation.
const OP_DELETE: i8 = 1;

/// Kafka's `Errors.UNKNOWN_SERVER_ERROR` message, for a resource the controller left out.
const UNKNOWN_SERVER_ERROR_MESSAGE: &str =
    "The server experienced an unexpected error when processing the request.";

/// The outcome of one resource: (error code, message).
type Answer = (ErrorCode, Option<String>);

/// A code from a response; one this codec does not know is an unknown server error.
fn error_code(code: i16) -> ErrorCode {
    ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError)
}

fn refused(message: impl Into<String>) -> Option<Answer> {
    Some((ErrorCode::InvalidRequest, Some(message.into())))
}

/// Which (type, name) pairs appear more than once: all their entries are refused.
fn repeated<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> HashSet<(i8, String)> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for (t, n) in resources {
        if !seen.insert((t, n)) {
            twice.insert((t, n.to_string()));
        }
    }
    twice
}

/// The checks common to both APIs, in Kafka's order; `None` if the resource goes on.
fn precheck<'a>(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    keys: impl Iterator<Item = &'a str>,
    null_values: Vec<&str>,
) -> Option<Answer> {
    let mut seen = HashSet::new();
    if !keys.into_iter().all(|k| seen.insert(k)) {
        return refused("Error due to duplicate config keys");
    }
    if !null_values.is_empty() {
        return refused(format!(
            "Null value not supported for : {}",
            null_values.join(", ")
        ));
    }
    if resource_type == RESOURCE_BROKER && !name.is_empty() {
        let Ok(id) = name.parse::<i32>() else {
            return refused(format!("Node id must be an integer, but it is: {name}"));
        };
        if id != broker.node_id() {
            return refused(format!(
                "Unexpected broker id, expected {}, but received {name}",
                broker.node_id()
            ));
        }
    }
    None
}

fn owned_by_controller(resource_type: i8) -> bool {
    matches!(
        resource_type,
        RESOURCE_TOPIC | RESOURCE_BROKER | RESOURCE_GROUP | RESOURCE_CLIENT_METRICS
    )
}

/// The answer of a resource that went to the controller, or Kafka's error for one the
/// controller left out.
fn from_controller(answers: &HashMap<(i8, String), Answer>, t: i8, name: &str) -> Answer {
    answers
        .get(&(t, name.to_string()))
        .cloned()
        .unwrap_or_else(|| {
            error!(
                resource_type = t,
                resource = name,
                "the controller returned no result for a config resource"
            );
            (
                ErrorCode::UnknownServerError,
                Some(UNKNOWN_SERVER_ERROR_MESSAGE.into()),
            )
        })
}

pub(super) async fn incremental_alter(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: IncrementalAlterConfigsRequest,
    version: i16,
) -> IncrementalAlterConfigsResponse {
    let twice = repeated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut local: Vec<Option<Answer>> = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let answer = if twice.contains(&(r.resource_type, r.resource_name.clone())) {
            refused("Each resource must appear at most once.")
        } else {
            let nulls = r
                .configs
                .iter()
                .filter(|c| c.config_operation != OP_DELETE && c.value.is_none())
                .map(|c| c.name.as_str())
                .collect();
            precheck(
                broker,
                r.resource_type,
                &r.resource_name,
                r.configs.iter().map(|c| c.name.as_str()),
                nulls,
            )
            .or_else(|| match r.resource_type {
                // Log levels are this process's own, as in Kafka.
                RESOURCE_BROKER_LOGGER => Some(answer_of_local_incremental(
                    broker,
                    r.clone(),
                    request.validate_only,
                )),
                // Validated against this broker's dynamic config, changed by the controller.
                RESOURCE_BROKER => {
                    let (code, message) = answer_of_local_incremental(broker, r.clone(), true);
                    (code != ErrorCode::None).then_some((code, message))
                }
                t if owned_by_controller(t) => None,
                t => refused(format!("Unknown resource type {t}")),
            })
        };
        if let Some((code, message)) = &answer {
            info!(resource_type = r.resource_type, resource = %r.resource_name, code = code.name(), ?message, "config change answered by the broker");
        }
        local.push(answer);
    }
    let remaining: Vec<_> = request
        .resources
        .iter()
        .zip(&local)
        .filter(|(_, a)| a.is_none())
        .map(|(r, _)| r.clone())
        .collect();
    let mut answers: HashMap<(i8, String), Answer> = HashMap::new();
    if !remaining.is_empty() {
        let keys: Vec<(i8, String)> = remaining
            .iter()
            .map(|r| (r.resource_type, r.resource_name.clone()))
            .collect();
        let forwarded = IncrementalAlterConfigsRequest {
            resources: remaining,
            validate_only: request.validate_only,
            ..Default::default()
        };
        let result = forward(
            broker,
            channel,
            Request::IncrementalAlterConfigs(forwarded),
            version,
            None,
        )
        .await;
        match result {
            Ok(Response::IncrementalAlterConfigs(r)) => {
                for a in r.responses {
                    answers.insert(
                        (a.resource_type, a.resource_name),
                        (error_code(a.error_code), a.error_message),
                    );
                }
            }
            other => {
                let e = match other {
                    Ok(response) => unexpected("IncrementalAlterConfigs", &response),
                    Err(e) => e,
                };
                for k in keys {
                    answers.insert(k, (e.code(), Some(e.to_string())));
                }
            }
        }
    }
    let responses = request
        .resources
        .into_iter()
        .zip(local)
        .map(|(r, answer)| {
            let (code, message) = answer
                .unwrap_or_else(|| from_controller(&answers, r.resource_type, &r.resource_name));
            IncrementalResourceResponse {
                error_code: code.code(),
                error_message: message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// The answer the broker's own IncrementalAlterConfigs gives one resource.
fn answer_of_local_incremental(
    broker: &Broker,
    resource: arus_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Answer {
    let response = crate::handlers::configs::incremental_alter(
        broker,
        IncrementalAlterConfigsRequest {
            resources: vec![resource],
            validate_only,
            ..Default::default()
        },
    );
    match response.responses.into_iter().next() {
        Some(r) => (error_code(r.error_code), r.error_message),
        None => (
            ErrorCode::UnknownServerError,
            Some(UNKNOWN_SERVER_ERROR_MESSAGE.into()),
        ),
    }
}

pub(super) async fn alter(
    broker: &Broker,
    channel: &Arc<dyn ControllerChannel>,
    request: AlterConfigsRequest,
    version: i16,
) -> AlterConfigsResponse {
    let twice = repeated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut local: Vec<Option<Answer>> = Vec::with_capacity(request.resources.len());
    for r in &request.resources {
        let answer = if twice.contains(&(r.resource_type, r.resource_name.clone())) {
            refused("Each resource must appear at most once.")
        } else {
            let nulls = r
                .configs
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| c.name.as_str())
                .collect();
            precheck(
                broker,
                r.resource_type,
                &r.resource_name,
                r.configs.iter().map(|c| c.name.as_str()),
                nulls,
            )
            .or_else(|| match r.resource_type {
                RESOURCE_BROKER => {
                    let response = crate::handlers::configs::alter(
                        broker,
                        AlterConfigsRequest {
                            resources: vec![r.clone()],
                            validate_only: true,
                            ..Default::default()
                        },
                    );
                    response
                        .responses
                        .into_iter()
                        .next()
                        .filter(|a| a.error_code != ErrorCode::None.code())
                        .map(|a| (error_code(a.error_code), a.error_message))
                }
                // Legacy AlterConfigs never supported BROKER_LOGGER: Kafka refuses it here.
                t if owned_by_controller(t) => None,
                t => refused(format!("Unknown resource type {t}")),
            })
        };
        if let Some((code, message)) = &answer {
            info!(resource_type = r.resource_type, resource = %r.resource_name, code = code.name(), ?message, "config change answered by the broker");
        }
        local.push(answer);
    }
    let remaining: Vec<_> = request
        .resources
        .iter()
        .zip(&local)
        .filter(|(_, a)| a.is_none())
        .map(|(r, _)| r.clone())
        .collect();
    let mut answers: HashMap<(i8, String), Answer> = HashMap::new();
    if !remaining.is_empty() {
        let keys: Vec<(i8, String)> = remaining
            .iter()
            .map(|r| (r.resource_type, r.resource_name.clone()))
            .collect();
        let forwarded = AlterConfigsRequest {
            resources: remaining,
            validate_only: request.validate_only,
            ..Default::default()
        };
        match forward(
            broker,
            channel,
            Request::AlterConfigs(forwarded),
            version,
            None,
        )
        .await
        {
            Ok(Response::AlterConfigs(r)) => {
                for a in r.responses {
                    answers.insert(
                        (a.resource_type, a.resource_name),
                        (error_code(a.error_code), a.error_message),
                    );
                }
            }
            other => {
                let e = match other {
                    Ok(response) => unexpected("AlterConfigs", &response),
                    Err(e) => e,
                };
                for k in keys {
                    answers.insert(k, (e.code(), Some(e.to_string())));
                }
            }
        }
    }
    let responses = request
        .resources
        .into_iter()
        .zip(local)
        .map(|(r, answer)| {
            let (code, message) = answer
                .unwrap_or_else(|| from_controller(&answers, r.resource_type, &r.resource_name));
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
