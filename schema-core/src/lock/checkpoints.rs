//! Where the backfills of one running migration save their checkpoints:
//! in the lock document, through the holder's
//! [`Writer`](super::writer::Writer), like a fence. A process whose lease
//! ended or was taken over matches nothing and moves nothing; a save sent
//! earlier never lands over a later one. The next holder runs the
//! migration again and each backfill in it continues from its checkpoint;
//! the fence of the migration's completion removes them in the same write.
//! The stored shape is [`Checkpoint`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mongodb::bson::{DateTime, Document};
use mongodb::{ClientSession, Collection};
use tracing::warn;

use super::writer::Hold;
use super::writer::{Next, Write, Writer, came_back_without};
pub(crate) use super::writer::{NotStaged, Staged};
use crate::declare::registry::Migration;
use crate::stored::checkpoint::Checkpoint;
use crate::stored::lock::Contents;
use crate::support::error::Error;

/// The checkpoints of one migration's backfills, while it runs under a
/// lease.
pub(crate) struct Checkpoints {
    writer: Arc<Writer>,
    collection: Collection<Document>,
    migration: String,
    checksum: String,
    /// `host:pid`, saved as `by`.
    by: String,
    /// How many backfills of each key this run of the migration started.
    claimed: Mutex<HashMap<String, u32>>,
    /// The server runs transactions: each batch and its checkpoint are
    /// one.
    transactions: bool,
}

impl Checkpoints {
    pub(crate) fn new(
        writer: Arc<Writer>,
        collection: Collection<Document>,
        migration: &Migration,
        by: String,
        transactions: bool,
    ) -> Checkpoints {
        Checkpoints {
            writer,
            collection,
            migration: migration.id().to_owned(),
            checksum: migration.checksum().to_owned(),
            by,
            claimed: Mutex::new(HashMap::new()),
            transactions,
        }
    }

    /// Whether each batch and its checkpoint are to be one transaction:
    /// the server runs them (a replica set or a sharded cluster).
    pub(crate) fn transactions(&self) -> bool {
        self.transactions
    }

    /// Refuses to go on once the lease may have ended by this process's own
    /// clock: checked before each batch's change, which is not itself
    /// fenced, so a holder that wakes from a pause changes nothing more.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] naming the migration.
    pub(crate) fn ensure_live(&self) -> Result<(), Error> {
        if self.writer.clock().is_live() {
            Ok(())
        } else {
            Err(Error::LockLost {
                id: self.migration.clone(),
                source: None,
            })
        }
    }

    /// How long the lease lasts: what bounds each command of a backfill.
    pub(crate) fn lease(&self) -> std::time::Duration {
        self.writer.clock().lease()
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
    /// fresh one on `collection`; and whether it is a saved one.
    pub(crate) async fn start(&self, key: &str, collection: &str) -> (Checkpoint, bool) {
        let contents = self.writer.contents().await;
        let saved = contents
            .checkpoints
            .into_iter()
            .find(|checkpoint| checkpoint.is(&self.migration, key));
        match saved {
            Some(saved) if saved.checksum == self.checksum && saved.collection == collection => {
                (saved.resumed(), true)
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

    /// Holds the lock's writer for one batch's transaction (see
    /// [`Hold`]): no other write of this holder lands until the hold, or
    /// the checkpoint it stages, is done with.
    pub(crate) async fn hold(&self) -> CheckpointHold<'_> {
        CheckpointHold {
            checkpoints: self,
            hold: self.writer.hold().await,
        }
    }

    /// Notes that the lock is another's, for good, after a write staged in a
    /// transaction matched nothing ([`NotStaged::Taken`]): the lease is
    /// lost. Returns the [`Error::LockLost`] to report.
    pub(crate) fn lose(&self) -> Error {
        self.writer.lose(&self.migration)
    }

    /// `checkpoint`, saved by this process.
    fn signed(&self, checkpoint: &Checkpoint) -> Checkpoint {
        Checkpoint {
            by: self.by.clone(),
            ..checkpoint.clone()
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
        let checkpoint = self.signed(checkpoint);
        let action = || format!("save a checkpoint of a backfill of `{}`", self.migration);
        let write = Write::until_lost(&self.migration, &action).checkpointed();
        let saved = self
            .writer
            .write(&self.collection, write, |contents| {
                Next::Contents(with(contents, &checkpoint))
            })
            .await?;
        saved
            .and_then(|document| document.checkpointed_at)
            .ok_or_else(|| came_back_without("`checkpointed_at`"))
    }
}

/// The lock's writer held for one batch's transaction, with what the
/// batch needs of it.
pub(crate) struct CheckpointHold<'c> {
    checkpoints: &'c Checkpoints,
    hold: Hold<'c>,
}

impl<'c> CheckpointHold<'c> {
    /// The checkpoint saved under `key`, once the writes whose outcome was
    /// unknown are settled as far as a read can tell.
    ///
    /// # Errors
    ///
    /// [`NotStaged::Lost`] when the lock is another's;
    /// [`NotStaged::Failed`] when the read failed.
    pub(crate) async fn saved(&mut self, key: &str) -> Result<Option<Checkpoint>, NotStaged> {
        let checkpoints = self.checkpoints;
        self.hold
            .settle(&checkpoints.collection, &checkpoints.migration)
            .await?;
        Ok(self
            .hold
            .contents()
            .checkpoints
            .iter()
            .find(|checkpoint| checkpoint.is(&checkpoints.migration, key))
            .cloned())
    }

    /// Renews the lease first when a renewal would be due, so that the
    /// transaction has most of a lease.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease is over or the lock another's;
    /// the write's failure otherwise.
    pub(crate) async fn refresh(&mut self) -> Result<(), Error> {
        let checkpoints = self.checkpoints;
        let action = || "renew the schema lock's lease".to_owned();
        let write = Write::until_lost(&checkpoints.migration, &action);
        self.hold.refresh(&checkpoints.collection, write).await
    }

    /// How long the lease has left by this process's clock.
    pub(crate) fn remaining(&self) -> std::time::Duration {
        self.hold.remaining()
    }

    /// Saves `checkpoint` inside the transaction of `session`, given up on
    /// after `bound`: it lands if and when the transaction commits (see
    /// [`Staged`]).
    ///
    /// # Errors
    ///
    /// As [`Hold::stage`].
    pub(crate) async fn stage(
        self,
        checkpoint: &Checkpoint,
        session: &mut ClientSession,
        bound: std::time::Duration,
    ) -> Result<Staged<'c>, NotStaged> {
        let checkpoints = self.checkpoints;
        let checkpoint = checkpoints.signed(checkpoint);
        let action = || format!("save a checkpoint of a backfill of `{}`", checkpoints.migration);
        let write = Write::until_lost(&checkpoints.migration, &action).checkpointed();
        self.hold
            .stage(&checkpoints.collection, session, write, bound, |contents| {
                with(contents, &checkpoint)
            })
            .await
    }
}

/// `contents` with `checkpoint` in place of the one it replaces, or added.
fn with(contents: &Contents, checkpoint: &Checkpoint) -> Contents {
    let mut next = contents.clone();
    match next
        .checkpoints
        .iter_mut()
        .find(|saved| saved.is(&checkpoint.migration, &checkpoint.key))
    {
        Some(saved) => *saved = checkpoint.clone(),
        None => next.checkpoints.push(checkpoint.clone()),
    }
    next
}
