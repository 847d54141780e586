//! A document of the versions collection (`schema_versions` by default):
//! one per applied migration.
//!
//! ```text
//! { _id: "0003_sagas",               // the migration id
//!   description, checksum,           // of the body that ran
//!   applied_at,                      // the server's time of its fence
//!   applied_by: "host:pid",
//!   duration_ms,                     // absent when marked applied
//!   marked_applied: true }           // only when recorded without running
//! ```
//!
//! Records written by other tools or by hand may lack every field but
//! `_id`; they read with the others absent.

use mongodb::bson::{Bson, DateTime, Document, RawBsonRef, RawDocument};
use serde::{Deserialize, Serialize};

use super::lock::Completion;

/// What the versions collection holds, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Stored {
    /// The records this crate can read.
    pub(crate) records: Vec<VersionRecord>,
    /// The documents it cannot: written by hand or by another tool.
    pub(crate) malformed: Vec<Malformed>,
}

/// One applied migration, as stored in the versions collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// The migration id.
    #[serde(rename = "_id")]
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// The migration's checksum when it was recorded; absent in records
    /// written by other tools or earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) applied_at: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) applied_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration_ms: Option<i64>,
    /// Recorded without running (`mark_applied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) marked_applied: Option<bool>,
    /// For a migration declared with `transaction`: whether it committed in
    /// one transaction with this record (`false`: the server ran none, and
    /// it ran as a plain migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transaction: Option<bool>,
}

impl VersionRecord {
    /// The record of a fenced `completion`, applied at `applied_at` (the
    /// server's time of its fence).
    pub(crate) fn of(completion: &Completion, applied_at: DateTime) -> VersionRecord {
        VersionRecord {
            id: completion.id.clone(),
            description: Some(completion.description.clone()),
            checksum: Some(completion.checksum.clone()),
            applied_at: Some(applied_at),
            applied_by: Some(completion.applied_by.clone()),
            duration_ms: completion.duration_ms,
            marked_applied: completion.marked.then_some(true),
            transaction: completion.transaction,
        }
    }

    /// The document as stored.
    pub(crate) fn to_document(&self) -> Document {
        super::write_document(self)
    }
}

/// A document of the versions collection that is not a readable record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Malformed {
    /// Its `_id` when that is a string, as migration ids are.
    pub(crate) id: Option<String>,
    /// Its `_id` as shown in messages (`<no _id>` without one).
    pub(crate) shown: String,
    /// What is wrong with it, naming the field.
    pub(crate) reason: String,
}

/// Reads one stored document; on failure, says which document and what is
/// wrong with it.
pub(crate) fn read(document: &Document) -> Result<VersionRecord, Malformed> {
    let id = match document.get("_id") {
        Some(Bson::String(id)) => id.clone(),
        Some(other) => {
            return Err(Malformed {
                id: None,
                shown: other.to_string(),
                reason: format!(
                    "its `_id` is {}, but migration ids are strings",
                    super::kind(other)
                ),
            });
        }
        None => {
            return Err(Malformed {
                id: None,
                shown: "<no _id>".to_owned(),
                reason: "it has no `_id`".to_owned(),
            });
        }
    };
    super::read(document).map_err(|reason| Malformed {
        id: Some(id.clone()),
        shown: id,
        reason,
    })
}

