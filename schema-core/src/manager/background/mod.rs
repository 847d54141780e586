//! Background migrations (`#[migration(background)]`): the task that
//! applies them after [`apply_all`](SchemaManager::apply_all) returned,
//! the last failure every process reads, waiting until everything is
//! recorded, and what this process knows is recorded.
//!
//! The task is `apply_all` again with the background migrations, under the
//! background lock ([`Lane::Background`]), so it runs under the same lease,
//! fencing and records as a start, and never keeps a start waiting. It
//! keeps trying while another process holds that lock (that holder applies
//! the same migrations, or lets go and this task takes over), and after a
//! transient failure (a failover during a migration's body included, which
//! runs that body again), up to five in a row whatever their kind or code,
//! pausing longer after each, the count starting again once a run made
//! progress (a migration recorded, a backfill's checkpoint moved).
//!
//! A migration that fails otherwise is noted as the last background
//! failure ([`failures`](crate::failures)), where every process's
//! [`wait_applied`](SchemaManager::wait_applied) and
//! [`status`](SchemaManager::status) read it, and the task pauses
//! ([`background_retry_pause`](SchemaManager::background_retry_pause), a
//! minute by default, after the first failure in a row, doubling with
//! each, at most an hour), then tries again. The pause is heeded under the background lock
//! by every process's task, so a fleet of restarting processes tries a
//! failing migration once per pause, not once per start. A task dropped
//! with its runtime is no longer counted as running, so the next
//! `apply_all` starts another.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing::{Instrument, error, info, info_span, warn};

mod failure;
mod streak;

use self::failure::failure_id;
use self::streak::{Streak, worth_another};
use super::SchemaManager;
use crate::assess::progress::{BackgroundFailure, BackgroundTask, retry_pause};
use crate::assess::report::{self, ApplyReport};
use crate::engine::vet_stored;
use crate::stored::lock::Lane;
use crate::stored::record::Stored;
use crate::support::error::Error;
use crate::support::retry;

/// How many transient failures in a row without progress (see
/// [`worth_another`] and [`Streak`]) the background task rides out; the
/// next one is noted as a failure.
const TRANSIENT_FAILURES: u32 = 5;

/// The pause after a transient failure, times how many in a row, jittered.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Whether a run of `apply_all` heeds the last background failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heed {
    /// `apply_all` as called: an operator's `apply` runs a failing
    /// migration again at once.
    Nothing,
    /// The background task: background migrations too, and none while the
    /// last failure of one of them says to pause.
    LastFailure,
}

/// What a run of `apply_all` did.
pub(super) enum Run {
    Applied(ApplyReport),
    /// Nothing, under the background lock: the last failure of a pending
    /// background migration says to leave it alone this much longer.
    Paused(BackgroundFailure, Duration),
    /// A background migration failed, and the task does not ride it out:
    /// the error, and the failure as noted before the lock was let go.
    Failed(Error, BackgroundFailure),
}

/// What the manager and its clones share about background migrations.
#[derive(Debug, Default)]
pub(crate) struct Background {
    shared: Mutex<Shared>,
    /// Wakes the waiters of `wait_applied` when the task stops or fails,
    /// so that a waiter in the same process does not sleep out its
    /// interval.
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Shared {
    /// The ids this process has seen recorded, or recorded itself.
    recorded: HashSet<String>,
    /// Whether the task is running.
    running: bool,
    /// The last failure the task met, until its migration is recorded.
    failure: Option<BackgroundFailure>,
}

impl Background {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The state stays consistent at every step, so a panic elsewhere
        // while it was held leaves nothing half written.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the ids `stored` records.
    pub(crate) fn saw(&self, stored: &Stored) {
        self.recorded(stored.records.iter().map(|record| &record.id));
    }

    /// Notes ids recorded by this process (or seen recorded); a failure
    /// of one of them is over.
    pub(crate) fn recorded<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut shared = self.lock();
        shared.recorded.extend(ids.into_iter().cloned());
        if let Some(failure) = &shared.failure
            && shared.recorded.contains(&failure.id)
        {
            shared.failure = None;
        }
    }

    pub(crate) fn is_recorded(&self, id: &str) -> bool {
        self.lock().recorded.contains(id)
    }

