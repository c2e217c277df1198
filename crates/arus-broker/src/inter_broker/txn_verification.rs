//! KIP-890 across brokers (Kafka's `AddPartitionsToTxnManager`): a partition leader that
//! takes a transactional produce whose transaction coordinator is another node asks that
//! coordinator, with a broker-originated AddPartitionsToTxn, before appending: v4 with
//! `verify_only` for a Produce up to v11 or a TxnOffsetCommit up to v4 (is the partition in
//! the ongoing transaction?), v5 without it for a Produce v12+ or TxnOffsetCommit v5+ (add
//! the partition to the transaction, KIP-890 part 2).
//!
//! Like Kafka, the transactions waiting for one coordinator are batched into one request
//! ([`VerificationSender`]): one request in flight per coordinator on the verification
//! connection (see [`super::Lane`]), the ones that arrive meanwhile sent together next, at
//! most one entry per transactional id (a second one waits for the next request; Kafka
//! answers the older one NETWORK_EXCEPTION or INVALID_PRODUCER_EPOCH instead). A request
//! holding an add is sent at v5 (its `verify_only` entries mean the same there).

use arus_protocol::messages::AddPartitionsToTxnRequest;
use arus_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use arus_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use arus_protocol::{ErrorCode, Request, Response};
use arus_txn::TopicPartition;
use std::collections::BTreeMap;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::batch_queue::BatchQueue;
use super::{BrokerChannel, Lane, SendError};
use crate::Broker;

/// AddPartitionsToTxn with `verify_only` (transactions v1 verification).
pub const VERIFY_VERSION: i16 = 4;
/// AddPartitionsToTxn that adds the partitions from the broker (transactions v2).
pub const ADD_VERSION: i16 = 5;

/// What the leader asks the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Whether the partitions are in the ongoing transaction (`verify_only`).
    Verify,
    /// Add them (Produce v12+, TxnOffsetCommit v5+).
    Add,
}

