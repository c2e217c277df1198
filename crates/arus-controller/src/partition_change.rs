//! Kafka's `PartitionChangeBuilder`: from a partition and a target (ISR, replicas, election
//! kind), the `PartitionChangeRecord` that gets there, or nothing when nothing changes.
//!
//! Leader election rules (Kafka 4.4):
//! - a new leader must be acceptable (the caller's predicate: registered, unfenced, not in
//!   controlled shutdown, and not the broker being removed) and in the target ISR, or, when
//!   the ISR is empty, in the ELR (KIP-966);
//! - an ONLINE election keeps the current leader when it is still valid, else takes the
//!   first valid replica in replica order; PREFERRED tries the first replica first;
//!   UNCLEAN may fall back to any acceptable replica and marks the leader RECOVERING;
//! - with no candidate the leader becomes -1 (NO_LEADER).
//!
//! An ISR that would become empty is written only when ELR is enabled; without ELR the last
//! ISR member stays in the ISR (so a lone replica gets its leadership back when it returns).

use std::collections::BTreeSet;

use arus_protocol::Uuid;
use arus_protocol::metadata::PartitionChangeRecord;

use crate::state::{NO_LEADER, NO_LEADER_CHANGE, PartitionInfo};

/// `LeaderRecoveryState.RECOVERED`.
pub const RECOVERED: i8 = 0;
/// `LeaderRecoveryState.RECOVERING` (after an unclean election).
pub const RECOVERING: i8 = 1;

/// The kind of election (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    Preferred,
    Online,
    Unclean,
}

/// Inputs that do not belong to the partition itself.
pub struct ChangeContext<'a> {
    /// Whether a broker may lead (Kafka's `LeaderAcceptor`).
    pub is_acceptable_leader: &'a dyn Fn(i32) -> bool,
    /// The topic's effective `min.insync.replicas`.
    pub min_isr: i32,
    /// `eligible.leader.replicas.version >= 1` (KIP-966).
    pub elr_enabled: bool,
    /// `metadata.version` < 3.6-IV0 bumps the leader epoch when the ISR shrinks.
    pub bump_epoch_on_isr_shrink: bool,
    /// `metadata.version` >= 3.7-IV2 records replica directories.
    pub directory_assignment: bool,
    /// The directory a replica on this broker defaults to.
    pub default_dir: &'a dyn Fn(i32) -> Uuid,
}

