//! Data migrations: batched backfills that resume where they stopped.
//!
//! A [`Backfill`] inside a migration walks the documents matching a filter
//! in `_id` order, one batch at a time: it reads the next batch's `_id`s
//! after the last one done, then changes exactly those documents, with one
//! `updateMany` ([`Backfill::update`]) or a function of its own
//! ([`Backfill::for_each_batch`]).
//!
//! ```no_run
//! use schema_core::data::Backfill;
//! use schema_core::mongodb::{Database, bson::doc};
//! use schema_core::{Error, migration};
//!
//! /// Every event has a status
//! #[migration(id = "0010_events_status")]
//! async fn events_status(db: &Database) -> Result<(), Error> {
//!     Backfill::new(db, "events")
//!         .filter(doc! { "status": { "$exists": false } })
//!         .update(doc! { "$set": { "status": "pending" } })
//!         .batch_size(1_000)
//!         .run()
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! # Under the lock, and after a crash
//!
//! When the migration runs under [`SchemaManager`](crate::SchemaManager),
//! each batch is followed by a checkpoint (the last `_id` done and the
//! counts) saved in the schema lock, in one write that only the lease's
//! holder can make, like the fence of a completion. A process that dies or
//! is paused past its lease moves no checkpoint after that; the process
//! that takes the lock over runs the migration again, and its backfill
//! continues after the checkpoint. What that guarantees depends on the
//! server:
//!
//! | server | a batch of [`update`](Backfill::update) is applied |
//! | --- | --- |
//! | replica set or sharded cluster, under a manager | **exactly once**: the batch's `updateMany` and its checkpoint are one transaction, whose checkpoint write is fenced by the lease: a process that lost the lock cannot apply a batch, and a transaction whose commit reply was lost is settled by reading the lock back before the batch is tried again |
//! | standalone, or outside a manager | **once, and once more by each run that stopped in it**: the batch under way when the holder died is done again by the next holder; an update whose outcome is unknown (its reply lost, no answer within the lease) is never sent again as if it had not run: the backfill stops with [`Error::BackfillOutcomeUnknown`](crate::Error::BackfillOutcomeUnknown) naming the batch, the checkpoint counts the runs that lost that batch's answer, the error says how many times its documents may have been changed (or, when that count could not be saved, that later runs count one such run fewer), and the next run does it once more |
//!
//! An update declared [`idempotent`](Backfill::idempotent) is sent again
//! when its outcome is unknown, on any server. The function form
//! ([`for_each_batch`](Backfill::for_each_batch)) writes what it writes:
//! its batch is done once more by each run that stopped in it, everywhere,
//! and its errors stop the walk.
//!
//! - **Every command is bounded**: by the lease under a manager, by a
//!   minute outside one. A read that fails or times out is tried again; a
//!   reply that never comes does not hold the lock for ever.
//! - **The order is checked**: each batch's `_id`s must come back strictly
//!   increasing in MongoDB's order and after the last one done, under the
//!   simple (binary) collation the walk asks for whatever the collection's
//!   default wherever a collation could change the comparison (a string in
//!   the filter or in the `_id` range); a server that returns them
//!   otherwise stops the walk with [`Error::BackfillOutOfOrder`](crate::Error::BackfillOutOfOrder) before
//!   that batch is changed, instead of skipping documents without a word.
//!   Every type an `_id` can have is walked, `NaN` and JavaScript code
//!   included; one the walk cannot place stops it with
//!   [`Error::BackfillFailed`](crate::Error::BackfillFailed).
//! - **No `_id` is shown**: errors, logs and status say where a backfill
//!   stands by batches, documents and the BSON type of its last `_id`, since
//!   an `_id` can be an e-mail or another natural key.
//! - **On a collection with a default collation** the `_id` index has that
//!   collation. Reads after a number, an ObjectId, a date or another `_id`
//!   no collation compares, with a filter that holds no string, go without
//!   the simple collation, so the index serves them; reads after a string
//!   or a document `_id` there keep it (a later document may hold a
//!   string), and each may scan the keys left.
//! - **Documents inserted meanwhile** with an `_id` below the position are
//!   not visited. ObjectIds grow, so documents inserted with new ObjectIds
//!   are.
//! - The checkpoints go when the migration is fenced as complete. A
//!   migration that fails keeps them with the lock, so the next start
//!   resumes too. Editing the migration's body (its checksum) starts its
//!   backfills again from the beginning.
//!
//! A backfill run outside a managed migration (a plain test calling the
//! function, or a task the migration spawned) runs without checkpoints.
//!
//! # Progress
//!
//! At start, the expected total (`countDocuments` of the filter, or
//! `estimatedDocumentCount` without one). `countDocuments` runs as a
//! `$match` stage, which refuses `$where`, `$near` and `$nearSphere`: with
//! those in the filter the backfill runs without a total. At the start, after every batch
//! and at the end, [`Progress`] goes to the manager's
//! [`on_progress`](crate::SchemaManager::on_progress) observers, and at
//! most every five seconds to the log (a `tracing` event
//! with done, total, rate and time left). [`SchemaManager::status`] and
//! [`SchemaManager::lock_status`] show the checkpoints of a backfill under
//! way: by whom, how far, since when.
//!
//! [`SchemaManager::status`]: crate::SchemaManager::status
//! [`SchemaManager::lock_status`]: crate::SchemaManager::lock_status

