//! [`SchemaManager`]: what an application configures (the database, the
//! collections, the lease, the set, the policies). The checks made before
//! anything is sent are in `checks`; its operations in `operations`; the
//! background migrations' task and waiting for the schema in
//! `background`; snapshots and verification in `schema`; preflight in
//! `preflight`; the commands pending migrations would send in `commands`.

mod background;
mod checks;
mod commands;
mod operations;
mod preflight;
mod schema;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use mongodb::Database;
use mongodb::options::ClientOptions;

use self::background::Background;
pub use self::preflight::Options as PreflightOptions;
pub(crate) use self::schema::is_scratch_name;
use crate::assess::policy::Policy;
use crate::data::{self, Observer, Progress};
use crate::declare::registry::Migration;
use crate::declare::set::Migrations;
use crate::engine::Engine;
use crate::lock::Lock;
use crate::records::Records;
use crate::stored::lock::Lane;
use crate::support::error::Error;

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
    /// What a start does about a pending migration preflight says fails.
    preflight_at_start: Policy,
    /// Refuse to run a migration declared with `transaction` where the
    /// server runs none.
    require_transactions: bool,
    /// Hear of every batch of every backfill.
    observers: Vec<Observer>,
    /// Whether `apply_all` applies the background migrations itself.
    wait_for_background: bool,
    /// The background task's pause after a migration's first failure.
    background_retry_pause: Duration,
    /// Where `snapshot` applies the set; a new database when `None`.
    snapshot_database: Option<Database>,
    /// What this manager and its clones know of the background task and
    /// of what is recorded.
    background: Arc<Background>,
    /// The crates that must declare migrations of the set.
    expected_crates: Vec<String>,
    /// Whether this manager or a clone has warned that its set is empty.
    warned_empty: Arc<AtomicBool>,
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
            .field("wait_for_background", &self.wait_for_background)
            .field("background_retry_pause", &self.background_retry_pause)
            .field(
                "snapshot_database",
                &self.snapshot_database.as_ref().map(Database::name),
            )
            .field("expected_crates", &self.expected_crates)
            .finish_non_exhaustive()
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

    /// How long background tasks leave a background migration alone after
    /// its first failure in a row unless
    /// [`background_retry_pause`](SchemaManager::background_retry_pause)
    /// says otherwise: a minute.
    pub const DEFAULT_BACKGROUND_RETRY_PAUSE: Duration = Duration::from_secs(60);

    /// The shortest pause
    /// [`background_retry_pause`](SchemaManager::background_retry_pause)
    /// accepts, 100 milliseconds; a shorter one is refused with
    /// [`Error::Configuration`] before anything is sent.
    pub const MIN_BACKGROUND_RETRY_PAUSE: Duration = Duration::from_millis(100);

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
            preflight_at_start: Policy::Ignore,
            require_transactions: false,
            observers: Vec::new(),
            wait_for_background: false,
            background_retry_pause: Self::DEFAULT_BACKGROUND_RETRY_PAUSE,
            snapshot_database: None,
            background: Arc::default(),
            expected_crates: Vec::new(),
            warned_empty: Arc::default(),
        }
    }

    /// Has [`apply_all`](SchemaManager::apply_all) apply the background
    /// migrations (`#[migration(background)]`) too before it returns, as
    /// the command line's `apply`, `#[schema_core::test]` and
    /// [`snapshot`](SchemaManager::snapshot) do. Without it (the default),
    /// `apply_all` returns once the others are applied and a task of the
    /// process applies the background ones.
    pub fn wait_for_background(mut self, wait: bool) -> SchemaManager {
        self.wait_for_background = wait;
        self
    }

    /// With `true`, a migration declared with `transaction`
    /// (`#[migration(transaction)]`) is refused, with
    /// [`Error::Configuration`] before any migration runs, where the
    /// server runs no transaction (a standalone server), instead of running
    /// as a plain migration with a warning: for teams that want the
    /// guarantee or nothing. On a replica set or a sharded cluster it
    /// changes nothing.
    pub fn require_transactions(mut self, required: bool) -> SchemaManager {
        self.require_transactions = required;
        self
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

    /// How long background tasks leave a background migration alone after
    /// it failed for the first time in a row
    /// ([`DEFAULT_BACKGROUND_RETRY_PAUSE`](SchemaManager::DEFAULT_BACKGROUND_RETRY_PAUSE)
    /// by default); the pause doubles with each failure more, up to an hour
    /// (or `pause`, if longer). The failure is noted where every process
    /// reads it, with this pause, so the task of every process, restarted
    /// or not, leaves the migration alone as long; an operator's `apply`
    /// (or `apply_all` with
    /// [`wait_for_background`](SchemaManager::wait_for_background)) runs it
    /// at once. A pause shorter than
    /// [`MIN_BACKGROUND_RETRY_PAUSE`](SchemaManager::MIN_BACKGROUND_RETRY_PAUSE)
    /// is refused with [`Error::Configuration`] before anything is sent.
    pub fn background_retry_pause(mut self, pause: Duration) -> SchemaManager {
        self.background_retry_pause = pause;
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

    /// Refuses to run unless each of `crates` declares migrations of this
    /// manager's set: a crate of migrations that the binary depends on but
    /// never refers to is not linked, and registers nothing. Every
    /// operation that reads the set checks it before anything is sent, and
    /// fails with [`Error::Configuration`] naming the crates missing and the
    /// `use my_migrations as _;` that links them. Names are the crates' own
    /// names (a package's `-` may stay), not an alias a dependent gives one
    /// in its `Cargo.toml`: the crate of a migration is the first segment
    /// of its module path. Crates expected before are kept.
    ///
    /// ```no_run
    /// # async fn start(db: mongodb::Database) -> Result<(), schema_core::Error> {
    /// // The binary's own migrations and those of two crates of its workspace.
    /// schema_core::SchemaManager::new(db)
    ///     .expect_crates(["app_service", "billing_migrations", "event-migrations"])
    ///     .apply_all()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn expect_crates<I>(mut self, crates: I) -> SchemaManager
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.expected_crates.extend(crates.into_iter().map(Into::into));
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

    /// The options given to [`lease_client`](SchemaManager::lease_client),
    /// if any: the hosts an error names when the driver's does not.
    pub(crate) fn lease_options(&self) -> Option<&ClientOptions> {
        self.lease_client.as_ref()
    }

    /// The database this manager applies migrations to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// A manager of `db` with this manager's settings (set, collections,
    /// lease, policies, observers) on the same client, but with a state of
    /// its own: what a manager knows of the records and of its background
    /// task belongs to one database. For a fleet of databases.
    pub(crate) fn for_database(&self, db: Database) -> SchemaManager {
        SchemaManager {
            db,
            background: Arc::default(),
            // Renewals go over the one client too: a client of its own per
            // tenant under way would be a pool per tenant.
            lease_client: None,
            ..self.clone()
        }
    }

    /// The lease this manager's locks are held for.
    pub(crate) fn lease(&self) -> Duration {
        self.lock_lease
    }

    /// The migrations not recorded yet, in order, and the ids of records
    /// nobody declares: what a fleet's status asks of each database, in
    /// one read of the versions collection. Writes nothing.
    pub(crate) async fn pending_and_unknown(&self) -> Result<(Vec<&'static Migration>, Vec<String>), Error> {
        let ordered = self.ordered()?;
        let records = self.records();
        let stored = records.read_all().await?;
        crate::engine::vet_stored(&ordered, &stored, &records)?;
        let (pending, report) = crate::assess::report::split(&ordered, &stored);
        Ok((pending, report.unknown))
    }

    /// The versions collection, each write bounded by a third of the lease.
    fn records(&self) -> Records {
        Records::new(&self.db, &self.versions_collection, self.lock_lease / 3)
    }

    /// The lock of `lane`, with this manager's collections and lease.
    fn lock(&self, lane: Lane) -> Lock {
        Lock::new(
            &self.db,
            &self.lock_collection,
            &lane.key(&self.versions_collection),
            self.lock_lease,
            self.lease_client.clone(),
        )
    }

    /// The engine that runs this manager's work under the lock of `lane`.
    fn engine(&self, lane: Lane) -> Engine<'_> {
        Engine {
            db: &self.db,
            records: self.records(),
            lock: self.lock(lane),
            observers: &self.observers,
            require_transactions: self.require_transactions,
        }
    }
}
