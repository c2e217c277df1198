//! Broker sessions (Kafka 4.4's `BrokerHeartbeatManager` and `BrokerHeartbeatTracker`): the
//! controller's in-memory record of when each broker incarnation (id and epoch) last
//! heartbeated, how far each broker's metadata has caught up, and whether it is in
//! controlled shutdown. None of it is in the metadata log: a new active controller starts
//! every unfenced broker with a fresh contact time, as Kafka does on activation.
//!
//! As in Kafka 4.4, a session is the contact time of `(broker id, broker epoch)`: it is
//! valid while heard from within `broker.session.timeout.ms`, fenced or not (so a new
//! incarnation is a duplicate registration until the old one's session lapses), and an
//! expired session fences its broker (again, if it already is) when the epoch still
//! matches the registration.

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
    /// Last contact per `(broker id, broker epoch)` (Kafka's `BrokerHeartbeatTracker`).
    contacts: BTreeMap<(i32, i64), i64>,
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
            contacts: BTreeMap::new(),
        }
    }

    /// Kafka's `trackBrokerHeartbeat`: a heartbeat from this incarnation arrived at `now_ms`
    /// (recorded before the request is validated, as Kafka does).
    pub fn track_contact(&mut self, broker: i32, epoch: i64, now_ms: i64) {
        self.contacts.insert((broker, epoch), now_ms);
    }

    fn is_expired(&self, contact_ms: i64, now_ms: i64) -> bool {
        now_ms > contact_ms && contact_ms.saturating_add(self.session_timeout_ms) < now_ms
    }

    /// Kafka's `hasValidSession(id, epoch)`: heard from within the session timeout.
    pub fn has_valid_session(&self, broker: i32, epoch: i64, now_ms: i64) -> bool {
        self.contacts
            .get(&(broker, epoch))
            .is_some_and(|&c| !self.is_expired(c, now_ms))
    }

    /// Kafka's `maybeRemoveExpired`: removes and returns one expired session (the one heard
    /// from longest ago).
    pub fn take_expired(&mut self, now_ms: i64) -> Option<(i32, i64)> {
        let (&key, _) = self
            .contacts
            .iter()
            .filter(|(_, c)| self.is_expired(**c, now_ms))
            .min_by_key(|(k, c)| (**c, **k))?;
        self.contacts.remove(&key);
        Some(key)
    }

    /// Kafka's `register`: tracks the broker, keeping the metadata offset only when the
    /// fencing state changes.
    pub fn register(&mut self, broker: i32, fenced: bool) {
        let metadata_offset = match self.sessions.get(&broker) {
            Some(s) if s.fenced != fenced => s.metadata_offset,
            _ => -1,
        };
        self.sessions.entry(broker).or_insert(Session {
            metadata_offset: -1,
            controlled_shutdown_offset: -1,
            fenced: true,
        });
        self.touch(broker, fenced, metadata_offset);
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

    /// Kafka's `touch`: the broker's fencing state and metadata offset after a heartbeat.
    pub fn touch(&mut self, broker: i32, fenced: bool, metadata_offset: i64) {
        if let Some(s) = self.sessions.get_mut(&broker) {
            s.metadata_offset = metadata_offset;
            s.fenced = fenced;
            if fenced {
                // A fenced broker leaves controlled shutdown; its next heartbeat shuts it down.
                s.controlled_shutdown_offset = -1;
            }
        }
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

    /// When the next session can expire (`i64::MAX` when none can).
    pub fn next_check_time_ms(&self) -> i64 {
        self.contacts
            .values()
            .map(|c| c.saturating_add(self.session_timeout_ms))
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
