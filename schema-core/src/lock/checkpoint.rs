//! Backfill checkpoints, kept in the lock document so that only the lease's
//! holder can move them.
//!
//! A [`Backfill`](crate::data::Backfill) inside a migration saves, after
//! each batch, the last `_id` it finished and its counts. The save is one
//! write to the lock document filtered on the owner, like a fence: a
//! process whose lease ended or was taken over matches nothing and moves
//! nothing. The next holder runs the migration again and each backfill in
//! it continues from its checkpoint. The fence of the migration's
//! completion removes its checkpoints in the same write.
//!
//! ```text
//! checkpoints: [ { migration: "0010_events_status", checksum, // the body that saved it
//!                  key: "events",          // which backfill of the migration
//!                  collection: "events",
//!                  position: <_id> | null, // the last _id done; null before the first batch
//!                  visited, matched, modified, batches, total,
//!                  started_at, by: "host:pid" } ]
//! ```
//!
//! A checkpoint saved by another body of the migration (its checksum
//! differs) is not resumed from: the backfill starts again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::ReturnDocument;
use tracing::warn;

use super::Fenced;
use super::document::integer;
use crate::data::BackfillStatus;
use crate::error::Error;
use crate::registry::Migration;

/// Where one backfill of a migration stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    /// The migration whose body runs the backfill.
    pub(crate) migration: String,
    /// That body's checksum.
    pub(crate) checksum: String,
    /// Which backfill of the migration this is: its name, or its
    /// collection, with `#2`, `#3`... for later ones on the same key.
    pub(crate) key: String,
    pub(crate) collection: String,
    /// The last `_id` done; `None` before the first batch.
    pub(crate) position: Option<Bson>,
    /// Documents handed to batches so far.
    pub(crate) visited: u64,
    /// What the server reported for the update form, summed.
    pub(crate) matched: Option<u64>,
    pub(crate) modified: Option<u64>,
    pub(crate) batches: u64,
    /// The documents expected when it started.
    pub(crate) total: Option<u64>,
    /// When it started, by the server's clock; known after the first save.
    pub(crate) started_at: Option<DateTime>,
    /// `host:pid` of the process that saved it last.
    pub(crate) by: String,
}

impl Checkpoint {
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
            started_at: None,
            by: String::new(),
        }
    }

    /// The entry as stored.
    pub(crate) fn to_entry(&self) -> Document {
        let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        doc! {
            "migration": &self.migration,
            "checksum": &self.checksum,
            "key": &self.key,
            "collection": &self.collection,
            "position": self.position.clone().unwrap_or(Bson::Null),
            "visited": count(self.visited),
            "matched": self.matched.map(count),
            "modified": self.modified.map(count),
            "batches": count(self.batches),
            "total": self.total.map(count),
            "started_at": self.started_at,
            "by": &self.by,
        }
    }

    /// As an operator reads it, with the lock's `owner` and the time a
    /// checkpoint last moved.
    pub(crate) fn status(&self, owner: &str, updated_at: Option<DateTime>) -> BackfillStatus {
        BackfillStatus {
            migration: self.migration.clone(),
            key: self.key.clone(),
            collection: self.collection.clone(),
            done: self.visited,
            total: self.total,
            batches: self.batches,
            position: self.position.as_ref().map(ToString::to_string),
            by: self.by.clone(),
            owner: owner.to_owned(),
            started_at: self.started_at,
            updated_at,
        }
    }
}

/// The stored form of a list of checkpoints.
pub(crate) fn entries(checkpoints: &[Checkpoint]) -> Vec<Document> {
    checkpoints.iter().map(Checkpoint::to_entry).collect()
}

/// Reads a stored checkpoint; on failure, says which field is wrong.
pub(crate) fn parse(entry: &Document) -> Result<Checkpoint, String> {
    let string = |field: &str| match entry.get(field) {
        Some(Bson::String(text)) => Ok(text.clone()),
        _ => Err(format!("`{field}` should be a string")),
    };
    let count = |field: &str| -> Result<Option<u64>, String> {
        match entry.get(field) {
            None | Some(Bson::Null) => Ok(None),
            value => integer(value)
                .and_then(|n| u64::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("`{field}` should be a count")),
        }
    };
    let started_at = match entry.get("started_at") {
        None | Some(Bson::Null) => None,
        Some(Bson::DateTime(at)) => Some(*at),
        Some(_) => return Err("`started_at` should be a date".to_owned()),
    };
    Ok(Checkpoint {
        migration: string("migration")?,
        checksum: string("checksum")?,
        key: string("key")?,
        collection: string("collection")?,
        position: match entry.get("position") {
            None | Some(Bson::Null) => None,
            Some(position) => Some(position.clone()),
        },
        visited: count("visited")?.unwrap_or(0),
        matched: count("matched")?,
        modified: count("modified")?,
        batches: count("batches")?.unwrap_or(0),
        total: count("total")?,
        started_at,
        by: string("by")?,
    })
}

/// Where the backfills of one migration save their checkpoints while it
/// runs under a lease.
pub(crate) struct Checkpoints {
    fenced: Fenced,
    migration: String,
    checksum: String,
    /// `host:pid`, saved as `by`.
    by: String,
    /// Every checkpoint the lock document holds, shared with the lock's
    /// holder, which removes the migration's on its completion. The async
    /// mutex is held across each save, so saves land in the order made.
    store: Arc<tokio::sync::Mutex<Vec<Checkpoint>>>,
    /// How many backfills of each key this run of the migration started.
    claimed: Mutex<HashMap<String, u32>>,
}

