//! Trying a command again after a transient failure.
//!
//! One way to wait between attempts ([`pause`]: jittered, never past a
//! deadline), and one loop ([`Attempts::run`]) for the commands that are
//! simply sent again: a record's insert, a backfill's reads and updates.
//! The lock's writer and its acquisition decide each turn from what the
//! server said (versions, holders), and a backfill's transaction from how
//! its try ended (conflict, lost commit, too long); they keep their own
//! loops, pausing through [`pause`].

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// How many times, and how far apart, a command is sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts {
    most: u32,
    pause: Duration,
    growing: bool,
}

impl Attempts {
    /// At most `most` attempts; the pause after attempt `n` is `n × pause`.
    pub(crate) const fn at_most(most: u32, pause: Duration) -> Attempts {
        Attempts {
            most,
            pause,
            growing: true,
        }
    }

    /// As many attempts as the caller's lease allows, `pause` apart.
    pub(crate) const fn while_live(pause: Duration) -> Attempts {
        Attempts {
            most: u32::MAX,
            pause,
            growing: false,
        }
    }

    /// Sends `attempt` (given its number, from 1) until it succeeds, and
    /// returns the failure that ends it otherwise: one not
    /// `worth_another`, the last of the attempts, or any once `live` says
    /// the caller's lease has ended. Before each new attempt, `again` hears
    /// of the failure (to log it) and the jittered pause is waited.
    ///
    /// `attempt` is a closure returning a future rather than an async
    /// closure: the future of an async closure that borrows is not known to
    /// be `Send` for every lifetime, and a migration's future must be.
    pub(crate) async fn run<T, F, A: Future<Output = Result<T, F>>>(
        self,
        live: impl Fn() -> bool,
        worth_another: impl Fn(&F) -> bool,
        again: impl Fn(&F, u32),
        mut attempt: impl FnMut(u32) -> A,
    ) -> Result<T, F> {
        let mut number = 1;
        loop {
            let failure = match attempt(number).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if number >= self.most || !worth_another(&failure) || !live() {
                return Err(failure);
            }
            again(&failure, number);
            let base = if self.growing {
                self.pause * number
            } else {
                self.pause
            };
            pause(base, None).await;
            number += 1;
        }
    }
}

/// Waits `base`, jittered, but not past `deadline`.
pub(crate) async fn pause(base: Duration, deadline: Option<Instant>) {
    let pause = jittered(base);
    let pause = deadline.map_or(pause, |deadline| {
        pause.min(deadline.saturating_duration_since(Instant::now()))
    });
    tokio::time::sleep(pause).await;
}

/// A pause before another attempt: `base` scaled by a random factor in
/// `[0.5, 1.5)`, so processes that failed together do not retry together.
///
/// The randomness comes from the standard library's per-process random
/// hash keys, not from the process id, which containers share.
pub(crate) fn jittered(base: Duration) -> Duration {
    let bits = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    // The top 53 bits as a fraction in [0, 1).
    let fraction = (bits >> 11) as f64 / (1_u64 << 53) as f64;
    base.mul_f64(0.5 + fraction)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half_times_the_base() {
        let base = Duration::from_millis(100);
        let pauses: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(
            pauses
                .iter()
                .all(|pause| *pause >= base / 2 && *pause < base * 3 / 2)
        );
        let distinct: std::collections::HashSet<_> = pauses.iter().collect();
        assert!(
            distinct.len() > 100,
            "the pauses vary: {} distinct",
            distinct.len()
        );
    }

    #[tokio::test]
    async fn a_command_is_sent_again_only_while_worth_it_and_allowed() {
        let sent = Cell::new(0);
        let fails = |_: u32| {
            sent.set(sent.get() + 1);
            async { Err::<(), &str>("transient") }
        };
        let bounded = Attempts::at_most(3, Duration::from_millis(1));
        assert_eq!(
            bounded.run(|| true, |_| true, |_, _| {}, fails).await,
            Err("transient")
        );
        assert_eq!(sent.replace(0), 3);

        let refused = bounded.run(|| true, |_| false, |_, _| {}, fails).await;
        assert_eq!((refused, sent.replace(0)), (Err("transient"), 1));

        let live = Cell::new(4);
        let until_the_lease_ends = || {
            live.set(live.get() - 1);
            live.get() > 0
        };
        let forever = Attempts::while_live(Duration::from_millis(1));
        assert!(
            forever
                .run(until_the_lease_ends, |_| true, |_, _| {}, fails)
                .await
                .is_err()
        );
        assert_eq!(sent.replace(0), 4);

        let second = |number: u32| async move { if number == 2 { Ok(number) } else { Err("once") } };
        assert_eq!(forever.run(|| true, |_| true, |_, _| {}, second).await, Ok(2));
    }
}
