//! The CONTROLLER listener (`controller.listener.names`): one port for the quorum's own
//! RPCs and for the Kafka requests brokers and tools send to controllers.
//!
//! A connection that starts with the quorum's preamble (`arus_raft::transport::PREAMBLE`,
//! which read as a Kafka frame size would be larger than any request Arus accepts) is
//! handed to the quorum. Any other connection speaks Kafka's framing, one request at a time:
//! ApiVersions, DescribeQuorum (what `kafka-metadata-quorum --bootstrap-controller` asks),
//! and the requests the controller decides (BrokerRegistration, BrokerHeartbeat,
//! AllocateProducerIds, UnregisterBroker, and the admin requests brokers forward).
//! A request the controller cannot take because another node leads answers NOT_CONTROLLER
//! in the API's own error field, which makes the sender look for the leader.
//!
//! Bounds: a frame above `max_frame_bytes` or one that does not decode closes the
//! connection with a log line; a frame is read whole before anything is allocated for its
//! decoding beyond its own bytes.

// Generated message structs are built with `..Default::default()` (see lib.rs).
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use arus_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use arus_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};
use arus_raft::transport::{PREAMBLE, RaftServer};
use arus_raft::{Quorum, ReplicaStatus};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::controller_driver::{ControllerHandle, ControllerRequestError};

/// The APIs a controller serves, with the versions Arus implements for them.
pub const CONTROLLER_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 5),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::BrokerRegistration, 0, 4),
    (ApiKey::BrokerHeartbeat, 0, 1),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::AllocateProducerIds, 0, 0),
    (ApiKey::AlterPartition, 2, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AddRaftVoter, 0, 1),
    (ApiKey::RemoveRaftVoter, 0, 0),
    (ApiKey::DescribeCluster, 0, 2),
];

/// The `kraft.version` levels this controller supports (ApiVersions' supported features:
/// AddRaftVoter asks a new voter for them).
pub const KRAFT_VERSIONS: (i16, i16) = (0, 1);

