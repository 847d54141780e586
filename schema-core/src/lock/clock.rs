//! The holder's own clock of its lease.
//!
//! The server decides when a lease ends, but a holder that is paused, cut
//! off or starved cannot ask it. So the holder keeps its own, conservative
//! view: the lease ends `lease` after the *send* time of the last write
//! known to have landed (the acquisition, a renewal, a fence, a
//! checkpoint). The server stamped that write when it applied it, no
//! earlier than it was sent, so the server's lease ends no earlier than
//! this one. Past this point the holder behaves as if the lease were lost,
//! whether or not anyone took it.
//!
//! **Which clocks.** The monotonic clock does not count time a machine
//! spends suspended (a paused virtual machine, a laptop lid), so elapsed
//! time is also measured on the wall clock, and the lease ends when either
//! says so. A wall clock stepped forward ends a lease early, which is safe;
//! one stepped back is caught by the monotonic clock. Waiting for the end
//! wakes at least every [`CHECK_EVERY`] to look at the wall clock, since a
//! timer does not fire for the time a machine was suspended either.
//!
//! **Revival.** A write sent before the end whose landing is learnt only
//! after it (a slow reply, or a lost one found landed by reading the
//! document back) renews the lease from its send time; if that is still in
//! the future, the lease is this process's again, and
//! [`revived`](LeaseClock::revived) wakes the renewal that was waiting for
//! it. A lease the server said is another's is lost for good.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

/// The longest a wait for the lease's end sleeps before looking at the wall
/// clock again.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A moment on both clocks: when a write was sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    monotonic: Instant,
    wall: SystemTime,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        Stamp {
            monotonic: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// Whether `lease` has passed since this moment, by either clock.
    fn has_passed(&self, lease: Duration) -> bool {
        let monotonic = self.monotonic.elapsed() >= lease;
        // A wall clock set back since then says no time passed: the
        // monotonic clock decides.
        let wall = SystemTime::now()
            .duration_since(self.wall)
            .is_ok_and(|elapsed| elapsed >= lease);
        monotonic || wall
    }

    /// Whether this moment is later than `other`.
    fn is_after(&self, other: &Stamp) -> bool {
        self.monotonic > other.monotonic
    }
}

pub(crate) struct LeaseClock {
    lease: Duration,
    /// How much earlier than the server's clocks allow the holder stops:
    /// zero, except where the clock that judges expiry is not the one that
    /// stamps renewals (a sharded cluster).
    margin: Duration,
    state: Mutex<State>,
    /// Woken when the lease is renewed or lost.
    changed: Notify,
}

struct State {
    /// Send time of the last write known to have landed.
    renewed: Stamp,
    /// The server said this process no longer holds the lock.
    lost: bool,
}

impl LeaseClock {
    /// A lease renewed by a write sent at `sent`, that this holder counts
    /// as `margin` shorter than `lease`.
    pub(crate) fn new(lease: Duration, margin: Duration, sent: Stamp) -> LeaseClock {
        LeaseClock {
            lease,
            margin,
            state: Mutex::new(State {
                renewed: sent,
                lost: false,
            }),
            changed: Notify::new(),
        }
    }

    /// How long a lease lasts without renewal.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// How long this holder counts it.
    fn counted(&self) -> Duration {
        self.lease.saturating_sub(self.margin)
    }

    /// A write sent at `sent` landed and renewed the lease.
    pub(crate) fn renewed(&self, sent: Stamp) {
        let mut state = self.state();
        if !state.lost && sent.is_after(&state.renewed) {
            state.renewed = sent;
            drop(state);
            self.changed.notify_waiters();
        }
    }

    /// The server said the lock is no longer this process's.
    pub(crate) fn lose(&self) {
        self.state().lost = true;
        self.changed.notify_waiters();
    }

    /// Whether the server said the lock is another's, or gone.
    pub(crate) fn is_lost(&self) -> bool {
        self.state().lost
    }

    /// Whether the lease is still this process's by its own clocks.
    pub(crate) fn is_live(&self) -> bool {
        let state = self.state();
        !state.lost && !state.renewed.has_passed(self.counted())
    }

