//! `java.util.Random` (the 48-bit linear congruential generator) and `Collections.shuffle`,
//! bit for bit. Kafka's `StripedReplicaPlacer` draws its starting offsets and shuffles from a
//! `java.util.Random`; using the same generator means a given seed places replicas exactly as
//! Kafka's placer seeded the same way would, and tests are deterministic.

const MULTIPLIER: i64 = 0x5_DEEC_E66D;
const ADDEND: i64 = 0xB;
const MASK: i64 = (1 << 48) - 1;

/// Java's `java.util.Random`.
#[derive(Debug, Clone)]
pub struct JavaRandom {
    seed: i64,
}

impl JavaRandom {
    /// `new Random(seed)`.
    pub fn new(seed: i64) -> Self {
        JavaRandom {
            seed: (seed ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(ADDEND)) & MASK;
        // Java's `(int)(seed >>> (48 - bits))`: the truncation to 32 bits is intended.
        (self.seed as u64 >> (48 - bits)) as i32
    }

    /// `nextInt(bound)`: uniform in `0..bound`. `bound` must be positive.
    pub fn next_int(&mut self, bound: i32) -> i32 {
        debug_assert!(bound > 0);
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((i64::from(bound) * i64::from(r)) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }

    /// `Collections.shuffle(list, random)`.
    pub fn shuffle<T>(&mut self, list: &mut [T]) {
        for i in (2..=list.len()).rev() {
            let j = self.next_int(i as i32) as usize;
            list.swap(i - 1, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_java_for_seed_42() {
        // Values printed by the JDK for `new Random(42)`: nextInt(10) five times, then the
        // power-of-two path with nextInt(16).
        let mut r = JavaRandom::new(42);
        let got: Vec<i32> = (0..5).map(|_| r.next_int(10)).collect();
        assert_eq!(got, vec![0, 3, 8, 4, 0]);
        assert_eq!(r.next_int(16), 15);
    }

    #[test]
    fn shuffle_matches_collections_shuffle() {
        // The JDK's `Collections.shuffle([0..9], new Random(7))`.
        let mut r = JavaRandom::new(7);
        let mut v: Vec<i32> = (0..10).collect();
        r.shuffle(&mut v);
        assert_eq!(v, vec![0, 1, 9, 3, 7, 4, 8, 5, 2, 6]);
    }
}