/// A change being built for one partition.
pub struct PartitionChangeBuilder<'a> {
    partition: &'a PartitionInfo,
    topic_id: Uuid,
    partition_id: i32,
    ctx: ChangeContext<'a>,
    election: Election,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
    target_elr: Vec<i32>,
    target_last_known_elr: Vec<i32>,
    unclean_shutdown_replicas: Vec<i32>,
    target_leader_recovery_state: i8,
    use_last_known_leader: bool,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// Starts from the partition as it is.
    pub fn new(
        partition: &'a PartitionInfo,
        topic_id: Uuid,
        partition_id: i32,
        ctx: ChangeContext<'a>,
    ) -> Self {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            ctx,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            target_elr: partition.elr.clone(),
            target_last_known_elr: partition.last_known_elr.clone(),
            unclean_shutdown_replicas: Vec::new(),
            target_leader_recovery_state: partition.leader_recovery_state,
            use_last_known_leader: true,
        }
    }

    /// The election kind (ONLINE unless set).
    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The ISR to move to.
    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    /// The replica list to move to (a reassignment's merged list, or its revert).
    pub fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    /// The replicas a reassignment removes once it completes.
    pub fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    /// The replicas a reassignment adds (it completes once they are all in the ISR).
    pub fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    /// Replicas that shut down uncleanly: never in the new ELR.
    pub fn unclean_shutdown_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.unclean_shutdown_replicas = replicas;
        self
    }

    /// The leader recovery state to move to (AlterPartition reports RECOVERED once an
    /// uncleanly elected leader has recovered).
    pub fn target_leader_recovery_state(mut self, state: i8) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        (self.target_isr.contains(&replica)
            || (self.target_isr.is_empty() && self.target_elr.contains(&replica)))
            && (self.ctx.is_acceptable_leader)(replica)
    }

    fn can_elect_last_known_leader(&self) -> bool {
        if !self.ctx.elr_enabled || !self.use_last_known_leader {
            return false;
        }
        if !self.target_elr.is_empty() || !self.target_isr.is_empty() {
            return false;
        }
        // Kafka 4.4 elects the last known leader only if it is acceptable now.
        self.partition.last_known_elr.len() == 1
            && (self.ctx.is_acceptable_leader)(self.partition.last_known_elr[0])
    }

    /// `(leader, unclean)`.
    fn elect_leader(&self) -> (i32, bool) {
        if self.election == Election::Preferred {
            let preferred = self.target_replicas.first().copied().unwrap_or(NO_LEADER);
            if self.is_valid_new_leader(preferred) {
                return (preferred, false);
            }
            if self.is_valid_new_leader(self.partition.leader) {
                return (self.partition.leader, false);
            }
            if let Some(&r) = self
                .target_replicas
                .iter()
                .skip(1)
                .find(|&&r| self.is_valid_new_leader(r))
            {
                return (r, false);
            }
        } else {
            if self.is_valid_new_leader(self.partition.leader) {
                return (self.partition.leader, false);
            }
            if let Some(&r) = self
                .target_replicas
                .iter()
                .find(|&&r| self.is_valid_new_leader(r))
            {
                return (r, false);
            }
        }
        if self.can_elect_last_known_leader() {
            return (self.partition.last_known_elr[0], true);
        }
        if self.election == Election::Unclean
            && let Some(&r) = self
                .target_replicas
                .iter()
                .find(|&&r| (self.ctx.is_acceptable_leader)(r))
        {
            return (r, true);
        }
        (NO_LEADER, false)
    }

    fn try_election(&mut self, record: &mut PartitionChangeRecord) {
        let (node, unclean) = self.elect_leader();
        if node == self.partition.leader {
            return;
        }
        if self.target_elr.contains(&node) {
            self.target_isr = vec![node];
            self.target_elr.retain(|&r| r != node);
        } else if unclean {
            tracing::info!(
                topic_id = %self.topic_id,
                partition = self.partition_id,
                leader = node,
                "setting a new leader using an unclean election"
            );
        }
        record.leader = node;
        if unclean {
            record.isr = Some(vec![node]);
            if self.partition.leader_recovery_state != RECOVERING {
                record.leader_recovery_state = RECOVERING;
            }
        }
    }

    fn maybe_populate_target_elr(&mut self) {
        if !self.ctx.elr_enabled {
            return;
        }
        if self.target_isr.len() as i32 >= self.ctx.min_isr {
            self.target_elr.clear();
            self.target_last_known_elr.clear();
            return;
        }
        let isr: BTreeSet<i32> = self.target_isr.iter().copied().collect();
        let mut candidates: BTreeSet<i32> = self.target_elr.iter().copied().collect();
        candidates.extend(self.partition.isr.iter().copied());
        self.target_elr = candidates
            .iter()
            .copied()
            .filter(|r| !isr.contains(r) && !self.unclean_shutdown_replicas.contains(r))
            .collect();
        candidates.extend(self.target_last_known_elr.iter().copied());
        self.target_last_known_elr = candidates
            .iter()
            .copied()
            .filter(|r| !isr.contains(r) && !self.target_elr.contains(r))
            .collect();
    }

    fn maybe_update_record_elr(&mut self, record: &mut PartitionChangeRecord) {
        let clean_election = record.isr.is_none();
        if !clean_election || !self.ctx.elr_enabled {
            self.target_elr.clear();
            self.target_last_known_elr.clear();
        }
        if self.target_elr != self.partition.elr {
            record.eligible_leader_replicas = Some(self.target_elr.clone());
        }
        if self.use_last_known_leader
            && self.partition.last_known_elr.len() == 1
            && (record.leader == NO_LEADER
                || (record.leader == NO_LEADER_CHANGE && self.partition.leader == NO_LEADER))
        {
            self.target_last_known_elr = self.partition.last_known_elr.clone();
        }
        if self.use_last_known_leader {
            return;
        }
        if self.target_last_known_elr != self.partition.last_known_elr {
            record.last_known_elr = Some(self.target_last_known_elr.clone());
        }
    }

    /// Kafka 4.4's `maybeUpdateLastKnownLeader`: remember the leader a partition loses its
    /// last leader from, forget it once a leader is elected.
    fn maybe_update_last_known_leader(&self, record: &mut PartitionChangeRecord) {
        if !self.use_last_known_leader || !self.ctx.elr_enabled {
            return;
        }
        let lke = &self.partition.last_known_elr;
        if record.leader == NO_LEADER && lke.is_empty() {
            record.last_known_elr = Some(vec![self.partition.leader]);
        } else if record.leader >= 0 && !lke.is_empty() {
            record.last_known_elr = Some(Vec::new());
        }
    }

    fn set_assignment_changes(&self, record: &mut PartitionChangeRecord) {
        if !self.target_replicas.is_empty() {
            if self.ctx.directory_assignment {
                let dirs: Vec<Uuid> = self
                    .target_replicas
                    .iter()
                    .map(|&r| {
                        self.partition
                            .replicas
                            .iter()
                            .position(|&x| x == r)
                            .and_then(|i| self.partition.directories.get(i).copied())
                            .unwrap_or_else(|| (self.ctx.default_dir)(r))
                    })
                    .collect();
                if dirs != self.partition.directories {
                    record.directories = Some(dirs);
                }
            }
            if self.target_replicas != self.partition.replicas {
                record.replicas = Some(self.target_replicas.clone());
            }
        }
        if self.target_removing != self.partition.removing_replicas {
            record.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != self.partition.adding_replicas {
            record.adding_replicas = Some(self.target_adding.clone());
        }
    }

    /// Kafka's `completeReassignmentIfNeeded`: a reassignment in progress whose adding
    /// replicas are all in the target ISR becomes its target (see
    /// [`crate::reassignment::ReassignmentReplicas::maybe_complete`]).
    fn complete_reassignment_if_needed(&mut self) {
        let ongoing = crate::reassignment::ReassignmentReplicas {
            removing: self.target_removing.clone(),
            adding: self.target_adding.clone(),
            replicas: self.target_replicas.clone(),
        };
        if let Some((replicas, isr)) = ongoing.maybe_complete(&self.target_isr) {
            self.target_isr = isr;
            self.target_replicas = replicas;
            self.target_removing.clear();
            self.target_adding.clear();
        }
    }

    /// Kafka's `triggerLeaderEpochBumpForReplicaReassignmentIfNeeded`: a replica that
    /// leaves the replica list must see a new leader epoch (it stops fetching, and a stale
    /// fetch from it is fenced), so the record names the leader even when it stays.
    fn bump_leader_epoch_if_replicas_removed(&self, record: &mut PartitionChangeRecord) {
        if record.leader != NO_LEADER_CHANGE {
            return;
        }
        if !self
            .partition
            .replicas
            .iter()
            .all(|r| self.target_replicas.contains(r))
        {
            record.leader = self.partition.leader;
        }
    }

    /// The record, or `None` when it would change nothing.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        let mut record = PartitionChangeRecord {
            topic_id: self.topic_id,
            partition_id: self.partition_id,
            ..PartitionChangeRecord::default()
        };
        // Every change (AlterPartition, a broker fenced, an election, a reassignment)
        // completes a reassignment whose target ISR allows it, as Kafka's builder does.
        self.complete_reassignment_if_needed();
        self.maybe_populate_target_elr();
        self.try_election(&mut record);
        self.bump_leader_epoch_if_replicas_removed(&mut record);
        self.maybe_update_record_elr(&mut record);
        if record.isr.is_none()
            && (!self.target_isr.is_empty() || self.ctx.elr_enabled)
            && self.target_isr != self.partition.isr
        {
            record.isr = Some(self.target_isr.clone());
        }
        if self.ctx.bump_epoch_on_isr_shrink
            && record.leader == NO_LEADER_CHANGE
            && let Some(isr) = &record.isr
            && !self.partition.isr.iter().all(|r| isr.contains(r))
        {
            record.leader = self.partition.leader;
        }
        self.maybe_update_last_known_leader(&mut record);
        self.set_assignment_changes(&mut record);
        if self.target_leader_recovery_state != self.partition.leader_recovery_state {
            record.leader_recovery_state = self.target_leader_recovery_state;
        }
        if is_no_op(&record) {
            None
        } else {
            Some(record)
        }
    }
}

/// Kafka's `changeRecordIsNoOp`.
pub fn is_no_op(r: &PartitionChangeRecord) -> bool {
    r.isr.is_none()
        && r.eligible_leader_replicas.is_none()
        && r.last_known_elr.is_none()
        && r.leader == NO_LEADER_CHANGE
        && r.replicas.is_none()
        && r.removing_replicas.is_none()
        && r.adding_replicas.is_none()
        && r.leader_recovery_state == -1
        && r.directories.is_none()
}

#[cfg(test)]
#[path = "partition_change_tests.rs"]
mod tests;
