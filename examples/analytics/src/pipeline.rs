//! Consumer-group processing and the state rebuild that precedes it.
//!
//! Each group runs the consume-transform-produce loop of Kafka's exactly-once pattern: read a
//! short batch, fold it into the group's aggregate, then in ONE transaction write the batch's
//! dead letters, publish the changed aggregate keys to the compacted `analytics-events`, and
//! commit the offsets (`send_offsets_to_transaction`). Either all of it becomes visible or none
//! does, so the committed offsets always match the committed state: a restart, even after a
//! crash, replays `analytics-events` (read_committed) and resumes at the committed offsets,
//! and neither loses nor counts an event twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::future::try_join_all;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::aggregates::{Aggregate, AnalyticsAggregate, SourceRecord, StatsAggregate};
use crate::publisher::Publisher;
use crate::topics::{ANALYTICS_EVENTS, ERROR_EVENTS, INPUT_TOPICS};

/// How long a batch may collect records before it is flushed. Bounds both the staleness of
/// the published state and the time between commits.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
const MAX_BATCH: usize = 500;
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const REBUILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Notices partitions being revoked. The aggregate lives in memory and already includes the
/// batch being read; if the group takes partitions away mid-batch, their records will be
/// delivered again from the committed offsets and would be counted twice. The app is meant to
/// be the single member of its groups, so a revocation while running means it stalled past
/// its session timeout or a second copy joined: the batch is abandoned and the app stops, to
/// restart from the committed state.
#[derive(Default)]
pub struct GroupContext {
    revoked: AtomicBool,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && partitions.count() > 0
        {
            self.revoked.store(true, Ordering::SeqCst);
        }
    }
}

pub type GroupConsumer = StreamConsumer<GroupContext>;

pub fn group_consumer(bootstrap: &str, group: &str) -> anyhow::Result<GroupConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        // Offsets are committed by `flush`, in the transaction that publishes the batch's
        // effects, never by a background timer that could commit unprocessed records.
        .set("enable.auto.commit", "false")
        // Only committed transactions: another pipeline's aborted writes are not events.
        .set("isolation.level", "read_committed")
        // A new group starts from the beginning so it sees every event retained.
        .set("auto.offset.reset", "earliest")
        // A crashed instance's partitions move to its replacement after this long (the
        // librdkafka default, 45 s, would stall a restarted app for as long).
        .set("session.timeout.ms", "10000")
        .create_with_context(GroupContext::default())
        .with_context(|| format!("creating the consumer for group {group}"))
}

