//! How far a backfill is while it runs ([`Progress`], logged and handed
//! to an observer), and the pace that `max_per_second` keeps. How far it
//! is as its checkpoint shows it to operators is
//! [`BackfillStatus`](crate::data::BackfillStatus).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

/// How far a running backfill is, after one of its batches.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// The migration running it, when it runs under
    /// [`SchemaManager`](crate::SchemaManager).
    pub migration: Option<String>,
    /// Which backfill of the migration: its collection (or the name given
    /// with [`Backfill::name`](crate::data::Backfill::name)), with `#2`,
    /// `#3`... for later ones on the same key, as in
    /// [`BackfillStatus`](crate::data::BackfillStatus).
    pub key: String,
    /// The collection it walks.
    pub collection: String,
    /// Documents done, by every process that worked on it.
    pub done: u64,
    /// Documents expected when it started, if known.
    pub total: Option<u64>,
    /// Documents done per second by this process.
    pub rate: f64,
    /// The time left at that rate, if the total is known.
    pub eta: Option<Duration>,
    /// Whether the walk has ended.
    pub finished: bool,
}

impl Progress {
    /// `done` as a share of `total`, from 0 to 1, if the total is known.
    pub fn fraction(&self) -> Option<f64> {
        self.total
            .filter(|total| *total > 0)
            .map(|total| (self.done as f64 / total as f64).min(1.0))
    }
}

/// What [`SchemaManager::on_progress`](crate::SchemaManager::on_progress)
/// is given: called at the start, after every batch and at the end of
/// every backfill the manager's migrations run.
#[derive(Clone)]
pub(crate) struct Observer(pub(crate) Arc<dyn Fn(&Progress) + Send + Sync>);

impl fmt::Debug for Observer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Observer(..)")
    }
}

/// Tells how a backfill is going: to the observers at its start, after
/// every batch and at its end, to the log at most once per `every`.
pub(crate) struct Reporter {
    started: Instant,
    /// Documents done when this process started on it.
    resumed_at: u64,
    every: Duration,
    last_logged: Instant,
    observers: Vec<Observer>,
}

impl Reporter {
    pub(crate) fn new(resumed_at: u64, every: Duration, observers: Vec<Observer>) -> Reporter {
        let now = Instant::now();
        Reporter {
            started: now,
            resumed_at,
            every,
            last_logged: now,
            observers,
        }
    }

    /// At the start, after a batch, or at the end (`finished`).
    pub(crate) fn tell(&mut self, mut progress: Progress) {
        let (rate, eta) = rate_and_eta(
            progress.done.saturating_sub(self.resumed_at),
            self.started.elapsed(),
            progress.done,
            progress.total,
        );
        progress.rate = rate;
        progress.eta = eta;
        for observer in &self.observers {
            (observer.0)(&progress);
        }
        if progress.finished || self.last_logged.elapsed() >= self.every {
            self.last_logged = Instant::now();
            info!(
                migration.id = progress.migration.as_deref().unwrap_or(""),
                collection = %progress.collection,
                done = progress.done,
                total = progress.total,
                rate = format_args!("{rate:.0}/s"),
                eta_s = eta.map(|eta| eta.as_secs()),
                finished = progress.finished,
                "backfill progress"
            );
        }
    }
}

/// Documents per second over this run, and the time left at that rate.
pub(crate) fn rate_and_eta(
    done_here: u64,
    elapsed: Duration,
    done: u64,
    total: Option<u64>,
) -> (f64, Option<Duration>) {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 || done_here == 0 {
        return (0.0, None);
    }
    let rate = done_here as f64 / seconds;
    // Beyond what a `Duration` holds, the time left is unknown.
    let eta =
        total.and_then(|total| Duration::try_from_secs_f64(total.saturating_sub(done) as f64 / rate).ok());
    (rate, eta)
}

/// Keeps a walk at or below `per_second` documents a second, on average
/// since it started.
pub(crate) struct Pace {
    started: Instant,
    per_second: Option<u32>,
}

impl Pace {
    pub(crate) fn new(per_second: Option<u32>) -> Pace {
        Pace {
            started: Instant::now(),
            per_second,
        }
    }

    /// When the next batch may start, `done` documents into this run.
    pub(crate) fn next_start(&self, done: u64) -> Option<Instant> {
        let per_second = self.per_second.filter(|n| *n > 0)?;
        Some(self.started + Duration::from_secs_f64(done as f64 / f64::from(per_second)))
    }

    /// Waits until the next batch may start.
    pub(crate) async fn wait(&self, done: u64) {
        if let Some(at) = self.next_start(done) {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_time_left_come_from_this_processs_own_work() {
        let (rate, eta) = rate_and_eta(2_000, Duration::from_secs(2), 5_000, Some(10_000));
        assert_eq!(rate, 1_000.0);
        assert_eq!(eta, Some(Duration::from_secs(5)));
        assert_eq!(
            rate_and_eta(0, Duration::from_secs(2), 5_000, Some(10_000)),
            (0.0, None)
        );
        // Past the expected total (documents inserted meanwhile), none left.
        let (_, eta) = rate_and_eta(100, Duration::from_secs(1), 12_000, Some(10_000));
        assert_eq!(eta, Some(Duration::ZERO));
    }

    #[test]
    fn the_pace_spreads_the_documents_over_seconds() {
        let pace = Pace::new(Some(500));
        assert_eq!(pace.next_start(0), Some(pace.started));
        assert_eq!(
            pace.next_start(1_000),
            Some(pace.started + Duration::from_secs(2))
        );
        assert_eq!(Pace::new(None).next_start(1_000_000), None);
    }

    #[test]
    fn the_fraction_is_bounded() {
        let progress = Progress {
            migration: None,
            key: "events".into(),
            collection: "events".into(),
            done: 30,
            total: Some(20),
            rate: 0.0,
            eta: None,
            finished: false,
        };
        assert_eq!(progress.fraction(), Some(1.0));
        let unknown = Progress {
            total: None,
            ..progress
        };
        assert_eq!(unknown.fraction(), None);
    }
}
