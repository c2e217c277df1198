//! KIP-890 across brokers (Kafka's `AddPartitionsToTxnManager`): a partition leader that
//! takes a transactional produce whose transaction coordinator is another node asks that
//! coordinator, with a broker-originated AddPartitionsToTxn, before appending: v4 with
//! `verify_only` for a Produce up to v11 or a TxnOffsetCommit up to v4 (is the partition in
//! the ongoing transaction?), v5 without it for a Produce v12+ or TxnOffsetCommit v5+ (add
//! the partition to the transaction, KIP-890 part 2).
//!
//! Kafka batches the transactions waiting for one coordinator into one request; here each
//! produce request sends its own (one per producer), on the one verification connection to
//! that coordinator (see [`super::Lane`]).

use arus_protocol::messages::AddPartitionsToTxnRequest;
use arus_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use arus_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use arus_protocol::{ErrorCode, Request, Response};
use arus_txn::TopicPartition;
use std::collections::BTreeMap;

use super::{Lane, SendError};
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
    answer: Result<Response, SendError>,
    transactional_id: &str,
    partitions: &[TopicPartition],
    old_client: bool,
) -> Vec<(TopicPartition, ErrorCode)> {
    let all = |code: ErrorCode| partitions.iter().map(|tp| (tp.clone(), code)).collect();
    let r: AddPartitionsToTxnResponse = match answer {
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

/// Asks coordinator `node` about `partitions` of `transactional_id`'s transaction; one code
/// per partition, in order. Without a way to other brokers (the single node) or an address
/// for the coordinator, COORDINATOR_NOT_AVAILABLE (as Kafka without a coordinator node).
#[allow(clippy::too_many_arguments)]
pub async fn ask_coordinator(
    broker: &Broker,
    node: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[TopicPartition],
    op: Operation,
    old_client: bool,
) -> Vec<(TopicPartition, ErrorCode)> {
    let (Some(channel), Some(addr)) = (broker.broker_channel(), broker.inter_broker_address(node))
    else {
        return partitions
            .iter()
            .map(|tp| (tp.clone(), ErrorCode::CoordinatorNotAvailable))
            .collect();
    };
    let (req, version) = request(
        transactional_id,
        producer_id,
        producer_epoch,
        partitions,
        op,
    );
    let answer = channel
        .send(
            Lane::Verification,
            node,
            addr,
            Request::AddPartitionsToTxn(req),
            version,
            broker.inter_broker_timeout(),
        )
        .await;
    if let Err(e) = &answer {
        tracing::warn!(node, transactional_id, error = %e, "AddPartitionsToTxn to the transaction coordinator failed");
    }
    codes_from_answer(answer, transactional_id, partitions, old_client)
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
            answer(&[
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
            answer(&[("a", 1, ErrorCode::TransactionAbortable)]),
            "t",
            &parts[1..2],
            false,
        );
        assert_eq!(got, vec![(tp("a", 1), ErrorCode::TransactionAbortable)]);
        let lost = codes_from_answer(
            Err(SendError::Disconnected {
                node: 1,
                reason: "x".into(),
            }),
            "t",
            &parts[..1],
            false,
        );
        assert_eq!(lost, vec![(tp("a", 0), ErrorCode::NetworkException)]);
        let denied = codes_from_answer(
            Ok(Response::AddPartitionsToTxn(AddPartitionsToTxnResponse {
                error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                ..Default::default()
            })),
            "t",
            &parts[..1],
            false,
        );
        assert_eq!(denied, vec![(tp("a", 0), ErrorCode::InvalidTxnState)]);
    }
}
