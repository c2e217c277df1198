//! Client-metrics subscriptions (KIP-714) through the broker's handlers: created, altered
//! and deleted with IncrementalAlterConfigs and refused as Kafka 4.4 refuses them,
//! described with DescribeConfigs, listed by ListConfigResources, kept across a restart,
//! and served to clients by GetTelemetrySubscriptions / PushTelemetry.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

mod common;

use std::sync::Arc;

use arus_broker::{Broker, Outcome};
use arus_protocol::messages::describe_configs_request::DescribeConfigsResource;
use arus_protocol::messages::describe_configs_response::DescribeConfigsResult;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};

const CLIENT_METRICS: i8 = 16;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

/// As client `app-1` (subscriptions match on the client id).
async fn call(broker: &Arc<Broker>, key: ApiKey, version: i16, req: Request) -> Response {
    common::call_as(broker, "app-1", key, version, req).await
}

async fn alter(
    broker: &Arc<Broker>,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    common::incremental_alter(broker, CLIENT_METRICS, name, ops, validate_only).await
}

async fn describe(broker: &Arc<Broker>, name: &str, synonyms: bool) -> DescribeConfigsResult {
    let req = Request::DescribeConfigs(DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: CLIENT_METRICS,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: synonyms,
        include_documentation: true,
        ..Default::default()
    });
    match call(broker, ApiKey::DescribeConfigs, 4, req).await {
        Response::DescribeConfigs(mut r) => r.results.remove(0),
        other => panic!("{other:?}"),
    }
}

/// (name, value, source) of every described key.
fn values(r: &DescribeConfigsResult) -> Vec<(String, String, i8)> {
    r.configs
        .iter()
        .map(|c| (c.name.clone(), c.value.clone().unwrap(), c.config_source))
        .collect()
}

