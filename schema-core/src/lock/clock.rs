//! The holder's own clock of its lease.
//!
//! The server decides when a lease ends, but a holder that is paused, cut
//! off or starved cannot ask it. So the holder keeps its own, conservative
//! view on its monotonic clock: the lease ends `lease` after the *send*
//! time of the last write that renewed it (the acquisition, a renewal or a
//! fence). The server stamped that write later than it was sent, so the
//! server's lease ends later than this one. Past this point the holder
//! behaves as if the lease were lost, whether or not anyone took it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

pub(crate) struct LeaseClock {
    lease: Duration,
    state: Mutex<State>,
    /// Woken when the lease is known to be lost before its time.
    lost: Notify,
}

struct State {
    /// Send time of the last write known to have renewed the lease.
    renewed: Instant,
    /// The server said this process no longer holds the lock.
    lost: bool,
}

impl LeaseClock {
    /// A lease renewed by a write sent at `sent`.
    pub(crate) fn new(lease: Duration, sent: Instant) -> LeaseClock {
        LeaseClock {
            lease,
            state: Mutex::new(State {
                renewed: sent,
                lost: false,
            }),
            lost: Notify::new(),
        }
    }

    /// How long a lease lasts without renewal.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// A write sent at `sent` renewed the lease.
    pub(crate) fn renewed(&self, sent: Instant) {
        let mut state = self.state();
        if !state.lost && sent > state.renewed {
            state.renewed = sent;
        }
    }

    /// The server said the lock is no longer this process's.
    pub(crate) fn lose(&self) {
        self.state().lost = true;
        self.lost.notify_one();
    }

    /// When the lease ends by this clock; in the past once it is lost.
    pub(crate) fn deadline(&self) -> Instant {
        let state = self.state();
        if state.lost {
            return state.renewed;
        }
        state.renewed + self.lease
    }

    /// Whether the lease is still this process's by its own clock.
    pub(crate) fn is_live(&self) -> bool {
        Instant::now() < self.deadline()
    }

    /// Waits until the lease is lost or its end passes; returns at once if
    /// it already has.
    pub(crate) async fn ended(&self) {
        loop {
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                () = self.lost.notified() => {}
            }
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields, updated whole: a thread that
        // panicked while holding the lock cannot have left it half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_ends_a_lease_after_the_last_renewal_was_sent() {
        let start = Instant::now();
        let clock = LeaseClock::new(Duration::from_secs(30), start);
        assert_eq!(clock.deadline(), start + Duration::from_secs(30));
        clock.renewed(start + Duration::from_secs(10));
        assert_eq!(clock.deadline(), start + Duration::from_secs(40));
        // A late answer to an older renewal does not move it back.
        clock.renewed(start + Duration::from_secs(5));
        assert_eq!(clock.deadline(), start + Duration::from_secs(40));
        assert!(clock.is_live());
    }

    #[test]
    fn a_lost_lease_stays_lost() {
        let start = Instant::now();
        let clock = LeaseClock::new(Duration::from_secs(30), start);
        clock.lose();
        assert!(!clock.is_live());
        clock.renewed(Instant::now());
        assert!(!clock.is_live());
    }

    #[tokio::test]
    async fn ended_returns_when_the_lease_runs_out_or_is_lost() {
        let clock = LeaseClock::new(Duration::from_millis(30), Instant::now());
        clock.ended().await;
        assert!(!clock.is_live());

        let clock = std::sync::Arc::new(LeaseClock::new(Duration::from_secs(3600), Instant::now()));
        let losing = clock.clone();
        tokio::spawn(async move { losing.lose() });
        tokio::time::timeout(Duration::from_secs(10), clock.ended())
            .await
            .expect("a lost lease ends at once");
    }
}
