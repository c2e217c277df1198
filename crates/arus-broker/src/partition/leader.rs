//! The leader's replication state of one partition: what moves its high watermark, and what
//! `acks=all` waits for. The decisions are `arus_replication::LeaderPartition`'s (Kafka's
//! `Partition` on the leader); this module keeps one per led partition and mirrors its high
//! watermark into the partition's readers.
//!
//! Three states ([`Replication`]):
//! - `Solo`: the partition has no other replica (a single node, or replication factor 1):
//!   the high watermark moves with the log end on every append, as before replication.
//! - `Awaiting`: this node leads a partition that has other replicas, but the metadata's
//!   leadership (replicas, ISR, partition epoch) has not been given yet — a follower promoted
//!   by an image whose leadership pass has not run. The high watermark stands still and
//!   `acks=all` waits: nothing is counted as replicated before the ISR is known.
//! - `Leader`: the followers' fetch state, the ISR and the high watermark as the lowest log
//!   end offset of the ISR (never moving while the ISR is below `min.insync.replicas`).
//!
//! Lock order: the log lock, then the replication lock (appends publish their log end under
//! the log lock). The high watermark is stored only under the replication lock once a
//! leadership is set, so it never goes backwards.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use arus_replication::{
    AcksDecision, AlterPartitionOutcome, AlterPartitionProposal, BrokerStatus, FetchStateError,
    FollowerFetch, LeaderConfig, LeaderLog, LeaderPartition, Leadership, NotEnoughReplicas,
};

use super::Partition;

/// The brokers as the newest metadata image states them.
pub type BrokerStatuses = BTreeMap<i32, BrokerStatus>;

/// See the module documentation.
#[derive(Debug)]
pub(crate) enum Replication {
    Solo,
    Awaiting,
    Leader(Box<LeaderState>),
}

#[derive(Debug)]
pub(crate) struct LeaderState {
    partition: LeaderPartition,
    brokers: BrokerStatuses,
}

/// What a follower's fetch changed, for the Fetch handler.
#[derive(Debug, Default)]
pub struct FollowerFetchResult {
    /// An ISR expansion to send to the controller.
    pub alter_partition: Option<AlterPartitionProposal>,
    /// Consumers and `acks=all` producers may have something new.
    pub high_watermark_advanced: bool,
}

impl Partition {
    /// The partition's leadership from the metadata image, on the node that leads it
    /// (Kafka's `makeLeader`, and its updates while leader): one replica makes it `Solo`;
    /// several start or update the leader's replication state. `brokers` is the image's
    /// broker registrations (epochs, fencing), which the ISR decisions consult.
    pub fn set_leadership(
        &self,
        config: LeaderConfig,
        leadership: &Leadership,
        brokers: BrokerStatuses,
        now_ms: i64,
    ) {
        let log = self.log.lock();
        let mut slot = self.replication.lock();
        if leadership.replicas.len() <= 1 {
            *slot = Replication::Solo;
            self.store_high_watermark(log.log_end_offset());
            return;
        }
        match &mut *slot {
            Replication::Leader(state)
                if state.partition.leader_epoch() <= leadership.leader_epoch =>
            {
                state.brokers = brokers;
                // This broker's own epoch too: a re-registration changes it, and an
                // AlterPartition with the old one would be refused forever.
                state.partition.set_config(config);
                if let Err(stale) =
                    state
                        .partition
                        .update_leadership(leadership, now_ms, &state.brokers)
                {
                    tracing::debug!(topic = %self.topic, partition = self.index, offered = stale.offered, current = stale.current, "stale partition epoch in the metadata: ignored");
                }
            }
            _ => {
                let start = LeaderLog {
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                    high_watermark: self.high_watermark().min(log.log_end_offset()),
                };
                let partition =
                    LeaderPartition::become_leader(config, leadership, start, now_ms, &brokers);
                *slot = Replication::Leader(Box::new(LeaderState { partition, brokers }));
            }
        }
        if let Replication::Leader(state) = &*slot {
            self.store_high_watermark(state.partition.high_watermark());
        }
        // An ISR change may settle `acks=all` waiters without moving the high watermark.
        self.high_watermark_moved.send_modify(|_| {});
    }

    /// This replica stopped leading: the next leadership starts afresh.
    pub(crate) fn await_leadership(&self) {
        *self.replication.lock() = Replication::Awaiting;
        // Waiters for the old leadership's acks: they are not coming (see `wait_replicated`).
        self.high_watermark_moved.send_modify(|_| {});
    }

    /// Called with the log lock held after an append moved the log end to `end`.
    pub(crate) fn leader_appended(&self, end: i64, now_ms: i64) {
        let mut slot = self.replication.lock();
        match &mut *slot {
            Replication::Solo => self.store_high_watermark(end),
            Replication::Awaiting => {}
            Replication::Leader(state) => {
                let LeaderState { partition, brokers } = &mut **state;
                if partition.on_leader_append(end, now_ms, brokers) {
                    self.store_high_watermark(partition.high_watermark());
                }
            }
        }
    }

    /// A follower fetched at `fetch.fetch_offset` (its log end): Kafka's
    /// `updateFollowerFetchState`. A partition this node leads without other replicas, or
    /// whose leadership is not known yet, does not know the follower:
    /// NOT_LEADER_OR_FOLLOWER, as Kafka answers a replica outside the assignment.
    pub fn record_follower_fetch(
        &self,
        fetch: FollowerFetch,
    ) -> Result<FollowerFetchResult, FetchStateError> {
        let mut slot = self.replication.lock();
        let Replication::Leader(state) = &mut *slot else {
            return Err(FetchStateError::UnknownReplica {
                replica_id: fetch.replica_id,
            });
        };
        let LeaderState { partition, brokers } = &mut **state;
        let outcome = partition.update_follower_fetch_state(fetch, brokers)?;
        if outcome.high_watermark_advanced {
            self.store_high_watermark(partition.high_watermark());
        }
        Ok(FollowerFetchResult {
            alter_partition: outcome.alter_partition,
            high_watermark_advanced: outcome.high_watermark_advanced,
        })
    }

