//! ApiVersions: advertise exactly what is implemented (KIP-511 fallback in
//! [`unsupported_version`]).

use arus_protocol::ErrorCode;
use arus_protocol::messages::ApiVersionsRequest;
use arus_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use crate::broker::SUPPORTED_APIS;

fn ranges() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|(key, min)| ApiVersion {
            api_key: *key as i16,
            min_version: *min,
            max_version: key.valid_versions().1,
            ..Default::default()
        })
        .collect()
}

pub fn handle(request: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    if version >= 3 {
        tracing::debug!(
            client_software_name = %request.client_software_name,
            client_software_version = %request.client_software_version,
            "client software"
        );
    }
    ApiVersionsResponse {
        error_code: ErrorCode::None.code(),
        api_keys: ranges(),
        ..Default::default()
    }
}

/// The answer to an ApiVersions request whose version is above ours: encoded as v0 with
/// `UNSUPPORTED_VERSION` and our ranges, so the client retries with a version we support.
pub fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: ranges(),
        ..Default::default()
    }
}
