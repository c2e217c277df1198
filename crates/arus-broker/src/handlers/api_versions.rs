//! ApiVersions: advertise exactly what is implemented (KIP-511 fallback in
//! [`unsupported_version`]).

use arus_protocol::ErrorCode;
use arus_protocol::messages::ApiVersionsRequest;
use arus_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use crate::broker::{SUPPORTED_APIS, supported_versions};

/// Exactly the ranges the connection layer serves ([`supported_versions`], caps included): a
/// client that picks the highest advertised version must never be disconnected for it.
fn ranges() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .filter_map(|(key, _, _)| {
            let (min, max) = supported_versions(*key)?;
            Some(ApiVersion {
                api_key: *key as i16,
                min_version: min,
                max_version: max,
                ..Default::default()
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::ApiKey;

    #[test]
    fn advertised_ranges_are_the_served_ranges() {
        let response = handle(&ApiVersionsRequest::default(), 3);
        assert_eq!(response.api_keys.len(), SUPPORTED_APIS.len());
        for v in &response.api_keys {
            let key = ApiKey::from_i16(v.api_key).unwrap();
            assert_eq!(
                Some((v.min_version, v.max_version)),
                supported_versions(key),
                "{}",
                key.name()
            );
        }
        let end_txn = response
            .api_keys
            .iter()
            .find(|v| v.api_key == ApiKey::EndTxn as i16)
            .unwrap();
        assert_eq!(end_txn.max_version, 4, "EndTxn v5 is transactions v2");
    }

    #[test]
    fn served_ranges_lie_within_the_codec() {
        for (key, min, max) in SUPPORTED_APIS {
            let (lo, hi) = key.valid_versions();
            assert!(
                lo <= *min && min <= max && max <= &hi,
                "{} serves {min}..={max}, the codec {lo}..={hi}",
                key.name()
            );
        }
    }
}
