//! The lock document: who holds the lease, until when, what it is running,
//! the ledger of migrations whose completion it fenced, and the
//! checkpoints of its backfills.
//!
//! ```text
//! { _id: "schema_versions",           // the versions collection it guards, with
//!                                     // "$background" for the background lane's
//!   version: 7,                       // +1 with every write; each write filters on the one before
//!   attempt: 12,                      // which attempt of its holder wrote this version
//!   phase: "held" | "released",       // released: let go, kept for its ledger or checkpoints
//!   owner: "host:pid:random",         // unique per acquisition
//!   host, pid, acquired_at, renewed_at, lease_ms,
//!   running: "0003_sagas" | null,     // started and not yet fenced
//!   done: [ { id, checksum, description, duration_ms, applied_by, marked } ],
//!   checkpoints: [ ... ],             // see `checkpoint`
//!   checkpointed_at }                 // when a checkpoint last moved
//! ```
//!
//! The ledger `done` holds the completions fenced but not yet known to be
//! recorded: usually none or one. The holder drops an entry with its next
//! write once the record has landed, and whoever takes the lock records
//! what is left and clears it before doing anything else.

#[cfg(test)]
use mongodb::bson::Bson;
use mongodb::bson::{DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use crate::declare::registry::Migration;

/// Which of the two locks guarding a versions collection: one for the
/// migrations applied at start, one for the background migrations. Each
/// is a lock document of its own with the same states and writes, so a
/// background migration that runs for hours never keeps a start waiting,
/// while background migrations still run one at a time, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Lane {
    /// The lock `apply_all` takes for the migrations it applies before it
    /// returns; its document's `_id` is the versions collection's name.
    Start,
    /// The lock the background task takes for `#[migration(background)]`
    /// migrations; its document's `_id` is the versions collection's name
    /// followed by `$background` (a `$` no collection name has).
    Background,
}

impl Lane {
    /// Both, in the order a holder of both takes them.
    pub const ALL: [Lane; 2] = [Lane::Start, Lane::Background];

    /// The lane that applies `migration`.
    pub(crate) fn of(migration: &Migration) -> Lane {
        if migration.is_background() {
            Lane::Background
        } else {
            Lane::Start
        }
    }

    /// The other lane.
    pub(crate) fn other(self) -> Lane {
        match self {
            Lane::Start => Lane::Background,
            Lane::Background => Lane::Start,
        }
    }

    /// The `_id` of this lane's lock document for the versions collection
    /// `versions`.
    pub(crate) fn key(self, versions: &str) -> String {
        match self {
            Lane::Start => versions.to_owned(),
            Lane::Background => format!("{versions}$background"),
        }
    }

    /// `start` or `background`, as the command line and JSON say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Start => "start",
            Lane::Background => "background",
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lane::Start => "the start lock",
            Lane::Background => "the background lock",
        })
    }
}

/// Whether the lock's holder still holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    /// Held until its lease ends, unless renewed.
    #[default]
    Held,
    /// Let go by its holder, and kept because its ledger or checkpoints
    /// are for the next holder: free to take at once.
    Released,
}

/// The lock document, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LockDocument {
    /// The versions collection it guards.
    #[serde(rename = "_id")]
    pub(crate) key: String,
    pub(crate) version: i64,
    /// Which attempt of the holder wrote this version: tells a write whose
    /// reply was lost from another one when the document is read back.
    pub(crate) attempt: i64,
    pub(crate) phase: Phase,
    pub(crate) owner: String,
    #[serde(default)]
    pub(crate) host: Option<String>,
    #[serde(default)]
    pub(crate) pid: Option<i64>,
    #[serde(default)]
    pub(crate) acquired_at: Option<DateTime>,
    pub(crate) renewed_at: DateTime,
    pub(crate) lease_ms: i64,
    #[serde(default)]
    pub(crate) running: Option<String>,
    #[serde(default)]
    pub(crate) done: Vec<Completion>,
    #[serde(default)]
    pub(crate) checkpoints: Vec<Checkpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checkpointed_at: Option<DateTime>,
}

impl LockDocument {
    /// When the lease ends by the server's clock: at once for a released
    /// lock.
    pub(crate) fn expires_at(&self) -> DateTime {
        match self.phase {
            Phase::Released => self.renewed_at,
            Phase::Held => {
                DateTime::from_millis(self.renewed_at.timestamp_millis().saturating_add(self.lease_ms))
            }
        }
    }

    /// Whether the lease has ended at `now`, by the server's clock.
    pub(crate) fn has_ended(&self, now: DateTime) -> bool {
        self.phase == Phase::Released || now > self.expires_at()
    }

    /// What its holder's writes change.
    pub(crate) fn contents(&self) -> Contents {
        Contents {
            phase: self.phase,
            running: self.running.clone(),
            done: self.done.clone(),
            checkpoints: self.checkpoints.clone(),
        }
    }

    /// The document as stored.
    pub(crate) fn to_document(&self) -> Document {
        super::write_document(self)
    }
}

/// The part of the lock document its holder's writes change, as one
/// value: each write takes the document from one version's contents to the
/// next's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Contents {
    pub(crate) phase: Phase,
    pub(crate) running: Option<String>,
    pub(crate) done: Vec<Completion>,
    pub(crate) checkpoints: Vec<Checkpoint>,
}

impl Contents {
    /// The `$set` that turns a document holding `self` into one holding
    /// `next`: only the fields that differ, each written whole.
    pub(crate) fn changes_to(&self, next: &Contents) -> Document {
        let mut set = Document::new();
        if self.phase != next.phase {
            set.insert("phase", super::write(&next.phase));
        }
        if self.running != next.running {
            set.insert("running", next.running.clone());
        }
        if self.done != next.done {
            set.insert("done", super::write(&next.done));
        }
        if self.checkpoints != next.checkpoints {
            set.insert("checkpoints", super::write(&next.checkpoints));
        }
        set
    }
}