impl Checkpoints {
    pub(crate) fn new(
        fenced: Fenced,
        migration: &Migration,
        by: String,
        store: Arc<tokio::sync::Mutex<Vec<Checkpoint>>>,
    ) -> Checkpoints {
        Checkpoints {
            fenced,
            migration: migration.id().to_owned(),
            checksum: migration.checksum().to_owned(),
            by,
            store,
            claimed: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses to go on once the lease may have ended by this process's own
    /// clock: checked before each batch's change, which is not itself
    /// fenced, so a holder that wakes from a pause changes nothing more.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] naming the migration.
    pub(crate) fn ensure_live(&self) -> Result<(), Error> {
        if self.fenced.is_live() {
            Ok(())
        } else {
            Err(Error::LockLost {
                id: self.migration.clone(),
                source: None,
            })
        }
    }

    /// The migration whose backfills these are.
    pub(crate) fn migration(&self) -> &str {
        &self.migration
    }

    /// The key of the next backfill named `base` in this run: `base` for
    /// the first, then `base#2`, `base#3`... The same body starts its
    /// backfills in the same order, so a run after a takeover finds each
    /// one's checkpoint under the same key.
    pub(crate) fn claim(&self, base: &str) -> String {
        // A counter map updated whole; a panic cannot leave it half-written.
        let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        let count = claimed.entry(base.to_owned()).or_insert(0);
        *count += 1;
        match *count {
            1 => base.to_owned(),
            n => format!("{base}#{n}"),
        }
    }

    /// The checkpoint a previous run of this body saved under `key`, or a
    /// fresh one on `collection`.
    pub(crate) async fn start(&self, key: &str, collection: &str) -> (Checkpoint, bool) {
        let store = self.store.lock().await;
        let saved = store
            .iter()
            .find(|checkpoint| checkpoint.migration == self.migration && checkpoint.key == key);
        match saved {
            Some(saved) if saved.checksum == self.checksum && saved.collection == collection => {
                (saved.clone(), true)
            }
            Some(_) => {
                warn!(
                    migration.id = %self.migration,
                    backfill = key,
                    "a checkpoint of this backfill was saved by another version of the migration or \
                     on another collection; starting it again from the beginning"
                );
                (self.fresh(key, collection), false)
            }
            None => (self.fresh(key, collection), false),
        }
    }

    fn fresh(&self, key: &str, collection: &str) -> Checkpoint {
        Checkpoint {
            migration: self.migration.clone(),
            checksum: self.checksum.clone(),
            key: key.to_owned(),
            by: self.by.clone(),
            ..Checkpoint::detached(collection)
        }
    }

    /// Saves `checkpoint`, in one write only this lease's holder can make,
    /// which also renews the lease. Returns the server's time of the save.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease ended by this process's clock or
    /// the lock is another's: nothing moved. [`Error::Database`] when the
    /// server refused the write.
    pub(crate) async fn save(&self, checkpoint: &Checkpoint) -> Result<DateTime, Error> {
        let mut store = self.store.lock().await;
        let mut next = store.clone();
        let checkpoint = Checkpoint {
            by: self.by.clone(),
            ..checkpoint.clone()
        };
        match next
            .iter_mut()
            .find(|saved| saved.migration == checkpoint.migration && saved.key == checkpoint.key)
        {
            Some(saved) => *saved = checkpoint,
            None => next.push(checkpoint),
        }
        let update = doc! {
            "$set": { "checkpoints": entries(&next) },
            "$currentDate": { "renewed_at": true, "checkpointed_at": true },
        };
        let answer = self
            .fenced
            .write(
                &self.migration,
                || format!("save a checkpoint of a backfill of `{}`", self.migration),
                |collection, filter| {
                    collection
                        .find_one_and_update(filter, update.clone())
                        .projection(doc! { "checkpointed_at": 1 })
                        .return_document(ReturnDocument::After)
                },
            )
            .await?;
        *store = next;
        match answer.get("checkpointed_at") {
            Some(Bson::DateTime(at)) => Ok(*at),
            _ => Err(Error::UnexpectedReply {
                command: "findAndModify".to_owned(),
                reason: "the schema lock came back without `checkpointed_at`".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            started_at: Some(DateTime::from_millis(1_700_000_000_000)),
            by: "api-1:7".into(),
        }
    }

    #[test]
    fn a_checkpoint_survives_the_round_trip_whatever_its_position() {
        for position in [
            None,
            Some(Bson::Int32(7)),
            Some(Bson::Int64(1 << 40)),
            Some(Bson::String("user-42".into())),
            Some(Bson::ObjectId(ObjectId::new())),
        ] {
            let saved = checkpoint(position);
            assert_eq!(parse(&saved.to_entry()), Ok(saved));
        }
        let closure_form = Checkpoint {
            matched: None,
            modified: None,
            total: None,
            started_at: None,
            ..checkpoint(None)
        };
        assert_eq!(parse(&closure_form.to_entry()), Ok(closure_form));
    }

    #[test]
    fn a_malformed_checkpoint_says_what_is_wrong() {
        let mut entry = checkpoint(None).to_entry();
        entry.insert("visited", "many");
        assert_eq!(parse(&entry), Err("`visited` should be a count".to_owned()));
        entry.insert("visited", -1_i64);
        assert_eq!(parse(&entry), Err("`visited` should be a count".to_owned()));
        entry.remove("key");
        assert_eq!(parse(&entry), Err("`key` should be a string".to_owned()));
    }
}
