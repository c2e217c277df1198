//! One replica fetcher task (Kafka's `ReplicaFetcherThread`): the partitions it follows
//! from one source broker, one connection to it, and the loop that sends Fetch, appends
//! what comes back, truncates where the logs diverge and resolves out-of-range offsets.
//! The decisions are `arus_replication::Fetcher`'s; this is the I/O around them. Log
//! writes and fsyncs run with `spawn_blocking`, off the async workers.
//!
//! The task's partitions come from a `watch` the manager sets after each metadata image
//! (the whole assignment, so a missed intermediate value does not matter); the task ends
//! when the manager drops the sender (no partition left, or shutdown).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arus_broker::Broker;
use arus_broker::partition::Partition;
use arus_broker::partition::follower::FollowerError;
use arus_log::LogError;
use arus_protocol::messages::FetchRequest;
use arus_protocol::messages::fetch_response::PartitionData;
use arus_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use arus_protocol::messages::{FetchResponse, ListOffsetsRequest};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use arus_replication::{
    Fetcher, InitialFetchState, LocalLogState, OutOfRange, PartitionKey, PartitionResponse,
    ResponseAction, out_of_range,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::assignment::{FetcherId, Followed};
use super::link::{LeaderLink, LinkError};
use super::settings::FetcherSettings;
use crate::lifecycle::Standing;

/// The partitions a fetcher follows, as the manager last assigned them.
pub type Assigned = Arc<BTreeMap<PartitionKey, Followed>>;

/// Why a step on the local log failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Follower(#[from] FollowerError),
    #[error("fsync failed: {0}")]
    Flush(#[from] std::io::Error),
    #[error("the log task stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the partition is not hosted here")]
    NotHosted,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs `f` on the partition off the async workers.
async fn blocking<R: Send + 'static>(
    partition: Arc<Partition>,
    f: impl FnOnce(&Partition) -> Result<R, StepError> + Send + 'static,
) -> Result<R, StepError> {
    tokio::task::spawn_blocking(move || f(&partition)).await?
}

/// The longest prefix of `records` made of whole batches: a leader may end a response
/// with a partial batch when the size limit cuts it (Kafka's follower ignores it too).
fn whole_batches(records: &[u8]) -> &[u8] {
    let mut pos = 0usize;
    while let Some(header) = records.get(pos..pos + 12) {
        let length = i32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let end = pos + 12 + length;
        if end > records.len() {
            break;
        }
        pos = end;
    }
    &records[..pos]
}

pub struct FetcherTask {
    id: FetcherId,
    broker: Arc<Broker>,
    settings: FetcherSettings,
    standing: watch::Receiver<Standing>,
    assigned: watch::Receiver<Assigned>,
    fetcher: Fetcher,
    /// The leader epoch each partition was added at: a new assignment at the same epoch
    /// leaves a partition alone (also a failed one, until the metadata moves on).
    added_at: BTreeMap<PartitionKey, i32>,
    link: LeaderLink,
}

impl FetcherTask {
    pub fn new(
        id: FetcherId,
        broker: Arc<Broker>,
        settings: FetcherSettings,
        standing: watch::Receiver<Standing>,
        assigned: watch::Receiver<Assigned>,
    ) -> FetcherTask {
        let link = LeaderLink::new(broker.clone(), id.source, settings.listener.clone());
        FetcherTask {
            id,
            broker,
            settings,
            standing,
            assigned,
            fetcher: Fetcher::new(),
            added_at: BTreeMap::new(),
            link,
        }
    }

    fn partition(&self, key: &PartitionKey) -> Option<Arc<Partition>> {
        self.broker
            .topics
            .get_by_id(&key.topic_id)?
            .partition(key.partition)
    }

    pub async fn run(mut self) {
        info!(
            source = self.id.source,
            fetcher = self.id.index,
            "replica fetcher started"
        );
        loop {
            match self.assigned.has_changed() {
                Err(_) => break,
                Ok(true) => self.reconcile(),
                Ok(false) => {}
            }
            let config = self
                .settings
                .fetcher_config(self.standing.borrow().broker_epoch);
            self.truncate_to_high_watermark(now_ms()).await;
            let now = now_ms();
            let request = self
                .fetcher
                .build_request(&config, now, |key| self.local_state(key));
            let Some(request) = request else {
                // Nothing ready: wait for a delayed partition, or a new assignment. A
                // delay already over belongs to a partition that cannot be fetched now (its
                // log is gone until the next image): the backoff, not a busy loop.
                let wait = self
                    .fetcher
                    .next_ready_ms()
                    .filter(|&t| t > now)
                    .map_or(self.settings.backoff_ms, |t| t - now)
                    .clamp(1, self.settings.backoff_ms.max(1));
                tokio::select! {
                    changed = self.assigned.changed() => match changed {
                        Err(_) => break,
                        // `changed()` marked the new assignment seen: mark it again, so the
                        // loop's check reconciles it (else the partitions assigned while
                        // this fetcher waited out a backoff were never fetched).
                        Ok(()) => self.assigned.mark_changed(),
                    },
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                }
                continue;
            };
            match self.link.send(Request::Fetch(request.clone())).await {
                Ok(Response::Fetch(response)) => self.on_response(&request, response).await,
                Ok(_) => {}
                Err(e) => {
                    self.on_link_error(&e);
                    self.fetcher.on_request_failed(&config, now_ms());
                }
            }
        }
        info!(
            source = self.id.source,
            fetcher = self.id.index,
            "replica fetcher stopped"
        );
    }

    fn on_link_error(&self, e: &LinkError) {
        warn!(
            source = self.id.source,
            fetcher = self.id.index,
            error = %e,
            backoff_ms = self.settings.backoff_ms,
            "cannot fetch from the leader; retrying after the backoff"
        );
    }

    /// Applies the manager's latest assignment (Kafka's `addPartitions` /
    /// `removePartitions`): partitions gone or at another leader epoch stop; new ones (and
    /// those at a new epoch) start from the local log's end.
    fn reconcile(&mut self) {
        let assigned = self.assigned.borrow_and_update().clone();
        let gone: Vec<PartitionKey> = self
            .added_at
            .keys()
            .filter(|k| !assigned.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            self.fetcher.remove(&key);
            self.added_at.remove(&key);
        }
        for (key, f) in assigned.iter() {
            if self.added_at.get(key) == Some(&f.leader_epoch) {
                continue;
            }
            let Some(partition) = self.partition(key) else {
                continue;
            };
            let local = partition.follower_log_state();
            self.fetcher.add(
                *key,
                InitialFetchState {
                    topic: f.topic.clone(),
                    init_offset: local.log_end_offset,
                    current_leader_epoch: f.leader_epoch,
                    latest_epoch: local.latest_epoch,
                },
            );
            self.added_at.insert(*key, f.leader_epoch);
            debug!(topic = %f.topic, partition = key.partition, leader = f.leader, epoch = f.leader_epoch, offset = local.log_end_offset, "following");
        }
    }

    fn local_state(&self, key: &PartitionKey) -> Option<LocalLogState> {
        let local = self.partition(key)?.follower_log_state();
        Some(LocalLogState {
            log_start_offset: local.log_start_offset,
            high_watermark: local.high_watermark,
        })
    }

    /// A follower whose log has no epoch truncates to its high watermark first (Kafka's
    /// `truncateToHighWatermark`), then fetches from there.
    async fn truncate_to_high_watermark(&mut self, now: i64) {
        for key in self.fetcher.truncating(now) {
            let Some(epoch) = self.added_at.get(&key).copied() else {
                continue;
            };
            let Some(partition) = self.partition(&key) else {
                self.fail(&key, &StepError::NotHosted);
                continue;
            };
            let high_watermark = partition.high_watermark();
            self.truncate(key, partition, high_watermark, epoch).await;
        }
    }

    /// Truncates the partition's log to `offset` (off the async workers) and tells the
    /// fetcher where the log now ends, or fails the partition.
    async fn truncate(
        &mut self,
        key: PartitionKey,
        partition: Arc<Partition>,
        offset: i64,
        epoch: i32,
    ) {
        let done = blocking(partition, move |p| {
            p.truncate_as_follower(offset, false, epoch)?;
            Ok(p.follower_log_state())
        })
        .await;
        match done {
            Ok(local) => self
                .fetcher
                .on_truncated(&key, local.log_end_offset, local.latest_epoch),
            Err(e) => self.fail(&key, &e),
        }
    }

    /// Kafka's `markPartitionFailed`: the partition stops until the metadata re-adds it.
    fn fail(&mut self, key: &PartitionKey, e: &StepError) {
        warn!(topic_id = %key.topic_id, partition = key.partition, source = self.id.source, error = %e, "replica fetching of the partition stopped");
        self.fetcher.mark_failed(key);
    }

    async fn on_response(&mut self, request: &FetchRequest, response: FetchResponse) {
        let config = self
            .settings
            .fetcher_config(self.standing.borrow().broker_epoch);
        if response.error_code != ErrorCode::None.code() {
            // A request-level error (Kafka: the whole fetch failed) — back off.
            warn!(
                source = self.id.source,
                error_code = response.error_code,
                "the leader refused the fetch"
            );
            self.fetcher.on_request_failed(&config, now_ms());
            return;
        }
        // What the request carried per partition: (fetch offset, current leader epoch).
        let mut asked: BTreeMap<PartitionKey, (i64, i32)> = BTreeMap::new();
        let mut by_name: BTreeMap<&str, Uuid> = BTreeMap::new();
        for t in &request.topics {
            by_name.insert(t.topic.as_str(), t.topic_id);
            for p in &t.partitions {
                let key = PartitionKey {
                    topic_id: t.topic_id,
                    partition: p.partition,
                };
                asked.insert(key, (p.fetch_offset, p.current_leader_epoch));
            }
        }
        for topic in response.responses {
            // Fetch v13+ names topics by id, older versions by name.
            let topic_id = if topic.topic_id != Uuid::ZERO {
                topic.topic_id
            } else {
                match by_name.get(topic.topic.as_str()) {
                    Some(id) => *id,
                    None => continue,
                }
            };
            for p in topic.partitions {
                let key = PartitionKey {
                    topic_id,
                    partition: p.partition_index,
                };
                let Some(&(offset, epoch)) = asked.get(&key) else {
                    continue;
                };
                self.on_partition(key, offset, epoch, p).await;
            }
        }
    }

    async fn on_partition(
        &mut self,
        key: PartitionKey,
        fetched_offset: i64,
        requested_epoch: i32,
        data: PartitionData,
    ) {
        let config = self
            .settings
            .fetcher_config(self.standing.borrow().broker_epoch);
        let error = ErrorCode::from_code(data.error_code).unwrap_or(ErrorCode::UnknownServerError);
        tracing::trace!(topic_id = %key.topic_id, partition = key.partition, fetched_offset, ?error, high_watermark = data.high_watermark, bytes = data.records.as_ref().map_or(0, |r| r.len()), "fetched");
        let diverging = (data.diverging_epoch.epoch >= 0)
            .then_some((data.diverging_epoch.epoch, data.diverging_epoch.end_offset));
        let action = self.fetcher.on_partition_response(
            &key,
            fetched_offset,
            requested_epoch,
            PartitionResponse {
                error,
                diverging_epoch: diverging,
            },
            &config,
            now_ms(),
        );
        let Some(partition) = self.partition(&key) else {
            if action != ResponseAction::Ignore {
                self.fail(&key, &StepError::NotHosted);
            }
            return;
        };
        match action {
            ResponseAction::Append => self.append(key, partition, requested_epoch, data).await,
            ResponseAction::Truncate { epoch, end_offset } => {
                let decided = partition.follower_truncation(epoch, end_offset, fetched_offset);
                info!(topic_id = %key.topic_id, partition = key.partition, leader_epoch = epoch, leader_end_offset = end_offset, offset = decided.offset, "the log diverges from the leader's; truncating");
                self.truncate(key, partition, decided.offset, requested_epoch)
                    .await;
            }
            ResponseAction::ResolveOutOfRange => {
                self.resolve_out_of_range(key, partition, requested_epoch)
                    .await
            }
            ResponseAction::Retry => {
                debug!(topic_id = %key.topic_id, partition = key.partition, ?error, "the leader cannot serve the partition yet; retrying after the backoff");
            }
            ResponseAction::Fenced => {
                info!(topic_id = %key.topic_id, partition = key.partition, requested_epoch, "fenced by the leader's newer epoch; waiting for the metadata");
            }
            ResponseAction::Ignore => {}
        }
    }

    /// Appends the leader's batches and fsyncs them (`arus.acks.all.fsync`) before the
    /// next Fetch reports the new offset, then takes the leader's high watermark and log
    /// start offset.
    async fn append(
        &mut self,
        key: PartitionKey,
        partition: Arc<Partition>,
        epoch: i32,
        data: PartitionData,
    ) {
        let records = data.records.unwrap_or_default();
        let whole = records.slice(..whole_batches(&records).len());
        let (hw, start) = (data.high_watermark, data.log_start_offset);
        let fsync = self.settings.fsync;
        let done = blocking(partition, move |p| {
            let appended = if whole.is_empty() {
                None
            } else {
                let info = p.append_as_follower(&whole, epoch, now_ms())?;
                if fsync {
                    p.flush()?;
                }
                Some((info.last_offset, p.follower_log_state().latest_epoch))
            };
            p.update_from_leader(hw, start, epoch)?;
            Ok(appended)
        })
        .await;
        match done {
            Ok(appended) => self.fetcher.on_appended(&key, appended, hw),
            // Kafka retries a corrupt or invalid record set after the backoff; anything
            // else (storage, role) stops the partition.
            Err(StepError::Follower(FollowerError::Log(e @ LogError::CorruptBatch { .. }))) => {
                warn!(topic_id = %key.topic_id, partition = key.partition, source = self.id.source, error = %e, "the leader's records were refused; fetching them again after the backoff");
                let config = self
                    .settings
                    .fetcher_config(self.standing.borrow().broker_epoch);
                self.fetcher.on_partition_error(&key, &config, now_ms());
            }
            Err(e) => self.fail(&key, &e),
        }
    }

    /// Kafka's `handleOutOfRangeError` → `fetchOffsetAndTruncate`: the leader's log start
    /// and end (ListOffsets as this replica), then truncate as [`out_of_range`] says.
    async fn resolve_out_of_range(
        &mut self,
        key: PartitionKey,
        partition: Arc<Partition>,
        epoch: i32,
    ) {
        let config = self
            .settings
            .fetcher_config(self.standing.borrow().broker_epoch);
        let topic = self
            .fetcher
            .state(&key)
            .map(|s| s.topic.clone())
            .unwrap_or_default();
        let (end, start) = match (
            self.leader_offset(&topic, key.partition, epoch, -1).await,
            self.leader_offset(&topic, key.partition, epoch, -2).await,
        ) {
            (Ok(end), Ok(start)) => (end, start),
            (Err(code), _) | (_, Err(code)) => {
                self.fetcher
                    .on_out_of_range_failed(&key, code, epoch, &config, now_ms());
                return;
            }
        };
        let local_end = partition.log_end_offset();
        let decision = out_of_range(local_end, end, start);
        info!(topic = %topic, partition = key.partition, local_end, leader_start = start, leader_end = end, ?decision, "the fetch offset is out of the leader's range");
        let done = blocking(partition, move |p| {
            match decision {
                OutOfRange::TruncateTo(offset) => p.truncate_as_follower(offset, false, epoch)?,
                OutOfRange::TruncateFullyAndStartAt(offset) => {
                    p.truncate_as_follower(offset, true, epoch)?
                }
                OutOfRange::FetchFrom(_) => {}
            }
            Ok(p.follower_log_state())
        })
        .await;
        match done {
            Ok(local) => {
                let fetch_offset = match decision {
                    OutOfRange::FetchFrom(offset) => offset,
                    _ => local.log_end_offset,
                };
                self.fetcher
                    .on_out_of_range_resolved(&key, fetch_offset, end, local.latest_epoch)
            }
            Err(e) => self.fail(&key, &e),
        }
    }

    /// ListOffsets for one partition as this replica: `timestamp` -1 (latest) or -2
    /// (earliest). A failed request is answered as a retriable error.
    async fn leader_offset(
        &mut self,
        topic: &str,
        partition: i32,
        epoch: i32,
        timestamp: i64,
    ) -> Result<i64, ErrorCode> {
        let request = Request::ListOffsets(ListOffsetsRequest {
            replica_id: self.settings.node_id,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: topic.to_string(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    current_leader_epoch: epoch,
                    timestamp,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        match self.link.send(request).await {
            Ok(Response::ListOffsets(r)) => {
                let p = r
                    .topics
                    .first()
                    .and_then(|t| t.partitions.first())
                    .ok_or(ErrorCode::UnknownServerError)?;
                match ErrorCode::from_code(p.error_code) {
                    Some(ErrorCode::None) => Ok(p.offset),
                    Some(code) => Err(code),
                    None => Err(ErrorCode::UnknownServerError),
                }
            }
            Ok(_) => Err(ErrorCode::UnknownServerError),
            Err(e) => {
                self.on_link_error(&e);
                Err(ErrorCode::NetworkException)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_records::{BatchBuilder, Compression};

    #[test]
    fn a_partial_batch_at_the_end_is_left_out() {
        let mut b = BatchBuilder::new(Compression::None, 0);
        b.push(0, None, Some(b"v"), &[]);
        let one = b.build().unwrap().to_vec();
        let mut two = one.clone();
        two.extend(&one);
        assert_eq!(whole_batches(&two).len(), two.len());
        assert_eq!(whole_batches(&two[..two.len() - 1]).len(), one.len());
        assert_eq!(whole_batches(&two[..5]).len(), 0);
        assert_eq!(whole_batches(&[]).len(), 0);
    }
}
