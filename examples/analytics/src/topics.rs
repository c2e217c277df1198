//! The four topics and their configs, created at start-up.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

pub const USER_EVENTS: &str = "user-events";
pub const PAGE_VIEWS: &str = "page-views";
/// Compacted: one record per aggregate key, the latest value wins. This is the app's state
/// store; it is replayed at start-up (see `pipeline::rebuild`).
pub const ANALYTICS_EVENTS: &str = "analytics-events";
/// Dead letters: records a consumer could not process, with the reason in a header.
pub const ERROR_EVENTS: &str = "error-events";

/// The topics both consumer groups read.
pub const INPUT_TOPICS: [&str; 2] = [USER_EVENTS, PAGE_VIEWS];

const DAY_MS: &str = "86400000";
const WEEK_MS: &str = "604800000";

struct TopicSpec {
    name: &'static str,
    partitions: i32,
    configs: &'static [(&'static str, &'static str)],
}

const TOPICS: [TopicSpec; 4] = [
    TopicSpec {
        name: USER_EVENTS,
        partitions: 3,
        configs: &[("retention.ms", WEEK_MS), ("compression.type", "gzip")],
    },
    TopicSpec {
        name: PAGE_VIEWS,
        partitions: 3,
        configs: &[("retention.ms", DAY_MS)],
    },
    // A single partition keeps the state store totally ordered, so replaying it is a plain
    // "last write per key wins".
    TopicSpec {
        name: ANALYTICS_EVENTS,
        partitions: 1,
        configs: &[("cleanup.policy", "compact")],
    },
    TopicSpec {
        name: ERROR_EVENTS,
        partitions: 1,
        configs: &[("retention.ms", WEEK_MS)],
    },
];

/// Creates the topics, treating "already exists" as success so every start-up can run it.
/// Existing topics are left as they are: changing a live topic's config is an operator's
/// decision, not something an app should do behind their back.
pub async fn ensure_topics(bootstrap: &str, replication: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")?;
    let new_topics: Vec<NewTopic> = TOPICS
        .iter()
        .map(|spec| {
            spec.configs.iter().fold(
                NewTopic::new(
                    spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(replication),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(new_topics.iter(), &opts)
        .await
        .context("CreateTopics request")?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, "created topic"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic already exists")
            }
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}
