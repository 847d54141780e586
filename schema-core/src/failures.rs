//! The last failure of a background migration
//! ([`stored::failure`](crate::stored::failure)): noted by the background
//! task that met it, read by every process's waiters, status and task,
//! removed once its migration is recorded or forgotten.

use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use tracing::warn;

use crate::declare::registry::Migration;
use crate::stored::failure::{self as format, FailureDocument};
use crate::support::error::Error;
use crate::support::faults::{bookkeeping, within};

/// How many times noting a failure is tried when another process notes
/// the first failure of the same migration at the same moment.
const NOTE_ATTEMPTS: usize = 3;

/// The failure document of one versions collection.
pub(crate) struct Failures {
    collection: Collection<Document>,
    key: String,
    /// How long one command may take.
    bound: Duration,
}

/// A failure as the background task met it, to be noted.
pub(crate) struct Met<'a> {
    pub(crate) migration: &'a Migration,
    pub(crate) kind: &'a str,
    pub(crate) message: &'a str,
    /// `host:pid`.
    pub(crate) by: &'a str,
    /// The pause after the first failure in a row.
    pub(crate) pause: Duration,
}

impl Failures {
    pub(crate) fn new(db: &Database, lock_collection: &str, versions: &str, bound: Duration) -> Failures {
        Failures {
            collection: bookkeeping(db, lock_collection, bound),
            key: format::key(versions),
            bound,
        }
    }

    /// The last failure noted, if any. A document of another shape is
    /// none, with a warning: a report must not stop the work it reports on.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn read(&self) -> Result<Option<FailureDocument>, Error> {
        let read = self.collection.find_one(doc! { "_id": &self.key });
        let document = within(self.bound, read)
            .await
            .map_err(|failure| failure.into_error("read the last background failure"))?;
        Ok(document.and_then(|document| self.parse(&document)))
    }

    /// Notes `met` as the last failure: one more in a row when the last was
    /// of the same migration and checksum, else the first. Returns the
    /// failure as noted.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn note(&self, met: &Met<'_>) -> Result<FailureDocument, Error> {
        let action = "note the background failure where every process reads it";
        let (id, checksum) = (met.migration.id(), met.migration.checksum());
        let report = doc! {
            "kind": met.kind,
            "message": met.message,
            "by": met.by,
            "pause_ms": crate::support::convert::millis(met.pause),
        };
        for _ in 0..NOTE_ATTEMPTS {
            // Another of the same: one more in a row.
            let again = self
                .collection
                .find_one_and_update(
                    doc! { "_id": &self.key, "id": id, "checksum": checksum },
                    doc! {
                        "$set": report.clone(),
                        "$currentDate": { "at": true },
                        "$inc": { "in_a_row": 1_i64 },
                    },
                )
                .return_document(ReturnDocument::After);
            if let Some(noted) = within(self.bound, again)
                .await
                .map_err(|failure| failure.into_error(action))?
            {
                return self.parse(&noted).ok_or_else(|| self.unreadable());
            }
            // The first: over another migration's, or none. Two processes
            // noting the first at once: the unique `_id` refuses one insert,
            // which then counts itself in a row with the other.
            let mut first = report.clone();
            first.insert("id", id);
            first.insert("checksum", checksum);
            first.insert("in_a_row", 1_i64);
            let replace = self
                .collection
                .find_one_and_update(
                    doc! {
                        "_id": &self.key,
                        "$or": [ { "id": { "$ne": id } }, { "checksum": { "$ne": checksum } } ],
                    },
                    doc! { "$set": first, "$currentDate": { "at": true } },
                )
                .upsert(true)
                .return_document(ReturnDocument::After);
            match within(self.bound, replace).await {
                Ok(Some(noted)) => return self.parse(&noted).ok_or_else(|| self.unreadable()),
                Ok(None) => return Err(self.unreadable()),
                Err(failure) if failure.is_duplicate_key() => continue,
                Err(failure) => return Err(failure.into_error(action)),
            }
        }
        Err(Error::UnexpectedReply {
            command: "findAndModify".to_owned(),
            reason: format!(
                "the last background failure changed under each of {NOTE_ATTEMPTS} attempts to note it"
            ),
        })
    }

    /// Removes the last failure when it is of one of `ids`: they are
    /// recorded, or forgotten.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] and [`Error::ServerTimeout`].
    pub(crate) async fn clear(&self, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let removal = self
            .collection
            .delete_one(doc! { "_id": &self.key, "id": { "$in": ids } });
        within(self.bound, removal)
            .await
            .map_err(|failure| failure.into_error("remove the last background failure"))?;
        Ok(())
    }

    fn parse(&self, document: &Document) -> Option<FailureDocument> {
        match crate::stored::read(document) {
            Ok(failure) => Some(failure),
            Err(reason) => {
                warn!(
                    collection = self.collection.name(),
                    %reason,
                    "the last background failure has another shape; it is not shown"
                );
                None
            }
        }
    }

    fn unreadable(&self) -> Error {
        Error::UnexpectedReply {
            command: "findAndModify".to_owned(),
            reason: format!(
                "the failure noted in `{}` did not read back as one",
                self.collection.name()
            ),
        }
    }
}
