//! The lock document as stored: who holds the lease, until when, what it is
//! running, and the ledger of migrations whose completion it has fenced.
//!
//! ```text
//! { _id: "schema_versions",           // the versions collection it guards
//!   owner: "host:pid:random",         // unique per acquisition
//!   host, pid, acquired_at, renewed_at, lease_ms,
//!   running: "0003_sagas" | null,     // started and not yet fenced
//!   released: true,                   // only when let go with unrecorded completions
//!   done: [ { id, checksum, description, duration_ms, applied_by, marked } ],
//!   checkpoints: [ { migration, checksum, key, collection, position, ... } ],
//!   checkpointed_at }                 // when a checkpoint last moved
//! ```
//!
//! The backfill checkpoints are described in [`super::checkpoint`].
//!
//! The ledger `done` holds the completions fenced but not yet known to be
//! recorded; each fence writes it whole with `$set`.

use mongodb::bson::{Bson, DateTime, Document, doc};

use super::checkpoint::{self, Checkpoint};
use crate::data::BackfillStatus;
use crate::registry::Migration;

/// The lock document as read back.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub(crate) owner: String,
    /// Where the holder runs; absent in documents of other shapes.
    pub(crate) host: Option<String>,
    pub(crate) pid: Option<i64>,
    pub(crate) acquired_at: Option<DateTime>,
    pub(crate) renewed_at: DateTime,
    pub(crate) lease_ms: i64,
    pub(crate) running: Option<String>,
    /// Let go by its holder, with completions it could not record.
    pub(crate) released: bool,
    pub(crate) done: Vec<Completion>,
    /// Where the backfills of a migration not yet complete stand.
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// When a checkpoint last moved, by the server's clock.
    pub(crate) checkpointed_at: Option<DateTime>,
}

impl Holder {
    /// The checkpoints as an operator reads them.
    pub(crate) fn backfills(&self) -> Vec<BackfillStatus> {
        self.checkpoints
            .iter()
            .map(|checkpoint| checkpoint.status(&self.owner, self.checkpointed_at))
            .collect()
    }

    pub(crate) fn expires_at(&self) -> DateTime {
        DateTime::from_millis(self.renewed_at.timestamp_millis().saturating_add(self.lease_ms))
    }
}

/// A migration whose completion was fenced under the lease: an entry of the
/// ledger, and everything needed to write its record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    pub(crate) id: String,
    pub(crate) checksum: String,
    pub(crate) description: String,
    /// How long the migration ran; absent when it was marked applied.
    pub(crate) duration_ms: Option<i64>,
    /// `host:pid` of the process that ran (or marked) it.
    pub(crate) applied_by: String,
    /// Recorded without running (`mark_applied`).
    pub(crate) marked: bool,
}

impl Completion {
    /// `migration` ran for `duration_ms` in `applied_by`.
    pub(crate) fn ran(migration: &Migration, duration_ms: i64, applied_by: &str) -> Completion {
        Completion {
            id: migration.id().to_owned(),
            checksum: migration.checksum().to_owned(),
            description: migration.description().to_owned(),
            duration_ms: Some(duration_ms),
            applied_by: applied_by.to_owned(),
            marked: false,
        }
    }

    /// `migration` is to be recorded without running (a baseline).
    pub(crate) fn marked(migration: &Migration, applied_by: &str) -> Completion {
        Completion {
            duration_ms: None,
            marked: true,
            ..Completion::ran(migration, 0, applied_by)
        }
    }

    /// The ledger entry.
    pub(crate) fn to_entry(&self) -> Document {
        let mut entry = doc! {
            "id": &self.id,
            "checksum": &self.checksum,
            "description": &self.description,
            "applied_by": &self.applied_by,
            "marked": self.marked,
        };
        if let Some(ms) = self.duration_ms {
            entry.insert("duration_ms", ms);
        }
        entry
    }

    /// The record for the versions collection, applied at `applied_at` (the
    /// server's time of the fence).
    pub(crate) fn to_record(&self, applied_at: DateTime) -> Document {
        let mut record = doc! {
            "_id": &self.id,
            "description": &self.description,
            "checksum": &self.checksum,
            "applied_at": applied_at,
            "applied_by": &self.applied_by,
        };
        if let Some(ms) = self.duration_ms {
            record.insert("duration_ms", ms);
        }
        if self.marked {
            record.insert("marked_applied", true);
        }
        record
    }
}

/// Reads a lock document; on failure, says which field is wrong.
pub(crate) fn parse(document: &Document) -> Result<Holder, String> {
    let owner = match document.get("owner") {
        Some(Bson::String(owner)) => owner.clone(),
        _ => return Err("`owner` should be a string".to_owned()),
    };
    let renewed_at = match document.get("renewed_at") {
        Some(Bson::DateTime(at)) => *at,
        _ => return Err("`renewed_at` should be a date".to_owned()),
    };
    let lease_ms = integer(document.get("lease_ms")).ok_or("`lease_ms` should be an integer")?;
    let running = match document.get("running") {
        None | Some(Bson::Null) => None,
        Some(Bson::String(id)) => Some(id.clone()),
        Some(_) => return Err("`running` should be a migration id or null".to_owned()),
    };
    let released = matches!(document.get("released"), Some(Bson::Boolean(true)));
    let done = entries(document, "done", parse_entry)?;
    let checkpoints = entries(document, "checkpoints", checkpoint::parse)?;
    let checkpointed_at = match document.get("checkpointed_at") {
        Some(Bson::DateTime(at)) => Some(*at),
        _ => None,
    };
    let host = match document.get("host") {
        Some(Bson::String(host)) => Some(host.clone()),
        _ => None,
    };
    let acquired_at = match document.get("acquired_at") {
        Some(Bson::DateTime(at)) => Some(*at),
        _ => None,
    };
    Ok(Holder {
        owner,
        host,
        pid: integer(document.get("pid")),
        acquired_at,
        renewed_at,
        lease_ms,
        running,
        released,
        done,
        checkpoints,
        checkpointed_at,
    })
}

