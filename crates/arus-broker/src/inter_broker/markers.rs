//! The transaction coordinator's marker channel (Kafka's `TransactionMarkerChannelManager`
//! and `TransactionMarkerRequestCompletionHandler`): the decisions, kept pure, and the
//! sender that carries them out.
//!
//! - [`plan`]: where each partition of a transaction gets its marker — written here (this
//!   node leads it), sent to its leader, retried later (no leader known, or the leader is not
//!   reachable on the inter-broker listener), or dropped (the topic was deleted).
//! - [`outcome_of`]: what a partition's WriteTxnMarkers error means for the transaction.
//! - markers waiting for a destination broker are batched into one request per broker
//!   with at most one marker per producer id (the response is keyed by producer id, see
//!   [`super::batch_queue`]).
//! - [`MarkerSender`]: one drain task per destination broker while it has markers queued,
//!   one request in flight to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arus_protocol::messages::WriteTxnMarkersRequest;
use arus_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use arus_protocol::{ErrorCode, Request, Response};
use arus_txn::TopicPartition;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::debug;

use super::batch_queue::BatchQueue;
use super::{BrokerChannel, Lane, SendError};

/// The WriteTxnMarkers version sent (Kafka 4.4's latest; v2 adds the marker's transaction
/// version).
pub const WRITE_TXN_MARKERS_VERSION: i16 = 2;

/// At most this many markers in one request (the queue is bounded by the transactions
/// in a Prepare state, themselves bounded by the coordinator; this bounds the request).
pub const MAX_MARKERS_PER_REQUEST: usize = 500;

/// Where one partition's marker goes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// This node leads the partition.
    Local,
    /// Broker `node`, reachable at `addr` on the inter-broker listener, leads it.
    Remote { node: i32, addr: String },
    /// No leader, or the leader is not reachable (fenced, no inter-broker endpoint): Kafka
    /// keeps such markers in `markersQueueForUnknownBroker` and retries them.
    Unknown,
    /// The topic (or partition) no longer exists: nothing to mark.
    Deleted,
}

/// A transaction's partitions sorted by [`Destination`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MarkerPlan {
    pub local: Vec<TopicPartition>,
    /// By destination broker (and its address).
    pub remote: BTreeMap<(i32, String), Vec<TopicPartition>>,
    pub unknown: Vec<TopicPartition>,
    pub deleted: Vec<TopicPartition>,
}

/// Sorts `partitions` by where their markers go (`locate`).
pub fn plan(
    partitions: &[TopicPartition],
    locate: impl Fn(&TopicPartition) -> Destination,
) -> MarkerPlan {
    let mut plan = MarkerPlan::default();
    for tp in partitions {
        match locate(tp) {
            Destination::Local => plan.local.push(tp.clone()),
            Destination::Remote { node, addr } => plan
                .remote
                .entry((node, addr))
                .or_default()
                .push(tp.clone()),
            Destination::Unknown => plan.unknown.push(tp.clone()),
            Destination::Deleted => plan.deleted.push(tp.clone()),
        }
    }
    plan
}

/// What a partition's answer to a marker means (Kafka's
/// `TransactionMarkerRequestCompletionHandler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerOutcome {
    /// Written and durable there.
    Written,
    /// Transient (leadership moved, storage, timeout): look the leader up again and resend.
    Retry,
    /// The partition cannot take markers (an old message format): Kafka removes it from the
    /// partitions waiting for markers, the producer could not have written there either.
    Skip,
    /// A newer producer epoch or coordinator epoch has written there: this coordinator's
    /// view of the transaction is stale, stop sending its markers (the transaction is not
    /// completed here; a newer coordinator does that).
    Abandon,
}

pub fn outcome_of(code: ErrorCode) -> MarkerOutcome {
    match code {
        ErrorCode::None => MarkerOutcome::Written,
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotLeaderOrFollower
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut
        | ErrorCode::KafkaStorageError => MarkerOutcome::Retry,
        ErrorCode::InvalidProducerEpoch | ErrorCode::TransactionCoordinatorFenced => {
            MarkerOutcome::Abandon
        }
        ErrorCode::UnsupportedForMessageFormat | ErrorCode::UnsupportedVersion => {
            MarkerOutcome::Skip
        }
        // Kafka throws IllegalStateException here (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, …: a
        // marker cannot cause them), which leaves the transaction in its Prepare state; so
        // does abandoning it, without a retry loop on a broker that will not change its mind.
        _ => MarkerOutcome::Abandon,
    }
}