/// The record `raw` holds, read straight from the bytes the server sent,
/// when it is one; `None` otherwise, and then [`read`] of the document
/// decides and says what is wrong. Of a document the driver can build, it
/// never reads a record [`read`] would refuse, and reads the same record
/// where both do; it also reads one the driver could not build (a field
/// this crate ignores holding a `$`-key such as `{"$numberLong": ...}`,
/// which used to fail the whole read). It only spares a start with a long
/// history building and copying each document (see "Long histories" in
/// `BENCHMARKS.md`).
///
/// Duplicate keys: `RawDocument::get` sees the first `_id` where a built
/// document keeps the last, and they agree only because the derived
/// `Deserialize` of [`VersionRecord`] refuses a repeated field, which
/// sends such a document to [`read`]; keep it derived, without `flatten`.
pub(crate) fn read_in_place(raw: &RawDocument) -> Option<VersionRecord> {
    // `read` refuses an `_id` of any other type before looking further,
    // and serde would take a binary holding UTF-8 for a string.
    if !matches!(raw.get("_id"), Ok(Some(RawBsonRef::String(_)))) {
        return None;
    }
    mongodb::bson::from_slice(raw.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use mongodb::bson::oid::ObjectId;

    #[test]
    fn a_record_written_by_this_crate_reads_back() {
        let at = DateTime::from_millis(1_700_000_000_000);
        let completion = Completion {
            id: "0001_events".into(),
            checksum: "abc".into(),
            description: "events indexes".into(),
            duration_ms: Some(12),
            applied_by: "api-1:42".into(),
            marked: false,
            transaction: None,
        };
        let record = VersionRecord::of(&completion, at);
        let stored = record.to_document();
        assert_eq!(
            stored,
            doc! {
                "_id": "0001_events", "description": "events indexes", "checksum": "abc",
                "applied_at": at, "applied_by": "api-1:42", "duration_ms": 12_i64,
            }
        );
        assert_eq!(read(&stored), Ok(record));
        let marked = VersionRecord::of(
            &Completion {
                duration_ms: None,
                marked: true,
                ..completion
            },
            at,
        )
        .to_document();
        assert_eq!(marked.get_bool("marked_applied"), Ok(true));
        assert!(marked.get("duration_ms").is_none());
    }

    /// Documents of every shape a hand or another tool may leave, each
    /// read in place and as a document: in place reads a record only
    /// where `read` reads the same one.
    #[test]
    fn reading_in_place_never_accepts_what_read_refuses() {
        use mongodb::bson::{Binary, Decimal128, Regex, Timestamp, spec::BinarySubtype};
        let at = DateTime::from_millis(1_700_000_000_000);
        let values: Vec<Bson> = vec![
            Bson::String("text".into()),
            Bson::String(String::new()),
            Bson::Int32(3),
            Bson::Int64(3),
            Bson::Int64(i64::MAX),
            Bson::Double(3.0),
            Bson::Double(1.5),
            Bson::Boolean(true),
            Bson::Null,
            Bson::Undefined,
            Bson::DateTime(at),
            Bson::Timestamp(Timestamp {
                time: 1,
                increment: 2,
            }),
            Bson::Symbol("text".into()),
            Bson::ObjectId(ObjectId::new()),
            Bson::Decimal128(Decimal128::from_bytes([0; 16])),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1, 2],
            }),
            Bson::RegularExpression(Regex {
                pattern: "a".into(),
                options: String::new(),
            }),
            Bson::MinKey,
            Bson::MaxKey,
            Bson::Array(vec![Bson::Int32(1)]),
            Bson::Document(doc! { "$date": 1_700_000_000_000_i64 }),
            Bson::Document(doc! { "$date": { "$numberLong": "1700000000000" } }),
            Bson::Document(doc! { "$numberLong": "3" }),
            Bson::Document(doc! { "$symbol": "text" }),
            Bson::Document(doc! {}),
        ];
        let full = doc! {
            "_id": "0001_events", "description": "events indexes", "checksum": "abc",
            "applied_at": at, "applied_by": "api-1:42", "duration_ms": 12_i64,
            "marked_applied": true,
        };
        let mut documents = vec![full.clone(), doc! { "_id": "0001_events" }];
        for field in full.keys() {
            for value in &values {
                let mut document = full.clone();
                document.insert(field.clone(), value.clone());
                documents.push(document);
            }
            let mut document = full.clone();
            document.remove(field);
            documents.push(document);
        }
        let mut in_place = 0;
        for document in &documents {
            let bytes = mongodb::bson::to_vec(document).unwrap();
            let raw = RawDocument::from_bytes(&bytes).unwrap();
            if let Some(record) = read_in_place(raw) {
                in_place += 1;
                assert_eq!(read(document), Ok(record), "{document:?}");
            }
        }
        // The common shapes take the short way.
        for document in [full, doc! { "_id": "0001_events" }] {
            let bytes = mongodb::bson::to_vec(&document).unwrap();
            let raw = RawDocument::from_bytes(&bytes).unwrap();
            assert!(read_in_place(raw).is_some(), "{document:?}");
        }
        assert!(in_place > 20, "{in_place} of {} read in place", documents.len());
    }

    #[test]
    fn a_record_of_a_later_version_or_with_only_an_id_reads() {
        let record =
            read(&doc! { "_id": "0001_events", "a_later_field": true, "duration_ms": 3_i32 }).unwrap();
        assert_eq!(record.duration_ms, Some(3));
        let record = read(&doc! { "_id": "0001_events" }).unwrap();
        assert_eq!(record.applied_at, None);
    }

    #[test]
    fn an_id_of_another_type_is_named_in_the_error() {
        let malformed = read(&doc! { "_id": 42 }).unwrap_err();
        assert_eq!(malformed.id, None);
        assert_eq!(malformed.shown, "42");
        assert_eq!(
            malformed.reason,
            "its `_id` is an int32, but migration ids are strings"
        );
        let oid = ObjectId::new();
        let malformed = read(&doc! { "_id": oid }).unwrap_err();
        assert!(malformed.shown.contains(&oid.to_hex()), "{malformed:?}");
        let malformed = read(&doc! { "description": "lost" }).unwrap_err();
        assert_eq!(malformed.reason, "it has no `_id`");
    }

    #[test]
    fn a_field_of_the_wrong_type_names_the_document_and_the_field() {
        let malformed = read(&doc! { "_id": "0003_x", "applied_at": "yesterday" }).unwrap_err();
        assert_eq!(malformed.id.as_deref(), Some("0003_x"));
        assert_eq!(malformed.reason, "`applied_at` should be a date but is a string");
        assert!(!malformed.reason.contains("yesterday"));
        let malformed = read(&doc! { "_id": "0003_x", "duration_ms": 1.5 }).unwrap_err();
        assert_eq!(
            malformed.reason,
            "`duration_ms` should be an integer but is a double"
        );
    }
}