fn to_record(msg: &BorrowedMessage<'_>) -> SourceRecord {
    let headers = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    SourceRecord {
        topic: msg.topic().to_owned(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        payload: msg.payload().map(<[u8]>::to_vec),
        timestamp_ms: msg.timestamp().to_millis(),
        headers,
    }
}

/// State of one group's loop between flushes.
struct Batch {
    /// Next offset to commit per partition: the last processed offset + 1, as Kafka expects.
    positions: HashMap<(String, i32), i64>,
    dead_letters: Vec<(SourceRecord, String)>,
    records: usize,
}

pub struct Pipeline<A: Aggregate> {
    pub group: String,
    pub consumer: GroupConsumer,
    pub aggregate: Arc<Mutex<A>>,
    /// This group's own transactional producer (see `Publisher::transactional`).
    pub publisher: Publisher,
}

impl<A: Aggregate> Pipeline<A> {
    /// Runs until `shutdown` flips, then commits and leaves the group. An error (the broker
    /// refusing state or offsets past the producer's timeout) ends the loop: the app stops
    /// and a restart resumes from the last consistent point.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        self.consumer
            .subscribe(&INPUT_TOPICS)
            .context("subscribing")?;
        tracing::info!(group = %self.group, "consumer group started");
        let result = self.run_loop(&mut shutdown).await;
        // Dropping a group consumer closes it: librdkafka sends LeaveGroup so the partitions
        // are reassigned at once rather than after the session timeout. The close blocks, so
        // keep it off the async workers.
        let group = self.group.clone();
        let consumer = self.consumer;
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .context("closing the consumer")?;
        tracing::info!(%group, "consumer group closed");
        result
    }

    async fn run_loop(&self, shutdown: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut batch = Batch {
            positions: HashMap::new(),
            dead_letters: Vec::new(),
            records: 0,
        };
        loop {
            // Idle wait: nothing is pending here, so stopping now loses nothing.
            let first = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                msg = self.consumer.recv() => msg,
            };
            // A revocation before this point touched nothing in memory (librdkafka drops
            // what it had fetched for revoked partitions); from here on it would.
            self.consumer
                .context()
                .revoked
                .store(false, Ordering::SeqCst);
            self.handle(first, &mut batch);
            let deadline = Instant::now() + BATCH_WINDOW;
            while batch.records < MAX_BATCH {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(msg) => self.handle(msg, &mut batch),
                    Err(_) => break,
                }
            }
            self.flush(&mut batch).await?;
        }
    }

    fn handle(&self, msg: Result<BorrowedMessage<'_>, KafkaError>, batch: &mut Batch) {
        let msg = match msg {
            Ok(msg) => msg,
            // librdkafka reports transient conditions (a broker connection dropped, a
            // rebalance) here and recovers by itself.
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "consumer error");
                return;
            }
        };
        let rec = to_record(&msg);
        batch.records += 1;
        batch
            .positions
            .insert((rec.topic.clone(), rec.partition), rec.offset + 1);
        let mut agg = self.aggregate.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(reason) = agg.apply(&rec) {
            agg.record_dead_letter();
            tracing::debug!(group = %self.group, topic = %rec.topic, offset = rec.offset, %reason, "dead letter");
            batch.dead_letters.push((rec, reason));
        }
    }

    /// Commits the batch: dead letters, state and offsets in one transaction. On failure the
    /// transaction is aborted and the loop ends: the in-memory aggregate already includes the
    /// batch, so the only consistent way on is a restart from the committed state.
    async fn flush(&self, batch: &mut Batch) -> anyhow::Result<()> {
        if batch.positions.is_empty() {
            return Ok(()); // the window only saw consumer errors
        }
        if self.consumer.context().revoked.load(Ordering::SeqCst) {
            bail!(
                "group {}: partitions were revoked in the middle of a batch; stopping so a \
                 restart resumes from the committed state",
                self.group
            );
        }
        let dead_letters = std::mem::take(&mut batch.dead_letters);
        let dirty = self
            .aggregate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take_dirty();
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in batch.positions.drain() {
            offsets
                .add_partition_offset(&topic, partition, Offset::Offset(next))
                .context("building the offsets")?;
        }
        batch.records = 0;
        let group = self
            .consumer
            .group_metadata()
            .context("the consumer has no group metadata")?;

        self.publisher.begin().context("beginning a transaction")?;
        let result = async {
            try_join_all(
                dead_letters
                    .iter()
                    .map(|(rec, reason)| self.dead_letter(rec, reason)),
            )
            .await
            .context("writing dead letters")?;
            try_join_all(dirty.iter().map(|(key, value)| async move {
                let key = format!("{}/{key}", self.group);
                self.publisher
                    .send_json(ANALYTICS_EVENTS, &key, value)
                    .await
            }))
            .await
            .context("publishing aggregates")?;
            self.publisher
                .commit(&offsets, &group)
                .with_context(|| format!("committing the transaction of group {}", self.group))
        }
        .await;
        if result.is_err()
            && let Err(e) = self.publisher.abort()
        {
            tracing::warn!(group = %self.group, error = %e, "abort_transaction");
        }
        result
    }

    /// Forwards an unprocessable record with everything needed to diagnose and replay it:
    /// the original key, value and headers, plus where it came from and why it failed.
    async fn dead_letter(&self, rec: &SourceRecord, reason: &str) -> Result<(), KafkaError> {
        let partition = rec.partition.to_string();
        let offset = rec.offset.to_string();
        let mut headers: Vec<(&str, &[u8])> = rec
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        headers.extend([
            ("error", reason.as_bytes()),
            ("source-topic", rec.topic.as_bytes()),
            ("source-partition", partition.as_bytes()),
            ("source-offset", offset.as_bytes()),
            ("consumer-group", self.group.as_bytes()),
        ]);
        let key = rec
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        self.publisher
            .send(
                ERROR_EVENTS,
                &key,
                rec.payload.as_deref().unwrap_or_default(),
                &headers,
            )
            .await
            .map(|_| ())
    }
}