/// One transaction's markers for one destination broker.
pub fn marker_request_entry(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    transaction_version: i8,
    partitions: &[TopicPartition],
) -> WritableTxnMarker {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    WritableTxnMarker {
        producer_id,
        producer_epoch,
        transaction_result: commit,
        coordinator_epoch,
        transaction_version,
        topics: topics
            .into_iter()
            .map(|(name, partition_indexes)| WritableTxnMarkerTopic {
                name: name.to_string(),
                partition_indexes,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Per-partition codes of one marker, or why the request got no answer.
pub type MarkerReply = Result<Vec<(TopicPartition, ErrorCode)>, SendError>;

struct Pending {
    addr: String,
    marker: WritableTxnMarker,
    reply: oneshot::Sender<MarkerReply>,
}

#[derive(Default)]
struct SenderState {
    queue: BatchQueue<i64, Pending>,
    /// Destination brokers with a drain task running.
    draining: BTreeSet<i32>,
}

/// See the module documentation.
pub struct MarkerSender {
    channel: Arc<dyn BrokerChannel>,
    timeout: std::time::Duration,
    state: Mutex<SenderState>,
}

impl MarkerSender {
    pub fn new(channel: Arc<dyn BrokerChannel>, timeout: std::time::Duration) -> MarkerSender {
        MarkerSender {
            channel,
            timeout,
            state: Mutex::new(SenderState::default()),
        }
    }

    /// Queues `marker` for broker `node` at `addr`; the receiver gets the partitions' codes.
    /// Must run inside a tokio runtime (it may start the broker's drain task).
    pub fn enqueue(
        self: &Arc<Self>,
        node: i32,
        addr: String,
        marker: WritableTxnMarker,
    ) -> oneshot::Receiver<MarkerReply> {
        let (reply, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock();
            st.queue.push(
                node,
                marker.producer_id,
                Pending {
                    addr,
                    marker,
                    reply,
                },
            );
            st.draining.insert(node)
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.drain(node).await });
        }
        rx
    }

    async fn drain(self: Arc<Self>, node: i32) {
        loop {
            let batch = {
                let mut st = self.state.lock();
                let batch = st.queue.take_batch(node, MAX_MARKERS_PER_REQUEST);
                if batch.is_empty() {
                    // Under the same lock as `enqueue`'s check: a marker queued after this
                    // starts a new task.
                    st.draining.remove(&node);
                    return;
                }
                batch
            };
            // The newest address: a broker that restarted on another port is found there.
            let addr = batch.last().map(|p| p.addr.clone()).unwrap_or_default();
            let request = WriteTxnMarkersRequest {
                markers: batch.iter().map(|p| p.marker.clone()).collect(),
            };
            debug!(node, markers = batch.len(), "sending WriteTxnMarkers");
            let answer = self
                .channel
                .send(
                    Lane::Markers,
                    node,
                    addr,
                    Request::WriteTxnMarkers(request),
                    WRITE_TXN_MARKERS_VERSION,
                    self.timeout,
                )
                .await;
            dispatch(node, batch, answer);
        }
    }
}

/// Hands each queued marker its partitions' codes (a partition the answer does not name
/// is retried, as a timed-out one).
fn dispatch(node: i32, batch: Vec<Pending>, answer: Result<Response, SendError>) {
    let results = match answer {
        Ok(Response::WriteTxnMarkers(r)) => r,
        Ok(_) => {
            for p in batch {
                let _ = p.reply.send(Err(SendError::Unexpected { node }));
            }
            return;
        }
        Err(e) => {
            let reason = e.to_string();
            for p in batch {
                let _ = p.reply.send(Err(SendError::Disconnected {
                    node,
                    reason: reason.clone(),
                }));
            }
            return;
        }
    };
    let mut by_producer: HashMap<i64, HashMap<(String, i32), i16>> = HashMap::new();
    for m in results.markers {
        let codes = by_producer.entry(m.producer_id).or_default();
        for t in m.topics {
            for p in t.partitions {
                codes.insert((t.name.clone(), p.partition_index), p.error_code);
            }
        }
    }
    for p in batch {
        let codes = by_producer.get(&p.marker.producer_id);
        let mut out = Vec::new();
        for t in &p.marker.topics {
            for &i in &t.partition_indexes {
                let code = codes
                    .and_then(|c| c.get(&(t.name.clone(), i)))
                    .map_or(ErrorCode::RequestTimedOut, |&c| {
                        ErrorCode::from_code(c).unwrap_or(ErrorCode::UnknownServerError)
                    });
                out.push((TopicPartition::new(t.name.clone(), i), code));
            }
        }
        let _ = p.reply.send(Ok(out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn partitions_are_grouped_by_destination_broker() {
        let parts = [
            tp("a", 0),
            tp("a", 1),
            tp("b", 0),
            tp("c", 0),
            tp("gone", 0),
        ];
        let plan = plan(&parts, |tp| match (tp.topic.as_str(), tp.partition) {
            ("a", 0) => Destination::Local,
            ("a", 1) | ("b", 0) => Destination::Remote {
                node: 2,
                addr: "h2:1".into(),
            },
            ("c", _) => Destination::Unknown,
            _ => Destination::Deleted,
        });
        assert_eq!(plan.local, vec![tp("a", 0)]);
        assert_eq!(
            plan.remote,
            BTreeMap::from([((2, "h2:1".to_string()), vec![tp("a", 1), tp("b", 0)])])
        );
        assert_eq!(plan.unknown, vec![tp("c", 0)]);
        assert_eq!(plan.deleted, vec![tp("gone", 0)]);
    }

    #[test]
    fn answers_decide_as_kafkas_completion_handler() {
        assert_eq!(outcome_of(ErrorCode::None), MarkerOutcome::Written);
        for retry in [
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::KafkaStorageError,
            ErrorCode::RequestTimedOut,
            ErrorCode::NotEnoughReplicas,
        ] {
            assert_eq!(outcome_of(retry), MarkerOutcome::Retry, "{retry:?}");
        }
        assert_eq!(
            outcome_of(ErrorCode::TransactionCoordinatorFenced),
            MarkerOutcome::Abandon
        );
        assert_eq!(
            outcome_of(ErrorCode::InvalidProducerEpoch),
            MarkerOutcome::Abandon
        );
        assert_eq!(
            outcome_of(ErrorCode::UnsupportedForMessageFormat),
            MarkerOutcome::Skip
        );
    }

    #[test]
    fn one_entry_per_topic() {
        let m = marker_request_entry(7, 3, 5, true, 2, &[tp("a", 0), tp("b", 1), tp("a", 2)]);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.coordinator_epoch),
            (7, 3, 5)
        );
        assert!(m.transaction_result);
        let topics: Vec<_> = m
            .topics
            .iter()
            .map(|t| (t.name.as_str(), t.partition_indexes.clone()))
            .collect();
        assert_eq!(topics, vec![("a", vec![0, 2]), ("b", vec![1])]);
    }

    struct Answering(Mutex<Vec<usize>>);

    impl BrokerChannel for Answering {
        fn send(
            &self,
            _lane: Lane,
            node: i32,
            _addr: String,
            request: Request,
            _version: i16,
            _timeout: std::time::Duration,
        ) -> crate::controller_channel::BoxFuture<Result<Response, SendError>> {
            use arus_protocol::messages::write_txn_markers_response::*;
            let Request::WriteTxnMarkers(r) = request else {
                panic!("not a marker request")
            };
            self.0.lock().push(r.markers.len());
            Box::pin(async move {
                if node == 9 {
                    return Err(SendError::Disconnected {
                        node,
                        reason: "test".into(),
                    });
                }
                Ok(Response::WriteTxnMarkers(WriteTxnMarkersResponse {
                    markers: r
                        .markers
                        .iter()
                        .map(|m| WritableTxnMarkerResult {
                            producer_id: m.producer_id,
                            topics: m
                                .topics
                                .iter()
                                // Only the first topic is answered: the others are retried.
                                .take(1)
                                .map(|t| WritableTxnMarkerTopicResult {
                                    name: t.name.clone(),
                                    partitions: t
                                        .partition_indexes
                                        .iter()
                                        .map(|&i| WritableTxnMarkerPartitionResult {
                                            partition_index: i,
                                            error_code: if i == 0 { 0 } else { 6 },
                                            ..Default::default()
                                        })
                                        .collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                }))
            })
        }
    }

    #[tokio::test]
    async fn the_sender_answers_each_marker_with_its_partitions_codes() {
        let channel = Arc::new(Answering(Mutex::new(Vec::new())));
        let sender = Arc::new(MarkerSender::new(
            channel.clone(),
            std::time::Duration::from_secs(1),
        ));
        let a = sender.enqueue(
            2,
            "h:1".into(),
            marker_request_entry(1, 0, 0, true, 0, &[tp("a", 0), tp("a", 1), tp("b", 0)]),
        );
        let b = sender.enqueue(
            2,
            "h:1".into(),
            marker_request_entry(2, 0, 0, false, 0, &[tp("c", 0)]),
        );
        let lost = sender.enqueue(9, "h:9".into(), marker_request_entry(3, 0, 0, true, 0, &[]));
        assert_eq!(
            a.await.unwrap().unwrap(),
            vec![
                (tp("a", 0), ErrorCode::None),
                (tp("a", 1), ErrorCode::NotLeaderOrFollower),
                (tp("b", 0), ErrorCode::RequestTimedOut),
            ]
        );
        assert_eq!(
            b.await.unwrap().unwrap(),
            vec![(tp("c", 0), ErrorCode::None)]
        );
        assert!(matches!(
            lost.await.unwrap(),
            Err(SendError::Disconnected { node: 9, .. })
        ));
        // Never more markers in flight than queued; every marker sent once.
        assert_eq!(channel.0.lock().iter().sum::<usize>(), 3);
    }
}
