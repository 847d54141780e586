//! Ties the pieces together: plan the registered migrations, read what the
//! versions collection holds, run what is missing and record it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mongodb::Database;
use mongodb::options::ClientOptions;
use tracing::{Instrument, info, info_span, warn};

use crate::data::{self, Managed, Observer, Progress};
use crate::error::{self, BoxError, Error};
use crate::lock::{Held, Lock};
use crate::migrations::Migrations;
use crate::plan;
use crate::policy::{self, Policy};
use crate::records::{Records, Stored};
use crate::registry::Migration;
use crate::report::{self, ApplyReport, ForgetReport, Interrupted, MarkReport};
use crate::status::{self, LockStatus, State, Status};
use crate::stored::lock::Completion;
use crate::stored::record::VersionRecord;
use crate::unwind::CatchUnwind;

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
#[derive(Clone)]
pub struct SchemaManager {
    db: Database,
    versions_collection: String,
    lock_collection: String,
    lock_lease: Duration,
    lock_wait_timeout: Duration,
    lease_client: Option<ClientOptions>,
    /// The set to apply; the default group when `None`.
    migrations: Option<Migrations>,
    on_drift: Policy,
    on_unknown: Policy,
    /// Hear of every batch of every backfill.
    observers: Vec<Observer>,
}

