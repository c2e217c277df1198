//! FindCoordinator: a single key (v0–v3) or a batch of `coordinator_keys` (v4+). As Kafka's
//! `KafkaApis.getCoordinator`, a group (key type 0) or transactional id (key type 1) is
//! coordinated by the leader of the partition of `__consumer_offsets` or
//! `__transaction_state` its key hashes to, named by its endpoint on the request's listener;
//! a partition without an alive leader is COORDINATOR_NOT_AVAILABLE. On a single node that
//! leader is this broker. Like Kafka, the first lookup creates the internal topic. Share
//! groups (key type 2, v6) are not built: INVALID_REQUEST, as Kafka answers when share groups
//! are disabled.

use arus_protocol::ErrorCode;
use arus_protocol::messages::FindCoordinatorRequest;
use arus_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};

use arus_group::records::offsets_partition_for;
use arus_txn::records::transaction_partition_for;

use crate::Broker;
use crate::cluster::ClusterView;
use crate::cluster::describe;
use crate::groups::offsets_topic;
use crate::txn::transaction_state_topic;

struct Answer {
    code: ErrorCode,
    message: Option<String>,
    node: i32,
    host: String,
    port: i32,
}

/// The coordinator of `key`, of type `key_type`; `version` decides whether a missing leader
/// is explained (v1–v3 carry the error's default message, v4+ coordinators none, as Kafka).
fn answer(
    broker: &Broker,
    (view, listener): (&ClusterView, &str),
    key_type: i8,
    key: &str,
    version: i16,
) -> Answer {
    let refused = |code, message: &str| Answer {
        code,
        message: Some(message.to_string()),
        node: -1,
        host: String::new(),
        port: -1,
    };
    let leader_of = |topic: &crate::topics::Topic, index: i32| match describe::coordinator(
        view, topic.id, index, listener,
    ) {
        Ok(node) => Answer {
            code: ErrorCode::None,
            message: None,
            node: node.id,
            host: node.host,
            port: node.port,
        },
        Err(code) => {
            tracing::debug!(topic = %topic.name, partition = index, listener, "no alive leader to coordinate on");
            Answer {
                code,
                message: (version < 4).then(|| "The coordinator is not available.".to_string()),
                node: -1,
                host: String::new(),
                port: -1,
            }
        }
    };
    match key_type {
        0 => match offsets_topic(broker) {
            Ok(t) => leader_of(&t, offsets_partition_for(key, t.partition_count())),
            Err(e) => refused(
                ErrorCode::CoordinatorNotAvailable,
                &format!("cannot create __consumer_offsets: {e}"),
            ),
        },
        1 => match transaction_state_topic(broker) {
            Ok(t) => leader_of(&t, transaction_partition_for(key, t.partition_count())),
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

/// `listener`: the name of the listener the request came in on.
pub fn handle(
    broker: &Broker,
    r: FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let key_type = if version >= 1 { r.key_type } else { 0 };
    let view = broker.cluster.current();
    let at = (view.as_ref(), listener);
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: r
                .coordinator_keys
                .into_iter()
                .map(|key| {
                    let a = answer(broker, at, key_type, &key, version);
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
    let a = answer(broker, at, key_type, &r.key, version);
    FindCoordinatorResponse {
        error_code: a.code.code(),
        error_message: if version >= 1 { a.message } else { None },
        node_id: a.node,
        host: a.host,
        port: a.port,
        ..Default::default()
    }
}
