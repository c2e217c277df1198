//! One partition on its leader: the followers' fetch state, the high and low watermarks,
//! ISR expansion and shrinking through AlterPartition, and the `acks=all` decisions
//! (Kafka's `Partition` on the leader side).
//!
//! The leader's own log is not here: the driver reports its log end offset and log start
//! offset ([`LeaderPartition::on_leader_append`], [`LeaderPartition::on_log_start_offset`])
//! and mirrors [`LeaderPartition::high_watermark`] into the log after each call that says
//! it advanced. Every call that depends on time takes `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use arus_protocol::ErrorCode;

use crate::acks::{AcksDecision, NotEnoughReplicas};
use crate::isr::{
    AlterPartitionOutcome, AlterPartitionProposal, BrokerRegistry, CommittedLeaderAndIsr,
    IsrBrokerState, LeaderRecoveryState, PartitionState, PendingChange,
};
use crate::replica::ReplicaState;

/// Settings of the leader, from the broker and topic configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderConfig {
    pub local_broker_id: i32,
    /// This broker's own registration epoch, sent for itself in AlterPartition.
    pub local_broker_epoch: i64,
    /// `replica.lag.time.max.ms` (Kafka's default 30000).
    pub replica_lag_time_max_ms: i64,
    /// `min.insync.replicas` of the topic (dynamic: see [`LeaderPartition::set_min_insync_replicas`]).
    pub min_insync_replicas: usize,
}

/// The partition's leadership as the metadata image states it (Kafka's
/// `LeaderAndIsrPartitionState` for the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leadership {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Every replica, this broker included.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The leader's log offsets when it takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderLog {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
}

/// One follower Fetch, as the leader read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerFetch {
    pub replica_id: i32,
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub fetch_time_ms: i64,
    /// `ReplicaState.ReplicaEpoch` of the Fetch (-1 when the follower sent none).
    pub broker_epoch: i64,
}

/// What a follower Fetch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The follower caught up: send this AlterPartition to add it to the ISR.
    pub alter_partition: Option<AlterPartitionProposal>,
    pub high_watermark_advanced: bool,
    pub low_watermark_advanced: bool,
}

/// A follower Fetch whose state the leader refuses; both are NOT_LEADER_OR_FOLLOWER.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchStateError {
    #[error("replica {replica_id} is not a replica of this partition")]
    UnknownReplica { replica_id: i32 },
    #[error(
        "Received stale fetch state update. broker epoch={request_epoch} vs expected={expected_epoch}"
    )]
    StaleBrokerEpoch {
        replica_id: i32,
        request_epoch: i64,
        expected_epoch: i64,
    },
}

impl FetchStateError {
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::NotLeaderOrFollower
    }
}

/// New leadership from the metadata image with an older partition epoch than the one the
/// leader already has: skipped (Kafka's "Skipped the become-leader state change").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("partition epoch {offered} is older than the current {current}")]
pub struct StalePartitionEpoch {
    pub offered: i32,
    pub current: i32,
}

#[derive(Clone, Debug)]
pub struct LeaderPartition {
    config: LeaderConfig,
    leader_epoch: i32,
    partition_epoch: i32,
    /// The log end offset when this leader epoch began: a follower joins the ISR only once
    /// it has reached it, so it cannot become leader without data committed in an earlier
    /// epoch.
    leader_epoch_start_offset: i64,
    replicas: BTreeMap<i32, ReplicaState>,
    state: PartitionState,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
}

