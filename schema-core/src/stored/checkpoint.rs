//! Where a backfill stands: kept in the lock document's `checkpoints`, so
//! that only the lease's holder moves it (see [`crate::lock`]), and read by
//! the backfill that resumes from it (see [`crate::data`]).
//!
//! ```text
//! checkpoints: [ { migration: "0010_events_status", checksum, // the body that saved it
//!                  key: "events",          // which backfill of the migration
//!                  collection: "events",
//!                  position: <_id>,        // the last _id done (null too); absent before the first batch
//!                  visited, matched, modified, batches, total,
//!                  unanswered,             // runs that lost the answer to the next batch's update
//!                  started_at, by: "host:pid" } ]
//! ```
//!
//! The position is an `_id` of the collection, which may be a person's
//! e-mail or another natural key: it is read back by the walk and never
//! shown; status shows its BSON type.
//!
//! A checkpoint saved by another body of the migration (its checksum
//! differs) is not resumed from: the backfill starts again.

use mongodb::bson::{Bson, DateTime};
use serde::{Deserialize, Serialize};

use super::saturating;

/// Where one backfill of a migration stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The migration whose body runs the backfill.
    pub(crate) migration: String,
    /// That body's checksum.
    pub(crate) checksum: String,
    /// Which backfill of the migration this is: its name, or its
    /// collection, with `#2`, `#3`... for later ones on the same key.
    pub(crate) key: String,
    pub(crate) collection: String,
    /// The last `_id` done; `None` before the first batch. An `_id` of
    /// `null` is a position like any other: stored as `null`, while `None`
    /// is stored as no field at all (one stored as `null` before the first
    /// batch, by an earlier version, reads back as `None`: see
    /// [`Checkpoint::resumed`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) position: Option<Bson>,
    /// Documents handed to batches so far.
    #[serde(default, with = "saturating")]
    pub(crate) visited: u64,
    /// What the server reported for the update form, summed.
    #[serde(default, with = "saturating::option")]
    pub(crate) matched: Option<u64>,
    #[serde(default, with = "saturating::option")]
    pub(crate) modified: Option<u64>,
    #[serde(default, with = "saturating")]
    pub(crate) batches: u64,
    /// The documents expected when it started.
    #[serde(default, with = "saturating::option")]
    pub(crate) total: Option<u64>,
    /// How many runs sent the update of the batch after `position` and got
    /// no answer, on a server without transactions: each may have applied
    /// it. Back to 0 once a run has done that batch.
    #[serde(default, with = "saturating")]
    pub(crate) unanswered: u64,
    /// When it started, by the server's clock; known after the first save.
    #[serde(default)]
    pub(crate) started_at: Option<DateTime>,
    /// `host:pid` of the process that saved it last.
    pub(crate) by: String,
}

/// A field that is there, whatever its value: `null` too.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Bson>, D::Error> {
    Bson::deserialize(deserializer).map(Some)
}

impl Checkpoint {
    /// This checkpoint as a backfill resumes from it: a position saved
    /// before the first batch (`null` by an earlier version of this
    /// format) is no position.
    pub(crate) fn resumed(mut self) -> Checkpoint {
        if self.batches == 0 {
            self.position = None;
        }
        self
    }

    /// The position of a backfill outside any managed migration, which is
    /// never saved.
    pub(crate) fn detached(collection: &str) -> Checkpoint {
        Checkpoint {
            migration: String::new(),
            checksum: String::new(),
            key: collection.to_owned(),
            collection: collection.to_owned(),
            position: None,
            visited: 0,
            matched: None,
            modified: None,
            batches: 0,
            total: None,
            unanswered: 0,
            started_at: None,
            by: String::new(),
        }
    }

    /// Whether this is the checkpoint of backfill `key` of `migration`.
    pub(crate) fn is(&self, migration: &str, key: &str) -> bool {
        self.migration == migration && self.key == key
    }
}

/// The `$type` alias of `value`'s BSON type (`int`, `string`,
/// `objectId`...): how errors, logs and status say what an `_id` is,
/// never what it holds.
pub(crate) fn bson_type(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Array(_) => "array",
        Bson::Document(_) => "object",
        Bson::Boolean(_) => "bool",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Int64(_) => "long",
        Bson::Timestamp(_) => "timestamp",
        Bson::Binary(_) => "binData",
        Bson::ObjectId(_) => "objectId",
        Bson::DateTime(_) => "date",
        Bson::Symbol(_) => "symbol",
        Bson::Decimal128(_) => "decimal",
        Bson::Undefined => "undefined",
        Bson::MaxKey => "maxKey",
        Bson::MinKey => "minKey",
        Bson::DbPointer(_) => "dbPointer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use mongodb::bson::oid::ObjectId;

    fn checkpoint(position: Option<Bson>) -> Checkpoint {
        Checkpoint {
            migration: "0010_events_status".into(),
            checksum: "abc".into(),
            key: "events".into(),
            collection: "events".into(),
            position,
            visited: 3_000,
            matched: Some(3_000),
            modified: Some(2_999),
            batches: 3,
            total: Some(10_000),
            unanswered: 2,
            started_at: Some(DateTime::from_millis(1_700_000_000_000)),
            by: "api-1:7".into(),
        }
    }

    fn round_trip(checkpoint: &Checkpoint) -> Result<Checkpoint, String> {
        super::super::read(&super::super::write_document(checkpoint))
    }

    #[test]
    fn a_checkpoint_survives_the_round_trip_whatever_its_position() {
        for position in [
            None,
            Some(Bson::Int32(7)),
            Some(Bson::Int64(1 << 40)),
            Some(Bson::String("user-42".into())),
            Some(Bson::ObjectId(ObjectId::new())),
            // An `_id` of null is a position, not the lack of one.
            Some(Bson::Null),
        ] {
            let saved = checkpoint(position);
            assert_eq!(round_trip(&saved), Ok(saved));
        }
        // Saved with a null position before the first batch, by an earlier
        // version: no position.
        let mut earlier = super::super::write_document(&Checkpoint {
            batches: 0,
            ..checkpoint(None)
        });
        earlier.insert("position", Bson::Null);
        let read = super::super::read::<Checkpoint>(&earlier).map(Checkpoint::resumed);
        assert_eq!(read.map(|read| read.position), Ok(None));
        let closure_form = Checkpoint {
            matched: None,
            modified: None,
            total: None,
            started_at: None,
            ..checkpoint(None)
        };
        assert_eq!(round_trip(&closure_form), Ok(closure_form));
        // Saved before the count of unanswered runs was kept: none.
        let mut older = super::super::write_document(&checkpoint(None));
        older.remove("unanswered");
        assert_eq!(
            super::super::read::<Checkpoint>(&older).map(|read| read.unanswered),
            Ok(0)
        );
    }

    #[test]
    fn a_malformed_checkpoint_says_what_is_wrong() {
        let mut entry = super::super::write_document(&checkpoint(None));
        entry.insert("visited", "many");
        assert_eq!(
            super::super::read::<Checkpoint>(&entry),
            Err("`visited` should be a count (an integer of at least 0) but is a string".to_owned())
        );
        entry.insert("visited", -1_i64);
        assert!(super::super::read::<Checkpoint>(&entry).is_err());
        entry.insert("visited", 1_i64);
        entry.remove("key");
        assert_eq!(
            super::super::read::<Checkpoint>(&entry),
            Err("`key` is missing".to_owned())
        );
        let stored = doc! { "position": Bson::Null };
        assert!(super::super::read::<Checkpoint>(&stored).is_err());
    }
}
