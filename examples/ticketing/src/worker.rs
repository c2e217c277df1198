//! The booking worker: reads `ticket-bookings`, decides each booking in PostgreSQL, and only
//! then lets the consumer group's offset move past it.
//!
//! Delivery is at-least-once (the offset is committed after the database commit, so a crash in
//! between replays the record) and processing is idempotent (the idempotency key is recorded in
//! the same transaction as the booking), which together give an exactly-once effect.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::sync::watch;

use crate::booking::Booking;
use crate::db::{self, BookingStore, Decision, Source};
use crate::kafka::{self, BOOKINGS_TOPIC, DLQ_TOPIC, Quiet};

pub const GROUP_ID: &str = "booking-workers";

/// Commit the stored offsets at least this often, and after this many records: committing
/// after every record would add a broker round trip per booking for no extra safety (a replay
/// is harmless), while committing rarely makes a restart replay more.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
const COMMIT_EVERY: u32 = 500;

/// Backoff between attempts while the database is unavailable.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How long a stopping worker waits for its final commit and for librdkafka to close. Both
/// block while no broker is reachable; giving up is safe, since uncommitted records are only
/// replayed and found already decided.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct WorkerConfig {
    pub bootstrap: String,
    pub database_url: String,
    /// `group.instance.id`: with static membership a restarted worker gets its partitions back
    /// without a group-wide rebalance, as long as it returns within `session.timeout.ms`.
    pub instance_id: Option<String>,
}

/// Commits the offsets of finished records before partitions are taken away, so their next
/// owner does not replay them (a replay would be harmless, only wasted work).
struct CommitOnRevoke;

impl ClientContext for CommitOnRevoke {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        kafka::log_librdkafka(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        kafka::client_error(error, reason);
    }
}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(_) = rebalance {
            commit(consumer, CommitMode::Sync);
        }
    }
}

fn commit<C: Consumer<CommitOnRevoke>>(consumer: &C, mode: CommitMode) {
    match consumer.commit_consumer_state(mode) {
        // Nothing finished since the last commit.
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => tracing::warn!(error = %e, "offset commit failed, will retry"),
    }
}

fn consumer(config: &WorkerConfig) -> anyhow::Result<StreamConsumer<CommitOnRevoke>> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap)
        .set("group.id", GROUP_ID)
        .set("client.id", "ticketing-worker")
        // Offsets are committed by us, after the database commit, never on a timer.
        .set("enable.auto.commit", "false")
        // And only offsets we store (of finished records) are ever committed.
        .set("enable.auto.offset.store", "false")
        // A new group must decide bookings queued before the first worker started.
        .set("auto.offset.reset", "earliest")
        // Java's fetch.min.bytes / fetch.max.wait.ms: under load the broker waits for a batch
        // worth fetching, when idle a booking still waits at most 50 ms.
        .set("fetch.min.bytes", "16384")
        .set("fetch.wait.max.ms", "50")
        // A killed worker's partitions move to others after 10 s; a restarted static member
        // returning sooner keeps them without any rebalance.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "1000");
    if let Some(id) = &config.instance_id {
        cc.set("group.instance.id", id);
    }
    let consumer: StreamConsumer<CommitOnRevoke> = cc.create_with_context(CommitOnRevoke)?;
    consumer.subscribe(&[BOOKINGS_TOPIC])?;
    Ok(consumer)
}

/// Counters reported when the worker stops.
#[derive(Debug, Default)]
struct Stats {
    confirmed: u64,
    rejected: u64,
    duplicates: u64,
    dead_lettered: u64,
}

/// How the worker's Kafka clients ended. After a timeout they are still blocked in librdkafka
/// on a background thread, and the process should exit without waiting for them.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Cleanly,
    TimedOut,
}

/// Why handling a record stopped before it finished.
#[derive(Debug)]
struct Interrupted;

