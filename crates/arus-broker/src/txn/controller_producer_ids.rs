//! Producer ids in a cluster, from blocks the controller allocates (AllocateProducerIds
//! through the [`ControllerChannel`]), as Kafka's `RPCProducerIdManager`: ids are handed
//! out of the current block; once 90% of it is used the next block is asked for; when the
//! current block is used up and the next has not arrived, InitProducerId hears the
//! retriable COORDINATOR_LOAD_IN_PROGRESS while the request is in flight. The controller
//! never gives a block twice (it records each in the metadata log); this side also refuses
//! a block that does not start past everything it handed out, so no id is given twice even
//! if the controller misbehaved.
//!
//! [`PidBlocks`] is the pure state machine (time injected); [`ControllerProducerIds`]
//! drives it, sending requests on the runtime.

use std::sync::Arc;
use std::time::Duration;

use arus_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse};
use arus_protocol::{ErrorCode, Request, Response};
use arus_txn::ProducerIdSource;
use parking_lot::Mutex;
use tracing::{debug, error, warn};

use crate::controller_channel::{ControllerChannel, ForwardError};

/// Kafka's `ProducerIdManager.PidPrefetchThreshold`.
const PREFETCH_PERCENT: i64 = 90;
/// Kafka's `ProducerIdManager.RetryBackoffMs`: the pause after a refused request.
pub const RETRY_BACKOFF_MS: i64 = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    start: i64,
    len: i64,
    /// Next id to hand out.
    next: i64,
}

impl Block {
    fn end(&self) -> i64 {
        self.start + self.len
    }

    fn prefetch_at(&self) -> i64 {
        self.start + self.len * PREFETCH_PERCENT / 100
    }
}

/// What [`PidBlocks::claim`] asks of its driver besides the answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Claim {
    pub id: Result<i64, ErrorCode>,
    /// Send an AllocateProducerIds now.
    pub request_block: bool,
}

/// The blocks of one broker; see the module documentation.
#[derive(Debug, Default)]
pub struct PidBlocks {
    current: Option<Block>,
    next: Option<Block>,
    in_flight: bool,
    /// No request before this (ms), after a refused or invalid answer.
    backoff_until: Option<i64>,
    /// Every id below this may have been handed out.
    handed_out_end: i64,
}

impl PidBlocks {
    pub fn new() -> PidBlocks {
        PidBlocks::default()
    }

    /// Kafka's `maybeRequestNextBlock`.
    fn maybe_request(&mut self, now_ms: i64) -> bool {
        if self.backoff_until.is_some_and(|until| now_ms < until) {
            return false;
        }
        if self.next.is_some() || self.in_flight {
            return false;
        }
        self.in_flight = true;
        self.backoff_until = None;
        true
    }

    /// The next id, and whether a block must be asked for (Kafka's `generateProducerId`).
    pub fn claim(&mut self, now_ms: i64) -> Claim {
        let mut request_block = false;
        loop {
            if let Some(block) = self.current.as_mut().filter(|b| b.next < b.end()) {
                let id = block.next;
                block.next += 1;
                let prefetch = id == block.prefetch_at();
                self.handed_out_end = self.handed_out_end.max(id + 1);
                if prefetch {
                    request_block |= self.maybe_request(now_ms);
                }
                return Claim {
                    id: Ok(id),
                    request_block,
                };
            }
            match self.next.take() {
                Some(next) => self.current = Some(next),
                None => {
                    request_block |= self.maybe_request(now_ms);
                    return Claim {
                        id: Err(ErrorCode::CoordinatorLoadInProgress),
                        request_block,
                    };
                }
            }
        }
    }

