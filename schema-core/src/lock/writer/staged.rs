//! A write of the holder inside a transaction: a backfill's checkpoint
//! committed together with its batch (see `crate::data`).
//!
//! The writer is held for the whole transaction, from before its first
//! statement to its end ([`Writer::hold`]), so no other write of this
//! holder (a renewal above all) lands in between. That matters on a real
//! server: a transaction reads from the snapshot its first statement fixed,
//! and a lock write filtered on a version that moved after that snapshot
//! matches nothing there, which would read as the lock being another's.
//! Holding the writer, the version the staged write filters on is the one
//! the snapshot holds, and a write that matches nothing really means the
//! lock moved under this holder.
//!
//! Before the transaction starts, the hold settles any write whose outcome
//! is unknown (an earlier commit whose reply was lost among them) and, when
//! a renewal would be due, renews the lease, so the transaction has most
//! of a lease to run in.

use std::time::Duration;

use mongodb::bson::{DateTime, Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};

use super::{Attempt, Known, Next, Write, Writer};
use crate::lock::clock::Stamp;
use crate::stored::lock::{self as format, Contents};
use crate::support::error::Error;
use crate::support::faults::{Failure, within};

/// The writer, held for one transaction: nothing else is written to the
/// lock until it is dropped or its staged write is settled.
pub(crate) struct Hold<'w> {
    writer: &'w Writer,
    known: tokio::sync::MutexGuard<'w, Known>,
}

/// A write sent inside a transaction that has not ended: it keeps the
/// writer held.
pub(crate) struct Staged<'w> {
    writer: &'w Writer,
    known: tokio::sync::MutexGuard<'w, Known>,
    number: i64,
    /// The server's time of the write (`renewed_at` in the document it
    /// returned), when it said.
    renewed_at: Option<DateTime>,
}

impl Staged<'_> {
    /// The server's time of the staged write: when it commits, the time it
    /// took effect.
    pub(crate) fn renewed_at(&self) -> Option<DateTime> {
        self.renewed_at
    }

    /// The transaction committed: the write landed.
    pub(crate) fn committed(mut self) {
        self.writer.landed(&mut self.known, self.number);
    }

    /// The transaction was aborted: the write never lands.
    pub(crate) fn aborted(mut self) {
        let number = self.number;
        self.known.unresolved.retain(|attempt| attempt.number != number);
    }
}

/// Why a write inside a transaction was not staged.
pub(crate) enum NotStaged {
    /// The lease is over by this process's clock: [`Error::LockLost`].
    Lost(Error),
    /// The write matched nothing: the lock is another's. Abort the
    /// transaction, then [`Writer::lose`]: losing the clock first would
    /// drop the migration, abort and all, at its next await.
    Taken,
    /// It, or the read settling an earlier write, failed.
    Failed(Failure),
    /// It matched nothing while an earlier write may have landed: the next
    /// try settles that first.
    Again,
}

impl Writer {
    /// Holds the writer for one transaction: until the hold, or the write
    /// it stages, is dropped or settled, no other write of this holder is
    /// sent.
    pub(crate) async fn hold(&self) -> Hold<'_> {
        Hold {
            writer: self,
            known: self.known.lock().await,
        }
    }
}

impl<'w> Hold<'w> {
    /// Settles the writes whose outcome is unknown by reading the document
    /// back, so that [`contents`](Hold::contents) says what landed. One
    /// not yet seen landed stays unresolved (a majority read may lag a
    /// commit): the staged write then matches nothing, and the
    /// transaction is tried again.
    ///
    /// # Errors
    ///
    /// [`NotStaged::Lost`] naming `id` when the lock is another's or gone;
    /// [`NotStaged::Failed`] when the read failed.
    pub(crate) async fn settle(
        &mut self,
        collection: &Collection<Document>,
        id: &str,
    ) -> Result<(), NotStaged> {
        if self.known.unresolved.is_empty() {
            return Ok(());
        }
        match self.writer.resolve(collection, &mut self.known).await {
            Ok(_) => Ok(()),
            Err(None) => Err(NotStaged::Lost(self.writer.lost(id))),
            Err(Some(failure)) => Err(NotStaged::Failed(failure)),
        }
    }