    /// Marks the task as started; false when one is running already.
    fn start(&self) -> bool {
        let mut shared = self.lock();
        if shared.running {
            return false;
        }
        shared.running = true;
        true
    }

    fn stop(&self) {
        self.lock().running = false;
        self.changed.notify_waiters();
    }

    fn failed(&self, failure: BackgroundFailure) {
        self.lock().failure = Some(failure);
        self.changed.notify_waiters();
    }

    /// The last failure the task met, while its migration is not known to
    /// be recorded.
    fn failure(&self) -> Option<BackgroundFailure> {
        self.lock().failure.clone()
    }

    pub(crate) fn task(&self) -> BackgroundTask {
        let shared = self.lock();
        BackgroundTask {
            running: shared.running,
            failed: shared.failure.clone(),
        }
    }
}

impl SchemaManager {
    /// How often [`wait_applied`](SchemaManager::wait_applied) reads the
    /// versions collection: once a second, one command each time (two
    /// while a background migration is pending: the last failure too; and
    /// while one is noted, the background lock and the records again).
    pub const WAIT_INTERVAL: Duration = Duration::from_secs(1);

    /// Resolves once every migration of this manager's set is recorded, by
    /// this process or another, background migrations included.
    ///
    /// It reads the versions collection once per
    /// [`WAIT_INTERVAL`](SchemaManager::WAIT_INTERVAL), and while a
    /// background migration is pending, the last background failure too;
    /// it looks at once when this process's background task stops or
    /// fails. So it suits a deploy step or a test as well as a process that
    /// must not serve a feature before its background migration is done.
    ///
    /// # Errors
    ///
    /// - [`Error::NotApplied`] when `timeout` passes first, naming what is
    ///   still pending and what a holder of a lock runs;
    /// - [`Error::BackgroundFailed`] when a pending background migration
    ///   failed, in any process (a migration that failed is not recorded;
    ///   background tasks try it again after a pause);
    /// - those of an invalid set, [`Error::Database`] and
    ///   [`Error::MalformedRecord`].
    pub async fn wait_applied(&self, timeout: Duration) -> Result<(), Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let started = std::time::Instant::now();
        loop {
            // Listening from before the read, so that a task stopping
            // between the read and the sleep still wakes this waiter.
            let changed = self.background.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let stored = records.read_all().await?;
            vet_stored(&ordered, &stored, &records)?;
            self.background.saw(&stored);
            let (pending, _) = report::split(&ordered, &stored);
            if pending.is_empty() {
                return Ok(());
            }
            if let Some(failure) = self.last_failure(&pending).await?
                && !self.retried(&failure).await?
            {
                // A run that ended between the reads recorded it before it
                // let the lock go: look again.
                let stored = records.read_all().await?;
                let (still, _) = report::split(&ordered, &stored);
                if still.iter().any(|migration| migration.id() == failure.id) {
                    return Err(failure.to_error());
                }
                continue;
            }
            let waited = started.elapsed();
            if waited >= timeout {
                let locks = self.lock_status().await?;
                let running = Lane::ALL
                    .into_iter()
                    .filter_map(|lane| locks.of(lane))
                    .find(|lock| !lock.released && !lock.expired && lock.running.is_some())
                    .and_then(|lock| lock.running.clone());
                return Err(Error::NotApplied {
                    pending: pending
                        .iter()
                        .map(|migration| migration.id().to_owned())
                        .collect(),
                    running,
                    waited,
                });
            }
            let interval = tokio::time::sleep(Self::WAIT_INTERVAL.min(timeout - waited));
            tokio::select! {
                () = interval => {}
                () = changed => {}
            }
        }
    }

    /// Whether this process knows `id` to be recorded: it applied it, or
    /// saw its record in the versions collection (in `apply_all`,
    /// `wait_applied`, `status` or the background task). Sends nothing,
    /// so a health endpoint can ask on every probe; clones of a manager
    /// share what they know.
    ///
    /// ```no_run
    /// # async fn serve(manager: schema_core::SchemaManager) {
    /// // A readiness check for a feature that needs the index a background
    /// // migration builds (axum: `.route("/ready/search", get(ready))`).
    /// let ready = move || {
    ///     let manager = manager.clone();
    ///     async move {
    ///         if manager.is_applied("0010_search_index") { 200 } else { 503 }
    ///     }
    /// };
    /// # let _ = ready;
    /// # }
    /// ```
    pub fn is_applied(&self, id: &str) -> bool {
        self.background.is_recorded(id)
    }

    /// Starts the task that applies the pending background migrations,
    /// unless one runs already.
    pub(super) fn start_background(&self, pending: &[String]) -> Result<(), Error> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Error::Configuration {
                reason: "background migrations are applied by a task of the tokio runtime that \
                         calls `apply_all`, and none is running; call it from within the runtime"
                    .to_owned(),
            });
        };
        if !self.background.start() {
            return Ok(());
        }
        // From here the task owns the mark: whether it ends or its runtime
        // drops it, dropping `running` clears it.
        let running = Running {
            background: Arc::clone(&self.background),
        };
        let task = self.clone();
        let span = info_span!("background_migrations", pending = ?pending);
        runtime.spawn(async move { task.apply_in_background(running).await }.instrument(span));
        Ok(())
    }

    /// The background task: `apply_all`, with the background migrations,
    /// until they are recorded. It returns with `running` dropped, which
    /// marks the task stopped.
    async fn apply_in_background(self, _running: Running) {
        let mut streak = Streak::default();
        // Failures in a row that are not a migration's (a malformed lock,
        // a refused read): paused for as the migrations' are.
        let mut others = 0_u32;
        loop {
            let failure = match self.apply(Heed::LastFailure).await {
                Ok(Run::Applied(report)) => {
                    info!(applied = ?report.applied, "background migrations are recorded");
                    return;
                }
                Ok(Run::Paused(failure, left)) => {
                    (streak, others) = (Streak::default(), 0);
                    warn!(
                        migration.id = %failure.id,
                        kind = %failure.kind,
                        in_a_row = failure.in_a_row,
                        by = %failure.by,
                        pause_s = left.as_secs(),
                        "background migration failed {} time(s) in a row; trying it again after \
                         the pause",
                        failure.in_a_row,
                    );
                    self.background.failed(failure);
                    tokio::time::sleep(left).await;
                    continue;
                }
                Ok(Run::Failed(error, noted)) => {
                    error!(error = %error, migration.id = %noted.id, in_a_row = noted.in_a_row, "background migration failed");
                    (streak, others) = (Streak::default(), 0);
                    let pause = retry_pause(self.background_retry_pause, noted.in_a_row);
                    self.background.failed(noted);
                    tokio::time::sleep(pause).await;
                    continue;
                }
                // Another process holds the lock: it applies them, or lets
                // go and this task takes over.
                Err(Error::LockTimeout { .. } | Error::LockHeld { .. }) => {
                    retry::pause(AFTER_FAILURE, None).await;
                    continue;
                }
                Err(failure) => failure,
            };
            if worth_another(&failure) {
                let in_a_row = streak.note(self.standing().await);
                if in_a_row <= TRANSIENT_FAILURES {
                    warn!(error = %failure, in_a_row, "background migrations: trying again");
                    retry::pause(AFTER_FAILURE * in_a_row, None).await;
                    continue;
                }
            }
            streak = Streak::default();
            // Not a migration's failure (a newer release's records that
            // the policies refuse, a refused read, a malformed lock): this
            // task pauses, nobody else is told.
            let Some(id) = failure_id(&failure) else {
                others = others.saturating_add(1);
                let pause = retry_pause(self.background_retry_pause, others);
                error!(error = %failure, in_a_row = others, pause_s = pause.as_secs(), "background migrations failed; trying again after the pause");
                tokio::time::sleep(pause).await;
                continue;
            };
            // Transient failures past the count: noted after the lock was
            // let go (another task may have run it once more meanwhile).
            error!(error = %failure, migration.id = %id, "background migration failed");
            let noted = self.note_failure(&id, &failure).await;
            let pause = retry_pause(self.background_retry_pause, noted.in_a_row);
            self.background.failed(noted);
            tokio::time::sleep(pause).await;
        }
    }
}

/// The background task's mark in the shared state. Dropping it marks the
/// task stopped: at the task's end, and also when the task's runtime is
/// dropped with the task still in it, so that no later `apply_all` is
/// refused a task because of one that no longer exists.
struct Running {
    background: Arc<Background>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.background.stop();
    }
}