async fn list(broker: &Arc<Broker>, version: i16, types: Vec<i8>) -> (i16, Vec<(String, i8)>) {
    let req = Request::ListConfigResources(ListConfigResourcesRequest {
        resource_types: types,
        ..Default::default()
    });
    match call(broker, ApiKey::ListConfigResources, version, req).await {
        Response::ListConfigResources(r) => (
            r.error_code,
            r.config_resources
                .into_iter()
                .map(|c| (c.resource_name, c.resource_type))
                .collect(),
        ),
        other => panic!("{other:?}"),
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

#[tokio::test]
async fn refused_changes_carry_kafkas_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    type Op = (&'static str, i8, Option<&'static str>);
    let cases: Vec<(&str, Vec<Op>, ErrorCode, &str)> = vec![
        (
            "",
            vec![("interval.ms", SET, Some("1000"))],
            ErrorCode::InvalidRequest,
            "Subscription name can't be empty",
        ),
        (
            "s1",
            vec![("interval.ms", SET, Some("abc"))],
            ErrorCode::InvalidConfig,
            "Invalid value abc for configuration interval.ms: Not a number of type INT",
        ),
        (
            "s1",
            vec![("interval.ms", SET, Some("99"))],
            ErrorCode::InvalidRequest,
            "Invalid value 99 for interval.ms, interval must be between 100 and 3600000 (1 hour)",
        ),
        (
            "s1",
            vec![("interval.ms", SET, None)],
            ErrorCode::InvalidRequest,
            "Null value not supported for : interval.ms",
        ),
        (
            "s1",
            vec![("foo", SET, Some("1"))],
            ErrorCode::InvalidRequest,
            "Unknown client metrics configuration: foo",
        ),
        (
            "s1",
            vec![("match", SET, Some("foo=bar"))],
            ErrorCode::InvalidConfig,
            "Illegal client matching pattern: foo=bar",
        ),
        (
            "s1",
            vec![("metrics", SET, Some("a,,b"))],
            ErrorCode::InvalidConfig,
            "Configuration 'metrics' values must not be empty.",
        ),
        (
            "s1",
            vec![("metrics", APPEND, Some("x"))],
            ErrorCode::InvalidConfig,
            "Can't APPEND to key metrics because its type is not LIST.",
        ),
    ];
    for (name, ops, code, message) in cases {
        assert_eq!(
            alter(&broker, name, &ops, false).await,
            (code.code(), Some(message.to_string())),
            "{ops:?}"
        );
    }
    // Nothing was created by the refused changes, nor by a validate-only one.
    assert_eq!(
        alter(&broker, "s2", &[("interval.ms", SET, Some("1000"))], true).await,
        (0, None)
    );
    assert_eq!(list(&broker, 0, vec![]).await, (0, vec![]));
    let empty = describe(&broker, "", false).await;
    assert_eq!(
        (empty.error_code, empty.error_message.as_deref()),
        (
            ErrorCode::InvalidRequest.code(),
            Some("Client metrics subscription name must not be empty")
        )
    );
    broker.shutdown();
}

#[tokio::test]
async fn subscriptions_are_described_listed_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[]);
    common::create_topic(&broker, "t1", &[]);
    assert_eq!(
        alter(
            &broker,
            "sub1",
            &[
                (
                    "metrics",
                    SET,
                    Some("org.apache.kafka.producer., org.apache.kafka.consumer.")
                ),
                ("match", SET, Some("client_id=app-.*")),
            ],
            false
        )
        .await,
        (0, None)
    );
    // Unset keys show Kafka's defaults; set ones their own value, with itself as synonym.
    let d = describe(&broker, "sub1", true).await;
    assert_eq!(d.error_code, 0);
    assert_eq!(
        values(&d),
        vec![
            (s("interval.ms"), s("300000"), 5),
            (s("match"), s("client_id=app-.*"), 7),
            (
                s("metrics"),
                s("org.apache.kafka.producer.,org.apache.kafka.consumer."),
                7
            ),
        ]
    );
    assert!(d.configs[0].synonyms.is_empty());
    assert_eq!(d.configs[1].synonyms.len(), 1);
    assert_eq!(d.configs[0].config_type, 3);
    assert_eq!(d.configs[2].config_type, 7);
    assert_eq!(
        d.configs[0].documentation.as_deref(),
        Some("Metrics push interval in milliseconds")
    );
    // A subscription that does not exist is described with the defaults.
    assert_eq!(
        values(&describe(&broker, "never", false).await),
        vec![
            (s("interval.ms"), s("300000"), 5),
            (s("match"), s(""), 5),
            (s("metrics"), s(""), 5)
        ]
    );
    // v0 lists subscriptions only; v1 every type in Kafka's order; an unknown type fails.
    assert_eq!(list(&broker, 0, vec![]).await, (0, vec![(s("sub1"), 16)]));
    assert_eq!(
        list(&broker, 1, vec![]).await,
        (
            0,
            vec![(s("sub1"), 16), (s("1"), 8), (s("1"), 4), (s("t1"), 2)]
        )
    );
    assert_eq!(
        list(&broker, 1, vec![2, 16]).await,
        (0, vec![(s("sub1"), 16), (s("t1"), 2)])
    );
    assert_eq!(
        list(&broker, 1, vec![2, 99]).await,
        (ErrorCode::UnsupportedVersion.code(), vec![])
    );

    broker.shutdown();
    drop(broker);
    let broker = common::open_broker(dir.path(), &[]);
    assert_eq!(
        values(&describe(&broker, "sub1", false).await)[1].1,
        "client_id=app-.*"
    );
    // Deleting every key deletes the subscription.
    assert_eq!(
        alter(
            &broker,
            "sub1",
            &[
                ("metrics", DELETE, None),
                ("match", DELETE, None),
                ("nope", DELETE, None)
            ],
            false
        )
        .await,
        (0, None)
    );
    assert_eq!(list(&broker, 0, vec![]).await, (0, vec![]));
    broker.shutdown();
}

