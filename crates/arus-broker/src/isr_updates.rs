//! Sends a partition leader's ISR changes to the active controller (Kafka's
//! `AlterPartitionManager`): AlterPartition v3 with each member's broker epoch (KIP-903),
//! over the broker's controller channel. The decisions — when to propose, what an answer
//! means, whether to retry — are the partition's replication state's
//! (`partition::leader`, after `arus_replication::LeaderPartition`); this is the I/O.
//!
//! One request per proposal. A proposal that must be retried (the controller unreachable,
//! an unexpected error) is sent again after [`RETRY_BACKOFF`], until an answer settles it or
//! new metadata makes it outdated; a broker with no controller link (the single node) has
//! no other replicas and never proposes.

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::messages::AlterPartitionRequest;
use arus_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use arus_protocol::{ErrorCode, Request, Response, Uuid};
use arus_replication::{
    AlterPartitionOutcome, AlterPartitionProposal, CommittedLeaderAndIsr, LeaderRecoveryState,
};
use tracing::{debug, info, warn};

use crate::broker::{Broker, now_ms};
use crate::partition::Partition;

/// Kafka's AlterPartition version with broker epochs and topic ids.
const ALTER_PARTITION_VERSION: i16 = 3;
/// How long before a proposal that must be retried is sent again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How long one request may wait for the controller.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `proposal` for `partition` (of topic `topic_id`) in the background.
pub fn submit(
    broker: &Arc<Broker>,
    partition: Arc<Partition>,
    topic_id: Uuid,
    proposal: AlterPartitionProposal,
) {
    let Some(link) = broker.controller.get() else {
        warn!(topic = %partition.topic, partition = partition.index, "an ISR change with no controller to send it to");
        return;
    };
    let channel = link.channel.clone();
    let broker = broker.clone();
    tokio::spawn(async move {
        let mut proposal = proposal;
        loop {
            // The broker's epoch as of now (Kafka's `brokerEpochSupplier`): a re-registration
            // since the proposal must not make the controller refuse it forever.
            let epoch = broker.controller.get().map_or(-1, |l| {
                l.broker_epoch.load(std::sync::atomic::Ordering::Acquire)
            });
            let request = request_for(&partition, topic_id, &proposal, epoch);
            info!(topic = %partition.topic, partition = partition.index, isr = ?proposal.isr_ids(), leader_epoch = proposal.leader_epoch, partition_epoch = proposal.partition_epoch, "proposing an ISR change");
            let answer = match channel
                .forward(
                    Request::AlterPartition(request),
                    ALTER_PARTITION_VERSION,
                    REQUEST_TIMEOUT,
                )
                .await
            {
                Ok(forwarded) => answer_for(forwarded.response, topic_id, partition.index),
                Err(e) => {
                    debug!(topic = %partition.topic, partition = partition.index, error = %e, "AlterPartition not answered");
                    Err(e.code())
                }
            };
            match partition.alter_partition_answered(&proposal, answer, now_ms()) {
                Some(AlterPartitionOutcome::Retry(again)) => {
                    proposal = again;
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                Some(AlterPartitionOutcome::Committed {
                    high_watermark_advanced,
                }) => {
                    if high_watermark_advanced {
                        broker.data_arrived.notify_waiters();
                    }
                    return;
                }
                Some(other) => {
                    debug!(topic = %partition.topic, partition = partition.index, outcome = ?other, "AlterPartition settled");
                    return;
                }
                None => return,
            }
        }
    });
}

fn request_for(
    partition: &Partition,
    topic_id: Uuid,
    proposal: &AlterPartitionProposal,
    broker_epoch: i64,
) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id: proposal.leader_id,
        broker_epoch,
        topics: vec![TopicData {
            topic_id,
            partitions: vec![PartitionData {
                partition_index: partition.index,
                leader_epoch: proposal.leader_epoch,
                new_isr_with_epochs: proposal
                    .new_isr
                    .iter()
                    .map(|m| BrokerState {
                        broker_id: m.broker_id,
                        broker_epoch: m.broker_epoch,
                        ..Default::default()
                    })
                    .collect(),
                leader_recovery_state: proposal.leader_recovery_state.value(),
                partition_epoch: proposal.partition_epoch,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The controller's answer for this one partition.
fn answer_for(
    response: Response,
    topic_id: Uuid,
    index: i32,
) -> Result<CommittedLeaderAndIsr, ErrorCode> {
    let Response::AlterPartition(r) = response else {
        return Err(ErrorCode::UnknownServerError);
    };
    if r.error_code != 0 {
        return Err(ErrorCode::from_code(r.error_code).unwrap_or(ErrorCode::UnknownServerError));
    }
    let p = r
        .topics
        .iter()
        .filter(|t| t.topic_id == topic_id)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == index)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if p.error_code != 0 {
        return Err(ErrorCode::from_code(p.error_code).unwrap_or(ErrorCode::UnknownServerError));
    }
    Ok(CommittedLeaderAndIsr {
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: p.isr.clone(),
        leader_recovery_state: if p.leader_recovery_state == 1 {
            LeaderRecoveryState::Recovering
        } else {
            LeaderRecoveryState::Recovered
        },
    })
}