pub fn request(
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
    op: Operation,
) -> (AddPartitionsToTxnRequest, i16) {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    let transaction = AddPartitionsToTxnTransaction {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        verify_only: op == Operation::Verify,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| AddPartitionsToTxnTopic {
                name: name.to_string(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let version = match op {
        Operation::Verify => VERIFY_VERSION,
        Operation::Add => ADD_VERSION,
    };
    (
        AddPartitionsToTxnRequest {
            transactions: vec![transaction],
            ..Default::default()
        },
        version,
    )
}

/// The code each partition gets from the coordinator's answer, as Kafka's
/// `AddPartitionsToTxnHandler.onComplete`: a network failure is NETWORK_EXCEPTION for all; a
/// top-level error is everyone's (CLUSTER_AUTHORIZATION_FAILED, which the producer must not
/// see, becomes INVALID_TXN_STATE); PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH, which
/// producers expect here; TRANSACTION_ABORTABLE becomes INVALID_TXN_STATE for clients
/// too old to know it (`old_client`: Produce up to v10, TxnOffsetCommit up to v3). A
/// partition the answer does not name counts as verified, as in Kafka.
pub fn codes_from_answer(
    answer: &Result<Response, SendError>,
    transactional_id: &str,
    partitions: &[TopicPartition],
    old_client: bool,
) -> Vec<(TopicPartition, ErrorCode)> {
    let all = |code: ErrorCode| partitions.iter().map(|tp| (tp.clone(), code)).collect();
    let r: &AddPartitionsToTxnResponse = match answer {
        Ok(Response::AddPartitionsToTxn(r)) => r,
        Ok(_) => return all(ErrorCode::UnknownServerError),
        Err(_) => return all(ErrorCode::NetworkException),
    };
    if r.error_code != 0 {
        let code = ErrorCode::from_code(r.error_code).unwrap_or(ErrorCode::UnknownServerError);
        return all(if code == ErrorCode::ClusterAuthorizationFailed {
            ErrorCode::InvalidTxnState
        } else {
            code
        });
    }
    let mut codes: BTreeMap<(String, i32), ErrorCode> = BTreeMap::new();
    for txn in r
        .results_by_transaction
        .iter()
        .filter(|t| t.transactional_id == transactional_id)
    {
        for t in &txn.topic_results {
            for p in &t.results_by_partition {
                let code = match ErrorCode::from_code(p.partition_error_code)
                    .unwrap_or(ErrorCode::UnknownServerError)
                {
                    ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
                    ErrorCode::TransactionAbortable if old_client => ErrorCode::InvalidTxnState,
                    other => other,
                };
                codes.insert((t.name.clone(), p.partition_index), code);
            }
        }
    }
    partitions
        .iter()
        .map(|tp| {
            let code = codes
                .get(&(tp.topic.clone(), tp.partition))
                .copied()
                .unwrap_or(ErrorCode::None);
            (tp.clone(), code)
        })
        .collect()
}

/// At most this many transactions in one request (the queue itself is bounded by the
/// produce requests waiting for their verification).
pub const MAX_TRANSACTIONS_PER_REQUEST: usize = 500;

struct Pending {
    addr: String,
    transaction: AddPartitionsToTxnTransaction,
    partitions: Vec<TopicPartition>,
    old_client: bool,
    reply: oneshot::Sender<Vec<(TopicPartition, ErrorCode)>>,
}

#[derive(Default)]
struct SenderState {
    queue: BatchQueue<String, Pending>,
    /// Coordinators with a drain task running.
    draining: BTreeSet<i32>,
}

/// See the module documentation.
pub struct VerificationSender {
    channel: Arc<dyn BrokerChannel>,
    timeout: Duration,
    state: Mutex<SenderState>,
}

impl VerificationSender {
    pub fn new(channel: Arc<dyn BrokerChannel>, timeout: Duration) -> VerificationSender {
        VerificationSender {
            channel,
            timeout,
            state: Mutex::new(SenderState::default()),
        }
    }

    /// Asks coordinator `node` at `addr` about `partitions` of `transactional_id`'s
    /// transaction; one code per partition, in order (see [`codes_from_answer`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn ask(
        self: &Arc<Self>,
        node: i32,
        addr: String,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        op: Operation,
        old_client: bool,
    ) -> Vec<(TopicPartition, ErrorCode)> {
        let (mut req, _) = request(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            op,
        );
        let transaction = req.transactions.remove(0);
        let (reply, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock();
            st.queue.push(
                node,
                transactional_id.to_string(),
                Pending {
                    addr,
                    transaction,
                    partitions: partitions.to_vec(),
                    old_client,
                    reply,
                },
            );
            st.draining.insert(node)
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.drain(node).await });
        }
        rx.await.unwrap_or_else(|_| {
            partitions
                .iter()
                .map(|tp| (tp.clone(), ErrorCode::NetworkException))
                .collect()
        })
    }

    async fn drain(self: Arc<Self>, node: i32) {
        loop {
            let batch = {
                let mut st = self.state.lock();
                let batch = st.queue.take_batch(node, MAX_TRANSACTIONS_PER_REQUEST);
                if batch.is_empty() {
                    // Under the same lock as `ask`'s check: a later one starts a new task.
                    st.draining.remove(&node);
                    return;
                }
                batch
            };
            let addr = batch.last().map(|p| p.addr.clone()).unwrap_or_default();
            let version = if batch.iter().any(|p| !p.transaction.verify_only) {
                ADD_VERSION
            } else {
                VERIFY_VERSION
            };
            let request = AddPartitionsToTxnRequest {
                transactions: batch.iter().map(|p| p.transaction.clone()).collect(),
                ..Default::default()
            };
            let answer = self
                .channel
                .send(
                    Lane::Verification,
                    node,
                    addr,
                    Request::AddPartitionsToTxn(request),
                    version,
                    self.timeout,
                )
                .await;
            if let Err(e) = &answer {
                tracing::warn!(node, transactions = batch.len(), error = %e, "AddPartitionsToTxn to the transaction coordinator failed");
            }
            for p in batch {
                let codes = codes_from_answer(
                    &answer,
                    &p.transaction.transactional_id,
                    &p.partitions,
                    p.old_client,
                );
                let _ = p.reply.send(codes);
            }
        }
    }
}

