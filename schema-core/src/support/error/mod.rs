//! The one error type of the crate, and how the driver's errors are shown
//! in it ([`server`]).

mod connection;
mod debug;
mod kind;
mod server;
mod texts;
mod words;

pub use self::connection::ConnectionFailure;
pub(crate) use self::connection::{Reading, read as read_connection};
pub(crate) use self::debug::chain;
pub use self::server::ServerError;
pub(crate) use self::server::{code, shown, without_values};
use self::words::{describe_cycle, describe_not_applied, describe_not_idempotent};
use crate::support::location::Location;

/// A boxed error from a migration function, whatever type it returned.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong while planning or applying migrations.
///
/// Each variant carries what is needed to act on it: the migration id, the
/// collection, the document. Problems with the declared set of migrations
/// ([`DuplicateId`](Error::DuplicateId),
/// [`UnknownDependency`](Error::UnknownDependency), [`Cycle`](Error::Cycle))
/// are found before anything is sent to the server.
///
/// `Display` is the error's own sentence, on one line; its causes are its
/// [`source`](std::error::Error::source) chain. `Debug` prints both, the
/// way `anyhow` does, so a `main` returning `Result<(), Box<dyn Error>>`
/// shows what went wrong and why: for a server that could not be reached
/// ([`ConnectionFailed`](Error::ConnectionFailed)), also what was being
/// done and the driver's whole description of the servers it tried.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two registered migrations share an id.
    #[error("{}", texts::duplicate_id(id, first, second))]
    DuplicateId {
        /// The shared id.
        id: String,
        /// One declaration.
        first: Location,
        /// The other declaration.
        second: Location,
    },

    /// An `after` names an id that no registered migration has.
    #[error("{}", texts::unknown_dependency(id, dependency))]
    UnknownDependency {
        /// The migration whose `after` is wrong.
        id: String,
        /// The id it names.
        dependency: String,
    },

    /// A migration of one group runs after a migration of another. Groups
    /// apply to their databases independently, so no order between them is
    /// kept.
    #[error("{}", texts::cross_group_dependency(id, group, dependency, dependency_group))]
    CrossGroupDependency {
        /// The migration whose `after` crosses groups.
        id: String,
        /// Its group.
        group: String,
        /// The migration it names.
        dependency: String,
        /// That migration's group.
        dependency_group: String,
    },

    /// Migrations depend on each other in a cycle, so none of them can go
    /// first.
    #[error("{}", describe_cycle(ids))]
    Cycle {
        /// The ids on the cycle: each runs after the next, and the last
        /// runs after the first.
        ids: Vec<String>,
    },

    /// A migration that runs at start depends on a background migration,
    /// which may still be running once the start is done.
    #[error("{}", texts::background_dependency(id, background))]
    BackgroundDependency {
        /// The migration declared without `background`.
        id: String,
        /// The background migration it names.
        background: String,
    },

    /// Applied migrations whose bodies were edited since, refused by
    /// `on_drift(Policy::Fail)`. Nothing was run.
    #[error("{}", texts::drifted(ids))]
    Drifted {
        /// The drifted ids, in plan order.
        ids: Vec<String>,
    },

    /// Records of migrations no registered migration has, refused by
    /// `on_unknown(Policy::Fail)`. Nothing was run.
    #[error("{}", texts::unknown_records(collection, ids))]
    UnknownRecords {
        /// The versions collection.
        collection: String,
        /// The unknown ids.
        ids: Vec<String>,
    },

    /// Running migrations a second time failed or changed the schema
    /// (`testing::check_idempotent`).
    #[error("migrations are not idempotent: {}", describe_not_idempotent(ids, reasons))]
    NotIdempotent {
        /// The migrations, in apply order.
        ids: Vec<String>,
        /// For each of `ids`, what its second run did.
        reasons: Vec<String>,
    },

    /// An operation named a migration id that no registered migration has.
    #[error("no registered migration has the id `{id}`")]
    UnknownMigration {
        /// The id given.
        id: String,
    },

    /// Another process holds the schema lock, and the operation does not
    /// wait for it.
    #[error("{}", texts::lock_held(holder, running, expires_at))]
    LockHeld {
        /// The holder, as `host:pid:random`.
        holder: String,
        /// The migration the holder is applying, if any.
        running: Option<String>,
        /// When the holder's lease ends unless renewed.
        expires_at: mongodb::bson::DateTime,
    },

    /// A migration function returned an error. It was not recorded, and no
    /// later migration ran.
    #[error("migration `{id}` failed; it was not recorded and no later migration ran")]
    MigrationFailed {
        /// The failed migration.
        id: String,
        /// What the migration function returned.
        #[source]
        source: BoxError,
    },

    /// A migration function panicked. It was not recorded, and no later
    /// migration ran.
    #[error("migration `{id}` panicked: {message}; it was not recorded and no later migration ran")]
    MigrationPanicked {
        /// The migration that panicked.
        id: String,
        /// The panic's message, when it had a textual one.
        message: String,
    },

    /// A background migration failed, in this process or another, and is
    /// not recorded: the last [`BackgroundFailure`](crate::BackgroundFailure).
    #[error("{}", texts::background_failed(id, kind, *in_a_row, by, message))]
    BackgroundFailed {
        /// The background migration that failed.
        id: String,
        /// The failure's [`kind`](Error::kind).
        kind: String,
        /// The failure and its causes, with no document value.
        message: String,
        /// Which process met it, as `host:pid`.
        by: String,
        /// How many times in a row it failed, with the same checksum.
        in_a_row: u32,
    },

    /// Preflight says a pending migration fails, and the start refuses it
    /// ([`preflight_at_start`](crate::SchemaManager::preflight_at_start)).
    #[error("{}", texts::preflight_failed(migration, code, collection, message, *others))]
    PreflightFailed {
        /// The migration.
        migration: String,
        /// The finding's code, such as `unique_duplicates`.
        code: String,
        /// The collection it is about.
        collection: String,
        /// What it means and what to do.
        message: String,
        /// How many other findings say a migration fails.
        others: usize,
    },

    /// [`wait_applied`](crate::SchemaManager::wait_applied) gave up: when
    /// its timeout passed, some migrations were still not recorded.
    #[error("{}", describe_not_applied(pending, running.as_deref(), *waited))]
    NotApplied {
        /// The migrations not recorded, in apply order.
        pending: Vec<String>,
        /// The one a holder of the lock noted as running, if any.
        running: Option<String>,
        /// How long it waited.
        waited: std::time::Duration,
    },

    /// A migration ran and its completion was fenced in the lock's ledger,
    /// but its record could not be written. The next process to take the
    /// lock writes it from the ledger, without running the migration again.
    #[error("{}", texts::record_failed(id, collection))]
    RecordFailed {
        /// The migration that ran.
        id: String,
        /// The versions collection.
        collection: String,
        /// Why the record could not be written.
        #[source]
        source: BoxError,
    },

    /// The record of a registered migration does not have the shape this
    /// crate writes. Nothing was run. (A malformed document whose `_id` is
    /// no registered id is reported as an unknown record instead.)
    #[error("{}", texts::malformed_record(collection, id, reason))]
    MalformedRecord {
        /// The versions collection.
        collection: String,
        /// The migration id, the record's `_id`.
        id: String,
        /// What is wrong with it, naming the field.
        reason: String,
    },

    /// The lock document does not have the shape this crate writes, so
    /// nobody can tell whether it is held. Nothing was run.
    #[error("{}", texts::malformed_lock(collection, reason))]
    MalformedLock {
        /// The lock collection.
        collection: String,
        /// What is wrong with it, naming the field.
        reason: String,
    },

    /// Another process held the schema lock for longer than the manager's
    /// `lock_wait_timeout`, renewing its lease all along.
    #[error("{}", texts::lock_timeout(holder, running, expires_at, waited))]
    LockTimeout {
        /// The holder, as `host:pid:random`.
        holder: String,
        /// The migration the holder is applying, if any.
        running: Option<String>,
        /// When the holder's lease ends unless renewed, by the server's clock.
        expires_at: mongodb::bson::DateTime,
        /// How long this process waited.
        waited: std::time::Duration,
    },

    /// This process's lease ended (by its own clock) or was taken over
    /// before migration `id` was fenced as complete: it is not recorded,
    /// nothing more was applied here, and the next holder runs it again.
    #[error("{}", texts::lock_lost(id))]
    LockLost {
        /// The migration that ran, or was about to, without the lock.
        id: String,
        /// The migration's own error, when it also failed.
        #[source]
        source: Option<BoxError>,
    },

    /// The lease's renewal could not start (its thread, runtime, or the
    /// client of [`SchemaManager::lease_client`](crate::SchemaManager::lease_client)).
    /// The lock was let go and nothing was applied.
    #[error("{}", texts::lease_renewal(reason))]
    LeaseRenewal {
        /// What could not be started.
        reason: String,
        /// Why, when the system or the driver said.
        #[source]
        source: Option<BoxError>,
    },

    /// The server did not answer a bookkeeping command in time. Nothing
    /// more was done.
    #[error("the server did not answer in time ({waited:?}) when trying to {action}")]
    ServerTimeout {
        /// What was being done, such as "take the schema lock".
        action: String,
        /// How long this process waited.
        waited: std::time::Duration,
    },

    /// The manager is configured in a way that cannot work. Nothing was
    /// sent to the server.
    #[error("the schema manager is misconfigured: {reason}")]
    Configuration {
        /// What is wrong and what to do instead.
        reason: String,
    },

    /// An existing index has the name or keys of a declared one but differs
    /// from it. Nothing was created.
    #[error("{}", texts::index_conflict(collection, index, existing, difference))]
    IndexConflict {
        /// The collection.
        collection: String,
        /// The declared index's name.
        index: String,
        /// The existing index's name.
        existing: String,
        /// What differs, as `field: declared X, existing Y`, separated by `; `.
        difference: String,
        /// The server's refusal.
        #[source]
        source: ServerError,
    },

    /// Two indexes declared in one call share a name or keys.
    #[error("{}", texts::repeated_index(collection, index))]
    RepeatedIndex {
        /// The collection.
        collection: String,
        /// The second declaration's name.
        index: String,
    },

    /// An index build did not end within its declaration's bound
    /// ([`EnsureIndexes::timeout`](crate::indexes::EnsureIndexes::timeout)).
    /// The server goes on; the same declaration sent again waits for it.
    #[error("{}", texts::index_build_timeout(collection, indexes, waited))]
    IndexBuildTimeout {
        /// The collection.
        collection: String,
        /// The indexes the build creates, by name.
        indexes: Vec<String>,
        /// How long this process waited.
        waited: std::time::Duration,
    },

    /// The server refused the snapshot its scratch database: the user may
    /// use certain databases only (as hosted MongoDB often grants).
    #[error("{}", texts::snapshot_unauthorized(database))]
    SnapshotUnauthorized {
        /// The scratch database.
        database: String,
        /// The server's refusal.
        #[source]
        source: ServerError,
    },

    /// A [`Backfill`](crate::data::Backfill) was built in a way that cannot
    /// run. Nothing was sent to the server.
    #[error("the backfill of `{collection}` cannot run: {reason}")]
    InvalidBackfill {
        /// The collection it would walk.
        collection: String,
        /// What is wrong and what to do instead.
        reason: String,
    },

    /// A batch of a backfill failed. The batches before it are done (and,
    /// under a manager, checkpointed): the next run continues after the
    /// last one, redoing at most this batch.
    #[error("the backfill of `{collection}` failed on {at}")]
    BackfillFailed {
        /// The collection it walks.
        collection: String,
        /// Which batch, by counts and BSON type, never by value: `its
        /// first batch`, or `its batch after 2 batches (200 documents
        /// visited, the last _id of BSON type int)`.
        at: String,
        /// The server's refusal, or the error of the batch's own function.
        #[source]
        source: BoxError,
    },

    /// A backfill batch's update got no answer or lost it (a timeout, a lost
    /// connection, a failover): it may have been applied, wholly or in part,
    /// and was not sent again (an update applied twice can change its
    /// documents twice; one [`idempotent`](crate::data::Backfill::idempotent)
    /// is). The batches before it are done; without transactions, under a
    /// manager, the checkpoint counts the runs that lost this batch's
    /// answer (see `counted`), and the next run does the batch once more.
    #[error("{}", texts::backfill_outcome_unknown(collection, at, at_most, counted))]
    BackfillOutcomeUnknown {
        /// The collection it walks.
        collection: String,
        /// Which batch, by counts and BSON type, as in
        /// [`Error::BackfillFailed`].
        at: String,
        /// How many times the batch's documents may have been changed once
        /// the next run has done it again (2 after one lost answer, one
        /// more per run that lost it too); `None` in a transaction (found
        /// committed or not) and outside a manager (no checkpoint).
        at_most: Option<u64>,
        /// `false` when this run could not save that it lost the answer (the
        /// save failed, or the lease was lost): later runs count one time
        /// fewer than the documents may have been changed, and the
        /// background task does not try again. `true` otherwise.
        counted: bool,
        /// What happened to the update.
        #[source]
        source: BoxError,
    },

    /// The server returned a backfill batch out of `_id` order (not
    /// MongoDB's binary one), so `_id > last` could pass over documents:
    /// the walk stopped before changing that batch.
    #[error("{}", texts::backfill_out_of_order(collection, at, place, before, after))]
    BackfillOutOfOrder {
        /// The collection it walks.
        collection: String,
        /// Which batch, by counts and BSON type, as in
        /// [`Error::BackfillFailed`].
        at: String,
        /// The place in the batch of the `_id` out of order, from 1.
        place: usize,
        /// The BSON type of the `_id` before it.
        before: String,
        /// The BSON type of the `_id` that came after it, though it sorts
        /// before.
        after: String,
    },

    /// The server answered a command without something this crate needs.
    #[error("the server's reply to `{command}` is unusable: {reason}")]
    UnexpectedReply {
        /// The command.
        command: String,
        /// What is missing or wrong.
        reason: String,
    },

    /// The server could not be reached, or refused this client: `failure`
    /// says how, and is the error's [`kind`](Error::kind). `{:?}` shows
    /// `action` and the driver's whole error.
    #[error("{}", connection::headline(*failure, host.as_deref(), reason))]
    ConnectionFailed {
        /// What failed.
        failure: ConnectionFailure,
        /// The host, `host:port`, when the driver named it; never the
        /// connection string's user information.
        host: Option<String>,
        /// What failed, in a few words.
        reason: String,
        /// What was being done, such as "read `schema_versions`".
        action: String,
        /// The driver's error: a [`ServerError`], or its scrubbed text when
        /// it came from reading the connection string.
        #[source]
        source: BoxError,
    },

    /// The server refused a command, or failed otherwise.
    #[error("could not {action}")]
    Database {
        /// What was being done, such as "read `schema_versions`".
        action: String,
        /// The driver's error, shown without the values it may quote.
        #[source]
        source: ServerError,
    },

    /// The connection string could not be used.
    #[error("cannot use the connection string {uri}")]
    InvalidUri {
        /// The connection string, with its user information and secret
        /// options replaced by `***`.
        uri: String,
        /// What the driver said, with every secret of the connection
        /// string scrubbed from it.
        #[source]
        source: BoxError,
    },

    /// A snapshot is not [`Snapshot::to_json`](crate::snapshot::Snapshot::to_json)'s JSON.
    #[error("the schema snapshot is malformed: {reason}")]
    MalformedSnapshot {
        /// What is wrong, and where.
        reason: String,
    },

    /// A snapshot file differs from the schema the migrations declare.
    #[error("{}", texts::snapshot_mismatch(path, diff))]
    SnapshotMismatch {
        /// The file.
        path: String,
        /// The lines that differ, as a unified diff.
        diff: String,
    },

    /// A snapshot file could not be read or written.
    #[error("could not {action} the schema snapshot {path}")]
    SnapshotFile {
        /// "read" or "write".
        action: String,
        /// The file.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}
