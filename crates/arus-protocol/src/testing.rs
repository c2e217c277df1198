//! Test helpers (feature `testing`): a small deterministic random generator used by the
//! generated `random(rng, version)` constructors.

use crate::{Bytes, Uuid};

/// Deterministic xorshift64* generator (seeded; no external dependency).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A small collection length (0..=3).
    pub fn small_len(&mut self) -> usize {
        self.below(4) as usize
    }

    /// A finite float.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() as i32) as f64 / 8.0
    }

    pub fn uuid(&mut self) -> Uuid {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut u = [0u8; 16];
        u[..8].copy_from_slice(&a);
        u[8..].copy_from_slice(&b);
        Uuid(u)
    }

    /// A short string, sometimes with non-ASCII characters.
    pub fn string(&mut self) -> String {
        let n = self.below(8);
        (0..n)
            .map(|_| match self.below(20) {
                0 => 'é',
                1 => '☃',
                k => char::from(b'a' + (k as u8)),
            })
            .collect()
    }

    pub fn bytes(&mut self) -> Bytes {
        let n = self.below(10);
        Bytes::from((0..n).map(|_| self.next_u64() as u8).collect::<Vec<u8>>())
    }
}
