//! Producers. The HTTP handlers share one idempotent producer; each consumer group has its
//! own transactional one, so that its dead letters, its state records and its offsets are
//! committed together or not at all.

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

/// Bound on each transaction control call (begin, offsets, commit, abort).
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
}

#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
}

impl Publisher {
    /// `delivery_timeout` bounds how long a request waits for the broker before the API
    /// answers 503: librdkafka retries internally until then.
    pub fn new(bootstrap: &str, delivery_timeout: Duration) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Every write is acknowledged by all in-sync replicas and de-duplicated across
            // retries, so a 201 from the API means the event is durably in the log, once.
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .set("linger.ms", "5")
            .create()
            .context("creating the producer")?;
        Ok(Self { producer })
    }

    /// A transactional producer. The fixed `transactional_id` also fences a stale instance:
    /// once a new one calls `init_transactions`, the old one's transactions are refused, so two
    /// copies of a group's pipeline can never both commit state. Blocking: call at start-up
    /// from `spawn_blocking`.
    pub fn transactional(bootstrap: &str, transactional_id: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", transactional_id)
            .set("linger.ms", "5")
            .create()
            .context("creating the transactional producer")?;
        producer
            .init_transactions(TXN_TIMEOUT)
            .with_context(|| format!("init_transactions for {transactional_id}"))?;
        Ok(Self { producer })
    }

    /// Transaction control calls block on the coordinator; `block_in_place` lets the runtime
    /// move other tasks off this worker meanwhile.
    pub fn begin(&self) -> Result<(), KafkaError> {
        tokio::task::block_in_place(|| self.producer.begin_transaction())
    }

    /// Adds the consumer's offsets to the open transaction and commits it: the records sent
    /// since `begin` and the group's new offsets become visible atomically.
    pub fn commit(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), KafkaError> {
        tokio::task::block_in_place(|| {
            if offsets.count() > 0 {
                self.producer
                    .send_offsets_to_transaction(offsets, group, TXN_TIMEOUT)?;
            }
            self.producer.commit_transaction(TXN_TIMEOUT)
        })
    }

    pub fn abort(&self) -> Result<(), KafkaError> {
        tokio::task::block_in_place(|| self.producer.abort_transaction(TXN_TIMEOUT))
    }

    /// Sends one record and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<Ack, KafkaError> {
        let headers = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(*v),
            })
        });
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        // Queue timeout 0: if librdkafka's local queue is full, fail now (backpressure to the
        // caller) instead of piling up waiting requests.
        self.producer
            .send(record, Timeout::After(Duration::ZERO))
            .await
            .map(|d| Ack {
                partition: d.partition,
                offset: d.offset,
            })
            .map_err(|(e, _)| e)
    }

    /// Sends a JSON value (never a tombstone); used for the compacted state topic.
    pub async fn send_json(
        &self,
        topic: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<Ack, KafkaError> {
        let payload = serde_json::to_vec(value).unwrap_or_default();
        self.send(topic, key, &payload, &[]).await
    }

    /// Waits for everything in flight, so a graceful shutdown loses nothing.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(timeout) {
            tracing::warn!(error = %e, "producer flush at shutdown");
        }
    }
}
