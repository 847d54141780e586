//! Versioned MongoDB schema migrations (indexes, validators, TTL policies),
//! declared as annotated async functions and applied when a process starts.
//!
//! Each migration is an `async fn` marked with [`#[migration]`](migration).
//! [`SchemaManager::apply_all`] collects every migration linked into the
//! binary, orders them by their `after` dependencies, runs those missing
//! from the `schema_versions` collection and records each one it runs.
//!
//! ```no_run
//! use schema_core::mongodb::bson::{Document, doc};
//! use schema_core::mongodb::{Database, IndexModel};
//! use schema_core::{SchemaManager, migration};
//!
//! /// Events are looked up by their id
//! #[migration(id = "0001_events")]
//! async fn events(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
//!     let unique = IndexModel::builder().keys(doc! { "event_id": 1 }).build();
//!     db.collection::<Document>("events").create_index(unique).await?;
//!     Ok(())
//! }
//!
//! /// Expire events after thirty days
//! #[migration(id = "0002_events_ttl", after = "0001_events")]
//! async fn events_ttl(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
//!     let options = schema_core::mongodb::options::IndexOptions::builder()
//!         .expire_after(std::time::Duration::from_secs(30 * 24 * 3600))
//!         .build();
//!     let ttl = IndexModel::builder().keys(doc! { "timestamp": 1 }).options(options).build();
//!     db.collection::<Document>("events").create_index(ttl).await?;
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let connection = schema_core::connect("mongodb://localhost:27017/app", "app").await?;
//!     let report = connection.manager().apply_all().await;
//!     // Close the client while the runtime still runs.
//!     connection.shutdown().await;
//!     let report = report?;
//!     println!("applied {:?}, already applied {:?}", report.applied, report.already_applied);
//!     Ok(())
//! }
//! ```
//!
//! # Layout
//!
//! What an application uses: [`migration`] and [`Migrations`] (what it
//! declares), [`SchemaManager`] (what it runs at start), [`indexes`] and
//! [`set_validator`] (what its migrations call), [`data`] (backfills that
//! resume after a crash), [`connect`], [`fleet`] (one set over many tenant
//! databases), and with features `cli` and
//! `testing` a command line and test support. Inside, the crate is built in
//! layers (errors and retries; declarations; stored documents; assessment;
//! the records and the lock; backfills; the engine; the manager), each
//! importing only from those below it: `ARCHITECTURE.md` in the repository
//! draws them.
//!
//! # Failures
//!
//! Problems with the declared set (duplicate ids, unknown dependencies,
//! cycles) and with the configuration are reported before anything is sent
//! to the server. Each migration is recorded exactly once, also when
//! processes die, pause or lose the server; one that was cut off runs
//! again under the next holder of the lock, so migrations should be
//! idempotent. A failing or
//! panicking migration stops the run and is not recorded; the migrations
//! before it stay recorded. Every error is an [`Error`] variant naming what
//! to look at. A panic is caught only when the binary unwinds on panic (the
//! default); with `panic = "abort"` the process ends.

// The layers, from the ground up: each imports only from those before it
// (ARCHITECTURE.md draws them).

// 1. Errors, bounds and retries, redaction.
mod support;

// 2. What the application declares: registry, sets, order, helpers, and
//    the snapshot of the schema they declare.
mod declare;

// 3. The documents kept in MongoDB.
mod stored;

// 4. Judging the declared set against the records, and a live database
//    against a snapshot, without I/O.
mod assess;

// 5. I/O: the versions collection, the locks, the last background
//    failure, and reading a live schema.
mod failures;
mod live;
mod lock;
mod probes;
mod records;

// 6. Backfills, checkpointed under the lock.
pub mod data;

// 7. Running migrations under the lock.
mod engine;

// 8. The manager: each operation a short script.
mod manager;

// 9. The faces: the command line, tests, opening a connection, fleets of
//    databases.
#[cfg(feature = "cli")]
pub mod cli;
mod connect;
pub mod fleet;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

// The README's Rust examples, compiled as doctests so they stay correct.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

pub use assess::commit_quorum::CommitQuorumWait;
pub use assess::policy::Policy;
pub use assess::progress::{BackgroundFailure, BackgroundTask, IndexBuild};
pub use assess::report::{ApplyReport, ForgetReport, Interrupted, MarkReport};
pub use assess::status::{LockStatus, Locks, MigrationStatus, State, Status, UnknownRecord};
pub use connect::{Connection, connect};
pub use declare::heard::{CommandPlan, MigrationCommands};
pub use declare::indexes;
pub use declare::registry::{DEFAULT_GROUP, Migration};
pub use declare::set::Migrations;
pub use declare::validator::{Validator, set_validator};
pub use manager::SchemaManager;
pub use stored::lock::Lane;

/// The declared schema as a file to review, and a live database held
/// against it.
///
/// [`SchemaManager::snapshot`] takes the [`Snapshot`](snapshot::Snapshot)
/// of what the migrations declare (their indexes and validators, in
/// canonical JSON to check in), and [`SchemaManager::verify`] compares a
/// live database with one: the [`Drift`](snapshot::Drift) lists what is
/// missing, extra or changed. `schema_core::testing::check_snapshot` keeps
/// the checked-in file current in a test.
///
/// A migration that changes the schema with a raw command instead of a
/// helper says what it did with the `declare_*` functions, so that the
/// snapshot stays complete.
pub mod snapshot {
    pub use crate::assess::drift::{Difference, Drift, Subject};
    pub use crate::declare::snapshot::{
        Collection, Snapshot, declare_dropped_collection, declare_dropped_index, declare_indexes,
        declare_validator,
    };
}
/// What pending migrations will do to a live database, before they run.
///
/// [`SchemaManager::preflight`] learns what each pending migration
/// declares (as a snapshot does) and probes the live database, read-only:
/// each [`Finding`](preflight::Finding) has a stable
/// [`Code`](preflight::Code), a [`Severity`](preflight::Severity), the
/// collection and a count, never a document's value. A migration accepts a
/// finding its team has weighed with `#[migration(accept = "code")]`.
pub mod preflight {
    pub use crate::assess::preflight::{Code, Finding, Inconclusive, PreflightReport, Severity};
    pub use crate::manager::PreflightOptions as Options;
}
pub use schema_macros::migration;
#[cfg(feature = "testing")]
pub use schema_macros::test;
pub use support::error::{BoxError, ConnectionFailure, Error, ServerError};
pub use support::location::Location;
pub use support::redact::redact;

/// The MongoDB driver this crate is built on, so an application can name
/// `schema_core::mongodb::Database` without a dependency of its own.
pub use mongodb;