/// A migration whose completion was fenced under the lease: an entry of the
/// ledger, and everything needed to write its record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Completion {
    pub(crate) id: String,
    pub(crate) checksum: String,
    pub(crate) description: String,
    /// How long the migration ran; absent when it was marked applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration_ms: Option<i64>,
    /// `host:pid` of the process that ran (or marked) it.
    pub(crate) applied_by: String,
    /// Recorded without running (`mark_applied`).
    #[serde(default)]
    pub(crate) marked: bool,
    /// For a migration declared with `transaction`: whether it ran in one
    /// transaction with its record (`false` where the server runs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transaction: Option<bool>,
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
            transaction: None,
        }
    }

    /// The same, for a migration declared with `transaction`: whether it
    /// ran in one.
    pub(crate) fn in_transaction(self, ran_in_one: bool) -> Completion {
        Completion {
            transaction: Some(ran_in_one),
            ..self
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
}

/// The filter that matches the lock document `key` only while `owner`
/// holds it at `version`: every write of a holder carries one, so a write
/// sent earlier never lands over a later one.
pub(crate) fn at_version(key: &str, owner: &str, version: i64) -> Document {
    doc! { "_id": key, "owner": owner, "version": version }
}

/// The bookkeeping every write of a holder adds to its `$set`: the version
/// it makes, and which attempt made it.
pub(crate) fn next_version(version: i64, attempt: i64) -> Document {
    doc! { "version": version.saturating_add(1), "attempt": attempt }
}

/// Reads a lock document; on failure, says which field is wrong.
pub(crate) fn read(document: &Document) -> Result<LockDocument, String> {
    super::read(document)
}

/// A ledger entry as a BSON value, for tests and filters.
#[cfg(test)]
pub(crate) fn entry(completion: &Completion) -> Bson {
    super::write(completion)
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
            transaction: None,
        }
    }

    fn lock() -> Document {
        doc! {
            "_id": "schema_versions", "version": 3_i64, "attempt": 2_i64, "phase": "held",
            "owner": "api-1:7:abc", "renewed_at": DateTime::from_millis(1_000),
            "lease_ms": 30_000_i32, "running": "0003_sagas",
        }
    }

    #[test]
    fn a_lock_document_reads_and_knows_its_expiry() {
        let holder = read(&lock()).unwrap();
        assert_eq!(holder.expires_at(), DateTime::from_millis(31_000));
        assert_eq!(holder.running.as_deref(), Some("0003_sagas"));
        assert_eq!(holder.phase, Phase::Held);
        assert!(holder.done.is_empty());
        assert!(!holder.has_ended(DateTime::from_millis(31_000)));
        assert!(holder.has_ended(DateTime::from_millis(31_001)));
        let released = LockDocument {
            phase: Phase::Released,
            ..holder
        };
        assert!(released.has_ended(DateTime::from_millis(1_000)));
        assert_eq!(read(&released.to_document()), Ok(released));
    }

    #[test]
    fn a_malformed_lock_document_says_what_is_wrong_without_its_values() {
        let mut wrong = lock();
        wrong.insert("renewed_at", "now");
        assert_eq!(
            read(&wrong).unwrap_err(),
            "`renewed_at` should be a date but is a string"
        );
        let mut wrong = lock();
        wrong.insert("done", vec![Bson::Document(doc! { "id": "a", "checksum": 5 })]);
        assert_eq!(
            read(&wrong).unwrap_err(),
            "`done.0.checksum` should be a string but is an int32"
        );
        let mut wrong = lock();
        wrong.insert("checkpoints", vec![Bson::Int32(7)]);
        assert_eq!(
            read(&wrong).unwrap_err(),
            "`checkpoints.0` should be a document but is an int32"
        );
        let mut wrong = lock();
        wrong.remove("version");
        assert_eq!(read(&wrong).unwrap_err(), "`version` is missing");
        let mut wrong = lock();
        wrong.insert("phase", "gone");
        assert_eq!(
            read(&wrong).unwrap_err(),
            "`phase` should be `held` or `released` but is a string"
        );
    }

    #[test]
    fn an_expiry_far_in_the_future_saturates() {
        let mut far = lock();
        far.insert("renewed_at", DateTime::from_millis(i64::MAX - 1));
        far.insert("lease_ms", i64::MAX);
        assert_eq!(read(&far).unwrap().expires_at(), DateTime::from_millis(i64::MAX));
    }

    #[test]
    fn the_ledger_survives_the_round_trip() {
        let ran = completion();
        let marked = Completion {
            duration_ms: None,
            marked: true,
            ..completion()
        };
        let mut stored = lock();
        stored.insert("done", vec![entry(&ran), entry(&marked)]);
        assert_eq!(read(&stored).unwrap().done, [ran, marked]);
    }

    #[test]
    fn a_write_sets_only_what_changes() {
        let before = read(&lock()).unwrap().contents();
        assert!(before.changes_to(&before).is_empty());
        let next = Contents {
            running: None,
            done: vec![completion()],
            ..before.clone()
        };
        let set = before.changes_to(&next);
        assert_eq!(set.keys().collect::<Vec<_>>(), ["running", "done"]);
        assert_eq!(set.get("running"), Some(&Bson::Null));
        let released = Contents {
            phase: Phase::Released,
            ..next.clone()
        };
        assert_eq!(next.changes_to(&released), doc! { "phase": "released" });
    }
}
