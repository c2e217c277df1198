//! The answers of the `acks=all` path (Kafka's `appendRecordsToLeader` min-ISR check and
//! `checkEnoughReplicasReachOffset`).

use arus_protocol::ErrorCode;

/// Whether a waiting `acks=all` produce can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcksDecision {
    /// The high watermark has not reached the required offset yet: keep waiting.
    Wait,
    /// Every member of the (maximal) ISR has the batch: answer NONE.
    Complete,
    /// The batch is committed but the ISR shrank below `min.insync.replicas` while the
    /// produce waited: answer NOT_ENOUGH_REPLICAS_AFTER_APPEND (the data stays in the log).
    NotEnoughReplicasAfterAppend,
}

impl AcksDecision {
    /// The error code of a finished produce; `None` while it waits.
    pub fn error_code(self) -> Option<ErrorCode> {
        match self {
            Self::Wait => None,
            Self::Complete => Some(ErrorCode::None),
            Self::NotEnoughReplicasAfterAppend => Some(ErrorCode::NotEnoughReplicasAfterAppend),
        }
    }
}

/// An `acks=all` append refused before it is written: the committed ISR is smaller than
/// the effective `min.insync.replicas` (NOT_ENOUGH_REPLICAS).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "The size of the current ISR {isr:?} is insufficient to satisfy the min.isr requirement of {min_isr}"
)]
pub struct NotEnoughReplicas {
    pub isr: Vec<i32>,
    pub min_isr: usize,
}

impl NotEnoughReplicas {
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::NotEnoughReplicas
    }
}
