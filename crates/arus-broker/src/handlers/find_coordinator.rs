//! FindCoordinator: a single key (v0–v3) or a batch of `coordinator_keys` (v4+). On a single
//! node this broker coordinates every group (key type 0) and every transactional id (key
//! type 1). Like Kafka, the first lookup creates `__consumer_offsets` or
//! `__transaction_state`. Share groups (key type 2, v6) are not built: INVALID_REQUEST, as
//! Kafka answers when share groups are disabled.

use arus_protocol::ErrorCode;
use arus_protocol::messages::FindCoordinatorRequest;
use arus_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};

use crate::Broker;
use crate::groups::offsets_topic;
use crate::txn::transaction_state_topic;

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
    let this_node = || {
        let l = broker.advertised_listener();
        Answer {
            code: ErrorCode::None,
            message: None,
            node: broker.node_id(),
            host: l.host,
            port: l.port as i32,
        }
    };
    match key_type {
        0 => match offsets_topic(broker) {
            Ok(_) => this_node(),
            Err(e) => refused(
                ErrorCode::CoordinatorNotAvailable,
                &format!("cannot create __consumer_offsets: {e}"),
            ),
        },
        1 => match transaction_state_topic(broker) {
            Ok(_) => this_node(),
            Err(e) => refused(
                ErrorCode::CoordinatorNotAvailable,
                &format!("cannot create __transaction_state: {e}"),
            ),
        },
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
