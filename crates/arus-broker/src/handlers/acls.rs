//! DescribeAcls, CreateAcls and DeleteAcls without an authorizer.
//!
//! Arus has no authorizer (Kafka's `authorizer.class.name` unset), so it answers as Kafka 4.4
//! does then: SECURITY_DISABLED on the whole DescribeAcls, and on every creation and every
//! deletion filter, with Kafka's messages (they differ between the three APIs, as in
//! `KafkaApis` / `AclApis`). MirrorMaker 2's ACL sync reads that code as "nothing to sync".
//! A request with an UNKNOWN (code 0) resource type, pattern type, operation or permission is
//! one Kafka cannot even parse (`*AclsRequest.validate`): it closes the connection, and so
//! does Arus.

use arus_protocol::ErrorCode;
use arus_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use arus_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsResponse};
use arus_protocol::messages::{
    CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, DescribeAclsResponse,
};
use tracing::info;

/// `AclApis.handleDescribeAcls` when no authorizer is configured.
pub const DESCRIBE_MESSAGE: &str = "No Authorizer is configured on the broker";
/// `AclApis.handleCreateAcls` / `handleDeleteAcls` when no authorizer is configured.
pub const ALTER_MESSAGE: &str = "No Authorizer is configured.";

/// The code Kafka's enums give an unknown value; a request carrying it does not parse.
const UNKNOWN: i8 = 0;

/// Why a request is refused before any answer (the connection is closed), or `None`.
pub fn describe_unparsable(r: &DescribeAclsRequest) -> Option<String> {
    [
        r.resource_type_filter,
        r.pattern_type_filter,
        r.operation,
        r.permission_type,
    ]
    .contains(&UNKNOWN)
    .then(|| "DescribeAclsRequest contains UNKNOWN elements".to_string())
}

pub fn create_unparsable(r: &CreateAclsRequest) -> Option<String> {
    r.creations
        .iter()
        .any(|c| {
            [
                c.resource_type,
                c.resource_pattern_type,
                c.operation,
                c.permission_type,
            ]
            .contains(&UNKNOWN)
        })
        .then(|| "CreatableAcls contain unknown elements".to_string())
}

pub fn delete_unparsable(r: &DeleteAclsRequest) -> Option<String> {
    r.filters
        .iter()
        .any(|f| {
            [
                f.resource_type_filter,
                f.pattern_type_filter,
                f.operation,
                f.permission_type,
            ]
            .contains(&UNKNOWN)
        })
        .then(|| "Filters contain UNKNOWN elements".to_string())
}

pub fn describe(_request: &DescribeAclsRequest) -> DescribeAclsResponse {
    info!("DescribeAcls refused: no authorizer is configured");
    DescribeAclsResponse {
        error_code: ErrorCode::SecurityDisabled.code(),
        error_message: Some(DESCRIBE_MESSAGE.into()),
        resources: vec![],
        ..Default::default()
    }
}

pub fn create(request: &CreateAclsRequest) -> CreateAclsResponse {
    if !request.creations.is_empty() {
        info!(
            creations = request.creations.len(),
            "CreateAcls refused: no authorizer is configured"
        );
    }
    CreateAclsResponse {
        results: request
            .creations
            .iter()
            .map(|_| AclCreationResult {
                error_code: ErrorCode::SecurityDisabled.code(),
                error_message: Some(ALTER_MESSAGE.into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub fn delete(request: &DeleteAclsRequest) -> DeleteAclsResponse {
    if !request.filters.is_empty() {
        info!(
            filters = request.filters.len(),
            "DeleteAcls refused: no authorizer is configured"
        );
    }
    DeleteAclsResponse {
        filter_results: request
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult {
                error_code: ErrorCode::SecurityDisabled.code(),
                error_message: Some(ALTER_MESSAGE.into()),
                matching_acls: vec![],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
