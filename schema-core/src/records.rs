//! What the versions collection (`schema_versions` by default) holds: one
//! document per applied migration, read and written here.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::{Collection, Database};
use tracing::warn;

use crate::error::Error;
use crate::faults::{Failure, bookkeeping, jittered, within};
use crate::lock::Completion;
use crate::registry::Migration;

/// Migrations are few, so one batch holds them all and reading them is a
/// single round trip.
const BATCH_SIZE: u32 = 100_000;

/// The longest a read of the whole collection may take: generous, since it
/// includes finding a server, but finite.
const READ_BOUND: Duration = Duration::from_secs(60);

/// One applied migration, as stored in the versions collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VersionRecord {
    /// The migration id, stored as `_id`.
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) applied_at: Option<DateTime>,
    pub(crate) duration_ms: Option<i64>,
    pub(crate) applied_by: Option<String>,
    /// The migration's checksum when it was recorded; absent in records
    /// written by other tools or earlier versions.
    pub(crate) checksum: Option<String>,
}

impl VersionRecord {
    /// The record [`Records::insert`] writes for `completion`.
    pub(crate) fn from_completion(completion: &Completion, applied_at: DateTime) -> VersionRecord {
        VersionRecord {
            id: completion.id.clone(),
            description: Some(completion.description.clone()),
            applied_at: Some(applied_at),
            duration_ms: completion.duration_ms,
            applied_by: Some(completion.applied_by.clone()),
            checksum: Some(completion.checksum.clone()),
        }
    }
}

/// What the versions collection holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Stored {
    /// The records this crate can read.
    pub(crate) records: Vec<VersionRecord>,
    /// The documents it cannot: written by hand or by another tool.
    pub(crate) malformed: Vec<Malformed>,
}

/// A document of the versions collection that is not a readable record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Malformed {
    /// Its `_id` when that is a string, as migration ids are.
    pub(crate) id: Option<String>,
    /// Its `_id` as shown in messages (the whole document without one).
    pub(crate) shown: String,
    /// What is wrong with it, naming the field.
    pub(crate) reason: String,
}

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
        let documents = within(READ_BOUND, self.read_documents())
            .await
            .map_err(|failure| failure.into_error(action))?;
        let mut stored = Stored::default();
        for document in &documents {
            match parse(document) {
                Ok(record) => stored.records.push(record),
                Err(malformed) => stored.malformed.push(malformed),
            }
        }
        Ok(stored)
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

    async fn read_documents(&self) -> mongodb::error::Result<Vec<Document>> {
        let mut cursor = self
            .collection
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .batch_size(BATCH_SIZE)
            .max_time(READ_BOUND)
            .await?;
        let mut documents = Vec::new();
        while cursor.advance().await? {
            documents.push(cursor.deserialize_current()?);
        }
        Ok(documents)
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
        let record = completion.to_record(applied_at);
        loop {
            let failure = match within(self.bound, self.collection.insert_one(record.clone())).await {
                Ok(_) => return Ok(()),
                Err(failure) if failure.is_duplicate_key() => return self.already_recorded(completion).await,
                Err(failure) => failure,
            };
            if !failure.is_transient() || !keep_trying() {
                return Err(self.record_failed(&completion.id, failure));
            }
            warn!(error = ?failure, migration.id = %completion.id, "could not record the migration; trying again");
            tokio::time::sleep(jittered(Duration::from_millis(100))).await;
        }
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

/// Reads one stored document; on failure, says which document and what is
/// wrong with it.
fn parse(document: &Document) -> Result<VersionRecord, Malformed> {
    let id = match document.get("_id") {
        Some(Bson::String(id)) => id.clone(),
        Some(other) => {
            return Err(Malformed {
                id: None,
                shown: other.to_string(),
                reason: format!("its `_id` is {}, but migration ids are strings", kind(other)),
            });
        }
        None => {
            return Err(Malformed {
                id: None,
                shown: document.to_string(),
                reason: "it has no `_id`".to_owned(),
            });
        }
    };
    let wrong = |field: &str, expected: &str, value: &Bson| Malformed {
        id: Some(id.clone()),
        shown: id.clone(),
        reason: format!("`{field}` should be {expected} but is {}", kind(value)),
    };
    let string = |field: &str| match document.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong(field, "a string", other)),
    };
    let description = string("description")?;
    let applied_by = string("applied_by")?;
    let checksum = string("checksum")?;
    let applied_at = match document.get("applied_at") {
        None | Some(Bson::Null) => None,
        Some(Bson::DateTime(at)) => Some(*at),
        Some(other) => return Err(wrong("applied_at", "a date", other)),
    };
    let duration_ms = match document.get("duration_ms") {
        None | Some(Bson::Null) => None,
        Some(Bson::Int64(ms)) => Some(*ms),
        Some(Bson::Int32(ms)) => Some(i64::from(*ms)),
        Some(other) => return Err(wrong("duration_ms", "an integer", other)),
    };
    Ok(VersionRecord {
        id,
        description,
        applied_at,
        duration_ms,
        applied_by,
        checksum,
    })
}

