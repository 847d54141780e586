//! Ties the pieces together: plan the registered migrations, read what the
//! versions collection holds, run what is missing and record it.

use std::collections::{HashMap, HashSet};
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
use crate::status::{self, State, Status};
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
    strict: bool,
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
    /// Applied migrations whose bodies were edited since, in plan order
    /// (each also logged as a warning).
    pub drifted: Vec<String>,
    /// Recorded ids that no registered migration has (each also logged as
    /// a warning).
    pub unknown: Vec<String>,
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
            strict: false,
        }
    }

    /// In strict mode, drifted migrations and unknown records are errors
    /// raised before anything runs; otherwise they are warnings (and listed
    /// in the [`ApplyReport`]).
    pub fn strict(mut self, strict: bool) -> SchemaManager {
        self.strict = strict;
        self
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
        let ordered = self.ordered()?;
        let records = self.records();
        let (pending, report) = Self::split(&ordered, &records.read_all().await?);
        self.vet(&report)?;
        if pending.is_empty() {
            return Ok(report);
        }

        let owner = Owner::new();
        let lock = self.lock(&owner);
        let interrupted = lock.acquire(self.lock_wait_timeout).await?;
        let outcome = self.apply_locked(&ordered, &records, &lock, &owner).await;
        release(&lock).await;
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
        let (pending, mut report) = Self::split(ordered, &records.read_all().await?);
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
            records.insert(migration, duration, &applied_by).await?;
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

impl SchemaManager {
    /// Every known migration in apply order with its state, and the records
    /// no registered migration has. Reads the versions collection once;
    /// writes nothing.
    ///
    /// # Errors
    ///
    /// Those of an invalid registered set ([`Error::DuplicateId`],
    /// [`Error::UnknownDependency`], [`Error::Cycle`]), [`Error::Database`]
    /// and [`Error::MalformedRecord`].
    pub async fn status(&self) -> Result<Status, Error> {
        let ordered = self.ordered()?;
        Ok(status::status(&ordered, &self.records().read_all().await?))
    }

    /// What [`apply_all`](SchemaManager::apply_all) would run now, in order,
    /// without running it. Writes nothing.
    ///
    /// # Errors
    ///
    /// As [`status`](SchemaManager::status).
    pub async fn plan(&self) -> Result<Vec<&'static Migration>, Error> {
        let ordered = self.ordered()?;
        Ok(Self::split(&ordered, &self.records().read_all().await?).0)
    }

    /// Removes the record of migration `id`, so the next
    /// [`apply_all`](SchemaManager::apply_all) runs it again. Returns
    /// whether there was a record. Takes the lock for the removal, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMigration`] when no registered migration has `id`,
    /// [`Error::LockHeld`] while another process holds the lock, and
    /// [`Error::Database`].
    pub async fn forget(&self, id: &str) -> Result<bool, Error> {
        let ordered = self.ordered()?;
        let migration = find(&ordered, id)?;
        let owner = Owner::new();
        let lock = self.lock(&owner);
        lock.acquire(Duration::ZERO).await.map_err(held)?;
        let removed = self.records().delete(migration.id()).await;
        release(&lock).await;
        let removed = removed?;
        info!(
            migration.id = id,
            removed, "forgot migration; it runs again on the next apply"
        );
        Ok(removed)
    }

    /// Records migration `id` and every migration it depends on as applied
    /// without running them: a baseline, for a database whose indexes
    /// already exist. A drifted migration among them gets its current
    /// checksum recorded, accepting the edit. Returns the ids it changed,
    /// in plan order. Waits for the lock like `apply_all`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMigration`] when no registered migration has `id`,
    /// [`Error::LockTimeout`], [`Error::Database`] and
    /// [`Error::RecordFailed`].
    pub async fn mark_applied(&self, id: &str) -> Result<Vec<String>, Error> {
        let ordered = self.ordered()?;
        find(&ordered, id)?;
        let wanted = with_dependencies(&ordered, id);
        let owner = Owner::new();
        let lock = self.lock(&owner);
        lock.acquire(self.lock_wait_timeout).await?;
        let outcome = self.mark(&ordered, &wanted, &owner).await;
        release(&lock).await;
        outcome
    }

    async fn mark(
        &self,
        ordered: &[&'static Migration],
        wanted: &HashSet<&str>,
        owner: &Owner,
    ) -> Result<Vec<String>, Error> {
        let records = self.records();
        let status = status::status(ordered, &records.read_all().await?);
        let mut changed = Vec::new();
        for (migration, state) in ordered.iter().zip(status.migrations.iter().map(|m| &m.state)) {
            if !wanted.contains(migration.id()) {
                continue;
            }
            match state {
                State::Pending => records.insert_marked(migration, &owner.process()).await?,
                State::Drifted { .. } => records.accept_checksum(migration).await?,
                _ => continue,
            }
            info!(
                migration.id = migration.id(),
                "marked migration as applied without running it"
            );
            changed.push(migration.id().to_owned());
        }
        Ok(changed)
    }

    fn ordered(&self) -> Result<Vec<&'static Migration>, Error> {
        plan::order(&registry::registered())
    }

    fn records(&self) -> Records {
        Records::new(&self.db, &self.versions_collection)
    }

    fn lock(&self, owner: &Owner) -> Lock {
        Lock::new(
            &self.db,
            &self.lock_collection,
            &self.versions_collection,
            owner.clone(),
            self.lock_lease,
        )
    }

    /// Splits `ordered` into the migrations `stored` lacks, in order, and a
    /// report of the rest, including drifted and unknown ids.
    fn split<'m>(ordered: &[&'m Migration], stored: &[VersionRecord]) -> (Vec<&'m Migration>, ApplyReport) {
        let status = status::status(ordered, stored);
        let mut report = ApplyReport {
            drifted: status.drifted().into_iter().map(str::to_owned).collect(),
            unknown: status.unknown_ids().into_iter().map(str::to_owned).collect(),
            ..ApplyReport::default()
        };
        let mut pending = Vec::new();
        for (migration, entry) in ordered.iter().zip(&status.migrations) {
            if entry.state == State::Pending {
                pending.push(*migration);
                continue;
            }
            report.already_applied.push(entry.id.clone());
            if let Some(duration) = entry.duration {
                report.durations.insert(entry.id.clone(), duration);
            }
        }
        (pending, report)
    }

    /// Refuses drifted migrations and unknown records in strict mode, and
    /// warns about them otherwise; once per `apply_all`.
    fn vet(&self, report: &ApplyReport) -> Result<(), Error> {
        if self.strict && !report.drifted.is_empty() {
            return Err(Error::Drifted {
                ids: report.drifted.clone(),
            });
        }
        if self.strict && !report.unknown.is_empty() {
            return Err(Error::UnknownRecords {
                collection: self.versions_collection.clone(),
                ids: report.unknown.clone(),
            });
        }
        for id in &report.drifted {
            warn!(migration.id = %id, "migration was edited after it was applied; the edit has not run");
        }
        for id in &report.unknown {
            warn!(migration.id = %id, "recorded migration is not declared in this binary");
        }
        Ok(())
    }
}