/// What the listener serves with.
pub struct ControllerService {
    pub node_id: i32,
    pub controller: ControllerHandle,
    /// Weak: connections (long-lived quorum links among them) must not keep a stopped
    /// node's quorum alive.
    pub quorum: Weak<Quorum>,
    /// Serves the quorum's RPC connections.
    pub raft: RaftServer,
    /// Every voter's CONTROLLER endpoint (DescribeQuorum v2's nodes): node id → (listener
    /// name, host, port).
    pub voter_endpoints: BTreeMap<i32, (String, String, u16)>,
    /// This node's metadata directory id (DescribeQuorum's ReplicaDirectoryId for itself).
    pub directory_id: Uuid,
    /// The other voters' directory ids where the format named them (`--initial-controllers`);
    /// a static quorum (`controller.quorum.voters`) has none, reported as zero.
    pub voter_directory_ids: BTreeMap<i32, Uuid>,
    pub max_frame_bytes: usize,
    /// The cluster id (AddRaftVoter / RemoveRaftVoter check it).
    pub cluster_id: String,
    /// The finalized `kraft.version`: 0 with `controller.quorum.voters` (no voter changes),
    /// 1 for a quorum formatted with `--standalone` / `--initial-controllers`.
    pub kraft_version: i16,
    /// The CONTROLLER listener's name (DescribeQuorum's nodes, AddRaftVoter's listener).
    pub listener_name: String,
    /// Learners on their way to becoming voters (kept by the observers' reconciliation).
    pub joining: Arc<watch::Sender<Vec<u64>>>,
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    service: Arc<ControllerService>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = service.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, &service).await {
                            debug!(%peer, error = %e, "controller connection closed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "controller listener cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn connection(mut stream: TcpStream, service: &ControllerService) -> std::io::Result<()> {
    let mut first = [0u8; PREAMBLE.len()];
    let mut seen = 0;
    // `peek` may return fewer bytes than are on their way; a Kafka client always sends at
    // least a whole header (more than 8 bytes), so waiting for 8 never stalls one.
    while seen < first.len() {
        seen = stream.peek(&mut first).await?;
        if seen == 0 {
            return Ok(());
        }
        if first[..seen] != PREAMBLE[..seen] {
            break;
        }
        if seen < first.len() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    if seen == first.len() && first == PREAMBLE {
        return service
            .raft
            .serve_connection(stream)
            .await
            .map_err(std::io::Error::other);
    }
    loop {
        let mut size = [0u8; 4];
        match stream.read_exact(&mut size).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let size = i32::from_be_bytes(size);
        if size <= 0 || size as usize > service.max_frame_bytes {
            warn!(
                size,
                "controller listener: frame size out of bounds; closing"
            );
            return Ok(());
        }
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await?;
        let frame = Bytes::from(frame);
        let (header, request) = match arus_protocol::decode_request(frame) {
            Ok(decoded) => decoded,
            Err(e) => {
                warn!(error = %e, "controller listener: request does not decode; closing");
                return Ok(());
            }
        };
        let key = request.api_key();
        let version = header.request_api_version;
        if !CONTROLLER_APIS
            .iter()
            .any(|(k, lo, hi)| *k == key && (*lo..=*hi).contains(&version))
        {
            warn!(
                api = key.name(),
                version, "controller listener: API not served; closing"
            );
            return Ok(());
        }
        let response = handle(service, request, version).await;
        let mut out = BytesMut::new();
        if let Err(e) =
            arus_protocol::encode_response(header.correlation_id, key, version, &response, &mut out)
        {
            warn!(error = %e, "controller listener: response does not encode; closing");
            return Ok(());
        }
        stream.write_all(&out).await?;
    }
}

/// Answers one request as this node's controller listener does.
pub async fn handle(service: &ControllerService, request: Request, version: i16) -> Response {
    match request {
        Request::ApiVersions(_) => Response::ApiVersions(ApiVersionsResponse {
            api_keys: CONTROLLER_APIS
                .iter()
                .map(|(k, lo, hi)| ApiVersion {
                    api_key: k.key(),
                    min_version: *lo,
                    max_version: *hi,
                    ..Default::default()
                })
                .collect(),
            supported_features: if version >= 3 {
                vec![api_versions_response::SupportedFeatureKey {
                    name: "kraft.version".into(),
                    min_version: KRAFT_VERSIONS.0,
                    max_version: KRAFT_VERSIONS.1,
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        Request::AddRaftVoter(r) => {
            Response::AddRaftVoter(crate::voter_apis::add(service, r).await)
        }
        Request::RemoveRaftVoter(r) => {
            Response::RemoveRaftVoter(crate::voter_apis::remove(service, r).await)
        }
        Request::DescribeQuorum(r) => {
            Response::DescribeQuorum(describe_quorum(service, &r, version))
        }
        Request::DescribeCluster(r) => {
            Response::DescribeCluster(describe_cluster(service, &r, version))
        }
        other => {
            let template = other.clone();
            match service.controller.submit(other, version).await {
                Ok(reply) => reply.response,
                Err(ControllerRequestError::NotController { leader }) => {
                    info!(
                        ?leader,
                        api = template.api_key().name(),
                        "not the active controller"
                    );
                    error_response(&template, ErrorCode::NotController)
                }
                Err(ControllerRequestError::Unsupported(api)) => {
                    warn!(api, "controller cannot serve");
                    error_response(&template, ErrorCode::UnsupportedVersion)
                }
            }
        }
    }
}

/// `request`'s response with `code` in every error field, as Kafka's
/// `AbstractRequest.getErrorResponse` builds it.
pub fn error_response(request: &Request, code: ErrorCode) -> Response {
    let code = code.code();
    match request {
        Request::BrokerRegistration(_) => {
            Response::BrokerRegistration(BrokerRegistrationResponse {
                error_code: code,
                broker_epoch: -1,
                ..Default::default()
            })
        }
        Request::BrokerHeartbeat(_) => Response::BrokerHeartbeat(BrokerHeartbeatResponse {
            error_code: code,
            is_fenced: true,
            ..Default::default()
        }),
        Request::UnregisterBroker(_) => Response::UnregisterBroker(UnregisterBrokerResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::AllocateProducerIds(_) => {
            Response::AllocateProducerIds(AllocateProducerIdsResponse {
                error_code: code,
                producer_id_start: -1,
                ..Default::default()
            })
        }
        Request::CreateTopics(r) => Response::CreateTopics(CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| create_topics_response::CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: code,
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        Request::DeleteTopics(r) => Response::DeleteTopics(DeleteTopicsResponse {
            responses: r
                .topic_names
                .iter()
                .map(|n| (Some(n.clone()), Uuid::ZERO))
                .chain(r.topics.iter().map(|t| (t.name.clone(), t.topic_id)))
                .map(
                    |(name, topic_id)| delete_topics_response::DeletableTopicResult {
                        name,
                        topic_id,
                        error_code: code,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }),
        Request::CreatePartitions(r) => Response::CreatePartitions(CreatePartitionsResponse {
            results: r
                .topics
                .iter()
                .map(
                    |t| create_partitions_response::CreatePartitionsTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        ..Default::default()
                    },
                )
                .collect(),
            ..Default::default()
        }),
        Request::IncrementalAlterConfigs(r) => {
            Response::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(
                        |res| incremental_alter_configs_response::AlterConfigsResourceResponse {
                            error_code: code,
                            resource_type: res.resource_type,
                            resource_name: res.resource_name.clone(),
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
        }
        Request::AlterConfigs(r) => Response::AlterConfigs(AlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|res| alter_configs_response::AlterConfigsResourceResponse {
                    error_code: code,
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        Request::ElectLeaders(_) => Response::ElectLeaders(ElectLeadersResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::AlterPartition(_) => {
            Response::AlterPartition(arus_protocol::messages::AlterPartitionResponse {
                error_code: code,
                ..Default::default()
            })
        }
        Request::UpdateFeatures(_) => Response::UpdateFeatures(UpdateFeaturesResponse {
            error_code: code,
            ..Default::default()
        }),
        Request::ListPartitionReassignments(_) => {
            Response::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                error_code: code,
                ..Default::default()
            })
        }
        Request::AlterPartitionReassignments(_) => {
            Response::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                error_code: code,
                ..Default::default()
            })
        }
        other => Response::ApiVersions(ApiVersionsResponse {
            // Not reachable: `handle` answers only CONTROLLER_APIS; a mismatched body makes
            // the encoder refuse it and the connection close.
            error_code: code,
            api_keys: vec![ApiVersion {
                api_key: other.api_key().key(),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

/// The error code in a controller response's error fields (the first non-zero one), used
/// by forwarders to tell NOT_CONTROLLER apart.
pub fn response_error(response: &Response) -> Option<ErrorCode> {
    let code = match response {
        Response::BrokerRegistration(r) => r.error_code,
        Response::BrokerHeartbeat(r) => r.error_code,
        Response::UnregisterBroker(r) => r.error_code,
        Response::AllocateProducerIds(r) => r.error_code,
        Response::CreateTopics(r) => first_error(r.topics.iter().map(|t| t.error_code)),
        Response::DeleteTopics(r) => first_error(r.responses.iter().map(|t| t.error_code)),
        Response::CreatePartitions(r) => first_error(r.results.iter().map(|t| t.error_code)),
        Response::IncrementalAlterConfigs(r) => {
            first_error(r.responses.iter().map(|t| t.error_code))
        }
        Response::AlterConfigs(r) => first_error(r.responses.iter().map(|t| t.error_code)),
        Response::ElectLeaders(r) => r.error_code,
        Response::AlterPartition(r) => r.error_code,
        Response::UpdateFeatures(r) => r.error_code,
        Response::DescribeQuorum(r) => r.error_code,
        Response::ListPartitionReassignments(r) => r.error_code,
        Response::AlterPartitionReassignments(r) => r.error_code,
        _ => 0,
    };
    (code != 0).then(|| ErrorCode::from_code(code)).flatten()
}

/// Kafka's default message of the errors DescribeQuorum answers per partition.
fn kafka_message(error: ErrorCode) -> &'static str {
    match error {
        ErrorCode::UnknownTopicOrPartition => "This server does not host this topic-partition.",
        ErrorCode::NotLeaderOrFollower => {
            "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition."
        }
        other => other.name(),
    }
}

/// The first non-zero of per-item error codes (0 if none).
fn first_error(codes: impl Iterator<Item = i16>) -> i16 {
    codes.into_iter().find(|c| *c != 0).unwrap_or(0)
}

fn millis(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_millis() as i64)
}

/// DescribeQuorum of `__cluster_metadata-0` from this node's quorum status (Kafka's
/// `KafkaRaftClient.handleDescribeQuorumRequest`: only the leader answers; others say
/// NOT_LEADER_OR_FOLLOWER).
/// Kafka's `ControllerApis.handleDescribeCluster` (what an admin client with
/// `--bootstrap-controller` asks first): the controllers, here the quorum's voters at their
/// CONTROLLER listener (Arus keeps no controller registrations), and the active controller.
fn describe_cluster(
    service: &ControllerService,
    request: &DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    const BROKER: i8 = 1;
    const CONTROLLER: i8 = 2;
    let refuse = |code: ErrorCode, message: String| {
        warn!(
            endpoint_type = request.endpoint_type,
            "DescribeCluster: {message}"
        );
        DescribeClusterResponse {
            error_code: code.code(),
            error_message: Some(message),
            ..Default::default()
        }
    };
    let by_version = |v1: ErrorCode| {
        if version == 0 {
            ErrorCode::InvalidRequest
        } else {
            v1
        }
    };
    match request.endpoint_type {
        CONTROLLER => {}
        BROKER => {
            return refuse(
                by_version(ErrorCode::MismatchedEndpointType),
                "The request was sent to an endpoint of type CONTROLLER, but we wanted an endpoint of type BROKER".into(),
            );
        }
        other => {
            return refuse(
                by_version(ErrorCode::UnsupportedEndpointType),
                format!("Unsupported endpoint type {other}"),
            );
        }
    }
    let status = service.quorum.upgrade().map(|q| q.status());
    let brokers: Vec<describe_cluster_response::DescribeClusterBroker> = status
        .iter()
        .flat_map(|s| s.voters.iter())
        .filter_map(|v| {
            let (host, port) = v.address.rsplit_once(':')?;
            Some(describe_cluster_response::DescribeClusterBroker {
                broker_id: v.node_id as i32,
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: port.parse().ok()?,
                rack: None,
                ..Default::default()
            })
        })
        .collect();
    let leader = status
        .as_ref()
        .and_then(|s| s.leader_id)
        .map_or(-1, |l| l as i32);
    DescribeClusterResponse {
        error_code: ErrorCode::None.code(),
        error_message: None,
        endpoint_type: CONTROLLER,
        cluster_id: service.cluster_id.clone(),
        controller_id: if brokers.iter().any(|b| b.broker_id == leader) {
            leader
        } else {
            -1
        },
        brokers,
        cluster_authorized_operations: arus_broker::authorized_operations::cluster(
            request.include_cluster_authorized_operations,
        ),
        ..Default::default()
    }
}

fn describe_quorum(
    service: &ControllerService,
    request: &DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let no_message = || (version >= 2).then(String::new);
    let valid = request.topics.len() == 1
        && request.topics[0].topic_name == "__cluster_metadata"
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    let partition = |error: ErrorCode| PartitionData {
        partition_index: 0,
        error_code: error.code(),
        error_message: (error != ErrorCode::None)
            .then(|| kafka_message(error).to_string())
            .or_else(no_message),
        ..Default::default()
    };
    if !valid {
        return DescribeQuorumResponse {
            error_code: ErrorCode::None.code(),
            error_message: no_message(),
            topics: request
                .topics
                .iter()
                .map(|t| TopicData {
                    topic_name: t.topic_name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| PartitionData {
                            partition_index: p.partition_index,
                            ..partition(ErrorCode::UnknownTopicOrPartition)
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    }
    let Some(quorum) = service.quorum.upgrade() else {
        return DescribeQuorumResponse {
            error_code: ErrorCode::None.code(),
            error_message: no_message(),
            topics: vec![TopicData {
                topic_name: "__cluster_metadata".into(),
                partitions: vec![partition(ErrorCode::NotLeaderOrFollower)],
                ..Default::default()
            }],
            ..Default::default()
        };
    };
    let status = quorum.status();
    if status.leader_id != Some(service.node_id as u64) {
        return DescribeQuorumResponse {
            error_code: ErrorCode::None.code(),
            error_message: no_message(),
            topics: vec![TopicData {
                topic_name: "__cluster_metadata".into(),
                partitions: vec![partition(ErrorCode::NotLeaderOrFollower)],
                ..Default::default()
            }],
            ..Default::default()
        };
    }
    // Fields a version lacks keep their defaults: the encoder refuses to drop a value.
    let replica = |r: &ReplicaStatus| ReplicaState {
        replica_id: r.node_id as i32,
        replica_directory_id: if version < 2 {
            Uuid::ZERO
        } else if r.node_id as i32 == service.node_id {
            service.directory_id
        } else {
            r.directory_id
                .as_deref()
                .and_then(Uuid::parse)
                .or_else(|| {
                    service
                        .voter_directory_ids
                        .get(&(r.node_id as i32))
                        .copied()
                })
                .unwrap_or(Uuid::ZERO)
        },
        log_end_offset: r.log_end_index.map_or(-1, |i| i as i64),
        last_fetch_timestamp: if version >= 1 {
            millis(r.last_fetch)
        } else {
            -1
        },
        last_caught_up_timestamp: if version >= 1 {
            millis(r.last_caught_up)
        } else {
            -1
        },
        ..Default::default()
    };
    DescribeQuorumResponse {
        error_code: ErrorCode::None.code(),
        error_message: no_message(),
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData {
                leader_id: service.node_id,
                leader_epoch: status.term as i32,
                high_watermark: status.high_watermark.map_or(-1, |h| h as i64),
                current_voters: status.voters.iter().map(replica).collect(),
                observers: status.observers.iter().map(replica).collect(),
                ..partition(ErrorCode::None)
            }],
            ..Default::default()
        }],
        nodes: if version >= 2 {
            status
                .voters
                .iter()
                .filter_map(|v| {
                    // The membership's address is the voter's CONTROLLER listener.
                    let (host, port) = v.address.rsplit_once(':')?;
                    let (name, host, port) = match port.parse() {
                        Ok(port) => (service.listener_name.clone(), host.to_string(), port),
                        Err(_) => service.voter_endpoints.get(&(v.node_id as i32))?.clone(),
                    };
                    Some(Node {
                        node_id: v.node_id as i32,
                        listeners: vec![Listener {
                            name,
                            host: host
                                .trim_start_matches('[')
                                .trim_end_matches(']')
                                .to_string(),
                            port,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                })
                .collect()
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}
