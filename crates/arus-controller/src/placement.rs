//! Replica placement: Kafka's `StripedReplicaPlacer`, and the validation of manual replica
//! assignments (`ReplicationControlManager.validateManualPartitionAssignment`).
//!
//! The placer stripes partitions over racks and, inside a rack, over brokers, starting each
//! list at a random offset so that topics do not all put their first replica on the same
//! broker. The first replica of a partition is always an unfenced broker; the others prefer
//! unfenced brokers and fall back to fenced ones. Brokers in controlled shutdown are not
//! usable at all. The randomness is a [`JavaRandom`] supplied by the caller: the same seed
//! gives Kafka's placement for the same seed, and tests are deterministic.

use std::collections::BTreeSet;

use arus_protocol::ErrorCode;

use crate::error::ControllerError;
use crate::java_random::JavaRandom;

/// A broker the placer may put replicas on (Kafka's `UsableBroker`): registered and not in
/// controlled shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    /// The broker id.
    pub id: i32,
    /// Its `broker.rack`, if set.
    pub rack: Option<String>,
    /// Whether it is fenced (it can still hold followers, never a new partition's first replica).
    pub fenced: bool,
}

/// Why a placement failed; [`PlacementError::message`] is Kafka's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The replication factor is zero or negative.
    #[error("Invalid replication factor {0}: the replication factor must be positive.")]
    NonPositive(i32),
    /// More replicas than registered (usable) brokers.
    #[error(
        "The target replication factor of {replication_factor} cannot be reached because only {brokers} broker(s) are registered or some brokers have all their log directories cordoned."
    )]
    TooFewBrokers {
        replication_factor: i32,
        brokers: usize,
    },
    /// No unfenced broker to lead.
    #[error("All brokers are currently fenced, or have all their log directories cordoned.")]
    AllFenced,
}

impl PlacementError {
    /// The `CreateTopics`/`CreatePartitions` error Kafka answers with: INVALID_REPLICATION_FACTOR
    /// and "Unable to replicate the partition N time(s): <reason>".
    pub fn into_controller_error(self, replication_factor: i32) -> ControllerError {
        ControllerError::new(
            ErrorCode::InvalidReplicationFactor,
            format!("Unable to replicate the partition {replication_factor} time(s): {self}"),
        )
    }
}

/// Java's `String.hashCode`, so rack iteration follows Java's `HashMap` order (the order in
/// which Kafka's racks draw their random offsets).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The capacity a default `java.util.HashMap` has after `n` insertions.
fn java_hashmap_capacity(n: usize) -> usize {
    let mut cap = 16;
    while n * 4 > cap * 3 {
        cap *= 2;
    }
    cap
}

/// Java `HashMap` bucket of a hash code (after its `h ^ (h >>> 16)` spreading).
fn java_bucket(hash: i32, capacity: usize) -> usize {
    let h = hash as u32;
    ((h ^ (h >> 16)) as usize) & (capacity - 1)
}

/// Orders brokers as Kafka's `HashMap<Integer, BrokerHeartbeatState>` iterates them (the
/// order Kafka hands the placer; it decides which rack is met first). Colliding ids keep
/// ascending order, Kafka's insertion order is not known here.
pub fn sort_in_java_hashmap_order(brokers: &mut [UsableBroker]) {
    let cap = java_hashmap_capacity(brokers.len());
    brokers.sort_by_key(|b| (java_bucket(b.id, cap), b.id));
}

#[derive(Debug, Default)]
struct BrokerList {
    brokers: Vec<i32>,
    index: usize,
    offset: usize,
    epoch: u32,
}

impl BrokerList {
    fn initialize(&mut self, random: &mut JavaRandom) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = random.next_int(self.brokers.len() as i32) as usize;
        }
    }

    fn shuffle(&mut self, random: &mut JavaRandom) {
        random.shuffle(&mut self.brokers);
    }

    fn next(&mut self, epoch: u32) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(broker)
    }
}

#[derive(Debug, Default)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: u32) -> Option<i32> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

#[derive(Debug)]
struct RackEntry {
    name: Option<String>,
    /// When the rack was first seen: Java's `HashMap` keeps colliding keys in insertion order.
    inserted: usize,
    rack: Rack,
}

/// The order in which Java's `HashMap<Optional<String>, Rack>` iterates `racks`.
fn hash_order(racks: &[RackEntry]) -> Vec<usize> {
    let cap = java_hashmap_capacity(racks.len());
    let mut order: Vec<usize> = (0..racks.len()).collect();
    order.sort_by_key(|&i| {
        let hash = racks[i].name.as_deref().map(java_string_hash).unwrap_or(0);
        (java_bucket(hash, cap), racks[i].inserted)
    });
    order
}

/// Kafka's `RackList`: the racks in sorted order (the rack-less group first) and the
/// striping state carried from one partition to the next.
struct RackList<'r> {
    random: &'r mut JavaRandom,
    /// In Kafka's `rackNames` order: sorted at first, shuffled after each full round.
    racks: Vec<RackEntry>,
    num_total: usize,
    num_unfenced: usize,
    epoch: u32,
    offset: usize,
}

