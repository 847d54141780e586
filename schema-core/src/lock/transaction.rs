//! The fence of a migration declared with `transaction`, written inside
//! the transaction its body and its record commit in (see
//! `crate::engine`'s `transaction`).
//!
//! As for a backfill's batch (`writer::staged`), the lock's writer is held
//! from before the transaction's first statement to its end, so no renewal
//! of this holder moves the version under the transaction's snapshot; the
//! lease is renewed first when a renewal is due. The fence is the same
//! write as outside a transaction: the completion in the ledger, the next
//! migration noted as running, filtered on the holder and the version. A
//! holder that lost the lock matches nothing, and its transaction is
//! aborted with everything the body wrote.

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::{ClientSession, Collection};

use super::Held;
use super::held::fenced;
use super::writer::{Hold, NotStaged, Staged, Write};
use crate::stored::lock::Completion;
use crate::support::error::Error;

/// The lock's writer held for one migration's transaction.
pub(crate) struct FenceHold<'h> {
    collection: &'h Collection<Document>,
    hold: Hold<'h>,
}

impl Held<'_> {
    /// Holds the lock's writer for one transaction (see [`FenceHold`]).
    pub(crate) async fn fence_hold(&self) -> FenceHold<'_> {
        FenceHold {
            collection: &self.lock.collection,
            hold: self.writer.hold().await,
        }
    }

    /// Notes that the lock is another's for good, after the fence staged in
    /// a transaction matched nothing ([`NotStaged::Taken`]), once that
    /// transaction is aborted. Returns the [`Error::LockLost`] naming `id`.
    pub(crate) fn lose(&self, id: &str) -> Error {
        self.writer.lose(id)
    }
}

impl<'h> FenceHold<'h> {
    /// The completion of `completion`'s migration fenced already (with the
    /// same checksum), once the writes whose outcome was unknown are
    /// settled as far as a read can tell: an earlier try's commit, whose
    /// reply was lost, landed.
    ///
    /// # Errors
    ///
    /// [`NotStaged::Lost`] when the lock is another's;
    /// [`NotStaged::Failed`] when the read failed.
    pub(crate) async fn fenced(&mut self, completion: &Completion) -> Result<Option<Completion>, NotStaged> {
        self.hold.settle(self.collection, &completion.id).await?;
        Ok(self
            .hold
            .contents()
            .done
            .iter()
            .find(|done| done.id == completion.id && done.checksum == completion.checksum)
            .cloned())
    }

    /// Renews the lease first when a renewal would be due, so that the
    /// transaction has most of a lease.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease is over or the lock another's;
    /// the write's failure otherwise.
    pub(crate) async fn refresh(&mut self, id: &str) -> Result<(), Error> {
        let action = || "renew the schema lock's lease".to_owned();
        let write = Write::until_lost(id, &action);
        self.hold.refresh(self.collection, write).await
    }

    /// How long the lease has left by this process's clock.
    pub(crate) fn remaining(&self) -> Duration {
        self.hold.remaining()
    }

    /// Fences `completion` inside the transaction of `session` (noting
    /// `next` as running), given up on after `bound`: it lands if and when
    /// the transaction commits (see [`Staged`]).
    ///
    /// # Errors
    ///
    /// As [`Hold::stage`].
    pub(crate) async fn stage(
        self,
        completion: &Completion,
        next: Option<&str>,
        session: &mut ClientSession,
        bound: Duration,
    ) -> Result<Staged<'h>, NotStaged> {
        let action = || {
            format!(
                "note the completion of `{}` in the schema lock, in its transaction",
                completion.id
            )
        };
        let write = Write::until_lost(&completion.id, &action);
        self.hold
            .stage(self.collection, session, write, bound, |contents| {
                fenced(contents, completion, next)
            })
            .await
    }
}