/// The array `field` of `document`, each entry read by `parse`; absent or
/// null is empty.
fn entries<T>(
    document: &Document,
    field: &str,
    parse: impl Fn(&Document) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    match document.get(field) {
        None | Some(Bson::Null) => Ok(Vec::new()),
        Some(Bson::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(index, entry)| match entry {
                Bson::Document(entry) => {
                    parse(entry).map_err(|reason| format!("`{field}.{index}`: {reason}"))
                }
                _ => Err(format!("`{field}.{index}` should be a document")),
            })
            .collect(),
        Some(_) => Err(format!("`{field}` should be an array")),
    }
}

fn parse_entry(entry: &Document) -> Result<Completion, String> {
    let string = |field: &str| match entry.get(field) {
        Some(Bson::String(text)) => Ok(text.clone()),
        _ => Err(format!("`{field}` should be a string")),
    };
    let duration_ms = match entry.get("duration_ms") {
        None | Some(Bson::Null) => None,
        value => Some(integer(value).ok_or("`duration_ms` should be an integer")?),
    };
    Ok(Completion {
        id: string("id")?,
        checksum: string("checksum")?,
        description: string("description")?,
        duration_ms,
        applied_by: string("applied_by")?,
        marked: matches!(entry.get("marked"), Some(Bson::Boolean(true))),
    })
}

/// Both integer widths: servers may narrow a small int64 to an int32.
pub(super) fn integer(value: Option<&Bson>) -> Option<i64> {
    match value {
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion() -> Completion {
        Completion {
            id: "0003_sagas".into(),
            checksum: "abc".into(),
            description: "sagas".into(),
            duration_ms: Some(12),
            applied_by: "api-1:7".into(),
            marked: false,
        }
    }

    #[test]
    fn a_lock_document_parses_and_knows_its_expiry() {
        let holder = parse(&doc! {
            "_id": "schema_versions",
            "owner": "api-1:7:abc",
            "renewed_at": DateTime::from_millis(1_000),
            "lease_ms": 30_000_i32,
            "running": "0003_sagas",
        })
        .unwrap();
        assert_eq!(holder.expires_at(), DateTime::from_millis(31_000));
        assert_eq!(holder.running.as_deref(), Some("0003_sagas"));
        assert!(!holder.released);
        assert!(holder.done.is_empty());
    }

    #[test]
    fn a_malformed_lock_document_says_what_is_wrong() {
        let reason = parse(&doc! { "owner": "x", "renewed_at": "now", "lease_ms": 1 }).unwrap_err();
        assert_eq!(reason, "`renewed_at` should be a date");
        let reason = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(0), "lease_ms": 1,
            "done": [ { "id": "a", "checksum": 5 } ],
        })
        .unwrap_err();
        assert_eq!(reason, "`done.0`: `checksum` should be a string");
        let reason = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(0), "lease_ms": 1,
            "checkpoints": [ 7 ],
        })
        .unwrap_err();
        assert_eq!(reason, "`checkpoints.0` should be a document");
        let reason = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(0), "lease_ms": 1,
            "checkpoints": { "events": 1 },
        })
        .unwrap_err();
        assert_eq!(reason, "`checkpoints` should be an array");
    }

    #[test]
    fn an_expiry_far_in_the_future_saturates() {
        let holder = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(i64::MAX - 1), "lease_ms": i64::MAX,
        })
        .unwrap();
        assert_eq!(holder.expires_at(), DateTime::from_millis(i64::MAX));
    }

    #[test]
    fn a_ledger_entry_survives_the_round_trip() {
        let ran = completion();
        let marked = Completion {
            duration_ms: None,
            marked: true,
            ..completion()
        };
        let holder = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(0), "lease_ms": 1, "released": true,
            "done": [ ran.to_entry(), marked.to_entry() ],
        })
        .unwrap();
        assert!(holder.released);
        assert_eq!(holder.done, [ran, marked]);
    }

    #[test]
    fn a_record_carries_the_fence_time_and_marks_a_baseline() {
        let at = DateTime::from_millis(1_700_000_000_000);
        let record = completion().to_record(at);
        assert_eq!(record.get_datetime("applied_at"), Ok(&at));
        assert_eq!(record.get_i64("duration_ms"), Ok(12));
        assert!(record.get("marked_applied").is_none());
        let marked = Completion {
            duration_ms: None,
            marked: true,
            ..completion()
        }
        .to_record(at);
        assert_eq!(marked.get_bool("marked_applied"), Ok(true));
        assert!(marked.get("duration_ms").is_none());
    }
}
