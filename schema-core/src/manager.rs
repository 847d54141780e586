//! Ties the pieces together: plan the registered migrations, read what the
//! versions collection holds, run what is missing and record it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mongodb::Database;
use tracing::{Instrument, info, info_span, warn};

use crate::error::Error;
use crate::lock::{
    DEFAULT_LOCK_COLLECTION, DEFAULT_LOCK_LEASE, DEFAULT_LOCK_WAIT_TIMEOUT, Interrupted, Lock, MIN_LOCK_LEASE,
};
use crate::owner::Owner;
use crate::plan;
use crate::records::{Records, VersionRecord};
use crate::registry::{self, Migration};
use crate::unwind::CatchUnwind;

/// The default name of the collection that records applied migrations.
pub const DEFAULT_VERSIONS_COLLECTION: &str = "schema_versions";

/// Applies the migrations registered with `#[migration]` to one database.
///
/// Every process of an application can call [`apply_all`] at start, all at
/// once: a lease lock lets exactly one of them apply what is pending while
/// the others wait, and a process that dies holding it blocks the others
/// only until its lease ends.
///
/// ```no_run
/// # async fn start(db: mongodb::Database) -> Result<(), schema_core::Error> {
/// use std::time::Duration;
///
/// let report = schema_core::SchemaManager::new(db)
///     .lock_lease(Duration::from_secs(20))
///     .lock_wait_timeout(Duration::from_secs(300))
///     .apply_all()
///     .await?;
/// println!("applied {:?}", report.applied);
/// # Ok(())
/// # }
/// ```
///
/// [`apply_all`]: SchemaManager::apply_all
#[derive(Debug, Clone)]
pub struct SchemaManager {
    db: Database,
    versions_collection: String,
    lock_collection: String,
    lock_lease: Duration,
    lock_wait_timeout: Duration,
}

/// What one [`SchemaManager::apply_all`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Ids applied by this call, in the order they ran.
    pub applied: Vec<String>,
    /// Ids of registered migrations that were already recorded, in plan
    /// order.
    pub already_applied: Vec<String>,
    /// How long each migration took, by id: measured for those this call
    /// applied, as recorded for the others (absent for records written
    /// without a duration).
    pub durations: HashMap<String, Duration>,
    /// Set when this call took the lock over from a process whose lease had
    /// ended, usually because it died while applying migrations.
    pub interrupted: Option<Interrupted>,
}

impl SchemaManager {
    /// A manager for `db`, recording applied migrations in
    /// `schema_versions` and locking with `schema_lock`.
    pub fn new(db: Database) -> SchemaManager {
        SchemaManager {
            db,
            versions_collection: DEFAULT_VERSIONS_COLLECTION.to_owned(),
            lock_collection: DEFAULT_LOCK_COLLECTION.to_owned(),
            lock_lease: DEFAULT_LOCK_LEASE,
            lock_wait_timeout: DEFAULT_LOCK_WAIT_TIMEOUT,
        }
    }

    /// Records applied migrations in the collection `name` instead of
    /// `schema_versions`.
    pub fn versions_collection(mut self, name: impl Into<String>) -> SchemaManager {
        self.versions_collection = name.into();
        self
    }

    /// Keeps the lock in the collection `name` instead of `schema_lock`.
    pub fn lock_collection(mut self, name: impl Into<String>) -> SchemaManager {
        self.lock_collection = name.into();
        self
    }

    /// How long the lock stays held without renewal (30 seconds by
    /// default, at least [`MIN_LOCK_LEASE`]). The holder renews it three
    /// times per lease while migrations run; a holder that dies blocks the
    /// others this long.
    pub fn lock_lease(mut self, lease: Duration) -> SchemaManager {
        self.lock_lease = lease.max(MIN_LOCK_LEASE);
        self
    }

    /// How long [`apply_all`](SchemaManager::apply_all) waits for a lock
    /// that another process holds and renews (10 minutes by default).
    pub fn lock_wait_timeout(mut self, timeout: Duration) -> SchemaManager {
        self.lock_wait_timeout = timeout;
        self
    }

