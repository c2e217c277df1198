//! A clean shutdown (SIGTERM) while clients keep sending requests loses nothing: requests that
//! arrive during the shutdown cannot re-create or rewrite topics. (Found by the ticketing
//! example: a Metadata request with auto-creation, answered after the topics were closed,
//! re-created a 6-partition topic with 1 partition and saved a metadata file without the
//! other topics.)

mod common;

use std::time::Duration;

use arus_client::Client;
use arus_protocol::Request;
use arus_protocol::messages::MetadataRequest;
use arus_protocol::messages::metadata_request::MetadataRequestTopic;
use common::BrokerProcess;

/// Sends auto-creating Metadata requests for `topics` until the connection fails.
async fn hammer(addr: String, topics: Vec<&'static str>) -> usize {
    let Ok(mut client) = Client::connect(&addr).await else {
        return 0;
    };
    let mut sent = 0;
    loop {
        let request = MetadataRequest {
            topics: Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic {
                        name: Some((*t).to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: true,
            ..Default::default()
        };
        if client.send(Request::Metadata(request)).await.is_err() {
            return sent;
        }
        sent += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_keeps_every_topic_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for round in 0..3 {
        let broker = BrokerProcess::start_in(&data, &[]);
        let mut admin = Client::connect(&broker.addr).await.unwrap();
        if round == 0 {
            admin.create_topic("wide", 6, 1, &[]).await.unwrap();
            admin.create_topic("side", 2, 1, &[]).await.unwrap();
        }
        assert_eq!(
            admin.partition_count("wide").await.unwrap(),
            6,
            "round {round}"
        );
        assert_eq!(
            admin.partition_count("side").await.unwrap(),
            2,
            "round {round}"
        );
        drop(admin);
        let workers: Vec<_> = (0..4)
            .map(|_| tokio::spawn(hammer(broker.addr.clone(), vec!["wide", "side"])))
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || broker.stop())
            .await
            .unwrap();
        let mut sent = 0;
        for w in workers {
            sent += w.await.unwrap();
        }
        assert!(sent > 100, "the clients hardly ran ({sent} requests)");
    }
    let broker = BrokerProcess::start_in(&data, &[]);
    let mut admin = Client::connect(&broker.addr).await.unwrap();
    assert_eq!(admin.partition_count("wide").await.unwrap(), 6);
    assert_eq!(admin.partition_count("side").await.unwrap(), 2);
}
