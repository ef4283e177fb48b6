//! A per-key rate limit: GCRA (the generic cell rate algorithm, as the `governor` crate and
//! Redis-cell implement it), on Tokio's clock so that tests run it under paused time.
//!
//! `rpm` requests per minute arrive one per emission interval T = 60 s / rpm; up to `burst`
//! may come at once. Over any window of length W at most `burst + rpm * W / 60` are admitted.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Requests per minute and burst.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub rpm: f64,
    pub burst: u32,
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Admitted {
        /// Requests that could still be admitted right now.
        remaining: u32,
        /// When the full burst is available again.
        reset: Instant,
    },
    Limited {
        /// The earliest time a request would be admitted.
        retry_after: Duration,
        reset: Instant,
    },
}

#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next request; None until the first.
    tat: Mutex<Option<Instant>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        let interval = Duration::from_secs_f64(60.0 / rate.rpm);
        Limiter {
            rate,
            interval,
            tolerance: interval * rate.burst.saturating_sub(1),
            tat: Mutex::new(None),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Admits or limits a request arriving at `now`.
    pub fn check(&self, now: Instant) -> Verdict {
        let mut tat = self.tat.lock().unwrap_or_else(|p| p.into_inner());
        let arrival = tat.map_or(now, |t| t.max(now));
        if arrival - now > self.tolerance {
            return Verdict::Limited {
                retry_after: arrival - self.tolerance - now,
                reset: arrival,
            };
        }
        let next = arrival + self.interval;
        *tat = Some(next);
        let debt = next - now;
        let room = (self.tolerance + self.interval).saturating_sub(debt);
        Verdict::Admitted {
            remaining: (room.as_secs_f64() / self.interval.as_secs_f64() + 1e-9).floor() as u32,
            reset: next,
        }
    }

    /// Back to a full burst (admin reset).
    pub fn reset(&self) {
        *self.tat.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Admitted { .. })
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate_with_honest_retry_after() {
        let limiter = Limiter::new(Rate { rpm: 5.0, burst: 3 });
        let start = Instant::now();
        let remaining: Vec<_> = (0..3)
            .map(|_| match limiter.check(Instant::now()) {
                Verdict::Admitted { remaining, .. } => remaining,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let Verdict::Limited { retry_after, reset } = limiter.check(Instant::now()) else {
            panic!("the fourth at once is limited");
        };
        assert_eq!(
            retry_after,
            Duration::from_secs(12),
            "one interval of 60/5 s"
        );
        assert_eq!(reset, start + Duration::from_secs(36));
        // A lone retry just before is still limited; after exactly that long it is admitted.
        tokio::time::advance(retry_after - Duration::from_millis(1)).await;
        assert!(!admitted(limiter.check(Instant::now())));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(admitted(limiter.check(Instant::now())));
        limiter.reset();
        assert!(admitted(limiter.check(Instant::now())));
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_admits_more_than_burst_plus_rate_times_its_length() {
        // Requests every 0.7 s for 10 minutes against 50 rpm, burst 4.
        let rate = Rate {
            rpm: 50.0,
            burst: 4,
        };
        let limiter = Limiter::new(rate);
        let mut times = Vec::new();
        for _ in 0..857 {
            if admitted(limiter.check(Instant::now())) {
                times.push(Instant::now());
            }
            tokio::time::advance(Duration::from_millis(700)).await;
        }
        // Every window that starts at an admission, of every length up to the whole run.
        for (i, &from) in times.iter().enumerate() {
            for (j, &to) in times.iter().enumerate().skip(i) {
                let window = (to - from).as_secs_f64();
                let allowed = f64::from(rate.burst) + rate.rpm * window / 60.0;
                assert!(
                    (j - i + 1) as f64 <= allowed + 1e-9,
                    "{} in {window} s",
                    j - i + 1
                );
            }
        }
        // And the limiter is not stingier than the rate: 10 minutes of 50 rpm.
        assert!(times.len() >= 500, "{}", times.len());
    }
}
