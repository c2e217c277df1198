//! `arus-replication`: the decisions of Kafka's data replication (issue 15) as pure state
//! machines with injected time — the leader epoch cache and its `leader-epoch-checkpoint`
//! text format, the leader's view of each follower (`Replica`), the high watermark and low
//! watermark, ISR shrink and expansion with one AlterPartition in flight, the `acks=all`
//! completion check, and the follower's truncation offset after OffsetForLeaderEpoch
//! (KIP-101, KIP-279) and the high watermark it takes from the leader, with the leader epoch
//! checks of a read (KIP-320 fencing by `current_leader_epoch`, the Fetch response's
//! diverging epoch), and a replica fetcher's per-partition states, requests and response
//! handling ([`fetcher`], Kafka's `AbstractFetcherThread`).
//!
//! Modelled on Kafka 4.4's `Partition` (`updateFollowerFetchState`, `maybeExpandIsr`,
//! `maybeShrinkIsr`, `maybeIncrementLeaderHW`, `checkEnoughReplicasReachOffset`,
//! `handleAlterPartitionError`), `Replica`, `LeaderEpochFileCache`,
//! `LeaderEpochCheckpointFile` and `AbstractFetcherThread.getOffsetTruncationState`.
//!
//! **Wired in so far**: the epoch cache and the checkpoint codec are the ones `arus-log`'s
//! `Log` keeps (so OffsetForLeaderEpoch answers from them), Fetch's KIP-320 check is
//! [`diverging_epoch`] (through `Log::diverging_epoch`), and the broker's data APIs fence a
//! replica's own epoch with [`check_current_leader_epoch`] (`Partition::check_local_role`).
//! The replica fetcher's decisions drive `arus-cluster`'s replica fetcher tasks (the
//! follower side); the Fetch handler's follower path and the AlterPartition sender come
//! with a later step of issue 15. Time is an input (`now_ms`),
//! effects are returned as values (an [`isr::AlterPartitionProposal`] to send, "high
//! watermark advanced"), and file bytes are produced and parsed here but written by the
//! caller (`arus-log` writes `leader-epoch-checkpoint`). `arus-log` depends on this crate;
//! this crate must not depend on tokio, sockets, the log (`arus-log`) or `arus-broker`.

pub mod acks;
pub mod checkpoint;
pub mod epoch_cache;
pub mod epoch_checks;
pub mod fetcher;
pub mod follower;
pub mod isr;
pub mod partition;
pub mod replica;
pub mod truncation;

pub use acks::{AcksDecision, NotEnoughReplicas};
pub use checkpoint::{
    CheckpointError, LEADER_EPOCH_CHECKPOINT_FILENAME, decode_checkpoint, encode_checkpoint,
};
pub use epoch_cache::{
    EpochEntry, InvalidEpochEntry, LeaderEpochCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET,
};
pub use epoch_checks::{
    DivergenceCheckError, DivergingEpoch, check_current_leader_epoch, diverging_epoch,
    optional_epoch,
};
pub use fetcher::{
    FetchPhase, Fetcher, FetcherConfig, InitialFetchState, LocalLogState, OutOfRange,
    PartitionFetchState, PartitionKey, PartitionResponse, ResponseAction, out_of_range,
};
pub use follower::{follower_high_watermark, follower_log_start_offset};
pub use isr::{
    AlterPartitionOutcome, AlterPartitionProposal, BrokerRegistry, BrokerStatus,
    CommittedLeaderAndIsr, IsrBrokerState, LeaderRecoveryState, PartitionState, PendingChange,
};
pub use partition::{
    FetchOutcome, FetchStateError, FollowerFetch, LeaderConfig, LeaderLog, LeaderPartition,
    Leadership, StalePartitionEpoch,
};
pub use replica::ReplicaState;
pub use truncation::{TruncationDecision, TruncationStart, epoch_to_request, follower_truncation};

#[cfg(test)]
mod proptests;