mod batches;
mod context;
mod order;
mod progress;
mod run;
mod transaction;
mod walk;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{CollectionOptions, ReadPreference, SelectionCriteria, UpdateModifications};
use mongodb::{Collection, Database};

pub use crate::assess::status::BackfillStatus;
pub(crate) use context::{Managed, scope};
pub(crate) use progress::Observer;
pub use progress::Progress;

use crate::support::error::BoxError;

/// A batched walk over the documents of one collection that match a filter,
/// changing them batch by batch; see the [module](self) for how it resumes.
///
/// Built with [`new`](Backfill::new), given what to do with
/// [`update`](Backfill::update) or [`for_each_batch`](Backfill::for_each_batch),
/// and started with [`run`](Backfill::run).
#[must_use = "a backfill does nothing until it is run"]
pub struct Backfill<'a> {
    collection: Collection<Document>,
    filter: Document,
    work: Option<Work<'a>>,
    batch_size: u32,
    max_per_second: Option<u32>,
    name: Option<String>,
    log_every: Duration,
    idempotent: bool,
}

type BatchFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

enum Work<'a> {
    Update(UpdateModifications),
    EachBatch(Box<dyn FnMut(Collection<Document>, Vec<Bson>) -> BatchFuture<'a> + Send + 'a>),
}

/// What a [`Backfill`] did, counted over every process that worked on it
/// when it resumed from a checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct BackfillReport {
    /// The collection it walked.
    pub collection: String,
    /// Documents handed to batches.
    pub visited: u64,
    /// Documents the updates matched (the [`update`](Backfill::update)
    /// form only; they may have stopped matching the filter since they
    /// were read).
    pub matched: Option<u64>,
    /// Documents the updates changed (the [`update`](Backfill::update)
    /// form only).
    pub modified: Option<u64>,
    /// Batches done.
    pub batches: u64,
    /// Documents an earlier run had done when this one resumed from its
    /// checkpoint; `None` when it started from the beginning.
    pub resumed_from: Option<u64>,
    /// How long this run took. In JSON, `elapsed_ms`.
    #[serde(rename = "elapsed_ms", serialize_with = "crate::support::json::millis")]
    pub elapsed: Duration,
}

impl<'a> Backfill<'a> {
    /// How many documents a batch holds unless
    /// [`batch_size`](Backfill::batch_size) says otherwise: 1,000.
    pub const DEFAULT_BATCH_SIZE: u32 = 1_000;

    /// How often progress is logged unless
    /// [`log_every`](Backfill::log_every) says otherwise: five seconds.
    pub const DEFAULT_LOG_EVERY: Duration = Duration::from_secs(5);

