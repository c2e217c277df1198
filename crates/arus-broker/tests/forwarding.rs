//! A broker in a cluster forwards admin requests to the controller (docs/cluster.md, step 5)
//! and answers the controller's response once its own metadata has the change; its dynamic
//! configs, GROUP/CLIENT_METRICS configs and finalized features follow the metadata with the
//! side effects of a local change; producer ids come from controller blocks. The controller
//! here is a fake: it answers each request and "publishes" the change by calling the
//! broker's `apply_*_from_metadata` / registry methods, then marks the offset applied.

#![allow(clippy::needless_update)] // requests stay valid as specs add fields

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arus_broker::Broker;
use arus_broker::controller_channel::{BoxFuture, ControllerChannel, ForwardError, Forwarded};
use arus_broker::resource_configs::ResourceKind;
use arus_broker::topics::NewTopic;
use arus_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use arus_protocol::messages::create_topics_response::CreatableTopicResult;
use arus_protocol::messages::delete_topics_response::DeletableTopicResult;
use arus_protocol::messages::incremental_alter_configs_request as inc;
use arus_protocol::messages::incremental_alter_configs_response as inc_resp;
use arus_protocol::messages::*;
use arus_protocol::{ApiKey, ErrorCode, Request, Response, Uuid};
use tokio::sync::{Notify, watch};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const GROUP: i8 = 32;
const SET: i8 = 0;
const DELETE: i8 = 1;

/// The fake controller's view of the metadata it publishes.
#[derive(Default)]
struct Image {
    cluster_default: BTreeMap<String, String>,
    groups: BTreeMap<String, BTreeMap<String, String>>,
    next_pid_block: i64,
}

type Publish = Box<dyn FnOnce(&Broker, &mut Image) + Send>;

struct FakeController {
    broker: Mutex<Weak<Broker>>,
    image: Mutex<Image>,
    /// Every forwarded request with its version and timeout.
    forwarded: Mutex<Vec<(Request, i16, Duration)>>,
    timeout: std::sync::atomic::AtomicBool,
    /// When set, changes wait in `pending` until [`FakeController::publish`].
    hold: std::sync::atomic::AtomicBool,
    pending: Mutex<Vec<(i64, Publish)>>,
    next_offset: Mutex<i64>,
    applied: watch::Sender<i64>,
    awaiting: Notify,
}

impl FakeController {
    fn new() -> Arc<FakeController> {
        Arc::new(FakeController {
            broker: Mutex::new(Weak::new()),
            image: Mutex::new(Image::default()),
            forwarded: Mutex::new(Vec::new()),
            timeout: Default::default(),
            hold: Default::default(),
            pending: Mutex::new(Vec::new()),
            next_offset: Mutex::new(0),
            applied: watch::channel(0).0,
            awaiting: Notify::new(),
        })
    }

    /// Applies every held change, then marks their offsets visible.
    fn publish(&self) {
        let pending: Vec<_> = self.pending.lock().unwrap().drain(..).collect();
        let broker = self.broker.lock().unwrap().upgrade().unwrap();
        for (offset, change) in pending {
            change(&broker, &mut self.image.lock().unwrap());
            self.applied.send_modify(|a| *a = (*a).max(offset));
        }
    }