impl<'r> RackList<'r> {
    fn new(random: &'r mut JavaRandom, brokers: &[UsableBroker]) -> Self {
        let mut racks: Vec<RackEntry> = Vec::new();
        let (mut num_total, mut num_unfenced) = (0, 0);
        for broker in brokers {
            let idx = match racks.iter().position(|r| r.name == broker.rack) {
                Some(i) => i,
                None => {
                    racks.push(RackEntry {
                        name: broker.rack.clone(),
                        inserted: racks.len(),
                        rack: Rack::default(),
                    });
                    racks.len() - 1
                }
            };
            let rack = &mut racks[idx].rack;
            if broker.fenced {
                rack.fenced.brokers.push(broker.id);
            } else {
                num_unfenced += 1;
                rack.unfenced.brokers.push(broker.id);
            }
            num_total += 1;
        }
        // Kafka initializes the racks in its HashMap's order, drawing one random offset per
        // non-empty list; the draws must happen in that order to match it.
        for i in hash_order(&racks) {
            let rack = &mut racks[i].rack;
            rack.fenced.initialize(random);
            rack.unfenced.initialize(random);
        }
        racks.sort_by(|a, b| a.name.cmp(&b.name));
        let offset = if racks.is_empty() {
            0
        } else {
            random.next_int(racks.len() as i32) as usize
        };
        RackList {
            random,
            racks,
            num_total,
            num_unfenced,
            epoch: 0,
            offset,
        }
    }

    fn check(&self, replication_factor: i32) -> Result<(), PlacementError> {
        if replication_factor <= 0 {
            return Err(PlacementError::NonPositive(replication_factor));
        }
        // Kafka 4.4's `place` checks "all fenced" before "too few brokers".
        if self.num_unfenced == 0 {
            return Err(PlacementError::AllFenced);
        }
        if replication_factor as usize > self.num_total {
            return Err(PlacementError::TooFewBrokers {
                replication_factor,
                brokers: self.num_total,
            });
        }
        Ok(())
    }

    fn shuffle(&mut self) {
        // `Collections.shuffle(rackNames)` permutes the names; then every rack shuffles its
        // lists, in the HashMap's order.
        self.random.shuffle(&mut self.racks);
        for i in hash_order(&self.racks) {
            let rack = &mut self.racks[i].rack;
            rack.fenced.shuffle(self.random);
            rack.unfenced.shuffle(self.random);
        }
    }

    fn place(&mut self, replication_factor: i32) -> Result<Vec<i32>, PlacementError> {
        self.check(replication_factor)?;
        if self.epoch as usize == self.num_unfenced && self.num_unfenced > 1 {
            self.shuffle();
            self.epoch = 0;
        }
        if self.offset == self.racks.len() {
            self.offset = 0;
        }
        let n = self.racks.len();
        let mut brokers = Vec::with_capacity(replication_factor as usize);
        let mut first_rack = self.offset;
        loop {
            if let Some(b) = self.racks[first_rack].rack.unfenced.next(self.epoch) {
                brokers.push(b);
                break;
            }
            first_rack = (first_rack + 1) % n;
        }
        let mut first_rack = Some(first_rack);
        let mut rack_index = self.offset;
        for _ in 1..replication_factor {
            let broker = loop {
                let mut result = None;
                if first_rack == Some(rack_index) {
                    first_rack = None;
                } else {
                    result = self.racks[rack_index].rack.next(self.epoch);
                }
                rack_index = (rack_index + 1) % n;
                if let Some(b) = result {
                    break b;
                }
            };
            brokers.push(broker);
        }
        self.epoch += 1;
        self.offset += 1;
        Ok(brokers)
    }
}

/// Places `num_partitions` partitions of `replication_factor` replicas over `brokers`, as
/// Kafka's `StripedReplicaPlacer.place`.
pub fn place(
    random: &mut JavaRandom,
    brokers: &[UsableBroker],
    num_partitions: i32,
    replication_factor: i32,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    let mut racks = RackList::new(random, brokers);
    racks.check(replication_factor)?;
    (0..num_partitions.max(0))
        .map(|_| racks.place(replication_factor))
        .collect()
}

/// Validates one manual assignment as Kafka's `validateManualPartitionAssignment`:
/// non-empty, every broker registered, no duplicates, and the same size as the assignments
/// before it (`expected_rf`).
pub fn validate_manual_assignment(
    replicas: &[i32],
    expected_rf: Option<usize>,
    is_registered: impl Fn(i32) -> bool,
) -> Result<(), ControllerError> {
    if replicas.is_empty() {
        return Err(ControllerError::new(
            ErrorCode::InvalidReplicaAssignment,
            "The manual partition assignment includes an empty replica list.",
        ));
    }
    // Kafka checks in broker-id order, so the smallest offending id is the one reported.
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    let mut seen = BTreeSet::new();
    for &id in &sorted {
        if !is_registered(id) {
            return Err(ControllerError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!(
                    "The manual partition assignment includes broker {id}, but no such broker is registered."
                ),
            ));
        }
        if !seen.insert(id) {
            return Err(ControllerError::new(
                ErrorCode::InvalidReplicaAssignment,
                format!("The manual partition assignment includes the broker {id} more than once."),
            ));
        }
    }
    if let Some(rf) = expected_rf
        && rf != replicas.len()
    {
        return Err(ControllerError::new(
            ErrorCode::InvalidReplicaAssignment,
            format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                replicas.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;
