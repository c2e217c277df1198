//! Kafka clients (librdkafka via `rdkafka`) configured for this app, and topic set-up.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

pub const BOOKINGS_TOPIC: &str = "ticket-bookings";
pub const DLQ_TOPIC: &str = "ticket-bookings-dlq";

/// How long the producer keeps trying to deliver one record (retries included) before the
/// delivery fails. The API holds the HTTP request open this long at most, then answers 503:
/// the client learns its booking was not queued instead of waiting forever.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A producer for booking records: durable (`acks=all`) and free of duplicates on retry
/// (`enable.idempotence`), batched (`linger.ms`, `batch.size`) and compressed, because under a
/// ticket war thousands of small records arrive per second.
pub fn producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    let producer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "ticketing-api")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "10")
        .set("batch.size", "100000")
        .set(
            "message.timeout.ms",
            DELIVERY_TIMEOUT.as_millis().to_string(),
        )
        // Below message.timeout.ms, so a stuck request is retried at least once in time.
        .set("request.timeout.ms", "2000")
        // Reconnect quickly after a broker restart rather than backing off up to 10 s.
        .set("reconnect.backoff.max.ms", "1000")
        .create()?;
    Ok(producer)
}

/// Creates the topics if they do not exist. Bookings are keyed by concert, so partitions
/// bound how many concerts are processed in parallel, not the order within one concert.
pub async fn ensure_topics(bootstrap: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let topics = [
        NewTopic::new(BOOKINGS_TOPIC, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(DLQ_TOPIC, 1, TopicReplication::Fixed(1)),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(topic) => tracing::info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}
