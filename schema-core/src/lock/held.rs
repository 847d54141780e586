//! The lock while this process holds it: what it may write, and letting it
//! go.

use std::future::Future;
use std::sync::Arc;

use mongodb::bson::DateTime;
use tracing::{debug, warn};

use super::checkpoints::Checkpoints;
use super::renewal::Renewal;
use super::writer::{Next, Write, Writer, came_back_without};
use super::{Interrupted, Lock};
use crate::declare::registry::Migration;
use crate::stored::lock::{Completion, Contents};
use crate::support::error::Error;
use crate::support::owner::Owner;

/// The lock, held by this process until [`Held::release`].
pub(crate) struct Held<'l> {
    pub(super) lock: &'l Lock,
    /// Every write this holder makes, renewals included.
    pub(super) writer: Arc<Writer>,
    pub(super) owner: Owner,
    pub(super) renewal: Option<Renewal>,
    pub(super) interrupted: Option<Interrupted>,
    /// The ledger as this process found it: completions of a previous
    /// holder, to be recorded before anything else.
    pub(super) inherited: Vec<Completion>,
    /// The server's time of the inherited ledger's last entry, or later:
    /// the previous holder's last renewal.
    pub(super) ledger_time: DateTime,
    /// The server runs transactions (a replica set or a sharded cluster).
    pub(super) transactions: bool,
}

impl Held<'_> {
    /// Who holds the lock: `host:pid` for records' `applied_by`.
    pub(crate) fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The takeover that gave this process the lock, if it was one.
    pub(crate) fn interrupted_mut(&mut self) -> Option<&mut Interrupted> {
        self.interrupted.as_mut()
    }

    pub(crate) fn take_interrupted(&mut self) -> Option<Interrupted> {
        self.interrupted.take()
    }

    /// Completions a previous holder fenced and left in the ledger.
    pub(crate) fn inherited(&self) -> &[Completion] {
        &self.inherited
    }

    /// When the inherited completions were fenced, at the latest, by the
    /// server's clock.
    pub(crate) fn ledger_time(&self) -> DateTime {
        self.ledger_time
    }

    /// Whether the lease is still this process's by its own clock.
    pub(crate) fn is_live(&self) -> bool {
        self.writer.clock().is_live()
    }

    /// Notes that the completion `id` is recorded in the versions
    /// collection: the next write to the lock drops it from the ledger.
    pub(crate) async fn recorded(&self, id: &str) {
        self.writer.recorded(id).await;
    }

    /// Clears the ledger of the completions noted as recorded, in one
    /// write, so that an operator command that follows (a `forget`) can
    /// never be undone by a stale entry. Writes nothing when there is
    /// nothing to clear.
    ///
    /// # Errors
    ///
    /// As [`fence`](Held::fence).
    pub(crate) async fn clear_ledger(&self) -> Result<(), Error> {
        let contents = self.writer.contents().await;
        let unrecorded = self.writer.unrecorded().await;
        if contents.done.len() == unrecorded.len() {
            return Ok(());
        }
        let action = || "clear the recorded completions from the schema lock's ledger".to_owned();
        let write = Write::until_lost("the ledger", &action);
        self.writer
            .write(&self.lock.collection, write, |contents| {
                Next::Contents(contents.clone())
            })
            .await?;
        Ok(())
    }

    /// Where the backfills of `migration` save their checkpoints while it
    /// runs under this lease, resuming from those a previous holder saved.
    pub(crate) fn checkpoints(&self, migration: &Migration) -> Checkpoints {
        Checkpoints::new(
            self.writer.clone(),
            self.lock.collection.clone(),
            migration,
            self.owner.process(),
            self.transactions,
        )
    }

    /// Runs `work` while the lease lasts. Returns `None`, having dropped
    /// `work` at its next await, once the lease is lost or runs out by this
    /// process's own clock: whatever `work` would do after that may
    /// overlap with another process's run.
    pub(crate) async fn hold_while<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        tokio::select! {
            biased;
            output = &mut work => Some(output),
            () = self.writer.clock().ended() => None,
        }
    }

    /// Fences the completion of a migration: adds it to the ledger in one
    /// write only this holder's can match, notes `next` as running
    /// (clearing it when there is none), removes the migration's
    /// checkpoints and renews the lease. Returns the server's time of the
    /// fence, the record's `applied_at`.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease ended by this process's clock or
    /// the lock is another's: the completion is not fenced and must not be
    /// recorded. [`Error::Database`] when the server refused the write.
    pub(crate) async fn fence(&self, completion: &Completion, next: Option<&str>) -> Result<DateTime, Error> {
        let action = || {
            format!(
                "note the completion of `{}` in the schema lock, so it was not recorded and runs again \
                 on the next start",
                completion.id
            )
        };
        let write = Write::until_lost(&completion.id, &action);
        let fenced = self
            .writer
            .write(&self.lock.collection, write, |contents| {
                Next::Contents(fenced(contents, completion, next))
            })
            .await?;
        fenced
            .map(|document| document.renewed_at)
            .ok_or_else(|| came_back_without("the fence's `renewed_at`"))
    }

    /// Whether the server runs transactions (a replica set or a sharded
    /// cluster), as its `hello` said when the lock was taken.
    pub(crate) fn transactions(&self) -> bool {
        self.transactions
    }

    /// Confirms the lock is still this process's and notes `running`,
    /// renewing the lease. `id` names the operation in a
    /// [`Error::LockLost`].
    ///
    /// # Errors
    ///
    /// As [`fence`](Held::fence).
    pub(crate) async fn note_running(&self, id: &str, running: Option<&str>) -> Result<(), Error> {
        let action = || format!("confirm the schema lock is still this process's before `{id}`");
        let write = Write::until_lost(id, &action);
        self.writer
            .write(&self.lock.collection, write, |contents| {
                Next::Contents(crate::stored::lock::Contents {
                    running: running.map(str::to_owned),
                    ..contents.clone()
                })
            })
            .await?;
        Ok(())
    }

    /// Lets the lock go: deletes it when its ledger holds nothing
    /// unrecorded and no backfill left a checkpoint, and otherwise marks it
    /// released, so that the next process takes it at once, records the
    /// rest and resumes the backfills. Never fails: if the server cannot
    /// be told, the lease ends on its own.
    pub(crate) async fn release(mut self) {
        if let Some(renewal) = self.renewal.take() {
            renewal.stop().await;
        }
        let action = || "let go of the schema lock".to_owned();
        let write = Write::until_lost("the release", &action);
        // Kept or deleted is decided by the writer once every write whose
        // outcome is unknown (a fence whose reply was lost) is settled: a
        // completion found landed then is kept for the next holder.
        let released = self
            .writer
            .write(&self.lock.collection, write, |_| Next::Release)
            .await;
        match released {
            Ok(kept) => debug!(owner = %self.owner.id, kept = kept.is_some(), "released the schema lock"),
            Err(error) => warn!(
                %error,
                "could not release the schema lock; it is free again when its lease ends"
            ),
        }
    }
}

/// `contents` with `completion` fenced: in the ledger, `next` noted as
/// running (nothing when there is none), the migration's checkpoints gone.
pub(super) fn fenced(contents: &Contents, completion: &Completion, next: Option<&str>) -> Contents {
    let mut after = contents.clone();
    after.done.retain(|done| done.id != completion.id);
    after.done.push(completion.clone());
    after.running = next.map(str::to_owned);
    after
        .checkpoints
        .retain(|checkpoint| checkpoint.migration != completion.id);
    after
}
