//! Kafka clients (librdkafka via `rdkafka`) configured for this app, and topic set-up.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

pub const BOOKINGS_TOPIC: &str = "ticket-bookings";
pub const DLQ_TOPIC: &str = "ticket-bookings-dlq";

/// How long the producer keeps trying to deliver one record (retries included) before the
/// delivery fails. The API holds the HTTP request open this long at most, then answers 503:
/// the client learns its booking was not queued instead of waiting forever.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Routes librdkafka's own logs to `tracing` one level lower than rdkafka's default context:
/// librdkafka reports every refused reconnect attempt while a broker restarts as an error,
/// which would flood the logs of an app that rides out the outage as designed. The outcome
/// that matters (a booking answered 503, a commit retried) is logged where it happens.
pub struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_librdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(error, reason);
    }
}

pub fn log_librdkafka(level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
            tracing::error!(target: "librdkafka", fac, "{message}")
        }
        RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => {
            tracing::debug!(target: "librdkafka", fac, "{message}")
        }
        _ => tracing::trace!(target: "librdkafka", fac, "{message}"),
    }
}

pub fn client_error(error: KafkaError, reason: &str) {
    match error.rdkafka_error_code() {
        // Transient: librdkafka reconnects by itself.
        Some(
            RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve,
        ) => tracing::debug!(target: "librdkafka", %error, reason),
        _ => tracing::warn!(target: "librdkafka", %error, reason),
    }
}

/// A producer for booking records: durable (`acks=all`) and free of duplicates on retry
/// (`enable.idempotence`), batched (`linger.ms`, `batch.size`) and compressed, because under a
/// ticket war thousands of small records arrive per second.
pub fn producer(bootstrap: &str) -> anyhow::Result<FutureProducer<Quiet>> {
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
        .create_with_context(Quiet)?;
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