/// "a string", "an int32", ...: the BSON type of `value`, for messages.
fn kind(value: &Bson) -> &'static str {
    use mongodb::bson::spec::ElementType;
    match value.element_type() {
        ElementType::Double => "a double",
        ElementType::String => "a string",
        ElementType::EmbeddedDocument => "a document",
        ElementType::Array => "an array",
        ElementType::Binary => "binary data",
        ElementType::Undefined => "undefined",
        ElementType::ObjectId => "an ObjectId",
        ElementType::Boolean => "a boolean",
        ElementType::DateTime => "a date",
        ElementType::Null => "null",
        ElementType::RegularExpression => "a regular expression",
        ElementType::DbPointer => "a DBPointer",
        ElementType::JavaScriptCode | ElementType::JavaScriptCodeWithScope => "JavaScript code",
        ElementType::Symbol => "a symbol",
        ElementType::Int32 => "an int32",
        ElementType::Timestamp => "a timestamp",
        ElementType::Int64 => "an int64",
        ElementType::Decimal128 => "a decimal128",
        ElementType::MaxKey => "MaxKey",
        ElementType::MinKey => "MinKey",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;

    #[test]
    fn a_record_written_by_this_crate_parses() {
        let at = DateTime::from_millis(1_700_000_000_000);
        let record = parse(&doc! {
            "_id": "0001_events",
            "description": "events indexes",
            "applied_at": at,
            "duration_ms": 12_i64,
            "applied_by": "api-1:42",
            "a_field_from_a_later_version": true,
        })
        .unwrap();
        assert_eq!(
            record,
            VersionRecord {
                id: "0001_events".into(),
                description: Some("events indexes".into()),
                applied_at: Some(at),
                duration_ms: Some(12),
                applied_by: Some("api-1:42".into()),
                checksum: None,
            }
        );
    }

    #[test]
    fn a_minimal_record_with_only_an_id_parses() {
        let record = parse(&doc! { "_id": "0001_events" }).unwrap();
        assert_eq!(record.id, "0001_events");
        assert_eq!(record.applied_at, None);
    }

    #[test]
    fn an_id_of_another_type_is_named_in_the_error() {
        let malformed = parse(&doc! { "_id": 42 }).unwrap_err();
        assert_eq!(malformed.id, None);
        assert_eq!(malformed.shown, "42");
        assert_eq!(
            malformed.reason,
            "its `_id` is an int32, but migration ids are strings"
        );

        let oid = ObjectId::new();
        let malformed = parse(&doc! { "_id": oid }).unwrap_err();
        assert!(malformed.shown.contains(&oid.to_hex()), "{malformed:?}");
    }

    #[test]
    fn a_field_of_the_wrong_type_names_the_document_and_the_field() {
        let malformed = parse(&doc! { "_id": "0003_x", "applied_at": "yesterday" }).unwrap_err();
        assert_eq!(malformed.id.as_deref(), Some("0003_x"));
        assert_eq!(malformed.shown, "0003_x");
        assert_eq!(malformed.reason, "`applied_at` should be a date but is a string");
        let malformed = parse(&doc! { "_id": "0003_x", "duration_ms": 1.5 }).unwrap_err();
        assert_eq!(
            malformed.reason,
            "`duration_ms` should be an integer but is a double"
        );
    }

    #[test]
    fn a_document_without_id_is_shown_whole() {
        let malformed = parse(&doc! { "description": "lost" }).unwrap_err();
        assert!(malformed.shown.contains("lost"), "{malformed:?}");
        assert_eq!(malformed.reason, "it has no `_id`");
    }
}
