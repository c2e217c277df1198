//! Client telemetry (KIP-714): which metrics each client instance is asked to push, how
//! often, and the last payload each pushed. A pure state machine with injected time, as
//! Kafka's `ClientMetricsManager` / `ClientMetricsInstance` behave in 4.4:
//!
//! - GetTelemetrySubscriptions with the zero id assigns a new random client instance id;
//!   the instance gets the union of the `metrics` of every subscription whose `match`
//!   patterns it satisfies (just `*` if one of them has `*`), and the smallest of their
//!   intervals (300000 ms when none matches). Its subscription id is the CRC32C of that
//!   set's Java `toString()` followed by the interval, XOR the instance id's Java hash.
//! - A Get less than one push interval after the instance's last Get or Push is
//!   THROTTLING_QUOTA_EXCEEDED. A Push is accepted if it is the first since the last Get,
//!   or one interval after the last Push; otherwise (unless terminating) it is throttled.
//! - A Push after a terminating Push is INVALID_REQUEST; a Push with another subscription id
//!   is UNKNOWN_SUBSCRIPTION_ID (e.g. after the subscriptions changed: the client then asks
//!   again and gets the new set at once, because a change of subscriptions re-evaluates the
//!   instance with fresh timestamps); an unknown compression type is
//!   UNSUPPORTED_COMPRESSION_TYPE; metrics larger than `telemetry.max.bytes` are
//!   TELEMETRY_TOO_LARGE. Errors carry no message on the wire; the reason is logged.
//! - Instances idle for max(60 s, 3 push intervals) are forgotten, and at most 16384 are
//!   kept (the least recently seen goes first), as Kafka's cache.
//!
//! Kafka hands pushed metrics to a `ClientTelemetryReceiver` plugin; Arus keeps the last
//! payload of each instance (still compressed, as pushed) in memory, within
//! `arus.telemetry.retained.bytes` in total: when a new payload would exceed it, the oldest
//! payloads are dropped first. A payload alone above the bound is not kept (the push is still
//! accepted, as a plugin may drop data). The operations work exports them.

use std::collections::{BTreeSet, HashMap};

use arus_protocol::{ErrorCode, Uuid};

use crate::resource_configs::client_metrics::{ALL_METRICS, INTERVAL_MS_DEFAULT, Subscription};

/// Kafka's reserved `Uuid.ONE_UUID` (the zero id is reserved too): never an instance id.
const ONE_UUID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);

/// The time of a request that never happened: Kafka starts at 0, long before any wall-clock
/// time; this is as far before any injected time (without overflowing a subtraction).
const NEVER: i64 = i64::MIN / 4;

/// Kafka's `ClientMetricsManager` cache size and minimum idle expiry.
pub const MAX_INSTANCES: usize = 16_384;
pub const MIN_EXPIRY_MS: i64 = 60_000;

/// Compression types offered for pushes, in Kafka's order: zstd, lz4, gzip, snappy.
pub const ACCEPTED_COMPRESSION_TYPES: [i8; 4] = [4, 3, 1, 2];

/// What a client is known by when matching subscriptions (KIP-714 client attributes).
#[derive(Clone, Debug, Default)]
pub struct ClientAttributes {
    pub client_id: String,
    pub software_name: String,
    pub software_version: String,
    pub source_address: String,
    pub source_port: String,
}

/// The answer to a successful GetTelemetrySubscriptions.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub client_instance_id: Uuid,
    pub subscription_id: i32,
    pub push_interval_ms: i32,
    pub requested_metrics: Vec<String>,
}

/// A refusal: the code on the wire and the reason for the log.
pub type Refusal = (ErrorCode, String);

/// The last payload an instance pushed.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    pub compression_type: i8,
    pub metrics: Vec<u8>,
    pub received_ms: i64,
}

struct Instance {
    attributes: ClientAttributes,
    subscription_id: i32,
    subscription_version: u64,
    metrics: Vec<String>,
    push_interval_ms: i32,
    last_get_ms: i64,
    last_push_ms: i64,
    terminating: bool,
    last_seen_ms: i64,
    payload: Option<Payload>,
}

pub struct TelemetryState {
    subscriptions: Vec<Subscription>,
    version: u64,
    instances: HashMap<Uuid, Instance>,
    max_push_bytes: usize,
    retained_limit: usize,
    retained: usize,
}

impl TelemetryState {
    pub fn new(max_push_bytes: usize, retained_limit: usize) -> TelemetryState {
        TelemetryState {
            subscriptions: Vec::new(),
            version: 0,
            instances: HashMap::new(),
            max_push_bytes,
            retained_limit,
            retained: 0,
        }
    }