/// Reads `analytics-events` from the beginning up to its current end and restores both
/// aggregates from it. Must finish before the groups resume, since their committed offsets
/// only make sense together with this state, and must start after the groups' transactional
/// producers are initialised: that aborts any transaction a crashed run left open, which
/// would otherwise hold back what a read_committed reader may see (the last stable offset).
/// Blocking: call from `spawn_blocking`.
pub fn rebuild(
    bootstrap: &str,
    (stats_group, stats): (&str, &mut StatsAggregate),
    (analytics_group, analytics): (&str, &mut AnalyticsAggregate),
) -> anyhow::Result<u64> {
    // The reader assigns partitions itself and never commits; librdkafka still insists on a
    // group.id for `assign`, so it gets one of its own that no offsets are ever stored under.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{analytics_group}-state-rebuild"))
        .set("enable.auto.commit", "false")
        // State from aborted transactions (a pipeline that failed mid-batch) must not return.
        .set("isolation.level", "read_committed")
        .create()
        .context("creating the rebuild consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(ANALYTICS_EVENTS), METADATA_TIMEOUT)
        .context("metadata of analytics-events")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();

    let mut tpl = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(ANALYTICS_EVENTS, p, METADATA_TIMEOUT)
            .context("watermarks of analytics-events")?;
        if high > low {
            tpl.add_partition_offset(ANALYTICS_EVENTS, p, Offset::Beginning)?;
            ends.insert(p, high);
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer
        .assign(&tpl)
        .context("assigning analytics-events")?;

    let started = std::time::Instant::now();
    let mut restored = 0u64;
    while !ends.is_empty() {
        if started.elapsed() > REBUILD_TIMEOUT {
            bail!("rebuilding state from {ANALYTICS_EVENTS} took over {REBUILD_TIMEOUT:?}");
        }
        let msg = consumer.poll(Duration::from_millis(500));
        // Done with a partition once the position reaches the end taken at the start. The
        // position, unlike the offsets of the records seen, also moves past transaction
        // markers, which take the last offsets of a transactionally written topic.
        let position = consumer.position().context("rebuild position")?;
        ends.retain(|p, end| {
            !matches!(
                position.find_partition(ANALYTICS_EVENTS, *p).map(|e| e.offset()),
                Some(Offset::Offset(o)) if o >= *end
            )
        });
        let msg = match msg {
            None => continue,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "rebuild consumer error");
                continue;
            }
        };
        // A tombstone (no value) or an unreadable record cannot be restored; skipping it
        // only loses that key, which the next flush of the key rewrites.
        let (Some(key), Some(value)) = (msg.key(), msg.payload()) else {
            continue;
        };
        let (Ok(key), Ok(value)) = (std::str::from_utf8(key), serde_json::from_slice(value)) else {
            tracing::warn!(offset = msg.offset(), "unreadable state record skipped");
            continue;
        };
        // Keys are namespaced by group, so several deployments can share the topic.
        let outcome = match key.split_once('/') {
            Some((g, k)) if g == stats_group => stats.restore(k, value),
            Some((g, k)) if g == analytics_group => analytics.restore(k, value),
            _ => continue,
        };
        match outcome {
            Ok(()) => restored += 1,
            Err(e) => tracing::warn!(offset = msg.offset(), error = %e, "state record skipped"),
        }
    }
    Ok(restored)
}