    /// The controller's answer (Kafka's `handleAllocateProducerIdsResponse`).
    pub fn answered(&mut self, response: &AllocateProducerIdsResponse, now_ms: i64) {
        self.in_flight = false;
        let accepted = match ErrorCode::from_code(response.error_code) {
            Some(ErrorCode::None) => {
                let start = response.producer_id_start;
                let len = i64::from(response.producer_id_len);
                let floor = self.handed_out_end.max(self.current.map_or(0, |b| b.end()));
                if start < floor {
                    error!(
                        start,
                        len, floor, "producer id block is not past the ids already handed out"
                    );
                    false
                } else if start < 0 || len <= 0 || start > i64::MAX - len {
                    error!(start, len, "producer id block includes an invalid id range");
                    false
                } else {
                    debug!(start, len, "producer id block from the controller");
                    self.next = Some(Block {
                        start,
                        len,
                        next: start,
                    });
                    true
                }
            }
            Some(ErrorCode::StaleBrokerEpoch) => {
                warn!("our broker epoch was stale when asking for producer ids; trying again");
                false
            }
            Some(ErrorCode::BrokerIdNotRegistered) => {
                warn!(
                    "the controller does not know this broker yet; asking for producer ids again"
                );
                false
            }
            other => {
                error!(code = ?other, raw = response.error_code, "unexpected error allocating producer ids");
                false
            }
        };
        if !accepted {
            self.backoff_until = Some(now_ms + RETRY_BACKOFF_MS);
        }
    }

    /// The request could not be sent or refused before an answer: back off as after a
    /// refusal. A timeout does not back off (Kafka's `handleTimeout`).
    pub fn failed(&mut self, now_ms: i64, timed_out: bool) {
        self.in_flight = false;
        if !timed_out {
            self.backoff_until = Some(now_ms + RETRY_BACKOFF_MS);
        }
    }
}

struct Shared {
    state: Mutex<PidBlocks>,
    channel: Arc<dyn ControllerChannel>,
    broker_id: i32,
    /// -1 until registration.
    broker_epoch: Mutex<i64>,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
}

/// [`PidBlocks`] driven through the controller channel; cheap to clone.
#[derive(Clone)]
pub struct ControllerProducerIds {
    shared: Arc<Shared>,
}

fn now_ms() -> i64 {
    crate::broker::now_ms()
}

