//! GetTelemetrySubscriptions and PushTelemetry (KIP-714), driving
//! [`crate::telemetry::TelemetryState`] with the wall clock and the client's attributes.
//!
//! Kafka 4.4 serves these two APIs only when a metrics reporter implementing
//! `ClientTelemetry` is configured; Arus always serves them (it keeps the last payload of
//! each client itself), so clients that find them advertised push their metrics.
//!
//! The client attributes matched against subscriptions are the client id (request header)
//! and the source address; the software name and version (sent in ApiVersions) and the
//! source port are not known to the handler and read as "unknown" (Kafka's
//! `ClientInformation.UNKNOWN_NAME_OR_VERSION`).

use arus_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, PushTelemetryRequest,
    PushTelemetryResponse,
};
use arus_protocol::{ErrorCode, Uuid};
use tracing::{debug, info};

use crate::Broker;
use crate::broker::now_ms;
use crate::telemetry::{ACCEPTED_COMPRESSION_TYPES, ClientAttributes};

const UNKNOWN: &str = "unknown";

fn attributes(client_id: &str, peer: Option<std::net::IpAddr>) -> ClientAttributes {
    ClientAttributes {
        client_id: client_id.to_string(),
        software_name: UNKNOWN.into(),
        software_version: UNKNOWN.into(),
        source_address: peer.map(|ip| ip.to_string()).unwrap_or_default(),
        source_port: UNKNOWN.into(),
    }
}

fn random_uuid() -> Uuid {
    Uuid(*uuid::Uuid::new_v4().as_bytes())
}

pub fn get_subscriptions(
    broker: &Broker,
    request: &GetTelemetrySubscriptionsRequest,
    client_id: &str,
    peer: Option<std::net::IpAddr>,
) -> GetTelemetrySubscriptionsResponse {
    let mut telemetry = broker.telemetry.lock();
    let max_bytes = telemetry.max_push_bytes().min(i32::MAX as usize) as i32;
    match telemetry.get_subscriptions(
        request.client_instance_id,
        attributes(client_id, peer),
        random_uuid,
        now_ms(),
    ) {
        Ok(grant) => GetTelemetrySubscriptionsResponse {
            error_code: ErrorCode::None.code(),
            client_instance_id: grant.client_instance_id,
            subscription_id: grant.subscription_id,
            accepted_compression_types: ACCEPTED_COMPRESSION_TYPES.to_vec(),
            push_interval_ms: grant.push_interval_ms,
            telemetry_max_bytes: max_bytes,
            delta_temporality: true,
            requested_metrics: grant.requested_metrics,
            ..Default::default()
        },
        Err((code, reason)) => {
            debug!(code = code.name(), %reason, "GetTelemetrySubscriptions refused");
            GetTelemetrySubscriptionsResponse {
                error_code: code.code(),
                ..Default::default()
            }
        }
    }
}

pub fn push(
    broker: &Broker,
    request: &PushTelemetryRequest,
    client_id: &str,
    peer: Option<std::net::IpAddr>,
) -> PushTelemetryResponse {
    let result = broker.telemetry.lock().push(
        request.client_instance_id,
        request.subscription_id,
        request.terminating,
        request.compression_type,
        &request.metrics,
        attributes(client_id, peer),
        now_ms(),
    );
    let code = match result {
        Ok(()) => ErrorCode::None,
        Err((code, reason)) => {
            if code == ErrorCode::ThrottlingQuotaExceeded {
                debug!(%reason, "PushTelemetry throttled");
            } else {
                info!(code = code.name(), %reason, "PushTelemetry refused");
            }
            code
        }
    };
    PushTelemetryResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
