//! ApiVersions: advertise exactly what is implemented (KIP-511 fallback in
//! [`unsupported_version`]), and, from v5, tell a client that reached the wrong cluster or
//! node to rebootstrap (KIP-1242).

use arus_protocol::messages::ApiVersionsRequest;
use arus_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use arus_protocol::{ApiKey, ErrorCode};

use crate::broker::{SUPPORTED_APIS, supported_versions};
use crate::features::{Finalized, SUPPORTED};

/// The lowest Produce version ApiVersions advertises, below the lowest served (3). Kafka 4.0
/// removed Produce v0-2 but still advertises them, because librdkafka refuses a broker whose
/// Produce range does not start at 0 (KAFKA-18659, `ApiKeys.PRODUCE_API_VERSIONS_RESPONSE_MIN_VERSION`);
/// a v0-2 Produce that actually arrives closes the connection, in Kafka as in Arus.
pub const PRODUCE_ADVERTISED_MIN_VERSION: i16 = 0;

/// The range ApiVersions advertises for `key`: the served range ([`supported_versions`]),
/// except Produce's lower bound (see [`PRODUCE_ADVERTISED_MIN_VERSION`]). The upper bound is
/// always served: a client that picks the highest advertised version is never disconnected.
pub fn advertised_versions(key: ApiKey) -> Option<(i16, i16)> {
    let (min, max) = supported_versions(key)?;
    Some(if key == ApiKey::Produce {
        (PRODUCE_ADVERTISED_MIN_VERSION, max)
    } else {
        (min, max)
    })
}

fn ranges() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .filter_map(|(key, _, _)| {
            let (min, max) = advertised_versions(*key)?;
            Some(ApiVersion {
                api_key: *key as i16,
                min_version: min,
                max_version: max,
                ..Default::default()
            })
        })
        .collect()
}

