//! DescribeCluster.

use arus_protocol::ErrorCode;
use arus_protocol::messages::DescribeClusterRequest;
use arus_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};

use crate::Broker;
use crate::authorized_operations;

pub fn describe_cluster(
    broker: &Broker,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    let listener = broker.advertised_listener();
    // Endpoint type 1 is "brokers"; 2 ("controllers") is for KRaft controller clients.
    if request.endpoint_type != 1 {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedEndpointType.code(),
            error_message: Some("Only the brokers endpoint type is supported.".into()),
            endpoint_type: request.endpoint_type,
            cluster_id: broker.topics.cluster_id().to_string(),
            ..Default::default()
        };
    }
    DescribeClusterResponse {
        error_code: ErrorCode::None.code(),
        endpoint_type: 1,
        cluster_id: broker.topics.cluster_id().to_string(),
        controller_id: broker.node_id(),
        brokers: vec![DescribeClusterBroker {
            broker_id: broker.node_id(),
            host: listener.host,
            port: listener.port as i32,
            rack: None,
            ..Default::default()
        }],
        cluster_authorized_operations: authorized_operations::cluster(
            request.include_cluster_authorized_operations,
        ),
        ..Default::default()
    }
}