    /// How long the lease has left by the monotonic clock: zero once lost
    /// or ended, [`Duration::MAX`] for a lease too long to end.
    pub(crate) fn remaining(&self) -> Duration {
        if !self.is_live() {
            return Duration::ZERO;
        }
        self.deadline().map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        })
    }

    /// When, by the monotonic clock, the lease ends unless renewed; `None`
    /// for a lease too long to end within what an `Instant` can hold.
    fn deadline(&self) -> Option<Instant> {
        self.state().renewed.monotonic.checked_add(self.counted())
    }

    /// Waits until the lease is lost or its end passes; returns at once if
    /// it already has.
    pub(crate) async fn ended(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.is_live() {
                return;
            }
            let look_again = Instant::now() + CHECK_EVERY;
            let wake = self
                .deadline()
                .map_or(look_again, |deadline| deadline.min(look_again));
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {}
                () = &mut changed => {}
            }
        }
    }

    /// Waits until the lease is this process's again after it ended (see
    /// the module's docs), or is lost for good. Returns whether it is live.
    pub(crate) async fn revived(&self) -> bool {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_live() {
                return true;
            }
            if self.is_lost() {
                return false;
            }
            changed.await;
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

    fn at(monotonic: Instant) -> Stamp {
        Stamp {
            monotonic,
            wall: SystemTime::now(),
        }
    }

    #[test]
    fn the_lease_ends_a_lease_after_the_last_renewal_was_sent() {
        let start = Instant::now();
        let clock = LeaseClock::new(Duration::from_secs(30), Duration::ZERO, at(start));
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(30)));
        clock.renewed(at(start + Duration::from_secs(10)));
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(40)));
        // A late answer to an older write does not move it back.
        clock.renewed(at(start + Duration::from_secs(5)));
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(40)));
        assert!(clock.is_live());
    }

    #[test]
    fn a_margin_shortens_the_lease_as_the_holder_counts_it() {
        let start = Instant::now();
        let clock = LeaseClock::new(Duration::from_secs(30), Duration::from_secs(1), at(start));
        assert_eq!(clock.deadline(), Some(start + Duration::from_secs(29)));
    }

    #[test]
    fn a_lost_lease_stays_lost() {
        let clock = LeaseClock::new(Duration::from_secs(30), Duration::ZERO, Stamp::now());
        clock.lose();
        assert!(!clock.is_live());
        assert!(clock.is_lost());
        clock.renewed(Stamp::now());
        assert!(!clock.is_live());
    }

    #[test]
    fn a_lease_too_long_for_an_instant_never_ends_by_time() {
        let clock = LeaseClock::new(Duration::MAX, Duration::ZERO, Stamp::now());
        assert_eq!(clock.deadline(), None);
        assert!(clock.is_live());
    }

    #[test]
    fn time_passed_on_the_wall_clock_alone_ends_the_lease() {
        // As after a suspend: the monotonic clock counted nothing, the
        // wall clock a minute.
        let sent = Stamp {
            monotonic: Instant::now(),
            wall: SystemTime::now() - Duration::from_secs(60),
        };
        let clock = LeaseClock::new(Duration::from_secs(30), Duration::ZERO, sent);
        assert!(!clock.is_live());
        // A wall clock set back counts nothing; the monotonic clock decides.
        let sent = Stamp {
            monotonic: Instant::now(),
            wall: SystemTime::now() + Duration::from_secs(3_600),
        };
        let clock = LeaseClock::new(Duration::from_secs(30), Duration::ZERO, sent);
        assert!(clock.is_live());
    }

    #[tokio::test]
    async fn ended_returns_when_the_lease_runs_out_or_is_lost() {
        let clock = LeaseClock::new(Duration::from_millis(30), Duration::ZERO, Stamp::now());
        clock.ended().await;
        assert!(!clock.is_live());

        let clock = std::sync::Arc::new(LeaseClock::new(
            Duration::from_secs(3600),
            Duration::ZERO,
            Stamp::now(),
        ));
        let losing = clock.clone();
        tokio::spawn(async move { losing.lose() });
        tokio::time::timeout(Duration::from_secs(10), clock.ended())
            .await
            .expect("a lost lease ends at once");
    }

    #[tokio::test]
    async fn an_ended_lease_renewed_from_before_its_end_is_revived() {
        let lease = Duration::from_millis(100);
        let sent = Stamp::now();
        let clock = std::sync::Arc::new(LeaseClock::new(lease, Duration::ZERO, sent));
        clock.ended().await;
        tokio::time::sleep(2 * lease).await;
        // A write sent just before the end is found landed, two leases later.
        let late = Stamp {
            monotonic: sent.monotonic + lease - Duration::from_millis(1),
            wall: sent.wall + lease - Duration::from_millis(1),
        };
        let reviving = clock.clone();
        let waiting = tokio::spawn(async move { reviving.revived().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Found landed: still in the past, so nothing is revived...
        clock.renewed(late);
        assert!(!clock.is_live());
        // ... until a write sent now is found landed.
        clock.renewed(Stamp::now());
        let revived = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .expect("not panicked");
        assert!(revived);
        clock.lose();
        assert!(!clock.revived().await);
    }
}