    fn forwarded_keys(&self) -> Vec<ApiKey> {
        self.forwarded
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _, _)| r.api_key())
            .collect()
    }

    fn answer(&self, request: &Request) -> (Response, Publish) {
        match request.clone() {
            Request::CreateTopics(r) => {
                let topics: Vec<CreatableTopicResult> = r
                    .topics
                    .iter()
                    .enumerate()
                    .map(|(i, t)| CreatableTopicResult {
                        name: t.name.clone(),
                        topic_id: Uuid([i as u8 + 1; 16]),
                        num_partitions: t.num_partitions.max(1),
                        replication_factor: 1,
                        error_message: None,
                        configs: None,
                        ..Default::default()
                    })
                    .collect();
                let publish: Publish = Box::new(move |b: &Broker, _: &mut Image| {
                    if r.validate_only {
                        return;
                    }
                    for t in r.topics {
                        b.topics
                            .create(NewTopic {
                                name: t.name,
                                partitions: t.num_partitions.max(1),
                                replication_factor: 1,
                                configs: t
                                    .configs
                                    .into_iter()
                                    .filter_map(|c| c.value.map(|v| (c.name, v)))
                                    .collect(),
                            })
                            .unwrap();
                    }
                });
                (
                    Response::CreateTopics(CreateTopicsResponse {
                        topics,
                        ..Default::default()
                    }),
                    publish,
                )
            }
            Request::DeleteTopics(r) => {
                let names = r.topic_names.clone();
                let responses = names
                    .iter()
                    .map(|n| DeletableTopicResult {
                        name: Some(n.clone()),
                        error_message: None,
                        ..Default::default()
                    })
                    .collect();
                let publish: Publish = Box::new(move |b: &Broker, _: &mut Image| {
                    for n in names {
                        b.topics.delete(&n).unwrap();
                    }
                });
                (
                    Response::DeleteTopics(DeleteTopicsResponse {
                        responses,
                        ..Default::default()
                    }),
                    publish,
                )
            }
            Request::IncrementalAlterConfigs(r) => {
                let responses = r
                    .resources
                    .iter()
                    .map(|res| inc_resp::AlterConfigsResourceResponse {
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        error_message: None,
                        ..Default::default()
                    })
                    .collect();
                let publish: Publish = Box::new(move |b: &Broker, image: &mut Image| {
                    for res in r.resources {
                        let map = match (res.resource_type, res.resource_name.as_str()) {
                            (BROKER, "") => &mut image.cluster_default,
                            (GROUP, name) => image.groups.entry(name.to_string()).or_default(),
                            _ => continue,
                        };
                        for c in res.configs {
                            match c.config_operation {
                                SET => {
                                    map.insert(c.name, c.value.unwrap());
                                }
                                _ => {
                                    map.remove(&c.name);
                                }
                            }
                        }
                    }
                    b.apply_dynamic_configs_from_metadata(
                        image.cluster_default.clone(),
                        BTreeMap::new(),
                    );
                    b.apply_resource_configs_from_metadata(
                        ResourceKind::Group,
                        image.groups.clone(),
                    );
                });
                (
                    Response::IncrementalAlterConfigs(IncrementalAlterConfigsResponse {
                        responses,
                        ..Default::default()
                    }),
                    publish,
                )
            }
            Request::UpdateFeatures(r) => {
                let levels: BTreeMap<String, i16> = r
                    .feature_updates
                    .iter()
                    .map(|u| (u.feature.clone(), u.max_version_level))
                    .collect();
                let publish: Publish = Box::new(move |b: &Broker, _: &mut Image| {
                    let mut all = b.features.snapshot().levels;
                    all.extend(levels);
                    b.apply_features_from_metadata(all, 77);
                });
                (
                    Response::UpdateFeatures(UpdateFeaturesResponse {
                        error_message: Some("decided by the controller".into()),
                        ..Default::default()
                    }),
                    publish,
                )
            }
            Request::ElectLeaders(_) => (
                Response::ElectLeaders(ElectLeadersResponse {
                    error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                    ..Default::default()
                }),
                Box::new(|_: &Broker, _: &mut Image| {}),
            ),
            Request::AlterPartitionReassignments(_) => (
                Response::AlterPartitionReassignments(AlterPartitionReassignmentsResponse {
                    error_message: Some("from the controller".into()),
                    ..Default::default()
                }),
                Box::new(|_: &Broker, _: &mut Image| {}),
            ),
            Request::ListPartitionReassignments(_) => (
                Response::ListPartitionReassignments(ListPartitionReassignmentsResponse {
                    error_message: Some("from the controller".into()),
                    ..Default::default()
                }),
                Box::new(|_: &Broker, _: &mut Image| {}),
            ),
            Request::AllocateProducerIds(_) => {
                let mut image = self.image.lock().unwrap();
                let start = 1000 + image.next_pid_block;
                image.next_pid_block += 10;
                (
                    Response::AllocateProducerIds(AllocateProducerIdsResponse {
                        producer_id_start: start,
                        producer_id_len: 10,
                        ..Default::default()
                    }),
                    Box::new(|_: &Broker, _: &mut Image| {}),
                )
            }
            other => panic!("not a forwarded API: {:?}", other.api_key()),
        }
    }
}