    /// Before an append with `acks`: NOT_ENOUGH_REPLICAS when `acks=all` and the ISR is below
    /// `min.insync.replicas` (Kafka's `Partition.appendRecordsToLeader`).
    pub fn check_enough_replicas(&self, acks: i16) -> Result<(), NotEnoughReplicas> {
        match &*self.replication.lock() {
            Replication::Leader(state) => state.partition.check_append(acks),
            Replication::Solo | Replication::Awaiting => Ok(()),
        }
    }

    /// Whether an `acks=all` produce ending at `end_offset` (exclusive) can be answered.
    pub fn acks_all_decision(&self, end_offset: i64) -> AcksDecision {
        match &*self.replication.lock() {
            Replication::Solo if self.high_watermark() >= end_offset => AcksDecision::Complete,
            Replication::Solo | Replication::Awaiting => AcksDecision::Wait,
            Replication::Leader(state) => state
                .partition
                .check_enough_replicas_reach_offset(end_offset),
        }
    }

    /// Kafka's periodic `maybeShrinkIsr`: followers that did not catch up within
    /// `replica.lag.time.max.ms` leave the ISR (through the controller).
    pub fn maybe_shrink_isr(&self, now_ms: i64) -> Option<AlterPartitionProposal> {
        match &mut *self.replication.lock() {
            Replication::Leader(state) => state.partition.maybe_shrink_isr(now_ms),
            _ => None,
        }
    }

    /// The controller's answer to `sent`: the committed ISR, or what to do instead.
    pub fn alter_partition_answered(
        &self,
        sent: &AlterPartitionProposal,
        answer: Result<arus_replication::CommittedLeaderAndIsr, arus_protocol::ErrorCode>,
        now_ms: i64,
    ) -> Option<AlterPartitionOutcome> {
        let mut slot = self.replication.lock();
        let Replication::Leader(state) = &mut *slot else {
            return None;
        };
        let LeaderState { partition, brokers } = &mut **state;
        let outcome = partition.handle_alter_partition_response(sent, answer, now_ms, brokers);
        if matches!(
            outcome,
            AlterPartitionOutcome::Committed {
                high_watermark_advanced: true
            }
        ) {
            self.store_high_watermark(partition.high_watermark());
        }
        self.high_watermark_moved.send_modify(|_| {});
        Some(outcome)
    }

    /// The in-sync followers that hold `offset` (their log start at or below it, their log
    /// end above it): where a consumer may read it instead (KIP-392, Kafka's
    /// `findPreferredReadReplica`), as (id, log end offset, ms since last caught up).
    pub fn in_sync_followers_holding(&self, offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        let slot = self.replication.lock();
        let Replication::Leader(state) = &*slot else {
            return Vec::new();
        };
        let isr = state.partition.state().isr();
        isr.iter()
            .filter_map(|&id| {
                let r = state.partition.replica(id)?;
                (r.log_end_offset >= offset && r.log_start_offset <= offset).then(|| {
                    (
                        id,
                        r.log_end_offset,
                        now_ms.saturating_sub(r.last_caught_up_time_ms),
                    )
                })
            })
            .collect()
    }

    /// The replication state in words, for the operator's log when a wait for the in-sync
    /// replicas times out.
    pub fn replication_summary(&self) -> String {
        match &*self.replication.lock() {
            Replication::Solo => format!("solo, high watermark {}", self.high_watermark()),
            Replication::Awaiting => format!(
                "awaiting its leadership, high watermark {}",
                self.high_watermark()
            ),
            Replication::Leader(state) => {
                let p = &state.partition;
                let followers: Vec<String> = p
                    .state()
                    .maximal_isr()
                    .iter()
                    .filter_map(|id| p.replica(*id).map(|r| format!("{id}@{}", r.log_end_offset)))
                    .collect();
                format!(
                    "leader epoch {}, ISR {:?} ({}), high watermark {}, log end {}, followers {followers:?}",
                    p.leader_epoch(),
                    p.state().isr(),
                    if p.state().is_inflight() {
                        "change in flight"
                    } else {
                        "committed"
                    },
                    p.high_watermark(),
                    p.log_end_offset()
                )
            }
        }
    }

    fn store_high_watermark(&self, hw: i64) {
        let previous = self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if hw > previous {
            self.high_watermark_moved.send_replace(hw);
        }
    }

    /// Resolves once the records below `end` are in every in-sync replica — the high
    /// watermark reached `end`, at once on a partition with no other replica: `acks=all`,
    /// also for the coordinators' own writes and transaction markers, which Kafka appends
    /// with required acks -1. False when the ISR shrank below `min.insync.replicas` meanwhile
    /// (NOT_ENOUGH_REPLICAS_AFTER_APPEND), or when this replica stopped leading (its
    /// followers no longer report to it). Callers bound the wait.
    pub async fn wait_replicated(&self, end: i64) -> bool {
        loop {
            // Subscribed before the decision, so a change in between is not missed.
            let mut moved = self.high_watermark_moved.subscribe();
            if !self.is_leader() {
                return self.high_watermark() >= end;
            }
            match self.acks_all_decision(end) {
                AcksDecision::Complete => return true,
                AcksDecision::NotEnoughReplicasAfterAppend => return false,
                AcksDecision::Wait => {
                    if moved.changed().await.is_err() {
                        return false;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
