//! Broker sessions (Kafka's `BrokerHeartbeatManager`): the controller's in-memory record of
//! when each broker last heartbeated, how far its metadata has caught up, and whether it is
//! in controlled shutdown. None of it is in the metadata log: a new active controller
//! starts every registered broker with a fresh session, as Kafka does on activation.

use std::collections::BTreeMap;

/// The state a heartbeat moves a broker to (Kafka's `BrokerControlState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerControlState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerControlState {
    /// Whether the broker is fenced in this state.
    pub fn fenced(self) -> bool {
        matches!(
            self,
            BrokerControlState::Fenced | BrokerControlState::ShutdownNow
        )
    }

    /// Whether the broker is in controlled shutdown in this state.
    pub fn in_controlled_shutdown(self) -> bool {
        self == BrokerControlState::ControlledShutdown
    }

    /// Whether the broker should shut down now.
    pub fn should_shut_down(self) -> bool {
        self == BrokerControlState::ShutdownNow
    }
}

#[derive(Debug, Clone)]
struct Session {
    last_contact_ms: i64,
    /// Orders sessions touched at the same millisecond as Kafka's list does (FIFO).
    touch_seq: u64,
    metadata_offset: i64,
    controlled_shutdown_offset: i64,
    fenced: bool,
}

impl Session {
    fn shutting_down(&self) -> bool {
        self.controlled_shutdown_offset >= 0
    }
}

/// The sessions of every registered broker.
#[derive(Debug, Clone)]
pub struct Heartbeats {
    session_timeout_ms: i64,
    sessions: BTreeMap<i32, Session>,
    seq: u64,
}

/// What a heartbeat asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

impl Heartbeats {
    /// No sessions yet.
    pub fn new(session_timeout_ms: i64) -> Self {
        Heartbeats {
            session_timeout_ms,
            sessions: BTreeMap::new(),
            seq: 0,
        }
    }

    /// Kafka's `register`: a session for the broker at `now_ms`, keeping the metadata offset
    /// only when the fencing state changes.
    pub fn register(&mut self, broker: i32, fenced: bool, now_ms: i64) {
        let metadata_offset = match self.sessions.get(&broker) {
            Some(s) if s.fenced != fenced => s.metadata_offset,
            _ => -1,
        };
        self.sessions.entry(broker).or_insert(Session {
            last_contact_ms: now_ms,
            touch_seq: 0,
            metadata_offset: -1,
            controlled_shutdown_offset: -1,
            fenced: true,
        });
        self.touch(broker, fenced, metadata_offset, now_ms);
    }

    /// Whether the broker has a session.
    pub fn has_session(&self, broker: i32) -> bool {
        self.sessions.contains_key(&broker)
    }

    /// Kafka's `remove`.
    pub fn remove(&mut self, broker: i32) {
        self.sessions.remove(&broker);
    }

    /// Kafka's `fence`: the session no longer counts as live.
    pub fn fence(&mut self, broker: i32) {
        if let Some(s) = self.sessions.get_mut(&broker) {
            s.fenced = true;
        }
    }

    /// Kafka's `touch`: records contact at `now_ms`.
    pub fn touch(&mut self, broker: i32, fenced: bool, metadata_offset: i64, now_ms: i64) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(s) = self.sessions.get_mut(&broker) {
            s.last_contact_ms = now_ms;
            s.touch_seq = seq;
            s.metadata_offset = metadata_offset;
            s.fenced = fenced;
            if fenced {
                // A fenced broker leaves controlled shutdown; its next heartbeat shuts it down.
                s.controlled_shutdown_offset = -1;
            }
        }
    }

    /// Kafka's `hasValidSession`: unfenced and heard from within the session timeout.
    pub fn has_valid_session(&self, broker: i32, now_ms: i64) -> bool {
        self.sessions
            .get(&broker)
            .is_some_and(|s| !s.fenced && s.last_contact_ms + self.session_timeout_ms >= now_ms)
    }

    /// Whether the broker is in controlled shutdown (in memory).
    pub fn shutting_down(&self, broker: i32) -> bool {
        self.sessions
            .get(&broker)
            .is_some_and(Session::shutting_down)
    }

    /// Kafka's `maybeUpdateControlledShutdownOffset`.
    pub fn set_controlled_shutdown_offset(&mut self, broker: i32, offset: i64) {
        if let Some(s) = self.sessions.get_mut(&broker)
            && !s.fenced
            && s.controlled_shutdown_offset < 0
        {
            s.controlled_shutdown_offset = offset;
        }
    }

    /// The smallest metadata offset among active brokers (`Long.MAX_VALUE` when none).
    fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| !s.fenced && !s.shutting_down())
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Kafka's `findOneStaleBroker`: the unfenced broker heard from longest ago, if its
    /// session has expired.
    pub fn find_one_stale_broker(&self, now_ms: i64) -> Option<i32> {
        let (&id, s) = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.fenced)
            .min_by_key(|(_, s)| (s.last_contact_ms, s.touch_seq))?;
        (s.last_contact_ms + self.session_timeout_ms < now_ms).then_some(id)
    }

    /// When the next session can expire (`Long.MAX_VALUE` when no broker is unfenced).
    pub fn next_check_time_ms(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| !s.fenced)
            .map(|s| s.last_contact_ms + self.session_timeout_ms)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Brokers the placer may use: every registered broker not in controlled shutdown.
    pub fn usable(&self) -> impl Iterator<Item = (i32, bool)> + '_ {
        self.sessions
            .iter()
            .filter(|(_, s)| !s.shutting_down())
            .map(|(&id, s)| (id, s.fenced))
    }

    /// Kafka's `calculateNextBrokerState`: `(current, next)`.
    pub fn next_state(
        &self,
        broker: i32,
        request: HeartbeatRequest,
        register_offset: i64,
        has_leaderships: impl Fn() -> bool,
    ) -> (BrokerControlState, BrokerControlState) {
        use BrokerControlState::*;
        let Some(s) = self.sessions.get(&broker) else {
            return (Fenced, ShutdownNow);
        };
        let current = if s.shutting_down() {
            ControlledShutdown
        } else if s.fenced {
            Fenced
        } else {
            Unfenced
        };
        let next = match current {
            Fenced => {
                if request.want_shut_down {
                    tracing::info!(broker, "fenced broker granted an immediate shutdown");
                    ShutdownNow
                } else if !request.want_fence && request.current_metadata_offset >= register_offset
                {
                    tracing::info!(
                        broker,
                        register_offset,
                        "unfencing broker: it has caught up with its registration record"
                    );
                    Unfenced
                } else {
                    Fenced
                }
            }
            Unfenced => {
                if request.want_fence {
                    if request.want_shut_down {
                        ShutdownNow
                    } else {
                        Fenced
                    }
                } else if request.want_shut_down {
                    if has_leaderships() {
                        tracing::info!(broker, "broker granted a controlled shutdown");
                        ControlledShutdown
                    } else {
                        ShutdownNow
                    }
                } else {
                    Unfenced
                }
            }
            ControlledShutdown => {
                if has_leaderships() {
                    ControlledShutdown
                } else if s.controlled_shutdown_offset <= self.lowest_active_offset() {
                    tracing::info!(broker, "controlled shutdown complete: broker may stop");
                    ShutdownNow
                } else {
                    ControlledShutdown
                }
            }
            ShutdownNow => ShutdownNow,
        };
        (current, next)
    }
}
