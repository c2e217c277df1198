//! The request memory pool: a bound on the bytes of requests read from sockets and not yet
//! answered (`queued.max.request.bytes`), as Kafka's `SimpleMemoryPool` — except that memory is
//! taken as bytes arrive, never for what a length prefix announces, so a client that promises
//! 100 MiB and sends 30 bytes holds 64 KiB, not 100 MiB.
//!
//! When the pool is exhausted, readers wait before growing their buffers: their sockets are
//! not read, TCP's window fills and the senders stall (backpressure). Nothing is allocated
//! ahead of a grant.
//!
//! Two tiers keep small requests flowing while large ones are starved: a frame larger than
//! [`LARGE_FRAME_BYTES`] may only use [`LARGE_SHARE_PERCENT`] of the pool, so connections that
//! park half of a 100 MiB request each (a slow or hostile client) can never take the last
//! quarter, which keeps serving ordinary produce and fetch requests.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Frames above this size count against the large-request share of the pool.
pub const LARGE_FRAME_BYTES: usize = 1024 * 1024;
/// The share of the pool that frames above [`LARGE_FRAME_BYTES`] may hold together.
pub const LARGE_SHARE_PERCENT: usize = 75;

#[derive(Debug, thiserror::Error)]
#[error("a request needs {needed} bytes of request memory but the pool holds at most {limit}")]
pub struct TooLarge {
    pub needed: usize,
    pub limit: usize,
}

#[derive(Debug, Default)]
struct Used {
    all: usize,
    large: usize,
}

/// Shared by every connection of a broker.
#[derive(Debug)]
pub struct MemoryPool {
    /// `None`: unbounded (`queued.max.request.bytes` = -1, Kafka's default); grants are still
    /// counted, for tests and metrics.
    capacity: Option<usize>,
    used: Mutex<Used>,
    freed: Notify,
}

impl MemoryPool {
    pub fn new(capacity: Option<usize>) -> Arc<MemoryPool> {
        Arc::new(MemoryPool {
            capacity,
            used: Mutex::new(Used::default()),
            freed: Notify::new(),
        })
    }

    pub fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    fn large_capacity(&self) -> Option<usize> {
        self.capacity.map(|c| c / 100 * LARGE_SHARE_PERCENT)
    }

    /// Bytes granted and not yet returned.
    pub fn used(&self) -> usize {
        self.used.lock().all
    }

    fn try_take(&self, bytes: usize, large: bool) -> bool {
        let mut used = self.used.lock();
        if let Some(cap) = self.capacity
            && used.all + bytes > cap
        {
            return false;
        }
        if large
            && let Some(cap) = self.large_capacity()
            && used.large + bytes > cap
        {
            return false;
        }
        used.all += bytes;
        if large {
            used.large += bytes;
        }
        true
    }

    /// Waits until `bytes` can be granted. Refuses at once what the pool could never grant.
    pub async fn acquire(self: &Arc<Self>, bytes: usize, large: bool) -> Result<Grant, TooLarge> {
        let limit = if large {
            self.large_capacity()
        } else {
            self.capacity
        };
        if let Some(limit) = limit
            && bytes > limit
        {
            return Err(TooLarge {
                needed: bytes,
                limit,
            });
        }
        loop {
            // Registered before the check, so a release between the check and the wait is
            // not missed.
            let freed = self.freed.notified();
            if self.try_take(bytes, large) {
                return Ok(Grant {
                    pool: self.clone(),
                    all: bytes,
                    large: if large { bytes } else { 0 },
                });
            }
            freed.await;
        }
    }

    /// An empty grant, to be grown with [`Grant::absorb`] and split.
    pub fn empty(self: &Arc<Self>) -> Grant {
        Grant {
            pool: self.clone(),
            all: 0,
            large: 0,
        }
    }

    fn give_back(&self, all: usize, large: usize) {
        if all == 0 {
            return;
        }
        {
            let mut used = self.used.lock();
            used.all -= all;
            used.large -= large;
        }
        self.freed.notify_waiters();
    }
}

/// Bytes held from the pool; returned when dropped.
#[derive(Debug)]
pub struct Grant {
    pool: Arc<MemoryPool>,
    all: usize,
    /// The part of `all` counted against the large-request share.
    large: usize,
}

impl Grant {
    pub fn bytes(&self) -> usize {
        self.all
    }

    /// Takes over another grant's bytes.
    pub fn absorb(&mut self, mut other: Grant) {
        self.all += std::mem::take(&mut other.all);
        self.large += std::mem::take(&mut other.large);
    }

    /// Splits off up to `bytes` into a grant of their own (large-share bytes first, since the
    /// bytes split off are a frame on its way to a handler).
    pub fn split(&mut self, bytes: usize) -> Grant {
        let all = bytes.min(self.all);
        let large = all.min(self.large);
        self.all -= all;
        self.large -= large;
        Grant {
            pool: self.pool.clone(),
            all,
            large,
        }
    }

    /// Returns the bytes above `keep` to the pool (small-share bytes last).
    pub fn shrink_to(&mut self, keep: usize) {
        if self.all <= keep {
            return;
        }
        let give = self.all - keep;
        let large = give.min(self.large);
        self.all -= give;
        self.large -= large;
        self.pool.give_back(give, large);
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.pool.give_back(self.all, self.large);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn grants_wait_for_released_bytes() {
        let pool = MemoryPool::new(Some(100));
        let a = pool.acquire(60, false).await.unwrap();
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(50, false).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "only 40 bytes are free");
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(pool.used(), 50);
        drop(b);
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn large_frames_leave_a_quarter_for_small_ones() {
        let pool = MemoryPool::new(Some(400));
        let large = pool.acquire(300, true).await.unwrap();
        // The large share (300) is full: another large grant waits, a small one does not.
        let blocked = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.acquire(10, true).await.unwrap() })
        };
        let small = pool.acquire(100, false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished());
        drop(large);
        blocked.await.unwrap();
        drop(small);
        assert!(pool.acquire(301, true).await.is_err(), "never grantable");
    }

    #[tokio::test]
    async fn split_and_shrink_return_exactly_what_was_taken() {
        let pool = MemoryPool::new(Some(1000));
        let mut g = pool.empty();
        g.absorb(pool.acquire(200, false).await.unwrap());
        g.absorb(pool.acquire(300, true).await.unwrap());
        let frame = g.split(350);
        assert_eq!((frame.all, frame.large), (350, 300));
        assert_eq!((g.all, g.large), (150, 0));
        g.shrink_to(100);
        assert_eq!(pool.used(), 450);
        drop(frame);
        drop(g);
        assert_eq!(pool.used(), 0);
        assert_eq!(pool.used.lock().large, 0);
    }
}
