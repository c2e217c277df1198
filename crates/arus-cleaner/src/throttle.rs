//! `log.cleaner.io.max.bytes.per.second`: Kafka's `Throttler`.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time source and sleeper for the throttler, injectable for tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, d: Duration);
}

/// The real clock; `sleep` blocks the thread (the cleaner runs on its own thread).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Kafka's `Throttler` as the cleaner uses it (`throttleDown`, check every 300 ms):
/// bytes are counted over a period; once the period is longer than the check interval,
/// if the observed rate exceeds the desired one, the caller sleeps just long enough for
/// the period's average to come down to the desired rate. Then a new period starts.
pub struct Throttler {
    desired_bytes_per_sec: f64,
    check_interval: Duration,
    period_start: Instant,
    observed: f64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Throttler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttler")
            .field("desired_bytes_per_sec", &self.desired_bytes_per_sec)
            .field("observed", &self.observed)
            .finish()
    }
}

/// Kafka's `LogCleaner` checks the rate every 300 ms.
const CHECK_INTERVAL: Duration = Duration::from_millis(300);

impl Throttler {
    pub fn new(desired_bytes_per_sec: f64, clock: Arc<dyn Clock>) -> Throttler {
        Throttler {
            desired_bytes_per_sec,
            check_interval: CHECK_INTERVAL,
            period_start: clock.now(),
            observed: 0.0,
            clock,
        }
    }

    /// No limit (`f64::MAX`, Kafka's default), on the system clock.
    pub fn unlimited() -> Throttler {
        Throttler::new(f64::MAX, Arc::new(SystemClock))
    }

    /// Changes the rate (the config is dynamic in Kafka).
    pub fn set_rate(&mut self, desired_bytes_per_sec: f64) {
        self.desired_bytes_per_sec = desired_bytes_per_sec;
    }

    /// Counts `bytes` done at `now` and returns how long to sleep (zero mostly). The new
    /// period starts when the sleep ends. Pure: no clock is read.
    pub fn maybe_throttle(&mut self, bytes: u64, now: Instant) -> Duration {
        self.observed += bytes as f64;
        let elapsed = now.saturating_duration_since(self.period_start);
        if elapsed <= self.check_interval || self.observed <= 0.0 {
            return Duration::ZERO;
        }
        let rate = self.observed / elapsed.as_secs_f64();
        let mut sleep = Duration::ZERO;
        if rate > self.desired_bytes_per_sec && self.desired_bytes_per_sec > 0.0 {
            // Kafka: round(observed / desiredRatePerMs - elapsedMs) milliseconds.
            let desired_per_ms = self.desired_bytes_per_sec / 1000.0;
            let ms = (self.observed / desired_per_ms - elapsed.as_millis() as f64).round();
            if ms > 0.0 {
                sleep = Duration::from_millis(ms.min(u64::MAX as f64) as u64);
            }
        }
        self.period_start = now + sleep;
        self.observed = 0.0;
        sleep
    }

    /// [`maybe_throttle`](Self::maybe_throttle) on the throttler's clock, sleeping as told.
    pub fn throttle(&mut self, bytes: u64) {
        let d = self.maybe_throttle(bytes, self.clock.now());
        if !d.is_zero() {
            self.clock.sleep(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock that only moves when slept on or advanced.
    pub(crate) struct FakeClock {
        pub start: Instant,
        pub offset: Mutex<Duration>,
    }
    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.start + *self.offset.lock().unwrap()
        }
        fn sleep(&self, d: Duration) {
            *self.offset.lock().unwrap() += d;
        }
    }

    #[test]
    fn throttle_math() {
        let t0 = Instant::now();
        let clock = Arc::new(FakeClock {
            start: t0,
            offset: Mutex::new(Duration::ZERO),
        });
        let mut t = Throttler::new(1000.0, clock.clone());
        // Within the check interval nothing happens, whatever the volume.
        assert_eq!(
            t.maybe_throttle(10_000, t0 + Duration::from_millis(100)),
            Duration::ZERO
        );
        // 10_500 bytes in 500 ms at 1000 B/s should have taken 10.5 s: sleep 10 s.
        assert_eq!(
            t.maybe_throttle(500, t0 + Duration::from_millis(500)),
            Duration::from_millis(10_000)
        );
        // The next period starts after the sleep: 200 bytes over 400 ms is 500 B/s, fine.
        let after = t0 + Duration::from_millis(10_500);
        assert_eq!(
            t.maybe_throttle(200, after + Duration::from_millis(400)),
            Duration::ZERO
        );
        // Under the rate: no sleep.
        assert_eq!(
            t.maybe_throttle(100, after + Duration::from_millis(1_400)),
            Duration::ZERO
        );

        // `throttle` sleeps on the clock.
        let mut t = Throttler::new(1000.0, clock.clone());
        *clock.offset.lock().unwrap() += Duration::from_millis(1000);
        t.throttle(3000);
        assert_eq!(*clock.offset.lock().unwrap(), Duration::from_millis(3000));

        // Unlimited never sleeps.
        let mut u = Throttler::new(f64::MAX, clock.clone());
        assert_eq!(
            u.maybe_throttle(u64::MAX, clock.now() + Duration::from_secs(1)),
            Duration::ZERO
        );
    }
}