impl LeaderPartition {
    /// This broker becomes leader (Kafka's `makeLeader` from a non-leader state). The driver
    /// must also assign `leadership.leader_epoch` at `log.log_end_offset` in the leader epoch
    /// cache, as Kafka's `maybeAssignEpochStartOffset`.
    pub fn become_leader(
        config: LeaderConfig,
        leadership: &Leadership,
        log: LeaderLog,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> Self {
        let mut partition = Self {
            config,
            leader_epoch: leadership.leader_epoch,
            partition_epoch: leadership.partition_epoch,
            leader_epoch_start_offset: log.log_end_offset,
            replicas: BTreeMap::new(),
            state: PartitionState::Committed {
                isr: BTreeSet::new(),
                leader_recovery_state: LeaderRecoveryState::Recovered,
            },
            log_start_offset: log.log_start_offset,
            log_end_offset: log.log_end_offset,
            high_watermark: log.high_watermark,
        };
        partition.assign(leadership);
        for (id, replica) in partition.replicas.iter_mut() {
            replica.reset(
                now_ms,
                log.log_end_offset,
                true,
                leadership.isr.contains(id),
            );
        }
        tracing::info!(
            leader_epoch = leadership.leader_epoch,
            partition_epoch = leadership.partition_epoch,
            start_offset = log.log_end_offset,
            high_watermark = log.high_watermark,
            isr = ?leadership.isr,
            "leader starts at leader epoch"
        );
        partition.maybe_increment_high_watermark(now_ms, brokers);
        partition
    }

    /// New leadership from the metadata image while already leader: a new leader epoch
    /// (re-election) resets the followers' state; the same epoch only replaces the ISR,
    /// the replicas and the partition epoch, ending any AlterPartition in flight. Returns
    /// whether the high watermark advanced.
    pub fn update_leadership(
        &mut self,
        leadership: &Leadership,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> Result<bool, StalePartitionEpoch> {
        if leadership.partition_epoch < self.partition_epoch {
            return Err(StalePartitionEpoch {
                offered: leadership.partition_epoch,
                current: self.partition_epoch,
            });
        }
        self.assign(leadership);
        if leadership.leader_epoch > self.leader_epoch {
            for (id, replica) in self.replicas.iter_mut() {
                replica.reset(
                    now_ms,
                    self.log_end_offset,
                    false,
                    leadership.isr.contains(id),
                );
            }
            self.leader_epoch = leadership.leader_epoch;
            self.leader_epoch_start_offset = self.log_end_offset;
        }
        self.partition_epoch = leadership.partition_epoch;
        Ok(self.maybe_increment_high_watermark(now_ms, brokers))
    }

    /// Kafka's `updateAssignmentAndIsr` for a leader: followers added keep their state,
    /// removed ones are forgotten, the state becomes the committed ISR (a leader always
    /// writes RECOVERED: it has recovered the partition by becoming leader).
    fn assign(&mut self, leadership: &Leadership) {
        let followers: BTreeSet<i32> = leadership
            .replicas
            .iter()
            .copied()
            .filter(|&id| id != self.config.local_broker_id)
            .collect();
        self.replicas.retain(|id, _| followers.contains(id));
        for id in followers {
            self.replicas.entry(id).or_default();
        }
        self.state = PartitionState::Committed {
            isr: leadership.isr.iter().copied().collect(),
            leader_recovery_state: LeaderRecoveryState::Recovered,
        };
    }

    pub fn set_min_insync_replicas(&mut self, min_insync_replicas: usize) {
        self.config.min_insync_replicas = min_insync_replicas;
    }

    /// The leader's settings as the newest metadata and configs give them: in particular this
    /// broker's own registration epoch, which a re-registration changes and which the next
    /// AlterPartition must carry (a stale one is refused STALE_BROKER_EPOCH, forever).
    pub fn set_config(&mut self, config: LeaderConfig) {
        self.config = config;
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    pub fn state(&self) -> &PartitionState {
        &self.state
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    pub fn replica(&self, replica_id: i32) -> Option<&ReplicaState> {
        self.replicas.get(&replica_id)
    }

    /// `min.insync.replicas` capped by the replication factor (a larger setting could never
    /// be met).
    pub fn effective_min_isr(&self) -> usize {
        self.config.min_insync_replicas.min(self.replicas.len() + 1)
    }

    /// The committed ISR is below the effective `min.insync.replicas` (KIP-966): the high
    /// watermark does not advance.
    pub fn is_under_min_isr(&self) -> bool {
        self.state.isr().len() < self.effective_min_isr()
    }

    pub fn is_at_min_isr(&self) -> bool {
        self.state.isr().len() == self.effective_min_isr()
    }

    pub fn is_under_replicated(&self) -> bool {
        self.replicas.len() + 1 > self.state.isr().len()
    }

    /// The lowest log start offset of the leader and its alive followers: DeleteRecords is
    /// answered once it reaches the requested offset.
    pub fn low_watermark(&self, brokers: &impl BrokerRegistry) -> i64 {
        self.replicas
            .iter()
            .filter(|(id, _)| brokers.is_alive(**id))
            .map(|(_, r)| r.log_start_offset)
            .fold(self.log_start_offset, i64::min)
    }

    /// A follower fetched (Kafka's `updateFollowerFetchState`): record its offsets and
    /// caught-up time, add it to the ISR if it caught up, and move the high watermark.
    pub fn update_follower_fetch_state(
        &mut self,
        fetch: FollowerFetch,
        brokers: &impl BrokerRegistry,
    ) -> Result<FetchOutcome, FetchStateError> {
        let old_low_watermark = self.low_watermark(brokers);
        let leader_end_offset = self.log_end_offset;
        let replica =
            self.replicas
                .get_mut(&fetch.replica_id)
                .ok_or(FetchStateError::UnknownReplica {
                    replica_id: fetch.replica_id,
                })?;
        // KIP-903: a fetch from before the follower's current registration must not move
        // its state (it may have lost data in between).
        if fetch.broker_epoch != -1
            && let Some(expected) = brokers.alive_broker_epoch(fetch.replica_id)
            && expected > fetch.broker_epoch
        {
            tracing::warn!(
                replica_id = fetch.replica_id,
                request_epoch = fetch.broker_epoch,
                expected_epoch = expected,
                "refusing a follower fetch with a stale broker epoch"
            );
            return Err(FetchStateError::StaleBrokerEpoch {
                replica_id: fetch.replica_id,
                request_epoch: fetch.broker_epoch,
                expected_epoch: expected,
            });
        }
        let previous_end_offset = replica.log_end_offset;
        replica.apply_fetch(
            fetch.fetch_offset,
            fetch.log_start_offset,
            fetch.fetch_time_ms,
            leader_end_offset,
            fetch.broker_epoch,
        );
        let low_watermark_advanced = self.low_watermark(brokers) > old_low_watermark;
        let alter_partition = self.maybe_expand_isr(fetch.replica_id, brokers);
        let high_watermark_advanced = previous_end_offset != fetch.fetch_offset
            && self.maybe_increment_high_watermark(fetch.fetch_time_ms, brokers);
        Ok(FetchOutcome {
            alter_partition,
            high_watermark_advanced,
            low_watermark_advanced,
        })
    }

    /// The leader appended: its log end offset is now `log_end_offset`. Returns whether the
    /// high watermark advanced (it can, when the ISR is the leader alone).
    pub fn on_leader_append(
        &mut self,
        log_end_offset: i64,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> bool {
        self.log_end_offset = log_end_offset;
        self.maybe_increment_high_watermark(now_ms, brokers)
    }

    pub fn on_log_start_offset(&mut self, log_start_offset: i64) {
        self.log_start_offset = log_start_offset;
    }

    /// Before appending a produce: `acks=all` (-1) is refused with NOT_ENOUGH_REPLICAS when
    /// the committed ISR is below the effective `min.insync.replicas`.
    pub fn check_append(&self, required_acks: i16) -> Result<(), NotEnoughReplicas> {
        let min_isr = self.effective_min_isr();
        if required_acks == -1 && self.state.isr().len() < min_isr {
            return Err(NotEnoughReplicas {
                isr: self.state.isr().iter().copied().collect(),
                min_isr,
            });
        }
        Ok(())
    }

    /// Can an `acks=all` produce whose last offset is `required_offset - 1` be answered
    /// (Kafka's `checkEnoughReplicasReachOffset`)? It is committed once the high watermark
    /// reaches `required_offset`, the high watermark being the lowest log end offset of the
    /// maximal ISR.
    pub fn check_enough_replicas_reach_offset(&self, required_offset: i64) -> AcksDecision {
        if self.high_watermark >= required_offset {
            if self.effective_min_isr() <= self.state.maximal_isr().len() {
                AcksDecision::Complete
            } else {
                AcksDecision::NotEnoughReplicasAfterAppend
            }
        } else {
            AcksDecision::Wait
        }
    }

    /// Kafka's `maybeIncrementLeaderHW`: the lowest log end offset among the leader, the
    /// maximal ISR and the followers that are caught up and eligible to join it (waiting
    /// for those lets a follower that trails a leader-only ISR ever catch up). Never while
    /// under `min.insync.replicas`; never backwards.
    fn maybe_increment_high_watermark(
        &mut self,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> bool {
        if self.is_under_min_isr() {
            tracing::trace!(isr = ?self.state.isr(), "not increasing the high watermark: under min ISR");
            return false;
        }
        let maximal_isr = self.state.maximal_isr();
        let mut new_high_watermark = self.log_end_offset;
        for (&id, replica) in &self.replicas {
            if replica.log_end_offset < new_high_watermark
                && (maximal_isr.contains(&id)
                    || (replica.is_caught_up(
                        self.log_end_offset,
                        now_ms,
                        self.config.replica_lag_time_max_ms,
                    ) && self.is_replica_isr_eligible(id, brokers)))
            {
                new_high_watermark = replica.log_end_offset;
            }
        }
        if new_high_watermark > self.high_watermark {
            tracing::debug!(
                from = self.high_watermark,
                to = new_high_watermark,
                "high watermark updated"
            );
            self.high_watermark = new_high_watermark;
            true
        } else {
            false
        }
    }

    /// KRaft eligibility to join the ISR: a known replica whose broker is registered, not
    /// fenced, not in controlled shutdown, and whose fetches carried its current broker
    /// epoch (or -1, which skips the check).
    fn is_replica_isr_eligible(&self, replica_id: i32, brokers: &impl BrokerRegistry) -> bool {
        let Some(replica) = self.replicas.get(&replica_id) else {
            tracing::warn!(
                replica_id,
                "no state for the replica on the leader; the topic may be deleted"
            );
            return false;
        };
        let stored = replica.broker_epoch;
        let cached = brokers.alive_broker_epoch(replica_id);
        !brokers.is_fenced(replica_id)
            && !brokers.is_shutting_down(replica_id)
            && match (stored, cached) {
                (Some(stored), Some(cached)) => stored == -1 || stored == cached,
                _ => false,
            }
    }

    /// Kafka's `maybeExpandIsr`: a follower outside the ISR whose log end offset has reached
    /// the high watermark and the start of the current leader epoch joins it.
    fn maybe_expand_isr(
        &mut self,
        replica_id: i32,
        brokers: &impl BrokerRegistry,
    ) -> Option<AlterPartitionProposal> {
        let PartitionState::Committed { isr, .. } = &self.state else {
            return None;
        };
        if isr.contains(&replica_id) || !self.is_replica_isr_eligible(replica_id, brokers) {
            return None;
        }
        let end_offset = self.replicas.get(&replica_id)?.log_end_offset;
        if end_offset < self.high_watermark || end_offset < self.leader_epoch_start_offset {
            return None;
        }
        let mut new_isr = isr.clone();
        new_isr.insert(replica_id);
        tracing::info!(replica_id, isr = ?new_isr, "expanding ISR");
        Some(self.prepare(
            new_isr,
            PendingChange::Expand {
                new_in_sync_replica: replica_id,
            },
        ))
    }

    /// The ISR followers not caught up within `replica.lag.time.max.ms` (stuck, or too
    /// slow to reach the leader's end); empty while an AlterPartition is in flight.
    pub fn out_of_sync_replicas(&self, now_ms: i64) -> BTreeSet<i32> {
        if self.state.is_inflight() {
            return BTreeSet::new();
        }
        self.state
            .isr()
            .iter()
            .copied()
            .filter(|&id| id != self.config.local_broker_id)
            .filter(|id| {
                self.replicas.get(id).is_none_or(|r| {
                    !r.is_caught_up(
                        self.log_end_offset,
                        now_ms,
                        self.config.replica_lag_time_max_ms,
                    )
                })
            })
            .collect()
    }

    /// Kafka's `maybeShrinkIsr`, run periodically (every `replica.lag.time.max.ms / 2`).
    pub fn maybe_shrink_isr(&mut self, now_ms: i64) -> Option<AlterPartitionProposal> {
        let out_of_sync = self.out_of_sync_replicas(now_ms);
        if out_of_sync.is_empty() {
            return None;
        }
        let PartitionState::Committed { isr, .. } = &self.state else {
            return None;
        };
        let new_isr: BTreeSet<i32> = isr.difference(&out_of_sync).copied().collect();
        tracing::info!(
            from = ?isr,
            to = ?new_isr,
            high_watermark = self.high_watermark,
            end_offset = self.log_end_offset,
            out_of_sync = ?out_of_sync
                .iter()
                .map(|id| (id, self.replicas.get(id).map(|r| (r.log_end_offset, r.last_caught_up_time_ms))))
                .collect::<Vec<_>>(),
            "shrinking ISR"
        );
        Some(self.prepare(
            new_isr,
            PendingChange::Shrink {
                out_of_sync_replicas: out_of_sync,
            },
        ))
    }

    fn prepare(&mut self, new_isr: BTreeSet<i32>, change: PendingChange) -> AlterPartitionProposal {
        let sent = AlterPartitionProposal {
            leader_id: self.config.local_broker_id,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            leader_recovery_state: self.state.leader_recovery_state(),
            new_isr: new_isr
                .iter()
                .map(|&broker_id| IsrBrokerState {
                    broker_id,
                    broker_epoch: self.broker_epoch_for_isr(broker_id),
                })
                .collect(),
        };
        let (isr, leader_recovery_state) = self.state.committed_parts();
        self.state = PartitionState::Pending {
            change,
            sent: sent.clone(),
            last_committed_isr: isr,
            last_committed_recovery_state: leader_recovery_state,
        };
        sent
    }

    /// A member's epoch as last seen; -1 when it has not fetched from this leader (safe:
    /// the controller bumps the partition epoch if it restarted, refusing this request).
    fn broker_epoch_for_isr(&self, broker_id: i32) -> i64 {
        if broker_id == self.config.local_broker_id {
            return self.config.local_broker_epoch;
        }
        self.replicas
            .get(&broker_id)
            .and_then(|r| r.broker_epoch)
            .unwrap_or(-1)
    }

    /// The controller answered the AlterPartition `sent` (Kafka's `submitAlterPartition`
    /// completion: `handleAlterPartitionUpdate` / `handleAlterPartitionError`).
    pub fn handle_alter_partition_response(
        &mut self,
        sent: &AlterPartitionProposal,
        response: Result<CommittedLeaderAndIsr, ErrorCode>,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> AlterPartitionOutcome {
        match &self.state {
            PartitionState::Pending { sent: pending, .. } if pending == sent => {}
            _ => {
                tracing::debug!(?sent, state = ?self.state, "ignoring the answer to an outdated AlterPartition");
                return AlterPartitionOutcome::Outdated;
            }
        }
        match response {
            Ok(committed) => self.handle_alter_partition_update(committed, now_ms, brokers),
            Err(error) => self.handle_alter_partition_error(sent, error),
        }
    }

    fn handle_alter_partition_update(
        &mut self,
        committed: CommittedLeaderAndIsr,
        now_ms: i64,
        brokers: &impl BrokerRegistry,
    ) -> AlterPartitionOutcome {
        if committed.leader_epoch != self.leader_epoch {
            tracing::debug!(
                answer = committed.leader_epoch,
                ours = self.leader_epoch,
                "ignoring new ISR: leader epoch differs"
            );
            return AlterPartitionOutcome::StaleAnswer;
        }
        if committed.partition_epoch < self.partition_epoch {
            tracing::debug!(
                answer = committed.partition_epoch,
                ours = self.partition_epoch,
                "ignoring new ISR: we have a newer partition epoch"
            );
            return AlterPartitionOutcome::StaleAnswer;
        }
        // A newer partition epoch: the controller applied the change. The same epoch: it
        // found nothing to change. Either way the pending state ends.
        self.state = PartitionState::Committed {
            isr: committed.isr.iter().copied().collect(),
            leader_recovery_state: committed.leader_recovery_state,
        };
        self.partition_epoch = committed.partition_epoch;
        tracing::info!(
            isr = ?committed.isr,
            partition_epoch = committed.partition_epoch,
            under_min_isr = self.is_under_min_isr(),
            "ISR updated"
        );
        AlterPartitionOutcome::Committed {
            high_watermark_advanced: self.maybe_increment_high_watermark(now_ms, brokers),
        }
    }

    fn handle_alter_partition_error(
        &mut self,
        sent: &AlterPartitionProposal,
        error: ErrorCode,
    ) -> AlterPartitionOutcome {
        match error {
            ErrorCode::OperationNotAttempted | ErrorCode::IneligibleReplica => {
                // The controller states that nothing was applied and that our partition
                // epoch is current, so going back to the committed state is safe.
                self.state = self.state.last_committed();
                tracing::info!(
                    ?error,
                    ?sent,
                    "controller rejected the ISR change; back to the committed state"
                );
                AlterPartitionOutcome::Reverted { error }
            }
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::InvalidUpdateVersion
            | ErrorCode::InvalidRequest
            | ErrorCode::NewLeaderElected => {
                tracing::debug!(?error, ?sent, "ISR change failed; awaiting new metadata");
                AlterPartitionOutcome::AwaitMetadata { error }
            }
            _ => {
                tracing::warn!(
                    ?error,
                    ?sent,
                    "ISR change failed with an unexpected error; retrying"
                );
                AlterPartitionOutcome::Retry(sent.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests;
