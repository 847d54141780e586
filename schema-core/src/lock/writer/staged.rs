//! A write of the holder inside a transaction: a backfill's checkpoint
//! committed together with its batch (see `crate::data`). It is sent like
//! any write of the holder, filtered on the owner and the version, and
//! holds the writer until its transaction ends, so nothing else is written
//! to the lock meanwhile; it lands only if the transaction commits.

use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection};

use super::{Attempt, Known, Write, Writer};
use crate::lock::clock::Stamp;
use crate::stored::lock::{self as format, Contents};
use crate::support::error::Error;
use crate::support::faults::{Failure, within};

/// A write sent inside a transaction that has not ended: it holds the
/// writer, so nothing else is written to the lock meanwhile.
pub(crate) struct Staged<'w> {
    writer: &'w Writer,
    known: tokio::sync::MutexGuard<'w, Known>,
    number: i64,
}

impl Staged<'_> {
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
    /// Sends one write inside the transaction of `session`, and holds the
    /// writer until the transaction ends: [`Staged::committed`] when it
    /// commits, [`Staged::aborted`] when it is aborted. Dropped without
    /// either (the commit's outcome unknown), the write stays unresolved,
    /// and the next write settles it by reading the document back.
    ///
    /// # Errors
    ///
    /// [`NotStaged::Lost`] when the lease ended by this process's clock or
    /// the lock is another's; [`NotStaged::Failed`] when the write, or the
    /// read that settles an earlier one, failed: the transaction is to be
    /// aborted, and may be tried again.
    pub(crate) async fn stage<'w>(
        &'w self,
        collection: &Collection<Document>,
        session: &mut ClientSession,
        write: Write<'_>,
        next: impl Fn(&Contents) -> Contents,
    ) -> Result<Staged<'w>, NotStaged> {
        let mut known = self.known.lock().await;
        if !known.unresolved.is_empty() {
            match self.resolve(collection, &mut known).await {
                Ok(_) => {}
                Err(None) => return Err(NotStaged::Lost(self.lost(write.id))),
                Err(Some(failure)) => return Err(NotStaged::Failed(failure)),
            }
        }
        if !self.clock.is_live() {
            return Err(NotStaged::Lost(self.lost(write.id)));
        }
        let mut contents = next(&known.contents);
        contents.done.retain(|done| !known.recorded.contains(&done.id));
        let number = known.next_attempt;
        known.next_attempt = number.saturating_add(1);
        let filter = format::at_version(&self.key, &self.owner, known.version);
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
        let outcome = within(self.bound, command).await;
        // Until its transaction commits, the write cannot land; if it is
        // not staged, the transaction is aborted and it never will.
        let unstage = |known: &mut Known| known.unresolved.retain(|attempt| attempt.number != number);
        match outcome {
            Ok(Some(_)) => Ok(Staged {
                writer: self,
                known,
                number,
            }),
            Ok(None) => {
                unstage(&mut known);
                if known.unresolved.is_empty() {
                    // Lost for good; the clock is told once the
                    // transaction is aborted (see `NotStaged::Taken`).
                    Err(NotStaged::Taken)
                } else {
                    // An earlier write may have landed meanwhile: settled
                    // by the next try.
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