/// Asks coordinator `node` (through the broker's verification sender) about `partitions` of
/// `transactional_id`'s transaction; one code per partition, in order. Without a way to
/// other brokers (the single node) or an address for the coordinator,
/// COORDINATOR_NOT_AVAILABLE (as Kafka without a coordinator node).
#[allow(clippy::too_many_arguments)]
pub async fn ask_coordinator(
    broker: &Broker,
    sender: Option<Arc<VerificationSender>>,
    node: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
    op: Operation,
    old_client: bool,
) -> Vec<(TopicPartition, ErrorCode)> {
    let (Some(sender), Some(addr)) = (sender, broker.inter_broker_address(node)) else {
        return partitions
            .iter()
            .map(|tp| (tp.clone(), ErrorCode::CoordinatorNotAvailable))
            .collect();
    };
    sender
        .ask(
            node,
            addr,
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            op,
            old_client,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use arus_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn answer(codes: &[(&str, i32, ErrorCode)]) -> Result<Response, SendError> {
        Ok(Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
            results_by_transaction: vec![AddPartitionsToTxnResult {
                transactional_id: "t".into(),
                topic_results: codes
                    .iter()
                    .map(|(t, p, c)| AddPartitionsToTxnTopicResult {
                        name: t.to_string(),
                        results_by_partition: vec![AddPartitionsToTxnPartitionResult {
                            partition_index: *p,
                            partition_error_code: c.code(),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    #[test]
    fn the_request_is_one_broker_transaction() {
        let (r, v) = request(
            "t",
            5,
            2,
            &[tp("a", 1), tp("b", 0), tp("a", 0)],
            Operation::Verify,
        );
        assert_eq!(v, 4);
        let t = &r.transactions[0];
        assert!(t.verify_only);
        assert_eq!((t.producer_id, t.producer_epoch), (5, 2));
        assert_eq!(t.topics[0].partitions, vec![1, 0]);
        assert_eq!(t.topics[1].name, "b");
        let (r, v) = request("t", 5, 2, &[tp("a", 1)], Operation::Add);
        assert_eq!(v, 5);
        assert!(!r.transactions[0].verify_only);
    }

    #[test]
    fn answers_map_as_kafkas_manager() {
        let parts = [tp("a", 0), tp("a", 1), tp("b", 0)];
        let got = codes_from_answer(
            &answer(&[
                ("a", 0, ErrorCode::ProducerFenced),
                ("a", 1, ErrorCode::TransactionAbortable),
            ]),
            "t",
            &parts,
            true,
        );
        assert_eq!(
            got,
            vec![
                (tp("a", 0), ErrorCode::InvalidProducerEpoch),
                (tp("a", 1), ErrorCode::InvalidTxnState),
                (tp("b", 0), ErrorCode::None),
            ]
        );
        let got = codes_from_answer(
            &answer(&[("a", 1, ErrorCode::TransactionAbortable)]),
            "t",
            &parts[1..2],
            false,
        );
        assert_eq!(got, vec![(tp("a", 1), ErrorCode::TransactionAbortable)]);
        let lost = codes_from_answer(
            &Err(SendError::Disconnected {
                node: 1,
                reason: "x".into(),
            }),
            "t",
            &parts[..1],
            false,
        );
        assert_eq!(lost, vec![(tp("a", 0), ErrorCode::NetworkException)]);
        let denied = codes_from_answer(
            &Ok(Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                ..Default::default()
            })),
            "t",
            &parts[..1],
            false,
        );
        assert_eq!(denied, vec![(tp("a", 0), ErrorCode::InvalidTxnState)]);
    }

    /// Answers every transaction NONE except partition 9 (INVALID_TXN_STATE); holds its
    /// first request until `release` fires, so that later ones queue behind it.
    struct Gated {
        seen: Mutex<Vec<(i16, Vec<String>)>>,
        arrived: tokio::sync::Notify,
        release: Mutex<Option<oneshot::Receiver<()>>>,
    }

    impl BrokerChannel for Gated {
        fn send(
            &self,
            lane: Lane,
            _node: i32,
            _addr: String,
            request: Request,
            version: i16,
            _timeout: Duration,
        ) -> crate::controller_channel::BoxFuture<Result<Response, SendError>> {
            assert_eq!(lane, Lane::Verification);
            let Request::AddPartitionsToTxn(r) = request else {
                panic!("not AddPartitionsToTxn")
            };
            let ids = r
                .transactions
                .iter()
                .map(|t| t.transactional_id.clone())
                .collect();
            self.seen.lock().push((version, ids));
            let gate = self.release.lock().take();
            self.arrived.notify_one();
            Box::pin(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                Ok(Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                    results_by_transaction: r
                        .transactions
                        .iter()
                        .map(|t| AddPartitionsToTxnResult {
                            transactional_id: t.transactional_id.clone(),
                            topic_results: t
                                .topics
                                .iter()
                                .map(|topic| AddPartitionsToTxnTopicResult {
                                    name: topic.name.clone(),
                                    results_by_partition: topic
                                        .partitions
                                        .iter()
                                        .map(|&p| AddPartitionsToTxnPartitionResult {
                                            partition_index: p,
                                            partition_error_code: if p == 9 { 48 } else { 0 },
                                            ..Default::default()
                                        })
                                        .collect(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }))
            })
        }
    }

    #[tokio::test]
    async fn transactions_waiting_for_one_coordinator_share_the_next_request() {
        let (release, gate) = oneshot::channel();
        let channel = Arc::new(Gated {
            seen: Mutex::new(Vec::new()),
            arrived: tokio::sync::Notify::new(),
            release: Mutex::new(Some(gate)),
        });
        let sender = Arc::new(VerificationSender::new(
            channel.clone(),
            Duration::from_secs(5),
        ));
        let ask = |id: &'static str, p: i32, op: Operation| {
            let sender = sender.clone();
            tokio::spawn(async move {
                sender
                    .ask(2, "h:1".into(), id, 1, 0, &[tp("t", p)], op, false)
                    .await
            })
        };
        let first = ask("a", 0, Operation::Verify);
        channel.arrived.notified().await;
        // The first request is in flight: these three queue; "b" twice cannot share one.
        let b1 = ask("b", 9, Operation::Verify);
        let c = ask("c", 1, Operation::Add);
        let b2 = ask("b", 2, Operation::Verify);
        // Let the three reach the queue before the first request is answered.
        while sender.state.lock().queue.len(2) < 3 {
            tokio::task::yield_now().await;
        }
        let _ = release.send(());
        assert_eq!(first.await.unwrap(), vec![(tp("t", 0), ErrorCode::None)]);
        assert_eq!(
            b1.await.unwrap(),
            vec![(tp("t", 9), ErrorCode::InvalidTxnState)]
        );
        assert_eq!(c.await.unwrap(), vec![(tp("t", 1), ErrorCode::None)]);
        assert_eq!(b2.await.unwrap(), vec![(tp("t", 2), ErrorCode::None)]);
        let seen = channel.seen.lock().clone();
        assert_eq!(
            seen,
            vec![
                (4, vec!["a".to_string()]),
                // An add among them: v5.
                (5, vec!["b".to_string(), "c".to_string()]),
                (4, vec!["b".to_string()]),
            ]
        );
    }
}
