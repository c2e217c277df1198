//! openraft's async runtime: tokio, with a random source that a simulation can seed, and
//! jittered timer sleeps.
//!
//! openraft draws its randomized election timeouts from `AsyncRuntime::thread_rng()`. With
//! tokio's own `ThreadRng` a simulated schedule could not be replayed from its seed; here the
//! current thread's generator can be replaced by a seeded one ([`seed_thread_rng`]), and falls
//! back to `rand::thread_rng()` otherwise (production).
//!
//! Jitter: openraft 0.9 draws each node's election timeout once, at start, and checks it on a
//! fixed tick. Two voters whose timeouts round to the same tick and whose ticks run within a
//! network round trip of each other become candidates together, split the vote, and do it
//! again every round, forever; with one voter of three down nothing can break the tie (the
//! simulated cluster found such schedules). Every timer sleep of openraft is therefore
//! lengthened by a random 0–1/8 of its length, so ticks drift apart and a split vote cannot
//! repeat indefinitely. Timers only pace openraft's checks; Raft's safety never depends on
//! them.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

thread_local! {
    static SEEDED: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Make every later `ArusRuntime::thread_rng()` on this thread draw from a generator seeded
/// with `seed` (`None` restores the entropy-seeded `rand::thread_rng()`).
pub fn seed_thread_rng(seed: Option<u64>) {
    SEEDED.with(|cell| *cell.borrow_mut() = seed.map(StdRng::seed_from_u64));
}

/// The random source handed to openraft.
#[derive(Debug, Default, Clone, Copy)]
pub struct RaftRng;

impl RaftRng {
    fn with<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        SEEDED.with(|cell| match cell.borrow_mut().as_mut() {
            Some(rng) => f(rng),
            None => f(&mut rand::thread_rng()),
        })
    }
}

impl RngCore for RaftRng {
    fn next_u32(&mut self) -> u32 {
        Self::with(|r| r.next_u32())
    }
    fn next_u64(&mut self) -> u64 {
        Self::with(|r| r.next_u64())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        Self::with(|r| r.fill_bytes(dest))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        Self::with(|r| r.try_fill_bytes(dest))
    }
}

/// A random extra wait of up to an eighth of `wait` (see the module header).
fn jitter(wait: Duration) -> Duration {
    let max = u64::try_from((wait / 8).as_nanos()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(RaftRng.gen_range(0..=max))
}

/// tokio, as openraft's `TokioRuntime`, except for [`RaftRng`] and jittered sleeps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ArusRuntime;

impl AsyncRuntime for ArusRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = RaftRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration + jitter(duration))
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep_until(deadline + jitter(wait))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        tokio::time::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        RaftRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (TokioOneShotSender(tx), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_an_eighth_and_follows_the_seed() {
        seed_thread_rng(Some(7));
        let first: Vec<Duration> = (0..50).map(|_| jitter(Duration::from_millis(80))).collect();
        assert!(first.iter().all(|j| *j <= Duration::from_millis(10)));
        assert!(first.iter().any(|j| *j > Duration::ZERO));
        seed_thread_rng(Some(7));
        let again: Vec<Duration> = (0..50).map(|_| jitter(Duration::from_millis(80))).collect();
        assert_eq!(first, again);
        seed_thread_rng(None);
        assert_eq!(jitter(Duration::from_nanos(7)), Duration::ZERO);
    }
}