impl ControllerChannel for FakeController {
    fn forward(
        &self,
        request: Request,
        version: i16,
        timeout: Duration,
    ) -> BoxFuture<Result<Forwarded, ForwardError>> {
        self.forwarded
            .lock()
            .unwrap()
            .push((request.clone(), version, timeout));
        if self.timeout.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async move { Err(ForwardError::Timeout(timeout)) });
        }
        let (response, publish) = self.answer(&request);
        let offset = {
            let mut next = self.next_offset.lock().unwrap();
            *next += 1;
            *next
        };
        self.pending.lock().unwrap().push((offset, publish));
        if !self.hold.load(std::sync::atomic::Ordering::SeqCst) {
            self.publish();
        }
        Box::pin(async move {
            Ok(Forwarded {
                response,
                metadata_offset: offset,
            })
        })
    }

    fn await_metadata(&self, offset: i64, _timeout: Duration) -> BoxFuture<bool> {
        let mut applied = self.applied.subscribe();
        self.awaiting.notify_one();
        Box::pin(async move { applied.wait_for(|a| *a >= offset).await.is_ok() })
    }
}

async fn clustered(
    props: &[(&str, &str)],
) -> (tempfile::TempDir, Arc<Broker>, Arc<FakeController>) {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::open_broker(dir.path(), props);
    let fake = FakeController::new();
    *fake.broker.lock().unwrap() = Arc::downgrade(&broker);
    broker.set_controller_channel(fake.clone()).unwrap();
    (dir, broker, fake)
}

fn topic(name: &str, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: 2,
        replication_factor: -1,
        configs: configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: k.to_string(),
                value: Some(v.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_topics_answers_once_the_metadata_has_the_topic() {
    let (_dir, broker, fake) = clustered(&[]).await;
    fake.hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let request = Request::CreateTopics(CreateTopicsRequest {
        topics: vec![
            topic("orders", &[("retention.ms", "1000")]),
            topic("twice", &[]),
            topic("twice", &[]),
            topic("__cluster_metadata", &[]),
        ],
        timeout_ms: 1234,
        ..Default::default()
    });
    let b = broker.clone();
    let call =
        tokio::spawn(async move { common::call(&b, ApiKey::CreateTopics, 7, request).await });
    fake.awaiting.notified().await;
    // The controller answered, but this broker has not seen the change: no answer yet.
    assert!(!call.is_finished());
    assert!(broker.topics.get("orders").is_none());
    fake.publish();
    let Response::CreateTopics(r) = call.await.unwrap() else {
        panic!()
    };
    assert!(broker.topics.get("orders").is_some());
    // Only the well-formed entry travelled, with the request's timeout and version.
    let forwarded = fake.forwarded.lock().unwrap();
    let (Request::CreateTopics(sent), 7, timeout) = &forwarded[0] else {
        panic!("{forwarded:?}")
    };
    assert_eq!(*timeout, Duration::from_millis(1234));
    assert_eq!(
        sent.topics
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["orders"]
    );
    let answers: Vec<(&str, i16, Option<&str>)> = r
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.error_code, t.error_message.as_deref()))
        .collect();
    assert_eq!(
        answers,
        [
            ("orders", 0, None),
            (
                "twice",
                ErrorCode::InvalidRequest.code(),
                Some("Duplicate topic name.")
            ),
            (
                "__cluster_metadata",
                ErrorCode::InvalidRequest.code(),
                Some("Creation of internal topic __cluster_metadata is prohibited.")
            ),
        ]
    );
    // The controller's topic id and counts; the configs described by the broker (v5+).
    let orders = &r.topics[0];
    assert_eq!(orders.topic_id, Uuid([1; 16]));
    assert_eq!(orders.num_partitions, 2);
    let configs = orders.configs.as_ref().unwrap();
    let retention = configs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.config_source, 1, "TOPIC_CONFIG");
    assert!(configs.iter().any(|c| c.name == "cleanup.policy"));
}

