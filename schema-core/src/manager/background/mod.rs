//! Background migrations (`#[migration(background)]`): the task that
//! applies them after [`apply_all`](SchemaManager::apply_all) returned,
//! waiting until everything is recorded, and what this process knows is
//! recorded.
//!
//! The task is `apply_all` again with [`wait_for_background`] set, so it
//! runs under the same lock, lease, fencing and records as a start. It
//! keeps trying while another process holds the lock (that holder applies
//! the same migrations, or lets go and this task takes over), and after a
//! transient failure (a failover during a migration's body included, which
//! runs that body again), up to five in a row whatever their kind or code,
//! pausing longer after each, the count starting again once a run made
//! progress (a migration recorded, a backfill's checkpoint moved); a
//! migration that fails otherwise ends it, with the failure kept for
//! [`wait_applied`](SchemaManager::wait_applied) and
//! [`status`](SchemaManager::status). A task dropped with its runtime is
//! no longer counted as running, so the next `apply_all` starts another.
//!
//! [`wait_for_background`]: SchemaManager::wait_for_background

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::{Instrument, error, info, info_span, warn};

mod streak;

use self::streak::{Streak, worth_another};
use super::SchemaManager;
use crate::assess::progress::{BackgroundFailure, BackgroundTask};
use crate::assess::report;
use crate::engine::vet_stored;
use crate::stored::record::Stored;
use crate::support::error::Error;
use crate::support::retry;

/// How many transient failures in a row without progress (see
/// [`worth_another`] and [`Streak`]) the background task rides out; the
/// next one stops it.
const TRANSIENT_FAILURES: u32 = 5;

/// The pause after a transient failure, times how many in a row, jittered.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What the manager and its clones share about background migrations.
#[derive(Debug, Default)]
pub(crate) struct Background {
    shared: Mutex<Shared>,
    /// Wakes the waiters of `wait_applied` when the task stops, so that a
    /// waiter in the same process does not sleep out its interval.
    stopped: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Shared {
    /// The ids this process has seen recorded, or recorded itself.
    recorded: HashSet<String>,
    /// Whether the task is running.
    running: bool,
    /// Why the last task stopped before all was recorded.
    failure: Option<(String, Arc<Error>)>,
}

impl Background {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The state stays consistent at every step, so a panic elsewhere
        // while it was held leaves nothing half written.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the ids `stored` records.
    pub(crate) fn saw(&self, stored: &Stored) {
        let mut shared = self.lock();
        shared
            .recorded
            .extend(stored.records.iter().map(|record| record.id.clone()));
    }

    /// Notes ids recorded by this process.
    pub(crate) fn recorded<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        self.lock().recorded.extend(ids.into_iter().cloned());
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
        shared.failure = None;
        true
    }

    fn stop(&self, failure: Option<(String, Error)>) {
        {
            let mut shared = self.lock();
            shared.running = false;
            shared.failure = failure.map(|(id, error)| (id, Arc::new(error)));
        }
        self.stopped.notify_waiters();
    }

    /// The error [`SchemaManager::wait_applied`] returns for the last
    /// task's failure, if it failed.
    fn failure(&self) -> Option<Error> {
        let shared = self.lock();
        let (id, source) = shared.failure.as_ref()?;
        Some(Error::BackgroundFailed {
            id: id.clone(),
            source: Arc::clone(source),
        })
    }

    pub(crate) fn task(&self) -> BackgroundTask {
        let shared = self.lock();
        BackgroundTask {
            running: shared.running,
            failed: shared.failure.as_ref().map(|(id, error)| BackgroundFailure {
                id: id.clone(),
                kind: error.kind(),
                message: crate::support::error::chain(&**error),
            }),
        }
    }
}

impl SchemaManager {
    /// How often [`wait_applied`](SchemaManager::wait_applied) reads the
    /// versions collection: once a second, one command each time.
    pub const WAIT_INTERVAL: Duration = Duration::from_secs(1);

    /// Resolves once every migration of this manager's set is recorded, by
    /// this process or another, background migrations included.
    ///
    /// It reads the versions collection once per
    /// [`WAIT_INTERVAL`](SchemaManager::WAIT_INTERVAL), and at once when
    /// this process's background task stops, so it suits a deploy step or
    /// a test as well as a process that must not serve a feature before
    /// its background migration is done.
    ///
    /// # Errors
    ///
    /// - [`Error::NotApplied`] when `timeout` passes first, naming what is
    ///   still pending and what a holder of the lock runs;
    /// - [`Error::BackgroundFailed`] when this process's background task
    ///   stopped on a failure (a migration that failed is not recorded);
    /// - those of an invalid set, [`Error::Database`] and
    ///   [`Error::MalformedRecord`].
    pub async fn wait_applied(&self, timeout: Duration) -> Result<(), Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let started = Instant::now();
        loop {
            // Listening from before the read, so that a task stopping
            // between the read and the sleep still wakes this waiter.
            let stopped = self.background.stopped.notified();
            let mut stopped = std::pin::pin!(stopped);
            stopped.as_mut().enable();
            let stored = records.read_all().await?;
            vet_stored(&ordered, &stored, &records)?;
            self.background.saw(&stored);
            let (pending, _) = report::split(&ordered, &stored);
            let pending: Vec<String> = pending
                .iter()
                .map(|migration| migration.id().to_owned())
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            if let Some(failure) = self.background.failure() {
                return Err(failure);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                let running = self
                    .lock()
                    .status()
                    .await?
                    .filter(|lock| !lock.released && !lock.expired)
                    .and_then(|lock| lock.running);
                return Err(Error::NotApplied {
                    pending,
                    running,
                    waited,
                });
            }
            let interval = tokio::time::sleep(Self::WAIT_INTERVAL.min(timeout - waited));
            tokio::select! {
                () = interval => {}
                () = stopped => {}
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
            failure: None,
        };
        let task = self.clone().wait_for_background(true);
        let first = pending.first().cloned().unwrap_or_default();
        let span = info_span!("background_migrations", pending = ?pending);
        runtime.spawn(async move { task.apply_in_background(first, running).await }.instrument(span));
        Ok(())
    }

    /// The background task: `apply_all`, with everything pending, until it
    /// succeeds or fails for good. It returns with `running` dropped, which
    /// marks the task stopped, with the failure set in it if any.
    async fn apply_in_background(self, first: String, mut running: Running) {
        let mut streak = Streak::default();
        loop {
            let failure = match self.apply_all().await {
                Ok(report) => {
                    info!(applied = ?report.applied, "background migrations are recorded");
                    return;
                }
                // Another process holds the lock: it applies them, or lets
                // go and this task takes over.
                Err(Error::LockTimeout { .. }) => {
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
            let id = failure_id(&failure).unwrap_or(first);
            error!(error = %failure, migration.id = %id, "background migrations stopped");
            running.failure = Some((id, failure));
            return;
        }
    }
}

/// The background task's mark in the shared state. Dropping it marks the
/// task stopped, with `failure` when set: at the task's end, and also when
/// the task's runtime is dropped with the task still in it, so that no
/// later `apply_all` is refused a task because of one that no longer
/// exists.
struct Running {
    background: Arc<Background>,
    failure: Option<(String, Error)>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.background.stop(self.failure.take());
    }
}

/// The migration an error names, when it names one.
fn failure_id(error: &Error) -> Option<String> {
    match error {
        Error::MigrationFailed { id, .. }
        | Error::MigrationPanicked { id, .. }
        | Error::LockLost { id, .. }
        | Error::RecordFailed { id, .. } => Some(id.clone()),
        _ => None,
    }
}