impl ControllerProducerIds {
    pub fn new(
        channel: Arc<dyn ControllerChannel>,
        broker_id: i32,
        timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> ControllerProducerIds {
        ControllerProducerIds {
            shared: Arc::new(Shared {
                state: Mutex::new(PidBlocks::new()),
                channel,
                broker_id,
                broker_epoch: Mutex::new(-1),
                timeout,
                runtime,
            }),
        }
    }

    /// Records the broker epoch of a (new) registration and, on the first one, asks for the
    /// first block at once: a first InitProducerId then finds ids ready instead of
    /// answering COORDINATOR_LOAD_IN_PROGRESS while the block is fetched (Kafka asks on
    /// first use; the retriable error stays possible if a client is faster than the block).
    pub fn set_broker_epoch(&self, epoch: i64) {
        *self.shared.broker_epoch.lock() = epoch;
        let first = epoch >= 0 && {
            let mut state = self.shared.state.lock();
            state.current.is_none() && state.maybe_request(now_ms())
        };
        if first {
            self.request_block();
        }
    }

    fn request_block(&self) {
        let shared = self.shared.clone();
        let epoch = *shared.broker_epoch.lock();
        let request = AllocateProducerIdsRequest {
            broker_id: shared.broker_id,
            broker_epoch: epoch,
            ..Default::default()
        };
        let runtime = shared.runtime.clone();
        runtime.spawn(async move {
            let result = shared
                .channel
                .forward(Request::AllocateProducerIds(request), 0, shared.timeout)
                .await;
            let mut state = shared.state.lock();
            match result {
                Ok(f) => match f.response {
                    Response::AllocateProducerIds(r) => state.answered(&r, now_ms()),
                    other => {
                        error!(
                            api = other.api_key().name(),
                            "AllocateProducerIds answered with another response"
                        );
                        state.failed(now_ms(), false);
                    }
                },
                Err(e) => {
                    warn!(error = %e, "cannot allocate producer ids");
                    state.failed(now_ms(), matches!(e, ForwardError::Timeout(_)));
                }
            }
        });
    }
}

impl ProducerIdSource for ControllerProducerIds {
    fn next_producer_id(&mut self) -> Result<i64, ErrorCode> {
        let claim = self.shared.state.lock().claim(now_ms());
        if claim.request_block {
            self.request_block();
        }
        claim.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(start: i64, len: i32) -> AllocateProducerIdsResponse {
        AllocateProducerIdsResponse {
            error_code: 0,
            producer_id_start: start,
            producer_id_len: len,
            ..Default::default()
        }
    }

    #[test]
    fn no_id_before_the_first_block_then_ids_in_order() {
        let mut s = PidBlocks::new();
        assert_eq!(
            s.claim(0),
            Claim {
                id: Err(ErrorCode::CoordinatorLoadInProgress),
                request_block: true
            }
        );
        // One request at a time.
        assert!(!s.claim(1).request_block);
        s.answered(&block(0, 10), 2);
        let ids: Vec<i64> = (0..3).map(|_| s.claim(3).id.unwrap()).collect();
        assert_eq!(ids, vec![0, 1, 2]);
    }

    #[test]
    fn prefetch_at_ninety_percent_and_switch_without_a_gap() {
        let mut s = PidBlocks::new();
        s.claim(0);
        s.answered(&block(0, 10), 0);
        for id in 0..9 {
            let c = s.claim(0);
            assert_eq!(c.id, Ok(id));
            // id 9 would be 90% of a block of 10 starting at 0: the request goes with id 9.
            assert!(!c.request_block, "{id}");
        }
        let c = s.claim(0);
        assert_eq!(
            c,
            Claim {
                id: Ok(9),
                request_block: true
            }
        );
        s.answered(&block(10, 10), 0);
        assert_eq!(s.claim(0).id, Ok(10));
    }

    #[test]
    fn exhaustion_answers_load_in_progress_until_the_next_block() {
        let mut s = PidBlocks::new();
        s.claim(0);
        s.answered(&block(100, 2), 0);
        assert_eq!(s.claim(0).id, Ok(100));
        // 90% of 2 is at 101: the prefetch goes out with it.
        assert_eq!(
            s.claim(0),
            Claim {
                id: Ok(101),
                request_block: true
            }
        );
        assert_eq!(
            s.claim(0),
            Claim {
                id: Err(ErrorCode::CoordinatorLoadInProgress),
                request_block: false
            }
        );
        s.answered(&block(200, 2), 0);
        assert_eq!(s.claim(0).id, Ok(200));
    }

    #[test]
    fn never_the_same_id_twice() {
        let mut s = PidBlocks::new();
        s.claim(0);
        s.answered(&block(0, 5), 0);
        for _ in 0..5 {
            s.claim(0).id.unwrap();
        }
        // A block overlapping what was handed out is refused, with a backoff.
        assert_eq!(s.claim(10).id, Err(ErrorCode::CoordinatorLoadInProgress));
        s.answered(&block(3, 5), 10);
        assert_eq!(
            s.claim(20),
            Claim {
                id: Err(ErrorCode::CoordinatorLoadInProgress),
                request_block: false
            }
        );
        // After the backoff the next request goes out, and a fresh block is accepted.
        assert!(s.claim(10 + RETRY_BACKOFF_MS).request_block);
        s.answered(&block(5, 5), 70);
        let mut seen = std::collections::HashSet::new();
        for id in 0..5 {
            assert!(seen.insert(id));
        }
        for _ in 0..5 {
            assert!(seen.insert(s.claim(70).id.unwrap()));
        }
    }

    #[test]
    fn refusals_back_off_and_timeouts_do_not() {
        let mut s = PidBlocks::new();
        assert!(s.claim(0).request_block);
        s.answered(
            &AllocateProducerIdsResponse {
                error_code: ErrorCode::StaleBrokerEpoch.code(),
                ..Default::default()
            },
            0,
        );
        assert!(!s.claim(RETRY_BACKOFF_MS - 1).request_block);
        assert!(s.claim(RETRY_BACKOFF_MS).request_block);
        s.failed(RETRY_BACKOFF_MS, true);
        assert!(s.claim(RETRY_BACKOFF_MS).request_block);
        s.answered(&block(-5, 10), 100);
        assert!(!s.claim(101).request_block);
        assert!(s.claim(100 + RETRY_BACKOFF_MS).request_block);
        s.answered(&block(i64::MAX - 3, 10), 200);
        assert_eq!(
            s.claim(200 + RETRY_BACKOFF_MS).id,
            Err(ErrorCode::CoordinatorLoadInProgress)
        );
    }
}
