//! What the versions collection (`schema_versions` by default) holds: one
//! document per applied migration, read and written here.

use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::{CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Collection, Database};

use crate::error::Error;
use crate::registry::Migration;

/// Migrations are few, so one batch holds them all and reading them is a
/// single round trip.
const BATCH_SIZE: u32 = 100_000;

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

/// The versions collection, read and written with majority concerns so a
/// record, once seen, survives a replica-set failover.
pub(crate) struct Records {
    collection: Collection<Document>,
}

impl Records {
    pub(crate) fn new(db: &Database, name: &str) -> Records {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        Records {
            collection: db.collection_with_options(name, options),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.collection.name()
    }

    /// Every record, in `_id` order.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server cannot be read, and
    /// [`Error::MalformedRecord`] for the first document of another shape.
    pub(crate) async fn read_all(&self) -> Result<Vec<VersionRecord>, Error> {
        let failed = |source| self.failed("read", source);
        let mut cursor = self
            .collection
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .batch_size(BATCH_SIZE)
            .await
            .map_err(failed)?;
        let mut records = Vec::new();
        while cursor.advance().await.map_err(failed)? {
            let document = cursor.deserialize_current().map_err(failed)?;
            records.push(
                parse(&document).map_err(|(document, reason)| Error::MalformedRecord {
                    collection: self.name().to_owned(),
                    document,
                    reason,
                })?,
            );
        }
        Ok(records)
    }

    /// Records `id` as applied.
    ///
    /// # Errors
    ///
    /// [`Error::RecordFailed`] when the server refuses the insert, for
    /// example because a record with this id already exists.
    pub(crate) async fn insert(
        &self,
        migration: &Migration,
        duration: Duration,
        applied_by: &str,
    ) -> Result<(), Error> {
        let id = migration.id();
        let record = doc! {
            "_id": id,
            "description": migration.description(),
            "checksum": migration.checksum(),
            "applied_at": DateTime::now(),
            "duration_ms": i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            "applied_by": applied_by,
        };
        self.collection
            .insert_one(record)
            .await
            .map_err(|source| Error::RecordFailed {
                id: id.to_owned(),
                collection: self.name().to_owned(),
                source: Box::new(source),
            })?;
        Ok(())
    }
}

impl Records {
    /// Removes the record of `id`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server fails.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool, Error> {
        let result = self
            .collection
            .delete_one(doc! { "_id": id })
            .await
            .map_err(|source| self.failed(&format!("remove `{id}` from"), source))?;
        Ok(result.deleted_count == 1)
    }

    /// Records `migration` as applied without running it (a baseline).
    ///
    /// # Errors
    ///
    /// [`Error::RecordFailed`] when the server refuses the insert.
    pub(crate) async fn insert_marked(&self, migration: &Migration, applied_by: &str) -> Result<(), Error> {
        let record = doc! {
            "_id": migration.id(),
            "description": migration.description(),
            "checksum": migration.checksum(),
            "applied_at": DateTime::now(),
            "applied_by": applied_by,
            "marked_applied": true,
        };
        self.collection
            .insert_one(record)
            .await
            .map_err(|source| Error::RecordFailed {
                id: migration.id().to_owned(),
                collection: self.name().to_owned(),
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// Stores `migration`'s current checksum in its record, accepting an
    /// edit of its body.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server fails.
    pub(crate) async fn accept_checksum(&self, migration: &Migration) -> Result<(), Error> {
        self.collection
            .update_one(
                doc! { "_id": migration.id() },
                doc! { "$set": { "checksum": migration.checksum(), "checksum_accepted_at": DateTime::now() } },
            )
            .await
            .map_err(|source| self.failed(&format!("update `{}` in", migration.id()), source))?;
        Ok(())
    }

    fn failed(&self, action: &str, source: mongodb::error::Error) -> Error {
        Error::Database {
            action: format!("{action} `{}`", self.name()),
            source: Box::new(source),
        }
    }
}

/// Reads one stored document; on failure, returns how to name the document
/// and what is wrong with it.
fn parse(document: &Document) -> Result<VersionRecord, (String, String)> {
    let id = match document.get("_id") {
        Some(Bson::String(id)) => id.clone(),
        Some(other) => {
            return Err((
                other.to_string(),
                format!("its `_id` is {}, but migration ids are strings", kind(other)),
            ));
        }
        None => return Err((document.to_string(), "it has no `_id`".to_owned())),
    };
    let wrong = |field: &str, expected: &str, value: &Bson| {
        (
            format!("{:?}", id),
            format!("`{field}` should be {expected} but is {}", kind(value)),
        )
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
fn kind(value: &Bson) -> String {
    let name = format!("{:?}", value.element_type());
    let article = match name.as_bytes().first() {
        Some(b'A' | b'E' | b'I' | b'O' | b'U') => "an",
        _ => "a",
    };
    format!("{article} {}", name.to_lowercase())
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
        let (document, reason) = parse(&doc! { "_id": 42 }).unwrap_err();
        assert_eq!(document, "42");
        assert_eq!(reason, "its `_id` is an int32, but migration ids are strings");

        let oid = ObjectId::new();
        let (document, _) = parse(&doc! { "_id": oid }).unwrap_err();
        assert!(document.contains(&oid.to_hex()), "{document}");
    }

    #[test]
    fn a_field_of_the_wrong_type_names_the_document_and_the_field() {
        let (document, reason) = parse(&doc! { "_id": "0003_x", "applied_at": "yesterday" }).unwrap_err();
        assert_eq!(document, "\"0003_x\"");
        assert_eq!(reason, "`applied_at` should be a date but is a string");
        let (_, reason) = parse(&doc! { "_id": "0003_x", "duration_ms": 1.5 }).unwrap_err();
        assert_eq!(reason, "`duration_ms` should be an integer but is a double");
    }

    #[test]
    fn a_document_without_id_is_shown_whole() {
        let (document, reason) = parse(&doc! { "description": "lost" }).unwrap_err();
        assert!(document.contains("lost"), "{document}");
        assert_eq!(reason, "it has no `_id`");
    }
}
