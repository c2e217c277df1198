//! DescribeCluster.

use arus_protocol::ErrorCode;
use arus_protocol::messages::DescribeClusterRequest;
use arus_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};

use crate::Broker;
use crate::authorized_operations;
use crate::cluster::describe;

/// As Kafka's `handleDescribeCluster`: the alive brokers with their endpoints on `listener`
/// (the request's), all registered ones with `IsFenced` when v2's `IncludeFencedBrokers`
/// asks, and a random alive broker as the controller (KIP-590: clients reach the controller
/// through any broker).
pub fn describe_cluster(
    broker: &Broker,
    request: &DescribeClusterRequest,
    listener: &str,
) -> DescribeClusterResponse {
    let view = broker.cluster.current();
    // Endpoint type 1 is "brokers"; 2 ("controllers") is for KRaft controller clients.
    if request.endpoint_type != 1 {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedEndpointType.code(),
            error_message: Some("Only the brokers endpoint type is supported.".into()),
            endpoint_type: request.endpoint_type,
            cluster_id: view.cluster_id().to_string(),
            ..Default::default()
        };
    }
    let brokers = if request.include_fenced_brokers {
        describe::all_brokers(&view, listener)
    } else {
        describe::alive_brokers(&view, listener)
            .into_iter()
            .map(|n| (n, false))
            .collect()
    };
    DescribeClusterResponse {
        error_code: ErrorCode::None.code(),
        endpoint_type: 1,
        cluster_id: view.cluster_id().to_string(),
        controller_id: view.random_alive_broker().unwrap_or(-1),
        brokers: brokers
            .into_iter()
            .map(|(n, fenced)| DescribeClusterBroker {
                broker_id: n.id,
                host: n.host,
                port: n.port,
                rack: n.rack,
                is_fenced: fenced,
                ..Default::default()
            })
            .collect(),
        cluster_authorized_operations: authorized_operations::cluster(
            request.include_cluster_authorized_operations,
        ),
        ..Default::default()
    }
}