#[tokio::test]
async fn clients_get_their_subscription_and_push() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), &[("telemetry.max.bytes", "16")]);
    alter(
        &broker,
        "producers",
        &[
            ("metrics", SET, Some("org.apache.kafka.producer.")),
            ("interval.ms", SET, Some("60000")),
            ("match", SET, Some("client_id=app-.*")),
        ],
        false,
    )
    .await;
    let get = |id: Uuid| {
        Request::GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest {
            client_instance_id: id,
            ..Default::default()
        })
    };
    let g = match call(
        &broker,
        ApiKey::GetTelemetrySubscriptions,
        0,
        get(Uuid::ZERO),
    )
    .await
    {
        Response::GetTelemetrySubscriptions(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(g.error_code, 0);
    assert_ne!(g.client_instance_id, Uuid::ZERO);
    assert_eq!(g.requested_metrics, vec![s("org.apache.kafka.producer.")]);
    assert_eq!(g.push_interval_ms, 60_000);
    assert_eq!(g.accepted_compression_types, vec![4, 3, 1, 2]);
    assert_eq!(g.telemetry_max_bytes, 16);
    assert!(g.delta_temporality);
    // Asking again at once is throttled.
    match call(
        &broker,
        ApiKey::GetTelemetrySubscriptions,
        0,
        get(g.client_instance_id),
    )
    .await
    {
        Response::GetTelemetrySubscriptions(r) => {
            assert_eq!(r.error_code, ErrorCode::ThrottlingQuotaExceeded.code())
        }
        other => panic!("{other:?}"),
    }
    let push = |sid: i32, metrics: &'static [u8], terminating: bool| {
        Request::PushTelemetry(PushTelemetryRequest {
            client_instance_id: g.client_instance_id,
            subscription_id: sid,
            terminating,
            compression_type: 0,
            metrics: arus_protocol::Bytes::from_static(metrics),
            ..Default::default()
        })
    };
    let code = |r: Response| match r {
        Response::PushTelemetry(r) => r.error_code,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(
            call(
                &broker,
                ApiKey::PushTelemetry,
                0,
                push(g.subscription_id ^ 1, b"x", false)
            )
            .await
        ),
        ErrorCode::UnknownSubscriptionId.code()
    );
    assert_eq!(
        code(
            call(
                &broker,
                ApiKey::PushTelemetry,
                0,
                push(g.subscription_id, b"x", false)
            )
            .await
        ),
        ErrorCode::ThrottlingQuotaExceeded.code()
    );
    assert_eq!(
        code(
            call(
                &broker,
                ApiKey::PushTelemetry,
                0,
                push(g.subscription_id, b"0123456789abcdefXX", true)
            )
            .await
        ),
        ErrorCode::TelemetryTooLarge.code()
    );
    // The terminating flag of the refused push was recorded: nothing more is accepted.
    assert_eq!(
        code(
            call(
                &broker,
                ApiKey::PushTelemetry,
                0,
                push(g.subscription_id, b"x", true)
            )
            .await
        ),
        ErrorCode::InvalidRequest.code()
    );
    // A client no subscription matches is asked for nothing, every 5 minutes.
    let header = RequestHeader {
        request_api_key: ApiKey::GetTelemetrySubscriptions as i16,
        request_api_version: 0,
        correlation_id: 1,
        client_id: Some("other".into()),
        ..Default::default()
    };
    match broker.handle(&header, get(Uuid::ZERO)).await {
        Outcome::Respond(Response::GetTelemetrySubscriptions(r)) => {
            assert!(r.requested_metrics.is_empty());
            assert_eq!(r.push_interval_ms, 300_000);
            // Its first push (right after the Get) is accepted and kept.
            let p = Request::PushTelemetry(PushTelemetryRequest {
                client_instance_id: r.client_instance_id,
                subscription_id: r.subscription_id,
                compression_type: 4,
                metrics: arus_protocol::Bytes::from_static(b"payload"),
                ..Default::default()
            });
            assert_eq!(code(call(&broker, ApiKey::PushTelemetry, 0, p).await), 0);
            let kept = broker.telemetry.lock().payloads();
            assert_eq!(kept.len(), 1);
            assert_eq!(kept[0].0, r.client_instance_id);
            assert_eq!(kept[0].1.metrics, b"payload");
            assert_eq!(kept[0].1.compression_type, 4);
        }
        other => panic!("{other:?}"),
    }
    broker.shutdown();
}
