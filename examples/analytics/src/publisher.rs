//! The one producer of the app, shared by the HTTP handlers (events), the consumers (dead
//! letters) and the aggregators (state snapshots).

use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

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
            // retries, so "200 OK" from the API means the event is durably in the log once.
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

    /// Sends a tombstone-free JSON value; used for the compacted state topic.
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