/// Names the database and shows the settings, never the client's options:
/// they hold passwords and keys (`tlsCertificateKeyFilePassword`, a
/// proxy's password).
impl std::fmt::Debug for SchemaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaManager")
            .field("database", &self.db.name())
            .field("versions_collection", &self.versions_collection)
            .field("lock_collection", &self.lock_collection)
            .field("lock_lease", &self.lock_lease)
            .field("lock_wait_timeout", &self.lock_wait_timeout)
            .field("lease_client", &self.lease_client.as_ref().map(|_| "given"))
            .field("migrations", &self.migrations)
            .field("on_drift", &self.on_drift)
            .field("on_unknown", &self.on_unknown)
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl SchemaManager {
    /// The collection that records applied migrations unless
    /// [`versions_collection`](SchemaManager::versions_collection) names
    /// another: `schema_versions`.
    pub const DEFAULT_VERSIONS_COLLECTION: &str = "schema_versions";

    /// The collection that holds the lock unless
    /// [`lock_collection`](SchemaManager::lock_collection) names another:
    /// `schema_lock`.
    pub const DEFAULT_LOCK_COLLECTION: &str = "schema_lock";

    /// How long the lock stays held without renewal unless
    /// [`lock_lease`](SchemaManager::lock_lease) says otherwise: 30 seconds.
    pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(30);

    /// The shortest lease [`lock_lease`](SchemaManager::lock_lease) accepts,
    /// 300 milliseconds: a shorter one would have the holder do little but
    /// renew, and others take over between two renewals.
    pub const MIN_LOCK_LEASE: Duration = Duration::from_millis(300);

    /// The shortest lease [`lock_lease`](SchemaManager::lock_lease) accepts
    /// on a sharded cluster, 10 seconds. There a lease's end is judged by
    /// the clock of the mongos that answers while its renewals are stamped
    /// by the clock of the shard primary that holds the lock collection; the
    /// holder stops a second early to allow for the difference, which must
    /// stay below a second. A shorter lease is refused with
    /// [`Error::Configuration`] when the lock is first taken.
    pub const MIN_SHARDED_LOCK_LEASE: Duration = crate::lock::MIN_SHARDED_LEASE;

    /// How long [`apply_all`](SchemaManager::apply_all) waits for a lock
    /// another process holds unless
    /// [`lock_wait_timeout`](SchemaManager::lock_wait_timeout) says
    /// otherwise: 10 minutes.
    pub const DEFAULT_LOCK_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

    /// A manager for `db`, recording applied migrations in
    /// [`DEFAULT_VERSIONS_COLLECTION`](SchemaManager::DEFAULT_VERSIONS_COLLECTION)
    /// and locking with
    /// [`DEFAULT_LOCK_COLLECTION`](SchemaManager::DEFAULT_LOCK_COLLECTION).
    pub fn new(db: Database) -> SchemaManager {
        SchemaManager {
            db,
            versions_collection: Self::DEFAULT_VERSIONS_COLLECTION.to_owned(),
            lock_collection: Self::DEFAULT_LOCK_COLLECTION.to_owned(),
            lock_lease: Self::DEFAULT_LOCK_LEASE,
            lock_wait_timeout: Self::DEFAULT_LOCK_WAIT_TIMEOUT,
            lease_client: None,
            migrations: None,
            on_drift: Policy::Warn,
            on_unknown: Policy::Warn,
            observers: Vec::new(),
        }
    }

    /// Calls `observe` when each [`Backfill`](crate::data::Backfill) the
    /// migrations run under this manager starts, after each of its batches
    /// and when it ends, with how far it is: to draw a progress bar, or to
    /// tell a readiness probe the process is busy migrating. Observers
    /// added before are kept; each is called in turn. It runs inside the
    /// migration's task, so it should return quickly.
    pub fn on_progress(mut self, observe: impl Fn(&Progress) + Send + Sync + 'static) -> SchemaManager {
        self.observers.push(data::observer(observe));
        self
    }

    /// What to do about migrations edited after they were applied (drift):
    /// warn by default. With [`Policy::Fail`], a start refuses to run
    /// anything while one is drifted, and `status --check` fails.
    pub fn on_drift(mut self, policy: Policy) -> SchemaManager {
        self.on_drift = policy;
        self
    }

    /// What to do about records of migrations this binary does not declare:
    /// warn by default. They are normal during a rolling deploy, when a
    /// newer version has applied its new migrations while older processes
    /// still start; with [`Policy::Fail`] those older processes refuse to
    /// start. They also appear when a crate of migrations is no longer
    /// linked, and for documents that are not records at all.
    pub fn on_unknown(mut self, policy: Policy) -> SchemaManager {
        self.on_unknown = policy;
        self
    }

    /// A shorthand: `strict(true)` is `on_drift(Policy::Fail)` and
    /// `on_unknown(Policy::Fail)`; `strict(false)` sets both back to
    /// [`Policy::Warn`]. Strict unknown records break rolling deploys (see
    /// [`on_unknown`](SchemaManager::on_unknown)).
    pub fn strict(self, strict: bool) -> SchemaManager {
        let policy = if strict { Policy::Fail } else { Policy::Warn };
        self.on_drift(policy).on_unknown(policy)
    }

    /// The policy for drift.
    pub fn drift_policy(&self) -> Policy {
        self.on_drift
    }

    /// The policy for unknown records.
    pub fn unknown_policy(&self) -> Policy {
        self.on_unknown
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

    /// How long the lock stays held without renewal
    /// ([`DEFAULT_LOCK_LEASE`](SchemaManager::DEFAULT_LOCK_LEASE) by default,
    /// at least [`MIN_LOCK_LEASE`](SchemaManager::MIN_LOCK_LEASE): a shorter
    /// one is a [`Error::Configuration`] before anything is sent; on a
    /// sharded cluster at least
    /// [`MIN_SHARDED_LOCK_LEASE`](SchemaManager::MIN_SHARDED_LOCK_LEASE)).
    /// The holder renews it three times per lease while it holds the lock;
    /// a holder that dies blocks the others this long. A lease too long to
    /// count (`Duration::MAX`) never ends by itself: a holder that dies
    /// then blocks the others until `unlock --force`.
    ///
    /// The holder counts its lease on its own monotonic clock and, so that
    /// time spent suspended counts too, on the wall clock; it stops when
    /// either says the lease is over. The servers' clocks judge the lease
    /// for everyone else: see `RELIABILITY.md` for what they must agree on.
    pub fn lock_lease(mut self, lease: Duration) -> SchemaManager {
        self.lock_lease = lease;
        self
    }

    /// How long [`apply_all`](SchemaManager::apply_all) waits for a lock
    /// that another process holds and renews
    /// ([`DEFAULT_LOCK_WAIT_TIMEOUT`](SchemaManager::DEFAULT_LOCK_WAIT_TIMEOUT)
    /// by default). A wait too long to count (`Duration::MAX`) waits for as
    /// long as it takes.
    pub fn lock_wait_timeout(mut self, timeout: Duration) -> SchemaManager {
        self.lock_wait_timeout = timeout;
        self
    }

    /// Applies `set` instead of the default group ([`DEFAULT_GROUP`], the
    /// migrations declared without `group`). A binary that keeps two
    /// databases gives each manager its group:
    ///
    /// ```no_run
    /// # async fn start(billing_db: mongodb::Database, app_db: mongodb::Database) -> Result<(), schema_core::Error> {
    /// use schema_core::{Migrations, SchemaManager};
    ///
    /// SchemaManager::new(billing_db).migrations(Migrations::group("billing")?).apply_all().await?;
    /// SchemaManager::new(app_db).apply_all().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// [`DEFAULT_GROUP`]: crate::DEFAULT_GROUP
    pub fn migrations(mut self, set: Migrations) -> SchemaManager {
        self.migrations = Some(set);
        self
    }

    /// Renews the lock's lease from a thread of its own, over a client of
    /// its own built from `options` (those the application's client was
    /// built from), instead of from a task on the application's runtime.
    ///
    /// Recommended: renewal then goes on whatever a migration does to the
    /// application's runtime, including blocking its threads with
    /// synchronous work, and on a single-threaded runtime too. The extra
    /// client exists only while this process holds the lock.
    ///
    /// ```no_run
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// use schema_core::mongodb::{Client, options::ClientOptions};
    ///
    /// let options = ClientOptions::parse("mongodb://localhost:27017/app").await?;
    /// let client = Client::with_options(options.clone())?;
    /// let manager = schema_core::SchemaManager::new(client.database("app")).lease_client(options);
    /// manager.apply_all().await?;
    /// client.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn lease_client(mut self, options: ClientOptions) -> SchemaManager {
        self.lease_client = Some(options);
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
    /// The configuration and the registered set are checked before anything
    /// is sent to the server. When nothing is pending, this costs one read
    /// of the versions collection and takes no lock. Otherwise it takes the
    /// lock (waiting for another process that holds it), reads the versions
    /// collection again, applies what is still missing and releases the
    /// lock, also when a migration fails or panics. It returns once every
    /// migration this binary knows is recorded, by this process or another.
    ///
    /// While it holds the lock, the lease is renewed outside the
    /// migration's task (see [`lease_client`](SchemaManager::lease_client)),
    /// and each migration counts as complete only once a write that only
    /// the lease's holder can make notes it in the lock; only then is it
    /// recorded. A process that takes the lock over after a crash records
    /// what was completed and runs again only what was not.
    ///
    /// The tokio runtime must have its time driver enabled, as
    /// `#[tokio::main]` does. If the returned future is dropped half way,
    /// the lock is released when its lease ends.
    ///
    /// # Errors
    ///
    /// - [`Error::Configuration`] when the lock and versions collections are
    ///   the same or the lease is shorter than
    ///   [`MIN_LOCK_LEASE`](SchemaManager::MIN_LOCK_LEASE) (or, on a sharded
    ///   cluster, [`MIN_SHARDED_LOCK_LEASE`](SchemaManager::MIN_SHARDED_LOCK_LEASE));
    /// - [`Error::LeaseRenewal`] when the lease's renewal cannot start;
    ///   nothing is run;
    /// - [`Error::DuplicateId`], [`Error::UnknownDependency`] or
    ///   [`Error::Cycle`] when the registered set is invalid; the database
    ///   is not touched;
    /// - [`Error::Database`] or [`Error::ServerTimeout`] when the server
    ///   cannot be reached or read in time, and [`Error::MalformedRecord`]
    ///   when a stored record has another shape; nothing is run;
    /// - [`Error::LockTimeout`] when another process held the lock longer
    ///   than the wait timeout;
    /// - [`Error::MigrationFailed`] or [`Error::MigrationPanicked`] when a
    ///   migration fails: it is not recorded, later ones do not run, and
    ///   earlier ones of the same call stay recorded;
    /// - [`Error::LockLost`] when this process's lease ended (by its own
    ///   clock) or another process took the lock over before a migration
    ///   was noted as complete;
    /// - [`Error::RecordFailed`] when a migration was completed but its
    ///   record could not be written; the next start writes it.
    pub async fn apply_all(&self) -> Result<ApplyReport, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        let (pending, report) = report::split(&ordered, &stored);
        policy::vet(self.on_drift, self.on_unknown, &self.versions_collection, &report)?;
        let Some(first) = pending.first() else {
            return Ok(report);
        };

        let noted = first.id();
        let (mut report, interrupted) = self
            .under_lock(self.lock_wait_timeout, Some(noted), async |held, stored| {
                self.apply_held(&ordered, &records, held, stored, noted).await
            })
            .await?;
        report.interrupted = interrupted;
        Ok(report)
    }

    /// Takes the lock (waiting up to `wait`, noting `running` as the
    /// migration about to run), records what a previous holder completed,
    /// runs `work` with the records as they then are, and releases the lock
    /// whatever `work` returned. Returns `work`'s output and, when the lock
    /// was taken over from a holder whose lease had ended, that takeover.
    async fn under_lock<T>(
        &self,
        wait: Duration,
        running: Option<&str>,
        work: impl AsyncFnOnce(&mut Held<'_>, Stored) -> Result<T, Error>,
    ) -> Result<(T, Option<Interrupted>), Error> {
        let lock = self.lock();
        let mut held = lock.acquire(wait, running).await?;
        let outcome = match self.finish_ledger(&self.records(), &mut held).await {
            Ok(stored) => work(&mut held, stored).await,
            Err(error) => Err(error),
        };
        let interrupted = held.take_interrupted();
        held.release().await;
        Ok((outcome?, interrupted))
    }

    /// Under the lock: reads the records again, since another process may
    /// have applied migrations meanwhile, records what a previous holder
    /// completed, and applies what is still missing.
    async fn apply_held(
        &self,
        ordered: &[&'static Migration],
        records: &Records,
        held: &mut Held<'_>,
        stored: Stored,
        noted: &str,
    ) -> Result<ApplyReport, Error> {
        vet_stored(ordered, &stored, records)?;
        let (pending, mut report) = report::split(ordered, &stored);
        let first = pending.first().map(|migration| migration.id());
        if first.is_some_and(|first| first != noted) {
            // Another process applied `noted` meanwhile; with nothing left
            // at all, the release is all that follows.
            held.note_running(noted, first).await?;
        }
        let applied_by = held.owner().process();
        for (index, migration) in pending.iter().enumerate() {
            let id = migration.id();
            if !held.is_live() {
                return Err(Error::LockLost {
                    id: id.to_owned(),
                    source: None,
                });
            }
            let duration = self.run_holding(migration, held).await?;
            let completion = Completion::ran(migration, millis(duration), &applied_by);
            let next = pending.get(index + 1).map(|migration| migration.id());
            let fenced_at = held.fence(&completion, next).await?;
            records.insert(&completion, fenced_at, || held.is_live()).await?;
            held.recorded(id).await;
            info!(
                migration.id = id,
                duration_ms = millis(duration),
                "migration applied"
            );
            report.applied.push(id.to_owned());
            report.durations.insert(id.to_owned(), duration);
        }
        Ok(report)
    }

    /// Records every completion in the lock's ledger that the versions
    /// collection lacks (a previous holder fenced them, then died or lost
    /// its connection), clears the ledger, and returns the records as they
    /// now are. Only then may an operator command remove a record: a stale
    /// entry left in the ledger would record again what it removed.
    async fn finish_ledger(&self, records: &Records, held: &mut Held<'_>) -> Result<Stored, Error> {
        let mut stored = records.read_all().await?;
        let mut recorded_now = Vec::new();
        for done in held.inherited().to_vec() {
            if !stored.records.iter().any(|record| record.id == done.id) {
                // The ledger keeps no time per entry; the previous holder's
                // last renewal, by the server's clock, is no earlier than
                // the fence.
                let applied_at = held.ledger_time();
                records.insert(&done, applied_at, || held.is_live()).await?;
                info!(migration.id = %done.id, "recorded a migration the previous holder completed");
                stored.records.push(VersionRecord::of(&done, applied_at));
                recorded_now.push(done.id.clone());
            }
            held.recorded(&done.id).await;
        }
        held.clear_ledger().await?;
        let fenced: HashSet<String> = held.inherited().iter().map(|done| done.id.clone()).collect();
        if let Some(interrupted) = held.interrupted_mut() {
            interrupted.recorded = recorded_now;
            // A migration noted as running but fenced since did not stop
            // half way.
            if interrupted
                .migration
                .as_ref()
                .is_some_and(|id| fenced.contains(id))
            {
                interrupted.migration = None;
            }
        }
        Ok(stored)
    }

    /// Runs `migration` while the lease lasts. Returns how long it took.
    async fn run_holding(&self, migration: &Migration, held: &Held<'_>) -> Result<Duration, Error> {
        let span = info_span!("migration", migration.id = migration.id());
        async {
            info!(description = migration.description(), "applying migration");
            let started = Instant::now();
            // The backfills inside save their checkpoints under this lease.
            let managed = Managed {
                checkpoints: held.checkpoints(migration),
                observers: self.observers.clone(),
            };
            let run = Box::pin(data::scope(managed, migration.run(&self.db)));
            let outcome = held.hold_while(CatchUnwind(run)).await;
            let id = migration.id().to_owned();
            let failure: BoxError = match outcome {
                None => {
                    warn!("the schema lock's lease ended while the migration ran; stopped it");
                    return Err(Error::LockLost { id, source: None });
                }
                Some(Ok(Ok(()))) => return Ok(started.elapsed()),
                Some(Ok(Err(source))) => {
                    // A driver error is shown without the values it quotes.
                    let source = error::shown(source);
                    tracing::error!(error = %source, "migration failed");
                    if held.is_live() {
                        return Err(Error::MigrationFailed { id, source });
                    }
                    source
                }
                Some(Err(message)) => {
                    // A panic's message can quote a value too (an
                    // `unwrap` of a driver error prints the error).
                    let message = error::without_values(&message);
                    tracing::error!(panic = %message, "migration panicked");
                    if held.is_live() {
                        return Err(Error::MigrationPanicked { id, message });
                    }
                    Box::new(Error::MigrationPanicked {
                        id: id.clone(),
                        message,
                    })
                }
            };
            // It failed, and the lease ended meanwhile: the lost lock is the
            // news, the failure its cause.
            Err(Error::LockLost {
                id,
                source: Some(failure),
            })
        }
        .instrument(span)
        .await
    }
}

impl SchemaManager {
    /// Every known migration in apply order with its state, the records no
    /// registered migration has, and, while a migration is pending, the
    /// backfills under way. Reads the versions collection once (and the
    /// lock when something is pending); writes nothing.
    ///
    /// # Errors
    ///
    /// Those of an invalid registered set ([`Error::DuplicateId`],
    /// [`Error::UnknownDependency`], [`Error::Cycle`]), [`Error::Database`]
    /// and [`Error::MalformedRecord`].
    pub async fn status(&self) -> Result<Status, Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        let mut status = status::status(&ordered, &stored);
        if !status.is_up_to_date() {
            // Only a migration still to apply can have a backfill under way.
            status.backfills = self.lock().backfills().await?;
        }
        Ok(status)
    }

    /// What [`apply_all`](SchemaManager::apply_all) would run now, in order,
    /// without running it. Writes nothing.
    ///
    /// # Errors
    ///
    /// As [`status`](SchemaManager::status).
    pub async fn plan(&self) -> Result<Vec<&'static Migration>, Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        vet_stored(&ordered, &stored, &records)?;
        Ok(report::split(&ordered, &stored).0)
    }

    /// Removes the record of migration `id`, so the next
    /// [`apply_all`](SchemaManager::apply_all) runs it again. Takes the lock
    /// for the removal, without waiting; first records what a previous
    /// holder completed and clears the lock's ledger of it (so nothing left
    /// there can record `id` again without running it), and confirms the
    /// lease just before removing.
    ///
    /// Allowed while the lock is kept, released, for the checkpoints of a
    /// backfill that has not finished: those belong to a migration not yet
    /// recorded, which `forget` cannot remove, and they stay for its next
    /// run.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::UnknownMigration`] when no
    /// registered migration has `id`, [`Error::LockHeld`] while another
    /// process holds the lock, [`Error::LockLost`], [`Error::Database`] and
    /// [`Error::ServerTimeout`].
    pub async fn forget(&self, id: &str) -> Result<ForgetReport, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        let migration = find(&ordered, id)?;
        let records = self.records();
        let (removed, interrupted) = self
            .under_lock(Duration::ZERO, None, async |held, _| {
                held.note_running(migration.id(), None).await?;
                records.delete(migration.id()).await
            })
            .await?;
        info!(
            migration.id = id,
            removed, "forgot migration; it runs again on the next apply"
        );
        Ok(ForgetReport { removed, interrupted })
    }

    /// Removes the record `id` of a migration this binary does not declare:
    /// one a newer version applied and an older one is rolled back over, or
    /// a document that is not a record. Takes the lock like
    /// [`forget`](SchemaManager::forget). `id` is the record's `_id` as
    /// [`status`](SchemaManager::status) shows it; an `_id` that is not a
    /// string is matched as an integer or an ObjectId when `id` reads as one.
    ///
    /// # Errors
    ///
    /// As [`forget`](SchemaManager::forget), except that any id is
    /// accepted.
    pub async fn forget_unknown(&self, id: &str) -> Result<ForgetReport, Error> {
        self.check_configuration()?;
        let records = self.records();
        let (removed, interrupted) = self
            .under_lock(Duration::ZERO, None, async |held, _| {
                held.note_running(id, None).await?;
                records.delete_any(id).await
            })
            .await?;
        info!(
            record.id = id,
            removed, "forgot a record this binary does not declare"
        );
        Ok(ForgetReport { removed, interrupted })
    }

    /// Who holds the schema lock, if anyone: owner, host, process, since
    /// when, the migration it is running, when its lease ends by the
    /// server's clock and whether it already has. Writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedLock`] naming the field when the lock document has
    /// another shape (remove it with
    /// [`unlock_force`](SchemaManager::unlock_force)), [`Error::Database`]
    /// and [`Error::ServerTimeout`].
    pub async fn lock_status(&self) -> Result<Option<LockStatus>, Error> {
        self.check_configuration()?;
        self.lock().status().await
    }

    /// Removes a lock whose lease has ended, after recording what its
    /// holder completed. Returns whether there was a lock to remove. A
    /// lock whose lease has ended is taken over by the next start anyway;
    /// this clears it without starting one.
    ///
    /// A lock that holds the checkpoints of a backfill (see [`data`]) is
    /// kept, released, so that the next start resumes the backfill;
    /// [`unlock_force`](SchemaManager::unlock_force) removes them too, and
    /// the backfill then starts again from the beginning.
    ///
    /// [`data`]: crate::data
    ///
    /// # Errors
    ///
    /// [`Error::LockHeld`] while the lease is live (see
    /// [`unlock_force`](SchemaManager::unlock_force)),
    /// [`Error::MalformedLock`], [`Error::Database`] and
    /// [`Error::ServerTimeout`].
    pub async fn unlock(&self) -> Result<bool, Error> {
        self.check_configuration()?;
        let lock = self.lock();
        if lock.status().await?.is_none() {
            return Ok(false);
        }
        // Taking the lock records what its holder completed; releasing it
        // is the removal.
        self.under_lock(Duration::ZERO, None, async |_, _| Ok(())).await?;
        info!("removed a schema lock whose lease had ended");
        Ok(true)
    }

    /// Removes the lock whatever its state: live, expired or malformed.
    /// Returns whether there was one.
    ///
    /// Dangerous while its holder is alive: another process can then take
    /// the lock and run the migration the holder is running, a second time
    /// and at once. The holder itself records nothing more (its next write
    /// to the lock no longer matches) and stops with [`Error::LockLost`].
    /// Completions its holder had not recorded are dropped with the lock,
    /// and those migrations run again. Use it for a malformed lock, or when
    /// the holder is known to be gone.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::Database`] and
    /// [`Error::ServerTimeout`].
    pub async fn unlock_force(&self) -> Result<bool, Error> {
        self.check_configuration()?;
        let removed = self.lock().remove().await?;
        if removed {
            warn!("removed the schema lock by force");
        }
        Ok(removed)
    }

    /// Records migration `id` and every migration it depends on as applied
    /// without running them: a baseline, for a database whose indexes
    /// already exist. A drifted migration among them gets its current
    /// checksum recorded, accepting the edit. Waits for the lock like
    /// `apply_all`, and fences each record like a completed migration.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`], [`Error::UnknownMigration`] when no
    /// registered migration has `id`, [`Error::LockTimeout`],
    /// [`Error::LockLost`], [`Error::Database`], [`Error::ServerTimeout`]
    /// and [`Error::RecordFailed`].
    pub async fn mark_applied(&self, id: &str) -> Result<MarkReport, Error> {
        self.check_configuration()?;
        let ordered = self.ordered()?;
        find(&ordered, id)?;
        let wanted = plan::with_dependencies(&ordered, id);
        let records = self.records();
        let (marked, interrupted) = self
            .under_lock(self.lock_wait_timeout, None, async |held, stored| {
                self.mark_held(&ordered, &wanted, &records, held, stored).await
            })
            .await?;
        Ok(MarkReport { marked, interrupted })
    }

    async fn mark_held(
        &self,
        ordered: &[&'static Migration],
        wanted: &HashSet<&str>,
        records: &Records,
        held: &mut Held<'_>,
        stored: Stored,
    ) -> Result<Vec<String>, Error> {
        vet_stored(ordered, &stored, records)?;
        let status = status::status(ordered, &stored);
        let applied_by = held.owner().process();
        let mut changed = Vec::new();
        for (migration, state) in ordered.iter().zip(status.migrations.iter().map(|m| &m.state)) {
            let id = migration.id();
            if !wanted.contains(id) {
                continue;
            }
            match state {
                State::Pending => {
                    let completion = Completion::marked(migration, &applied_by);
                    let fenced_at = held.fence(&completion, None).await?;
                    records.insert(&completion, fenced_at, || held.is_live()).await?;
                    held.recorded(id).await;
                }
                State::Drifted { .. } => {
                    held.note_running(id, None).await?;
                    records.accept_checksum(migration).await?;
                }
                _ => continue,
            }
            info!(
                migration.id = id,
                "marked migration as applied without running it"
            );
            changed.push(id.to_owned());
        }
        Ok(changed)
    }

    /// The set this manager applies, in order.
    pub(crate) fn ordered(&self) -> Result<Vec<&'static Migration>, Error> {
        let set = match &self.migrations {
            Some(set) => set.clone(),
            None => Migrations::default_group()?,
        };
        if set.is_empty() {
            warn!(
                "no migration to apply: none is registered in this set; if the migrations are \
                 declared in another crate, refer to it from the binary (`use my_migrations as _;`), \
                 or choose their group with `SchemaManager::migrations(Migrations::group(..))`"
            );
        }
        Ok(set.ordered().to_vec())
    }

    /// Refuses what cannot work, before anything is sent to the server.
    fn check_configuration(&self) -> Result<(), Error> {
        if self.lock_collection == self.versions_collection {
            return Err(Error::Configuration {
                reason: format!(
                    "the lock and the records are both kept in `{}`; the lock document would be read \
                     as a record: give `lock_collection` and `versions_collection` different names",
                    self.lock_collection
                ),
            });
        }
        if self.lock_lease < Self::MIN_LOCK_LEASE {
            return Err(Error::Configuration {
                reason: format!(
                    "a lock lease of {:?} is shorter than the minimum of {:?}; the holder \
                     could not renew it before others take it over",
                    self.lock_lease,
                    Self::MIN_LOCK_LEASE,
                ),
            });
        }
        Ok(())
    }

    fn records(&self) -> Records {
        Records::new(&self.db, &self.versions_collection, self.lock_lease / 3)
    }

    fn lock(&self) -> Lock {
        Lock::new(
            &self.db,
            &self.lock_collection,
            &self.versions_collection,
            self.lock_lease,
            self.lease_client.clone(),
        )
    }
}

/// Refuses a malformed record of a registered migration: whether it ran
/// cannot be told, and the way out is for an operator to choose.
fn vet_stored(ordered: &[&'static Migration], stored: &Stored, records: &Records) -> Result<(), Error> {
    let registered = |id: &str| ordered.iter().any(|migration| migration.id() == id);
    match stored
        .malformed
        .iter()
        .find(|malformed| malformed.id.as_deref().is_some_and(registered))
    {
        Some(malformed) => Err(records.malformed(malformed)),
        None => Ok(()),
    }
}

fn find(ordered: &[&'static Migration], id: &str) -> Result<&'static Migration, Error> {
    ordered
        .iter()
        .copied()
        .find(|migration| migration.id() == id)
        .ok_or_else(|| Error::UnknownMigration { id: id.to_owned() })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