fn find(ordered: &[&'static Migration], id: &str) -> Result<&'static Migration, Error> {
    ordered
        .iter()
        .copied()
        .find(|migration| migration.id() == id)
        .ok_or_else(|| Error::UnknownMigration { id: id.to_owned() })
}

/// `id` and everything it depends on, directly or not.
fn with_dependencies<'m>(ordered: &[&'m Migration], id: &'m str) -> HashSet<&'m str> {
    let by_id: HashMap<&str, &Migration> = ordered
        .iter()
        .map(|migration| (migration.id(), *migration))
        .collect();
    let mut wanted = HashSet::new();
    let mut stack = vec![id];
    while let Some(next) = stack.pop() {
        if wanted.insert(next)
            && let Some(migration) = by_id.get(next)
        {
            stack.extend(migration.after().iter().copied());
        }
    }
    wanted
}

/// A lock held elsewhere is an error of its own for operations that do not
/// wait.
fn held(error: Error) -> Error {
    match error {
        Error::LockTimeout {
            holder,
            running,
            expires_at,
            ..
        } => Error::LockHeld {
            holder,
            running,
            expires_at,
        },
        other => other,
    }
}

async fn release(lock: &Lock) {
    if let Err(error) = lock.release().await {
        warn!(%error, "could not release the schema lock; it is free again when its lease ends");
    }
}