    /// A backfill of every document of `collection` in `db`, until
    /// [`filter`](Backfill::filter) narrows it. It reads the primary,
    /// whatever read preference `db` has: a lagging secondary would hide
    /// documents written before the migration started.
    pub fn new(db: &Database, collection: &str) -> Backfill<'a> {
        let primary = CollectionOptions::builder()
            .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            .build();
        Backfill {
            collection: db.collection_with_options(collection, primary),
            filter: Document::new(),
            work: None,
            batch_size: Self::DEFAULT_BATCH_SIZE,
            max_per_second: None,
            name: None,
            log_every: Self::DEFAULT_LOG_EVERY,
            idempotent: false,
        }
    }

    /// Visits only the documents matching `filter` when their batch is
    /// read, and changes them only if they still match when it is updated.
    pub fn filter(mut self, filter: Document) -> Backfill<'a> {
        self.filter = filter;
        self
    }

    /// Changes each batch with one `updateMany` of `update` (an update
    /// document such as `{ "$set": ... }`, or an aggregation pipeline on
    /// servers that take one) on exactly its `_id`s and the filter.
    pub fn update(mut self, update: impl Into<UpdateModifications>) -> Backfill<'a> {
        self.work = Some(Work::Update(update.into()));
        self
    }

    /// Changes each batch with `work`, for what one update cannot express
    /// (reading each document, writing to another collection). It is given
    /// the collection and the batch's `_id`s, in order; the documents may
    /// have stopped matching the filter since they were read.
    ///
    /// ```no_run
    /// # async fn split(db: &schema_core::mongodb::Database) -> Result<(), schema_core::Error> {
    /// use schema_core::data::Backfill;
    /// use schema_core::mongodb::bson::{Document, doc};
    ///
    /// Backfill::new(db, "users")
    ///     .filter(doc! { "name": { "$exists": true }, "first_name": { "$exists": false } })
    ///     .for_each_batch(|users, ids| async move {
    ///         let mut cursor = users.find(doc! { "_id": { "$in": ids } }).await?;
    ///         while cursor.advance().await? {
    ///             let user: Document = cursor.deserialize_current()?;
    ///             let name = user.get_str("name").unwrap_or_default();
    ///             let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    ///             users
    ///                 .update_one(
    ///                     doc! { "_id": user.get("_id").cloned() },
    ///                     doc! { "$set": { "first_name": first, "last_name": last } },
    ///                 )
    ///                 .await?;
    ///         }
    ///         Ok::<(), schema_core::mongodb::error::Error>(())
    ///     })
    ///     .run()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn for_each_batch<F, Fut, E>(mut self, mut work: F) -> Backfill<'a>
    where
        F: FnMut(Collection<Document>, Vec<Bson>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<(), E>> + Send + 'a,
        E: Into<BoxError>,
    {
        self.work = Some(Work::EachBatch(Box::new(move |collection, ids| {
            let batch = work(collection, ids);
            Box::pin(async move { batch.await.map_err(Into::into) })
        })));
        self
    }

    /// How many documents each batch holds
    /// ([`DEFAULT_BATCH_SIZE`](Backfill::DEFAULT_BATCH_SIZE) by default). Each
    /// batch costs a read, its update and, under a manager, a checkpoint;
    /// after a crash one batch is done again (once more for each crash in
    /// the same batch). The update names every `_id` of its batch, so keep
    /// batches in the thousands, well within a command's 16 MB.
    pub fn batch_size(mut self, batch_size: u32) -> Backfill<'a> {
        self.batch_size = batch_size;
        self
    }

    /// Keeps the walk at or below `documents` a second on average, by
    /// waiting before a batch that would go faster. Unlimited by default.
    pub fn max_per_second(mut self, documents: u32) -> Backfill<'a> {
        self.max_per_second = Some(documents);
        self
    }

    /// Names the backfill's checkpoint: needed only to tell apart two
    /// backfills of one collection in one migration whose order can change.
    /// By default it is the collection's name, with `#2`, `#3`... for the
    /// second and later backfills of that collection in the migration.
    pub fn name(mut self, name: impl Into<String>) -> Backfill<'a> {
        self.name = Some(name.into());
        self
    }

    /// Declares that the [`update`](Backfill::update) gives the same result
    /// applied twice as once (`$set` of a constant, or a filter the update
    /// makes false), so that an update whose outcome is unknown (its reply
    /// lost, a failover in the middle of it) may be sent again. Without it,
    /// such an update is never sent again as if it had not run: the
    /// backfill stops, naming the batch, and the next run does that batch
    /// once more.
    pub fn idempotent(mut self, idempotent: bool) -> Backfill<'a> {
        self.idempotent = idempotent;
        self
    }

    /// How often progress goes to the log
    /// ([`DEFAULT_LOG_EVERY`](Backfill::DEFAULT_LOG_EVERY) by default); the
    /// manager's observer hears of every batch.
    pub fn log_every(mut self, every: Duration) -> Backfill<'a> {
        self.log_every = every;
        self
    }
}

impl std::fmt::Debug for Backfill<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Backfill")
            .field("collection", &self.collection.name())
            .field("filter", &self.filter)
            .field("batch_size", &self.batch_size)
            .field("max_per_second", &self.max_per_second)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// An observer of every batch, for
/// [`SchemaManager::on_progress`](crate::SchemaManager::on_progress).
pub(crate) fn observer(observe: impl Fn(&Progress) + Send + Sync + 'static) -> Observer {
    Observer(Arc::new(observe))
}