#[tokio::test]
async fn a_controller_timeout_is_request_timed_out_per_topic_and_resource() {
    let (_dir, broker, fake) = clustered(&[("request.timeout.ms", "4321")]).await;
    fake.timeout
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let Response::CreateTopics(r) = common::call(
        &broker,
        ApiKey::CreateTopics,
        7,
        Request::CreateTopics(CreateTopicsRequest {
            topics: vec![topic("a", &[]), topic("b", &[])],
            timeout_ms: 500,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    for t in &r.topics {
        assert_eq!(t.error_code, ErrorCode::RequestTimedOut.code(), "{t:?}");
        assert!(
            t.error_message
                .as_deref()
                .unwrap()
                .contains("did not answer")
        );
    }
    assert_eq!(r.topics.len(), 2);
    let Response::DeleteTopics(r) = common::call(
        &broker,
        ApiKey::DeleteTopics,
        5,
        Request::DeleteTopics(DeleteTopicsRequest {
            topic_names: vec!["a".into()],
            timeout_ms: 500,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, ErrorCode::RequestTimedOut.code());
    assert_eq!(r.responses[0].name.as_deref(), Some("a"));
    // A config change without its own timeout gets request.timeout.ms.
    assert_eq!(
        common::incremental_alter(
            &broker,
            TOPIC,
            "a",
            &[("retention.ms", SET, Some("1"))],
            false
        )
        .await
        .0,
        ErrorCode::RequestTimedOut.code()
    );
    {
        let forwarded = fake.forwarded.lock().unwrap();
        assert_eq!(forwarded.last().unwrap().2, Duration::from_millis(4321));
        assert_eq!(forwarded[0].2, Duration::from_millis(500));
    }
    let Response::UpdateFeatures(r) = common::call(
        &broker,
        ApiKey::UpdateFeatures,
        1,
        Request::UpdateFeatures(UpdateFeaturesRequest {
            timeout_ms: 100,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, ErrorCode::RequestTimedOut.code());
}

fn resource(t: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> inc::AlterConfigsResource {
    inc::AlterConfigsResource {
        resource_type: t,
        resource_name: name.into(),
        configs: ops
            .iter()
            .map(|(k, op, v)| inc::AlterableConfig {
                name: k.to_string(),
                config_operation: *op,
                value: v.map(str::to_string),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn config_changes_split_between_broker_and_controller_as_kafka() {
    let (_dir, broker, fake) = clustered(&[("node.id", "1")]).await;
    common::create_topic(&broker, "t", &[]);
    let request = Request::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
        resources: vec![
            resource(TOPIC, "t", &[("retention.ms", SET, Some("5000"))]),
            resource(BROKER, "", &[("log.retention.ms", SET, Some("7000"))]),
            resource(BROKER, "7", &[("log.retention.ms", SET, Some("1"))]),
            resource(BROKER, "x", &[("log.retention.ms", SET, Some("1"))]),
            resource(BROKER, "1", &[("num.partitions", SET, Some("3"))]),
            resource(
                GROUP,
                "g",
                &[("consumer.heartbeat.interval.ms", SET, Some("7000"))],
            ),
            resource(GROUP, "g2", &[("a", SET, Some("1")), ("a", DELETE, None)]),
            resource(TOPIC, "dup", &[]),
            resource(TOPIC, "dup", &[]),
            resource(99, "z", &[]),
            resource(TOPIC, "n", &[("retention.ms", SET, None)]),
            resource(BROKER_LOGGER, "1", &[("root", SET, Some("INFO"))]),
        ],
        validate_only: false,
        ..Default::default()
    });
    let Response::IncrementalAlterConfigs(r) =
        common::call(&broker, ApiKey::IncrementalAlterConfigs, 1, request).await
    else {
        panic!()
    };
    let answers: Vec<(i8, &str, i16, Option<&str>)> = r
        .responses
        .iter()
        .map(|a| {
            (
                a.resource_type,
                a.resource_name.as_str(),
                a.error_code,
                a.error_message.as_deref(),
            )
        })
        .collect();
    let invalid = ErrorCode::InvalidRequest.code();
    assert_eq!(
        answers,
        [
            (TOPIC, "t", 0, None),
            (BROKER, "", 0, None),
            (
                BROKER,
                "7",
                invalid,
                Some("Unexpected broker id, expected 1, but received 7")
            ),
            (
                BROKER,
                "x",
                invalid,
                Some("Node id must be an integer, but it is: x")
            ),
            (
                BROKER,
                "1",
                invalid,
                Some("Cannot update these configs dynamically: [num.partitions]")
            ),
            (GROUP, "g", 0, None),
            (
                GROUP,
                "g2",
                invalid,
                Some("Error due to duplicate config keys")
            ),
            (
                TOPIC,
                "dup",
                invalid,
                Some("Each resource must appear at most once.")
            ),
            (
                TOPIC,
                "dup",
                invalid,
                Some("Each resource must appear at most once.")
            ),
            (99, "z", invalid, Some("Unknown resource type 99")),
            (
                TOPIC,
                "n",
                invalid,
                Some("Null value not supported for : retention.ms")
            ),
            (BROKER_LOGGER, "1", 0, None),
        ]
    );
    // Exactly the controller's resources travelled, in one request.
    let forwarded = fake.forwarded.lock().unwrap();
    assert_eq!(forwarded.len(), 1);
    let Request::IncrementalAlterConfigs(sent) = &forwarded[0].0 else {
        panic!()
    };
    let sent: Vec<(i8, &str)> = sent
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    assert_eq!(sent, [(TOPIC, "t"), (BROKER, ""), (GROUP, "g")]);
    drop(forwarded);
    // The published cluster default reached the topic without an override, as a local
    // change would have.
    assert_eq!(
        broker.topics.get("t").unwrap().settings().retention_ms,
        7000
    );
    // No file: the metadata is the record.
    assert!(!_dir.path().join("dynamic-configs.json").exists());
    assert!(!_dir.path().join("resource-configs.json").exists());
}

#[tokio::test]
async fn delete_topics_disabled_is_answered_by_the_broker() {
    let (_dir, broker, fake) = clustered(&[("delete.topic.enable", "false")]).await;
    for (version, code) in [
        (2, ErrorCode::InvalidRequest),
        (5, ErrorCode::TopicDeletionDisabled),
    ] {
        let Response::DeleteTopics(r) = common::call(
            &broker,
            ApiKey::DeleteTopics,
            version,
            Request::DeleteTopics(DeleteTopicsRequest {
                topic_names: vec!["a".into(), "b".into()],
                timeout_ms: 500,
                ..Default::default()
            }),
        )
        .await
        else {
            panic!()
        };
        assert_eq!(r.responses.len(), 2);
        assert!(r.responses.iter().all(|t| t.error_code == code.code()));
    }
    assert!(fake.forwarded_keys().is_empty());
}

#[tokio::test]
async fn delete_topics_forwards_well_formed_entries() {
    let (_dir, broker, fake) = clustered(&[]).await;
    common::create_topic(&broker, "gone", &[]);
    let Response::DeleteTopics(r) = common::call(
        &broker,
        ApiKey::DeleteTopics,
        6,
        Request::DeleteTopics(DeleteTopicsRequest {
            topics: vec![
                delete_topics_request::DeleteTopicState {
                    name: None,
                    topic_id: Uuid::ZERO,
                    ..Default::default()
                },
                delete_topics_request::DeleteTopicState {
                    name: Some("x".into()),
                    topic_id: Uuid([9; 16]),
                    ..Default::default()
                },
            ],
            timeout_ms: 500,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    let messages: Vec<_> = r
        .responses
        .iter()
        .map(|t| (t.error_code, t.error_message.as_deref()))
        .collect();
    assert_eq!(
        messages,
        [
            (
                ErrorCode::InvalidRequest.code(),
                Some("Neither topic name nor id were specified.")
            ),
            (
                ErrorCode::InvalidRequest.code(),
                Some("You may not specify both topic name and topic id.")
            ),
        ]
    );
    assert!(fake.forwarded_keys().is_empty());
    let Response::DeleteTopics(r) = common::call(
        &broker,
        ApiKey::DeleteTopics,
        5,
        Request::DeleteTopics(DeleteTopicsRequest {
            topic_names: vec!["gone".into()],
            timeout_ms: 500,
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.responses[0].error_code, 0);
    assert!(broker.topics.get("gone").is_none());
}

#[tokio::test]
async fn features_elections_and_reassignments_answer_the_controllers_response() {
    let (_dir, broker, fake) = clustered(&[]).await;
    let Response::UpdateFeatures(r) = common::call(
        &broker,
        ApiKey::UpdateFeatures,
        1,
        Request::UpdateFeatures(UpdateFeaturesRequest {
            timeout_ms: 100,
            feature_updates: vec![update_features_request::FeatureUpdateKey {
                feature: "transaction.version".into(),
                max_version_level: 0,
                upgrade_type: 3,
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        r.error_message.as_deref(),
        Some("decided by the controller")
    );
    // Published before the answer: the transaction coordinator already serves level 0.
    assert_eq!(broker.features.level("transaction.version"), 0);
    assert_eq!(broker.txns.transaction_version(), 0);
    assert_eq!(broker.features.snapshot().epoch, 77);
    let Response::ElectLeaders(r) = common::call(
        &broker,
        ApiKey::ElectLeaders,
        2,
        Request::ElectLeaders(ElectLeadersRequest::default()),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, ErrorCode::ClusterAuthorizationFailed.code());
    let Response::AlterPartitionReassignments(r) = common::call(
        &broker,
        ApiKey::AlterPartitionReassignments,
        0,
        Request::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default()),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_message.as_deref(), Some("from the controller"));
    let Response::ListPartitionReassignments(r) = common::call(
        &broker,
        ApiKey::ListPartitionReassignments,
        0,
        Request::ListPartitionReassignments(ListPartitionReassignmentsRequest::default()),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_message.as_deref(), Some("from the controller"));
    // ACLs stay local (SECURITY_DISABLED without an authorizer).
    let Response::CreateAcls(r) = common::call(
        &broker,
        ApiKey::CreateAcls,
        3,
        Request::CreateAcls(CreateAclsRequest {
            creations: vec![create_acls_request::AclCreation {
                resource_type: 2,
                resource_name: "t".into(),
                resource_pattern_type: 3,
                principal: "User:a".into(),
                host: "*".into(),
                operation: 2,
                permission_type: 3,
                ..Default::default()
            }],
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, ErrorCode::SecurityDisabled.code());
    assert_eq!(
        fake.forwarded_keys(),
        [
            ApiKey::UpdateFeatures,
            ApiKey::ElectLeaders,
            ApiKey::AlterPartitionReassignments,
            ApiKey::ListPartitionReassignments
        ]
    );
}

#[tokio::test]
async fn driven_stores_have_the_side_effects_of_local_changes() {
    // The same change made locally on a single node ...
    let local_dir = tempfile::tempdir().unwrap();
    let local = common::open_broker(local_dir.path(), &[]);
    common::create_topic(&local, "t", &[]);
    assert_eq!(
        common::incremental_alter(
            &local,
            BROKER,
            "",
            &[("log.segment.bytes", SET, Some("2097152"))],
            false
        )
        .await
        .0,
        0
    );
    // ... and arriving with the metadata.
    let (dir, broker, _fake) = clustered(&[]).await;
    common::create_topic(&broker, "t", &[]);
    broker.apply_dynamic_configs_from_metadata(
        BTreeMap::from([("log.segment.bytes".to_string(), "2097152".to_string())]),
        BTreeMap::new(),
    );
    let settings = broker.topics.get("t").unwrap().settings();
    assert_eq!(settings.segment_bytes, 2_097_152);
    assert_eq!(
        settings.segment_bytes,
        local.topics.get("t").unwrap().settings().segment_bytes
    );
    assert_eq!(
        broker.config.dynamic().get(
            arus_broker::dynamic_config::DynamicScope::ClusterDefault,
            "log.segment.bytes"
        ),
        Some("2097152".into())
    );
    // Removed from the metadata: the static default again.
    broker.apply_dynamic_configs_from_metadata(BTreeMap::new(), BTreeMap::new());
    assert_eq!(
        broker.topics.get("t").unwrap().settings().segment_bytes,
        1_073_741_824
    );
    assert!(!dir.path().join("dynamic-configs.json").exists());

    // Group configs reach the consumer-group coordinator.
    broker.apply_resource_configs_from_metadata(
        ResourceKind::Group,
        BTreeMap::from([(
            "g1".to_string(),
            BTreeMap::from([(
                "consumer.heartbeat.interval.ms".to_string(),
                "7000".to_string(),
            )]),
        )]),
    );
    broker.groups.wait_loaded().await;
    let heartbeat = |group: &str| {
        Request::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest {
            group_id: group.into(),
            member_id: "m".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 60_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(vec![]),
            ..Default::default()
        })
    };
    let interval = |r: Response| match r {
        Response::ConsumerGroupHeartbeat(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            r.heartbeat_interval_ms
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        interval(common::call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, heartbeat("g1")).await),
        7000
    );
    broker.apply_resource_configs_from_metadata(ResourceKind::Group, BTreeMap::new());
    assert_eq!(
        interval(common::call(&broker, ApiKey::ConsumerGroupHeartbeat, 1, heartbeat("g3")).await),
        5000
    );

    // Client-metrics subscriptions are re-armed.
    broker.apply_resource_configs_from_metadata(
        ResourceKind::ClientMetrics,
        BTreeMap::from([(
            "producers".to_string(),
            BTreeMap::from([
                (
                    "metrics".to_string(),
                    "org.apache.kafka.producer.".to_string(),
                ),
                ("interval.ms".to_string(), "60000".to_string()),
            ]),
        )]),
    );
    let Response::GetTelemetrySubscriptions(g) = common::call(
        &broker,
        ApiKey::GetTelemetrySubscriptions,
        0,
        Request::GetTelemetrySubscriptions(GetTelemetrySubscriptionsRequest::default()),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(
        g.requested_metrics,
        vec!["org.apache.kafka.producer.".to_string()]
    );
    assert_eq!(g.push_interval_ms, 60_000);
    assert!(!dir.path().join("resource-configs.json").exists());

    // Finalized features: the levels, the epoch, and the transaction coordinator.
    let mut levels = broker.features.snapshot().levels;
    levels.insert("transaction.version".into(), 1);
    broker.apply_features_from_metadata(levels, 42);
    assert_eq!(broker.txns.transaction_version(), 1);
    let Response::ApiVersions(v) = common::call(
        &broker,
        ApiKey::ApiVersions,
        3,
        Request::ApiVersions(ApiVersionsRequest {
            client_software_name: "test".into(),
            client_software_version: "1".into(),
            ..Default::default()
        }),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(v.finalized_features_epoch, 42);
    let tv = v
        .finalized_features
        .iter()
        .find(|f| f.name == "transaction.version")
        .unwrap();
    assert_eq!(tv.max_version_level, 1);
}

#[tokio::test]
async fn producer_ids_come_from_controller_blocks() {
    let (_dir, broker, fake) = clustered(&[("node.id", "3")]).await;
    broker.set_broker_epoch(17);
    let init = || async {
        match common::call(
            &broker,
            ApiKey::InitProducerId,
            4,
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }),
        )
        .await
        {
            Response::InitProducerId(r) => (r.error_code, r.producer_id),
            other => panic!("{other:?}"),
        }
    };
    // No block yet: retriable, and the request is on its way.
    assert_eq!(
        init().await,
        (ErrorCode::CoordinatorLoadInProgress.code(), -1)
    );
    let mut ids = Vec::new();
    let mut refusals = 0;
    while ids.len() < 25 {
        match init().await {
            (0, id) => ids.push(id),
            (code, _) => {
                assert_eq!(code, ErrorCode::CoordinatorLoadInProgress.code());
                refusals += 1;
                assert!(refusals < 10_000, "no block arrived");
                tokio::task::yield_now().await;
            }
        }
    }
    // Blocks of 10 from 1000: prefetched at 90%, so no gap and no id twice.
    assert_eq!(ids, (1000..1025).collect::<Vec<i64>>());
    let forwarded = fake.forwarded.lock().unwrap();
    for (r, version, _) in forwarded.iter() {
        let Request::AllocateProducerIds(r) = r else {
            panic!()
        };
        assert_eq!((r.broker_id, r.broker_epoch, *version), (3, 17, 0));
    }
    assert_eq!(forwarded.len(), 3);
}
