//! FindCoordinator: a single key (v0–v3) or a batch of `coordinator_keys` (v4+). On a single
//! node this broker coordinates every group. Like Kafka, the first lookup of a group
//! creates `__consumer_offsets`.
//!
//! Transaction coordinators (key type 1) do not exist yet: such keys get
//! COORDINATOR_NOT_AVAILABLE with a message saying so, which clients treat as retriable —
//! rather than pointing them at a coordinator that would then refuse every transactional
//! API. Share groups (key type 2, v6) are not built either: INVALID_REQUEST, as Kafka answers
//! when share groups are disabled.

use arus_protocol::ErrorCode;
use arus_protocol::messages::FindCoordinatorRequest;
use arus_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};

use crate::Broker;
use crate::groups::offsets_topic;

struct Answer {
    code: ErrorCode,
    message: Option<String>,
    node: i32,
    host: String,
    port: i32,
}

fn answer(broker: &Broker, key_type: i8) -> Answer {
    let refused = |code, message: &str| Answer {
        code,
        message: Some(message.to_string()),
        node: -1,
        host: String::new(),
        port: -1,
    };
    match key_type {
        0 => match offsets_topic(broker) {
            Ok(_) => {
                let l = broker.advertised_listener();
                Answer {
                    code: ErrorCode::None,
                    message: None,
                    node: broker.node_id(),
                    host: l.host,
                    port: l.port as i32,
                }
            }
            Err(e) => refused(
                ErrorCode::CoordinatorNotAvailable,
                &format!("cannot create __consumer_offsets: {e}"),
            ),
        },
        1 => refused(
            ErrorCode::CoordinatorNotAvailable,
            "This broker does not support transactions yet.",
        ),
        2 => refused(
            ErrorCode::InvalidRequest,
            "Share groups are not supported by this broker.",
        ),
        other => refused(
            ErrorCode::InvalidRequest,
            &format!("Unknown coordinator type {other}."),
        ),
    }
}

pub fn handle(broker: &Broker, r: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let key_type = if version >= 1 { r.key_type } else { 0 };
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: r
                .coordinator_keys
                .into_iter()
                .map(|key| {
                    let a = answer(broker, key_type);
                    Coordinator {
                        key,
                        node_id: a.node,
                        host: a.host,
                        port: a.port,
                        error_code: a.code.code(),
                        error_message: a.message,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        };
    }
    let a = answer(broker, key_type);
    FindCoordinatorResponse {
        error_code: a.code.code(),
        error_message: if version >= 1 { a.message } else { None },
        node_id: a.node,
        host: a.host,
        port: a.port,
        ..Default::default()
    }
}
