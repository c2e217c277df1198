//! Metadata requests naming a topic by id. The Java consumer (4.x, `group.protocol=consumer`)
//! asks for assigned topic ids it cannot name with `name = ""` (the field's default) and a
//! non-zero `topicId`; Kafka's `KafkaApis` then looks topics up by id. Without this a
//! regex-subscribed Java consumer never resolves its assignment.

use std::collections::BTreeMap;

use arus_broker::topics::NewTopic;
use arus_broker::{Broker, BrokerConfig, handlers};
use arus_protocol::messages::MetadataRequest;
use arus_protocol::messages::metadata_request::MetadataRequestTopic;
use arus_protocol::{ErrorCode, Uuid};

#[test]
fn a_topic_id_wins_over_an_empty_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut props = BTreeMap::new();
    props.insert("log.dirs".to_string(), dir.path().display().to_string());
    let broker = Broker::open(BrokerConfig::from_properties(props).unwrap()).unwrap();
    let t = broker
        .topics
        .create(NewTopic {
            name: "rx-a".into(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::new(),
        })
        .unwrap();
    let ask = |name: Option<&str>, id: Uuid| {
        handlers::metadata::handle(
            &broker,
            MetadataRequest {
                topics: Some(vec![MetadataRequestTopic {
                    name: name.map(str::to_string),
                    topic_id: id,
                }]),
                ..Default::default()
            },
            12,
        )
        .topics
    };
    for name in [Some(""), None] {
        let r = ask(name, t.id);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].error_code, 0, "{name:?}");
        assert_eq!(r[0].name.as_deref(), Some("rx-a"));
        assert_eq!(r[0].topic_id, t.id);
        assert_eq!(r[0].partitions.len(), 2);
    }
    let r = ask(Some(""), Uuid([5; 16]));
    assert_eq!(r[0].error_code, ErrorCode::UnknownTopicId.code());
    // By name, as before.
    let r = ask(Some("rx-a"), Uuid::ZERO);
    assert_eq!((r[0].error_code, r[0].topic_id), (0, t.id));
}