    /// The database this manager applies migrations to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Applies every registered migration that the versions collection does
    /// not record yet, in dependency order, recording each one after it
    /// succeeds.
    ///
    /// The registered set is checked before anything is sent to the server.
    /// When nothing is pending, this costs one read of the versions
    /// collection and takes no lock. Otherwise it takes the lock (waiting
    /// for another process that holds it), reads the versions collection
    /// again, applies what is still missing and releases the lock, also when
    /// a migration fails or panics. It returns once every migration this
    /// binary knows is recorded, by this process or another.
    ///
    /// The tokio runtime must have its time driver enabled, as
    /// `#[tokio::main]` does. If the returned future is dropped half way,
    /// the lock is released when its lease ends.
    ///
    /// # Errors
    ///
    /// - [`Error::DuplicateId`], [`Error::UnknownDependency`] or
    ///   [`Error::Cycle`] when the registered set is invalid; the database
    ///   is not touched;
    /// - [`Error::Database`] when the server cannot be reached or read, and
    ///   [`Error::MalformedRecord`] when a stored record has another shape;
    ///   nothing is run;
    /// - [`Error::LockTimeout`] when another process held the lock longer
    ///   than the wait timeout;
    /// - [`Error::MigrationFailed`] or [`Error::MigrationPanicked`] when a
    ///   migration fails: it is not recorded, later ones do not run, and
    ///   earlier ones of the same call stay recorded;
    /// - [`Error::LockLost`] when this process's lease ended and another
    ///   process took the lock over while a migration ran;
    /// - [`Error::RecordFailed`] when a migration ran but its record could
    ///   not be written.
    pub async fn apply_all(&self) -> Result<ApplyReport, Error> {
        let declared = registry::registered();
        let ordered = plan::order(&declared)?;
        let records = Records::new(&self.db, &self.versions_collection);
        let (pending, report) = split(&ordered, &records.read_all().await?);
        if pending.is_empty() {
            return Ok(report);
        }

        let owner = Owner::new();
        let lock = Lock::new(
            &self.db,
            &self.lock_collection,
            &self.versions_collection,
            owner.clone(),
            self.lock_lease,
        );
        let interrupted = lock.acquire(self.lock_wait_timeout).await?;
        let outcome = self.apply_locked(&ordered, &records, &lock, &owner).await;
        if let Err(error) = lock.release().await {
            warn!(%error, "could not release the schema lock; it is free again when its lease ends");
        }
        let mut report = outcome?;
        report.interrupted = interrupted;
        Ok(report)
    }

    /// Under the lock: reads the records again, since another process may
    /// have applied migrations meanwhile, and applies what is still missing.
    async fn apply_locked(
        &self,
        ordered: &[&'static Migration],
        records: &Records,
        lock: &Lock,
        owner: &Owner,
    ) -> Result<ApplyReport, Error> {
        let (pending, mut report) = split(ordered, &records.read_all().await?);
        let applied_by = owner.process();
        for migration in pending {
            let lost = || Error::LockLost {
                id: migration.id().to_owned(),
            };
            if !lock.hold(Some(migration.id())).await? {
                return Err(lost());
            }
            let duration = self.run_holding(migration, lock).await?;
            // Never record under a lease this process no longer holds.
            if !lock.hold(Some(migration.id())).await? {
                return Err(lost());
            }
            records
                .insert(migration.id(), migration.description(), duration, &applied_by)
                .await?;
            info!(
                migration.id = migration.id(),
                duration_ms = duration.as_millis() as u64,
                "migration applied"
            );
            report.applied.push(migration.id().to_owned());
            report.durations.insert(migration.id().to_owned(), duration);
        }
        Ok(report)
    }

    /// Runs `migration` while renewing the lease in the same task. Returns
    /// how long the migration took.
    async fn run_holding(&self, migration: &Migration, lock: &Lock) -> Result<Duration, Error> {
        let span = info_span!("migration", migration.id = migration.id());
        async {
            info!(description = migration.description(), "applying migration");
            let started = Instant::now();
            let run = CatchUnwind(migration.run(&self.db));
            tokio::pin!(run);
            let renew = async {
                loop {
                    tokio::time::sleep(lock.renew_every()).await;
                    match lock.hold(Some(migration.id())).await {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(error) => warn!(%error, "could not renew the schema lock; trying again"),
                    }
                }
            };
            let (outcome, lost) = tokio::select! {
                outcome = &mut run => (outcome, false),
                () = renew => {
                    warn!("lost the schema lock; letting the migration finish, then stopping");
                    (run.await, true)
                }
            };
            let id = migration.id().to_owned();
            match outcome {
                Ok(Ok(())) if lost => Err(Error::LockLost { id }),
                Ok(Ok(())) => Ok(started.elapsed()),
                Ok(Err(source)) => {
                    tracing::error!(error = %source, "migration failed");
                    Err(Error::MigrationFailed { id, source })
                }
                Err(message) => {
                    tracing::error!(panic = %message, "migration panicked");
                    Err(Error::MigrationPanicked { id, message })
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// Splits `ordered` into the migrations `stored` lacks, in order, and a
/// report of those it records.
fn split<'m>(ordered: &[&'m Migration], stored: &[VersionRecord]) -> (Vec<&'m Migration>, ApplyReport) {
    let recorded: HashMap<&str, &VersionRecord> =
        stored.iter().map(|record| (record.id.as_str(), record)).collect();
    let mut report = ApplyReport::default();
    let mut pending = Vec::new();
    for migration in ordered {
        let Some(record) = recorded.get(migration.id()) else {
            pending.push(*migration);
            continue;
        };
        report.already_applied.push(migration.id().to_owned());
        if let Some(ms) = record.duration_ms.and_then(|ms| u64::try_from(ms).ok()) {
            report
                .durations
                .insert(migration.id().to_owned(), Duration::from_millis(ms));
        }
    }
    (pending, report)
}