    pub fn max_push_bytes(&self) -> usize {
        self.max_push_bytes
    }

    /// Replaces the subscriptions; every instance is re-evaluated on its next request.
    pub fn set_subscriptions(&mut self, subscriptions: Vec<Subscription>) {
        self.subscriptions = subscriptions;
        self.version += 1;
    }

    pub fn get_subscriptions(
        &mut self,
        requested_id: Uuid,
        attributes: ClientAttributes,
        new_id: impl FnMut() -> Uuid,
        now_ms: i64,
    ) -> Result<Grant, Refusal> {
        self.expire(now_ms);
        let id = if requested_id == Uuid::ZERO {
            self.fresh_id(new_id)
        } else {
            requested_id
        };
        let instance = self.instance(id, attributes, now_ms);
        // `ClientMetricsInstance.maybeUpdateGetRequestTimestamp`.
        if now_ms - instance.last_get_ms.max(instance.last_push_ms)
            < instance.push_interval_ms as i64
        {
            return Err((
                ErrorCode::ThrottlingQuotaExceeded,
                format!(
                    "Request from the client [{requested_id}] arrived before the next push interval time"
                ),
            ));
        }
        instance.last_get_ms = now_ms;
        Ok(Grant {
            client_instance_id: id,
            subscription_id: instance.subscription_id,
            push_interval_ms: instance.push_interval_ms,
            requested_metrics: instance.metrics.clone(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        id: Uuid,
        subscription_id: i32,
        terminating: bool,
        compression_type: i8,
        metrics: &[u8],
        attributes: ClientAttributes,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        if id == Uuid::ZERO || id == ONE_UUID {
            return Err((
                ErrorCode::InvalidRequest,
                format!("Invalid request from the client [{id}], invalid client instance id"),
            ));
        }
        self.expire(now_ms);
        let max_push_bytes = self.max_push_bytes;
        let instance = self.instance(id, attributes, now_ms);
        let checked = (|| {
            if instance.terminating {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!(
                        "Client [{id}] sent the previous request with state terminating to TRUE, can not acceptany requests after that"
                    ),
                ));
            }
            // `ClientMetricsInstance.maybeUpdatePushRequestTimestamp`.
            let accept = instance.last_get_ms > instance.last_push_ms
                || now_ms - instance.last_push_ms >= instance.push_interval_ms as i64;
            if accept {
                instance.last_push_ms = now_ms;
            } else if !terminating {
                return Err((
                    ErrorCode::ThrottlingQuotaExceeded,
                    format!(
                        "Request from the client [{id}] arrived before the next push interval time"
                    ),
                ));
            }
            if subscription_id != instance.subscription_id {
                return Err((
                    ErrorCode::UnknownSubscriptionId,
                    format!("Unknown client subscription id for the client [{id}]"),
                ));
            }
            if !(0..=4).contains(&compression_type) {
                return Err((
                    ErrorCode::UnsupportedCompressionType,
                    format!(
                        "Unknown compression type [{compression_type}] is received in telemetry request from [{id}]"
                    ),
                ));
            }
            if metrics.len() > max_push_bytes {
                return Err((
                    ErrorCode::TelemetryTooLarge,
                    format!(
                        "Telemetry request from [{id}] is larger than the maximum allowed size [{max_push_bytes}]"
                    ),
                ));
            }
            Ok(())
        })();
        // Kafka records the flag whatever the outcome.
        instance.terminating = terminating;
        checked?;
        if !metrics.is_empty() {
            self.retain(
                id,
                Payload {
                    compression_type,
                    metrics: metrics.to_vec(),
                    received_ms: now_ms,
                },
            );
        }
        Ok(())
    }

    /// The last payload of every instance that has one.
    pub fn payloads(&self) -> Vec<(Uuid, Payload)> {
        self.instances
            .iter()
            .filter_map(|(id, i)| i.payload.clone().map(|p| (*id, p)))
            .collect()
    }

    pub fn retained_bytes(&self) -> usize {
        self.retained
    }

    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    fn fresh_id(&self, mut new_id: impl FnMut() -> Uuid) -> Uuid {
        loop {
            let id = new_id();
            if id != Uuid::ZERO && id != ONE_UUID && !self.instances.contains_key(&id) {
                return id;
            }
        }
    }

    /// The instance `id`, created or re-evaluated against the current subscriptions.
    fn instance(&mut self, id: Uuid, attributes: ClientAttributes, now_ms: i64) -> &mut Instance {
        let stale = self
            .instances
            .get(&id)
            .is_none_or(|i| i.subscription_version < self.version);
        if stale {
            // A re-evaluated instance keeps the attributes it was first seen with, as Kafka's.
            let (attributes, payload) = match self.instances.remove(&id) {
                Some(old) => (old.attributes, old.payload),
                None => (attributes, None),
            };
            if !self.instances.contains_key(&id) && self.instances.len() >= MAX_INSTANCES {
                self.evict_least_recent();
            }
            let (metrics, interval) = self.evaluate(id, &attributes);
            let instance = Instance {
                subscription_id: subscription_id(&metrics, interval, id),
                subscription_version: self.version,
                metrics,
                push_interval_ms: interval,
                attributes,
                last_get_ms: NEVER,
                last_push_ms: NEVER,
                terminating: false,
                last_seen_ms: now_ms,
                payload,
            };
            self.instances.insert(id, instance);
        }
        let instance = self.instances.get_mut(&id).expect("inserted above");
        instance.last_seen_ms = now_ms;
        instance
    }

    fn evaluate(&self, id: Uuid, a: &ClientAttributes) -> (Vec<String>, i32) {
        let attribute = |name: &str| -> Option<String> {
            Some(match name {
                "client_instance_id" => id.to_string(),
                "client_id" => a.client_id.clone(),
                "client_software_name" => a.software_name.clone(),
                "client_software_version" => a.software_version.clone(),
                "client_source_address" => a.source_address.clone(),
                "client_source_port" => a.source_port.clone(),
                _ => return None,
            })
        };
        let mut metrics = BTreeSet::new();
        let mut interval = INTERVAL_MS_DEFAULT;
        let mut all = false;
        for s in self.subscriptions.iter().filter(|s| s.matches(attribute)) {
            all |= s.metrics.iter().any(|m| m == ALL_METRICS);
            metrics.extend(s.metrics.iter().cloned());
            interval = interval.min(s.interval_ms);
        }
        if all {
            return (vec![ALL_METRICS.to_string()], interval);
        }
        (metrics.into_iter().collect(), interval)
    }

    fn expire(&mut self, now_ms: i64) {
        let mut freed = 0;
        self.instances.retain(|_, i| {
            let keep = now_ms - i.last_seen_ms < MIN_EXPIRY_MS.max(3 * i.push_interval_ms as i64);
            if !keep {
                freed += i.payload.as_ref().map_or(0, |p| p.metrics.len());
            }
            keep
        });
        self.retained -= freed;
    }

    fn evict_least_recent(&mut self) {
        if let Some(id) = self
            .instances
            .iter()
            .min_by_key(|(_, i)| i.last_seen_ms)
            .map(|(id, _)| *id)
            && let Some(old) = self.instances.remove(&id)
        {
            self.retained -= old.payload.map_or(0, |p| p.metrics.len());
        }
    }

    fn retain(&mut self, id: Uuid, payload: Payload) {
        if let Some(old) = self.instances.get_mut(&id).and_then(|i| i.payload.take()) {
            self.retained -= old.metrics.len();
        }
        let size = payload.metrics.len();
        if size > self.retained_limit {
            return;
        }
        while self.retained + size > self.retained_limit {
            let oldest = self
                .instances
                .iter()
                .filter_map(|(id, i)| i.payload.as_ref().map(|p| (*id, p.received_ms)))
                .min_by_key(|(_, t)| *t)
                .map(|(id, _)| id);
            let Some(oldest) = oldest else { break };
            if let Some(p) = self
                .instances
                .get_mut(&oldest)
                .and_then(|i| i.payload.take())
            {
                self.retained -= p.metrics.len();
            }
        }
        self.retained += size;
        if let Some(i) = self.instances.get_mut(&id) {
            i.payload = Some(payload);
        }
    }
}

/// Kafka's `computeSubscriptionId`: CRC32C of `metrics.toString() + pushIntervalMs` (a Java
/// `HashSet`'s `toString`, "[a, b]"), XOR `Uuid.hashCode()`. Arus lists the set in name order
/// where Java uses hash order, so for two or more metrics the id differs from the one Kafka
/// would give; clients treat it as opaque and only echo it.
fn subscription_id(metrics: &[String], interval_ms: i32, id: Uuid) -> i32 {
    let text = format!("[{}]{interval_ms}", metrics.join(", "));
    let crc = crc32c::crc32c(text.as_bytes()) as i32;
    crc ^ java_uuid_hash(id)
}

/// `org.apache.kafka.common.Uuid.hashCode`: the xor of both halves, folded to 32 bits.
fn java_uuid_hash(id: Uuid) -> i32 {
    let msb = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
    let lsb = u64::from_be_bytes(id.0[8..].try_into().expect("8 bytes"));
    let h = (msb ^ lsb) as i64;
    ((h >> 32) as i32) ^ (h as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource_configs::ConfigMap;

    fn sub(name: &str, pairs: &[(&str, &str)]) -> Subscription {
        let map: ConfigMap = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Subscription::from_stored(name, &map).unwrap()
    }

    fn client(id: &str) -> ClientAttributes {
        ClientAttributes {
            client_id: id.into(),
            ..Default::default()
        }
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 1u8;
        move || {
            n += 1;
            Uuid([n; 16])
        }
    }

    #[test]
    fn subscriptions_are_matched_merged_and_throttled() {
        let mut t = TelemetryState::new(1024, 4096);
        t.set_subscriptions(vec![
            sub(
                "a",
                &[
                    ("metrics", "org.apache.kafka.producer."),
                    ("interval.ms", "1000"),
                    ("match", "client_id=app.*"),
                ],
            ),
            sub(
                "b",
                &[
                    ("metrics", "org.apache.kafka.consumer."),
                    ("interval.ms", "2000"),
                ],
            ),
            sub("c", &[("metrics", "*"), ("match", "client_id=other")]),
        ]);
        let g = t
            .get_subscriptions(Uuid::ZERO, client("app-1"), ids(), 10_000)
            .unwrap();
        assert_ne!(g.client_instance_id, Uuid::ZERO);
        assert_eq!(g.push_interval_ms, 1000);
        assert_eq!(
            g.requested_metrics,
            vec!["org.apache.kafka.consumer.", "org.apache.kafka.producer."]
        );
        let id = g.client_instance_id;
        // Too soon: throttled; one interval later: granted again with the same id.
        assert_eq!(
            t.get_subscriptions(id, client("app-1"), ids(), 10_500)
                .unwrap_err()
                .0,
            ErrorCode::ThrottlingQuotaExceeded
        );
        let again = t
            .get_subscriptions(id, client("app-1"), ids(), 11_000)
            .unwrap();
        assert_eq!(again.subscription_id, g.subscription_id);
        // A matching `*` subscription asks for everything.
        let other = t
            .get_subscriptions(Uuid::ZERO, client("other"), ids(), 10_000)
            .unwrap();
        assert_eq!(other.requested_metrics, vec!["*"]);
        assert_eq!(other.push_interval_ms, 2000);
        // No subscription matches: nothing requested, the default interval.
        t.set_subscriptions(vec![]);
        let none = t
            .get_subscriptions(Uuid::ZERO, client("x"), ids(), 10_000)
            .unwrap();
        assert!(none.requested_metrics.is_empty());
        assert_eq!(none.push_interval_ms, 300_000);
    }

    #[test]
    fn pushes_follow_kafkas_rules() {
        let mut t = TelemetryState::new(8, 1 << 20);
        t.set_subscriptions(vec![sub("a", &[("metrics", "*"), ("interval.ms", "1000")])]);
        let g = t
            .get_subscriptions(Uuid::ZERO, client("c"), ids(), 5_000)
            .unwrap();
        let id = g.client_instance_id;
        let sid = g.subscription_id;
        let push = |t: &mut TelemetryState, sid, term, comp, m: &[u8], now| {
            t.push(id, sid, term, comp, m, client("c"), now)
                .map_err(|e| e.0)
        };
        // The first push after a Get is accepted at once.
        assert_eq!(push(&mut t, sid, false, 0, b"abc", 5_100), Ok(()));
        assert_eq!(t.payloads()[0].1.metrics, b"abc");
        // Then only one interval after the last push.
        assert_eq!(
            push(&mut t, sid, false, 0, b"x", 5_500),
            Err(ErrorCode::ThrottlingQuotaExceeded)
        );
        assert_eq!(
            push(&mut t, sid + 1, false, 0, b"x", 6_100),
            Err(ErrorCode::UnknownSubscriptionId)
        );
        assert_eq!(
            push(&mut t, sid, false, 9, b"x", 7_200),
            Err(ErrorCode::UnsupportedCompressionType)
        );
        assert_eq!(
            push(&mut t, sid, false, 4, b"123456789", 8_300),
            Err(ErrorCode::TelemetryTooLarge)
        );
        assert_eq!(push(&mut t, sid, false, 4, b"def", 9_400), Ok(()));
        assert_eq!(t.payloads()[0].1.metrics, b"def");
        assert_eq!(t.retained_bytes(), 3);
        // A terminating push is accepted even inside the interval; nothing after it is.
        assert_eq!(push(&mut t, sid, true, 0, b"end", 9_500), Ok(()));
        assert_eq!(
            push(&mut t, sid, false, 0, b"x", 20_000),
            Err(ErrorCode::InvalidRequest)
        );
        // The reserved ids are refused.
        assert_eq!(
            t.push(Uuid::ZERO, sid, false, 0, b"", client("c"), 20_000)
                .unwrap_err()
                .0,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a_subscription_change_makes_old_subscription_ids_unknown() {
        let mut t = TelemetryState::new(1024, 1024);
        t.set_subscriptions(vec![sub(
            "a",
            &[("metrics", "m1"), ("interval.ms", "60000")],
        )]);
        let g = t
            .get_subscriptions(Uuid::ZERO, client("c"), ids(), 1_000)
            .unwrap();
        t.set_subscriptions(vec![sub(
            "a",
            &[("metrics", "m2"), ("interval.ms", "60000")],
        )]);
        // The changed set is given at once to a new instance.
        let other = t
            .get_subscriptions(Uuid::ZERO, client("d"), ids(), 1_500)
            .unwrap();
        assert_eq!(other.requested_metrics, vec!["m2"]);
        assert_eq!(
            t.push(
                g.client_instance_id,
                g.subscription_id,
                false,
                0,
                b"x",
                client("c"),
                2_000
            )
            .unwrap_err()
            .0,
            ErrorCode::UnknownSubscriptionId
        );
        // As in Kafka, that push counted for the interval: the next Get waits for it.
        assert_eq!(
            t.get_subscriptions(g.client_instance_id, client("c"), ids(), 2_001)
                .unwrap_err()
                .0,
            ErrorCode::ThrottlingQuotaExceeded
        );
        let g2 = t
            .get_subscriptions(g.client_instance_id, client("c"), ids(), 62_000)
            .unwrap();
        assert_eq!(g2.requested_metrics, vec!["m2"]);
        assert_ne!(g2.subscription_id, g.subscription_id);
    }

    #[test]
    fn retained_payloads_and_instances_are_bounded() {
        let mut t = TelemetryState::new(100, 10);
        let mut ids = ids();
        let mut pushed = vec![];
        for (n, now) in [(0, 1_000), (1, 1_001), (2, 1_002)] {
            let g = t
                .get_subscriptions(Uuid::ZERO, client("c"), &mut ids, now)
                .unwrap();
            t.push(
                g.client_instance_id,
                g.subscription_id,
                false,
                0,
                &[n; 4],
                client("c"),
                now,
            )
            .unwrap();
            pushed.push(g.client_instance_id);
        }
        // 3 x 4 bytes do not fit in 10: the oldest payload was dropped.
        assert_eq!(t.retained_bytes(), 8);
        let kept: Vec<Uuid> = t.payloads().into_iter().map(|(id, _)| id).collect();
        assert!(!kept.contains(&pushed[0]));
        // A payload above the whole bound is accepted but not kept.
        let g = t
            .get_subscriptions(Uuid::ZERO, client("c"), &mut ids, 1_003)
            .unwrap();
        t.push(
            g.client_instance_id,
            g.subscription_id,
            false,
            0,
            &[9; 11],
            client("c"),
            1_003,
        )
        .unwrap();
        assert_eq!(t.retained_bytes(), 8);
        // Idle instances expire after max(60 s, 3 intervals) and free their payloads.
        assert_eq!(t.instance_count(), 4);
        t.get_subscriptions(Uuid::ZERO, client("c"), &mut ids, 1_003 + 900_000)
            .unwrap();
        assert_eq!(t.instance_count(), 1);
        assert_eq!(t.retained_bytes(), 0);
    }

    #[test]
    fn subscription_id_follows_kafkas_formula() {
        // CRC32C("[]300000") ^ hash(zero uuid) = CRC32C("[]300000").
        assert_eq!(
            subscription_id(&[], 300_000, Uuid::ZERO),
            crc32c::crc32c(b"[]300000") as i32
        );
        let id = Uuid([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4]);
        // msb ^ lsb = 0x0000_0001_0000_0006 -> 1 ^ 6.
        assert_eq!(java_uuid_hash(id), 7);
    }
}
