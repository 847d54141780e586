//! What the versions collection (`schema_versions` by default) holds: one
//! document per applied migration, read and written here.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::{ClientSession, Collection, Database};
use tracing::warn;

use crate::declare::registry::Migration;
use crate::stored::lock::Completion;
use crate::stored::record::{self, Malformed, Stored, VersionRecord};
use crate::support::error::Error;
use crate::support::faults::{Failure, bookkeeping, within};
use crate::support::retry::Attempts;

/// Migrations are few, so one batch holds them all and reading them is a
/// single round trip.
const BATCH_SIZE: u32 = 100_000;

/// The longest a read of the whole collection may take: generous, since it
/// includes finding a server, but finite.
const READ_BOUND: Duration = Duration::from_secs(60);

/// The versions collection, read on the primary with majority read concern
/// and written with majority writes, so a record, once seen, survives a
/// replica-set failover, and no stale secondary hides one.
pub(crate) struct Records {
    collection: Collection<Document>,
    /// How long one write may take.
    bound: Duration,
}

impl Records {
    pub(crate) fn new(db: &Database, name: &str, bound: Duration) -> Records {
        Records {
            collection: bookkeeping(db, name, bound),
            bound,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.collection.name()
    }

    /// Every document, in `_id` order: the records, and apart from them
    /// the documents that are not records this crate can read.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be read, and
    /// [`Error::ServerTimeout`] when it does not answer in time.
    pub(crate) async fn read_all(&self) -> Result<Stored, Error> {
        let action = format!("read `{}`", self.name());
        within(READ_BOUND, self.read_documents())
            .await
            .map_err(|failure| failure.into_error(action))
    }

    /// The error for a malformed document that is a registered migration's
    /// record.
    pub(crate) fn malformed(&self, malformed: &Malformed) -> Error {
        Error::MalformedRecord {
            collection: self.name().to_owned(),
            id: malformed.shown.clone(),
            reason: malformed.reason.clone(),
        }
    }

    /// Reads each document where it lies in the server's reply when it is
    /// a well-formed record, the common case; only the others are built
    /// as documents, for [`record::read`] to read them or say what is
    /// wrong with them.
    async fn read_documents(&self) -> mongodb::error::Result<Stored> {
        let mut cursor = self
            .collection
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .batch_size(BATCH_SIZE)
            .max_time(READ_BOUND)
            .await?;
        let mut stored = Stored::default();
        while cursor.advance().await? {
            let read = match record::read_in_place(cursor.current()) {
                Some(record) => Ok(record),
                None => record::read(&cursor.deserialize_current()?),
            };
            match read {
                Ok(record) => stored.records.push(record),
                Err(malformed) => stored.malformed.push(malformed),
            }
        }
        Ok(stored)
    }

    /// Records a fenced completion, applied at `applied_at` (the fence's
    /// server time). A record that already exists is fine: a process that
    /// took over, or this one before a lost reply, wrote it from the same
    /// ledger. Transient failures are retried while `keep_trying` says so.
    ///
    /// # Errors
    ///
    /// [`Error::RecordFailed`] when the server refuses the insert, or when
    /// it failed and `keep_trying` said to stop.
    pub(crate) async fn insert(
        &self,
        completion: &Completion,
        applied_at: DateTime,
        keep_trying: impl Fn() -> bool,
    ) -> Result<(), Error> {
        let record = VersionRecord::of(completion, applied_at).to_document();
        let inserted = Attempts::while_live(Duration::from_millis(100))
            .run(
                keep_trying,
                Failure::is_transient,
                |failure, _| {
                    warn!(error = ?failure, migration.id = %completion.id, "could not record the migration; trying again");
                },
                |_| within(self.bound, self.collection.insert_one(record.clone())),
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(failure) if failure.is_duplicate_key() => self.already_recorded(completion).await,
            Err(failure) => Err(self.record_failed(&completion.id, failure)),
        }
    }

    /// Inserts the record of `completion`, applied at `applied_at`, inside
    /// the transaction of `session`, given up on after `bound`: it lands if
    /// and when the transaction commits. Sent once: a failure aborts the
    /// transaction, which is tried again whole.
    ///
    /// # Errors
    ///
    /// The insert's failure (a duplicate key among them: recorded by
    /// another holder, which the fence in the same transaction would not
    /// have let happen).
    pub(crate) async fn insert_in(
        &self,
        completion: &Completion,
        applied_at: DateTime,
        session: &mut ClientSession,
        bound: Duration,
    ) -> Result<(), Failure> {
        let record = VersionRecord::of(completion, applied_at).to_document();
        let insert = self.collection.insert_one(record).session(session);
        within(bound.min(self.bound), insert).await.map(drop)
    }

    /// A record of `completion` exists: the same one, or (rarely) one with
    /// another checksum, which the next status reports as drift.
    async fn already_recorded(&self, completion: &Completion) -> Result<(), Error> {
        let found = within(
            self.bound,
            self.collection.find_one(doc! { "_id": &completion.id }),
        )
        .await
        .map_err(|failure| self.record_failed(&completion.id, failure))?;
        let checksum = found.as_ref().and_then(|record| record.get_str("checksum").ok());
        if checksum != Some(completion.checksum.as_str()) {
            warn!(
                migration.id = %completion.id,
                recorded = checksum.unwrap_or("none"),
                completed = %completion.checksum,
                "the migration was already recorded with another checksum; keeping that record"
            );
        }
        Ok(())
    }

    fn record_failed(&self, id: &str, failure: Failure) -> Error {
        Error::RecordFailed {
            id: id.to_owned(),
            collection: self.name().to_owned(),
            source: failure.into_source(format!("insert into `{}`", self.name())),
        }
    }
}

impl Records {
    /// Removes the record of `id`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server fails, [`Error::ServerTimeout`]
    /// when it does not answer in time.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool, Error> {
        let result = within(self.bound, self.collection.delete_one(doc! { "_id": id }))
            .await
            .map_err(|failure| failure.into_error(format!("remove `{id}` from `{}`", self.name())))?;
        Ok(result.deleted_count == 1)
    }

    /// Removes the document whose `_id` is `id`: a string, or failing that
    /// the integer or ObjectId `id` reads as. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// As [`delete`](Records::delete).
    pub(crate) async fn delete_any(&self, id: &str) -> Result<bool, Error> {
        if self.delete(id).await? {
            return Ok(true);
        }
        let other = if let Ok(number) = id.parse::<i64>() {
            Bson::Int64(number)
        } else if let Ok(oid) = mongodb::bson::oid::ObjectId::parse_str(id) {
            Bson::ObjectId(oid)
        } else {
            return Ok(false);
        };
        let result = within(self.bound, self.collection.delete_one(doc! { "_id": other }))
            .await
            .map_err(|failure| failure.into_error(format!("remove `{id}` from `{}`", self.name())))?;
        Ok(result.deleted_count == 1)
    }

    /// Stores `migration`'s current checksum in its record, accepting an
    /// edit of its body, with the server's time of the acceptance.
    ///
    /// # Errors
    ///
    /// As [`delete`](Records::delete).
    pub(crate) async fn accept_checksum(&self, migration: &Migration) -> Result<(), Error> {
        let update = doc! {
            "$set": { "checksum": migration.checksum() },
            "$currentDate": { "checksum_accepted_at": true },
        };
        within(
            self.bound,
            self.collection.update_one(doc! { "_id": migration.id() }, update),
        )
        .await
        .map_err(|failure| failure.into_error(format!("update `{}` in `{}`", migration.id(), self.name())))?;
        Ok(())
    }
}