/// Kafka's `ApiVersionsRequest.SOFTWARE_NAME_VERSION_PATTERN`,
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`, matched against the whole string.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match b {
        [] => false,
        [only] => edge(only),
        [first, middle @ .., last] => edge(first) && edge(last) && middle.iter().all(inner),
    }
}

/// Kafka's `ApiVersionsRequest.isValid`: from v5 ClusterId and NodeId come together or not
/// at all; from v3 the client software name and version match the pattern above.
fn is_valid(request: &ApiVersionsRequest, version: i16) -> bool {
    if version >= 5 && (request.cluster_id.is_none() != (request.node_id == -1)) {
        return false;
    }
    version < 3
        || (valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
}

/// Who answers: the checks of v5 compare the request with these.
pub struct Identity<'a> {
    pub cluster_id: &'a str,
    pub node_id: i32,
}

/// An error answer: Kafka's `ApiVersionsRequest.getErrorResponse` lists no APIs (except for
/// UNSUPPORTED_VERSION, see [`unsupported_version`]).
fn error(code: ErrorCode) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: code.code(),
        ..Default::default()
    }
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

/// `kraft.version`, the metadata quorum's own feature, is supported (0: static voters, 1:
/// dynamic voters, KIP-853) by a node of a KRaft cluster, which puts it among the finalized
/// levels (at 0 for a static quorum, which is then not listed as finalized, as in Kafka).
fn with_kraft_version(
    mut supported: Vec<SupportedFeatureKey>,
    features: &Finalized,
    version: i16,
) -> Vec<SupportedFeatureKey> {
    if version >= 4 && features.levels.contains_key("kraft.version") {
        supported.push(SupportedFeatureKey {
            name: "kraft.version".into(),
            min_version: 0,
            max_version: 1,
            ..Default::default()
        });
        supported.sort_by(|a, b| a.name.cmp(&b.name));
    }
    supported
}

/// The answer: the served ranges, and the feature fields (tagged, v3+) from `features`.
pub fn handle(
    request: &ApiVersionsRequest,
    version: i16,
    me: &Identity<'_>,
    features: &Finalized,
) -> ApiVersionsResponse {
    if version >= 3 {
        tracing::debug!(
            client_software_name = %request.client_software_name,
            client_software_version = %request.client_software_version,
            "client software"
        );
    }
    if !is_valid(request, version) {
        tracing::warn!(
            version,
            client_software_name = %request.client_software_name,
            client_software_version = %request.client_software_version,
            cluster_id = ?request.cluster_id,
            node_id = request.node_id,
            "invalid ApiVersions request (software name/version must match [a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?, ClusterId and NodeId must come together)"
        );
        return error(ErrorCode::InvalidRequest);
    }
    // KIP-1242: a client that names the cluster and node it means to reach, and reached
    // another, must rebootstrap (its bootstrap address now leads elsewhere).
    if version >= 5
        && let Some(cluster_id) = &request.cluster_id
        && (cluster_id != me.cluster_id || request.node_id != me.node_id)
    {
        tracing::info!(
            wanted_cluster_id = %cluster_id,
            wanted_node_id = request.node_id,
            cluster_id = me.cluster_id,
            node_id = me.node_id,
            "ApiVersions for another cluster or node: REBOOTSTRAP_REQUIRED"
        );
        return error(ErrorCode::RebootstrapRequired);
    }
    ApiVersionsResponse {
        error_code: ErrorCode::None.code(),
        api_keys: ranges(),
        supported_features: with_kraft_version(supported_features(version), features, version),
        finalized_features_epoch: features.epoch,
        finalized_features: finalized_features(features),
        ..Default::default()
    }
}

/// The answer to an ApiVersions request whose version is above ours: encoded as v0 with
/// `UNSUPPORTED_VERSION` and, as Kafka, only ApiVersions' own range, so the client retries
/// with a version we support.
pub fn unsupported_version() -> ApiVersionsResponse {
    let (min, max) = advertised_versions(ApiKey::ApiVersions).unwrap_or((0, 0));
    ApiVersionsResponse {
        error_code: ErrorCode::UnsupportedVersion.code(),
        api_keys: vec![ApiVersion {
            api_key: ApiKey::ApiVersions as i16,
            min_version: min,
            max_version: max,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Identity<'static> = Identity {
        cluster_id: "cluster-a",
        node_id: 1,
    };

    fn request(name: &str, cluster_id: Option<&str>, node_id: i32) -> ApiVersionsRequest {
        ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: "4.4.0".into(),
            cluster_id: cluster_id.map(Into::into),
            node_id,
            ..Default::default()
        }
    }

    #[test]
    fn advertised_ranges_are_the_served_ranges_but_produce_starts_at_0() {
        let response = handle(&request("java", None, -1), 5, &ME, &Finalized::fresh());
        assert_eq!(response.error_code, 0);
        assert_eq!(response.api_keys.len(), SUPPORTED_APIS.len());
        for v in &response.api_keys {
            let key = ApiKey::from_i16(v.api_key).unwrap();
            let (min, max) = supported_versions(key).unwrap();
            let min = if key == ApiKey::Produce { 0 } else { min };
            assert_eq!((v.min_version, v.max_version), (min, max), "{}", key.name());
        }
        assert_eq!(supported_versions(ApiKey::Produce).unwrap().0, 3);
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
        let v4 = handle(&request("java", None, -1), 4, &ME, &f);
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
        let v3 = handle(&request("java", None, -1), 3, &ME, &f);
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

    #[test]
    fn v5_wrong_cluster_or_node_must_rebootstrap() {
        let rebootstrap = ErrorCode::RebootstrapRequired.code();
        for (cluster, node) in [("cluster-b", 1), ("cluster-a", 2)] {
            let r = handle(
                &request("java", Some(cluster), node),
                5,
                &ME,
                &Finalized::fresh(),
            );
            assert_eq!(r.error_code, rebootstrap, "{cluster} {node}");
            assert!(r.api_keys.is_empty());
        }
        assert_eq!(
            handle(
                &request("java", Some("cluster-a"), 1),
                5,
                &ME,
                &Finalized::fresh()
            )
            .error_code,
            0
        );
        // Below v5 the fields do not exist.
        assert_eq!(
            handle(
                &request("java", Some("cluster-b"), 2),
                4,
                &ME,
                &Finalized::fresh()
            )
            .error_code,
            0
        );
    }

    #[test]
    fn v5_cluster_id_and_node_id_come_together() {
        let invalid = ErrorCode::InvalidRequest.code();
        assert_eq!(
            handle(
                &request("java", Some("cluster-a"), -1),
                5,
                &ME,
                &Finalized::fresh()
            )
            .error_code,
            invalid
        );
        assert_eq!(
            handle(&request("java", None, 1), 5, &ME, &Finalized::fresh()).error_code,
            invalid
        );
    }

    #[test]
    fn software_name_and_version_follow_kafkas_pattern() {
        for ok in [
            "a",
            "apache-kafka-java",
            "librdkafka",
            "1.2.3-SNAPSHOT",
            "a.b",
        ] {
            assert!(valid_software_field(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a b", "a_b", ".", "é"] {
            assert!(!valid_software_field(bad), "{bad}");
        }
        let r = handle(&request("bad name!", None, -1), 3, &ME, &Finalized::fresh());
        assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
        assert!(r.api_keys.is_empty());
        // v0-2 carry no software fields.
        assert_eq!(
            handle(&request("", None, -1), 2, &ME, &Finalized::fresh()).error_code,
            0
        );
    }

    #[test]
    fn unsupported_version_lists_only_api_versions() {
        let r = unsupported_version();
        assert_eq!(r.error_code, ErrorCode::UnsupportedVersion.code());
        assert_eq!(r.api_keys.len(), 1);
        assert_eq!(r.api_keys[0].api_key, ApiKey::ApiVersions as i16);
        assert_eq!(r.api_keys[0].max_version, 5);
    }
}