    /// The contents as of the last write known to have landed.
    pub(crate) fn contents(&self) -> &Contents {
        &self.known.contents
    }

    /// Renews the lease when a third of it or more has passed since the
    /// last write that landed (when the renewal would be due), so that the
    /// transaction has at least two thirds of a lease.
    ///
    /// # Errors
    ///
    /// As [`Writer::write`]: [`Error::LockLost`] when the lease is over or
    /// the lock another's; the write's failure otherwise.
    pub(crate) async fn refresh(
        &mut self,
        collection: &Collection<Document>,
        write: Write<'_>,
    ) -> Result<(), Error> {
        let clock = &self.writer.clock;
        if clock.remaining() > clock.lease() - clock.lease() / 3 {
            return Ok(());
        }
        self.writer
            .write_known(collection, &mut self.known, write, |contents| {
                Next::Contents(contents.clone())
            })
            .await
            .map(drop)
    }

    /// How long the lease has left by this process's clock.
    pub(crate) fn remaining(&self) -> Duration {
        self.writer.clock.remaining()
    }

    /// Sends one write inside the transaction of `session`, filtered on the
    /// version this hold knows and given up on after `bound` (or the
    /// writer's own bound, if shorter), and keeps the writer held until the
    /// transaction ends: [`Staged::committed`] when it commits,
    /// [`Staged::aborted`] when it is aborted. Dropped without either (the
    /// commit's outcome unknown), the write stays unresolved, and the next
    /// write settles it by reading the document back.
    ///
    /// # Errors
    ///
    /// [`NotStaged::Lost`] when the lease ended by this process's clock;
    /// [`NotStaged::Taken`] when the write matched nothing and nothing of
    /// this holder's may have landed meanwhile; [`NotStaged::Again`] when
    /// something may have; [`NotStaged::Failed`] when the write failed. In
    /// each case the transaction is to be aborted.
    pub(crate) async fn stage(
        self,
        collection: &Collection<Document>,
        session: &mut ClientSession,
        write: Write<'_>,
        bound: Duration,
        next: impl Fn(&Contents) -> Contents,
    ) -> Result<Staged<'w>, NotStaged> {
        let Hold { writer, mut known } = self;
        if !writer.clock.is_live() {
            return Err(NotStaged::Lost(writer.lost(write.id)));
        }
        let mut contents = next(&known.contents);
        contents.done.retain(|done| !known.recorded.contains(&done.id));
        let number = known.next_attempt;
        known.next_attempt = number.saturating_add(1);
        let filter = format::at_version(&writer.key, &writer.owner, known.version);
        let mut set = known.contents.changes_to(&contents);
        set.extend(format::next_version(known.version, number));
        let mut stamps = doc! { "renewed_at": true };
        if write.checkpointed {
            stamps.insert("checkpointed_at", true);
        }
        let update = doc! { "$set": set, "$currentDate": stamps };
        known.unresolved.push(Attempt {
            number,
            sent: Stamp::now(),
            next: Some(contents),
        });
        let command = collection
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .session(&mut *session);
        let outcome = within(bound.min(writer.bound), command).await;
        // Until its transaction commits, the write cannot land; if it is
        // not staged, the transaction is aborted and it never will.
        let unstage = |known: &mut Known| known.unresolved.retain(|attempt| attempt.number != number);
        match outcome {
            Ok(Some(after)) => Ok(Staged {
                writer,
                known,
                number,
                renewed_at: after.get_datetime("renewed_at").ok().copied(),
            }),
            Ok(None) => {
                unstage(&mut known);
                if known.unresolved.is_empty() {
                    // Lost for good; the clock is told once the
                    // transaction is aborted (see `NotStaged::Taken`).
                    Err(NotStaged::Taken)
                } else {
                    // An earlier write may have landed after the read that
                    // settled it: settled again by the next try.
                    Err(NotStaged::Again)
                }
            }
            Err(failure) => {
                unstage(&mut known);
                Err(NotStaged::Failed(failure))
            }
        }
    }
}
