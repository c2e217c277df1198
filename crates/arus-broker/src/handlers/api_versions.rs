//! ApiVersions: advertise exactly what is implemented (KIP-511 fallback in
//! [`unsupported_version`]).

use arus_protocol::ErrorCode;
use arus_protocol::messages::ApiVersionsRequest;
use arus_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};

use crate::broker::{SUPPORTED_APIS, supported_versions};
use crate::features::{Finalized, SUPPORTED};

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

/// The supported features as Kafka's `ApiVersionsResponse` lists them: below v4, features
/// whose minimum is 0 are left out, because older clients cannot parse them (KAFKA-17492).
fn supported_features(version: i16) -> Vec<SupportedFeatureKey> {
    SUPPORTED
        .iter()
        .filter(|f| version >= 4 || f.min != 0)
        .map(|f| SupportedFeatureKey {
            name: f.name.to_string(),
            min_version: f.min,
            max_version: f.max,
            ..Default::default()
        })
        .collect()
}

/// The finalized levels; a feature at level 0 is not finalized and not listed.
fn finalized_features(f: &Finalized) -> Vec<FinalizedFeatureKey> {
    f.levels
        .iter()
        .filter(|(_, level)| **level != 0)
        .map(|(name, level)| FinalizedFeatureKey {
            name: name.clone(),
            max_version_level: *level,
            min_version_level: *level,
            ..Default::default()
        })
        .collect()
}

/// The answer, with the feature fields (tagged, v3+) from `features`.
pub fn handle(
    request: &ApiVersionsRequest,
    version: i16,
    features: &Finalized,
) -> ApiVersionsResponse {
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
        supported_features: supported_features(version),
        finalized_features_epoch: features.epoch,
        finalized_features: finalized_features(features),
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
        let response = handle(&ApiVersionsRequest::default(), 3, &Finalized::fresh());
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
        assert_eq!(end_txn.max_version, 5, "EndTxn v5 is transactions v2");
    }

    #[test]
    fn features_follow_kafkas_rules_per_version() {
        let mut f = Finalized::fresh();
        f.epoch = 7;
        f.levels.insert("group.version".into(), 0);
        let v4 = handle(&ApiVersionsRequest::default(), 4, &f);
        let names: Vec<&str> = v4
            .supported_features
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(
            names,
            ["group.version", "metadata.version", "transaction.version"]
        );
        let tv = v4
            .supported_features
            .iter()
            .find(|k| k.name == "transaction.version")
            .unwrap();
        assert_eq!((tv.min_version, tv.max_version), (0, 2));
        assert_eq!(v4.finalized_features_epoch, 7);
        let finalized: Vec<(&str, i16)> = v4
            .finalized_features
            .iter()
            .map(|k| (k.name.as_str(), k.max_version_level))
            .collect();
        // group.version at 0 is not finalized.
        assert_eq!(
            finalized,
            [("metadata.version", 33), ("transaction.version", 2)]
        );
        // v3 leaves out the features whose minimum is 0 (KAFKA-17492).
        let v3 = handle(&ApiVersionsRequest::default(), 3, &f);
        let names: Vec<&str> = v3
            .supported_features
            .iter()
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(names, ["metadata.version"]);
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