/// Runs until `shutdown` turns true. A record being retried when that happens is left
/// uncommitted, to be decided after the restart.
pub async fn run(
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Closed> {
    let client = db::connect_with_patience(&config.database_url, Duration::from_secs(30)).await?;
    let mut store = BookingStore::new(client).await?;
    let consumer = consumer(&config)?;
    let dlq = kafka::producer(&config.bootstrap)?;
    tracing::info!(instance = ?config.instance_id, "worker started");

    let mut stats = Stats::default();
    let mut since_commit = 0u32;
    let mut tick = tokio::time::interval(COMMIT_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {
                commit(&consumer, CommitMode::Async);
                since_commit = 0;
            }
            message = consumer.recv() => {
                let message = match message {
                    Ok(message) => message,
                    Err(e) => {
                        // librdkafka retries by itself (broker restart, rebalance); the
                        // error is informational.
                        tracing::debug!(error = %e, "consumer error");
                        continue;
                    }
                };
                let handled = handle(
                    &message, &config, &mut store, &dlq, &mut stats, &mut shutdown,
                ).await;
                if handled.is_err() {
                    break;
                }
                // Fails only if the partition was revoked meanwhile; its new owner will
                // replay the record and find it already decided.
                if let Err(e) = consumer.store_offset_from_message(&message) {
                    tracing::debug!(error = %e, "offset not stored");
                }
                since_commit += 1;
                if since_commit >= COMMIT_EVERY {
                    commit(&consumer, CommitMode::Async);
                    since_commit = 0;
                }
            }
        }
    }
    tracing::info!(?stats, "worker stopping");
    let close = tokio::task::spawn_blocking(move || {
        commit(&consumer, CommitMode::Sync);
        drop(consumer);
        drop(dlq);
    });
    match tokio::time::timeout(CLOSE_TIMEOUT, close).await {
        Ok(_) => Ok(Closed::Cleanly),
        Err(_) => {
            tracing::warn!("no broker answered the final commit and close in time");
            Ok(Closed::TimedOut)
        }
    }
}

async fn handle(
    message: &BorrowedMessage<'_>,
    config: &WorkerConfig,
    store: &mut BookingStore,
    dlq: &FutureProducer<Quiet>,
    stats: &mut Stats,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Interrupted> {
    let source = Source {
        partition: message.partition(),
        offset: message.offset(),
    };
    let booking = match Booking::parse(message.payload().unwrap_or_default()) {
        Ok(booking) => booking,
        Err(e) => {
            // Retrying cannot fix a malformed record and skipping it silently loses it: park
            // it where an operator can look at it, then move on.
            dead_letter(message, &e.to_string(), dlq, shutdown).await?;
            stats.dead_lettered += 1;
            return Ok(());
        }
    };
    let mut backoff = RETRY_FIRST;
    loop {
        if store.is_closed() {
            match reconnect(&config.database_url).await {
                Ok(fresh) => *store = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "database unavailable, retrying");
                    pause(&mut backoff, shutdown).await?;
                    continue;
                }
            }
        }
        match store.decide(&booking, source).await {
            Ok(decision) => {
                tracing::debug!(key = booking.idempotency_key, ?decision, "decided");
                match decision {
                    Decision::Confirmed => stats.confirmed += 1,
                    Decision::Rejected(_) => stats.rejected += 1,
                    Decision::Duplicate => stats.duplicates += 1,
                }
                return Ok(());
            }
            Err(e) if db::is_permanent(&e) => {
                dead_letter(message, &format!("database refused: {e}"), dlq, shutdown).await?;
                stats.dead_lettered += 1;
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "database error, retrying");
                pause(&mut backoff, shutdown).await?;
            }
        }
    }
}

async fn reconnect(url: &str) -> Result<BookingStore, tokio_postgres::Error> {
    BookingStore::new(db::connect(url).await?).await
}

/// Sleeps for `backoff` (doubling it up to `RETRY_MAX`) unless shutdown is requested first.
async fn pause(
    backoff: &mut Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Interrupted> {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {
            *backoff = (*backoff * 2).min(RETRY_MAX);
            Ok(())
        }
        _ = shutdown.changed() => Err(Interrupted),
    }
}

/// Copies a record to the dead-letter topic with the reason and its origin in headers, and
/// waits for the broker's acknowledgement: the original's offset may only be committed once
/// the copy is safe.
async fn dead_letter(
    message: &BorrowedMessage<'_>,
    reason: &str,
    dlq: &FutureProducer<Quiet>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), Interrupted> {
    tracing::warn!(
        partition = message.partition(),
        offset = message.offset(),
        reason,
        "dead-lettering record"
    );
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "dlq.error",
            value: Some(reason),
        })
        .insert(Header {
            key: "dlq.source.topic",
            value: Some(message.topic()),
        })
        .insert(Header {
            key: "dlq.source.partition",
            value: Some(&partition),
        })
        .insert(Header {
            key: "dlq.source.offset",
            value: Some(&offset),
        });
    let mut backoff = RETRY_FIRST;
    loop {
        let mut record = FutureRecord::to(DLQ_TOPIC)
            .payload(message.payload().unwrap_or_default())
            .headers(headers.clone());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        match dlq.send(record, Timeout::Never).await {
            Ok(_) => return Ok(()),
            Err((e, _)) => {
                tracing::warn!(error = %e, ?backoff, "dead-letter write failed, retrying");
                pause(&mut backoff, shutdown).await?;
            }
        }
    }
}
