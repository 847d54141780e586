//! A batch and its checkpoint as one transaction, where the server runs
//! transactions (a replica set or a sharded cluster) and the backfill runs
//! under a manager.
//!
//! The transaction is the batch's `updateMany` and then the checkpoint's
//! write to the lock document, filtered on the holder and the lock's
//! version like every write of the holder. So:
//!
//! - **exactly once**: the batch's changes and the checkpoint after them
//!   commit together or not at all; a transaction that did not commit
//!   changed nothing, and is tried again whole;
//! - **fenced by the lease**: a process that lost the lock matches nothing
//!   with its checkpoint write, so its transaction is aborted and its batch
//!   never applied;
//! - **a lost commit reply** leaves the checkpoint write unresolved, and it
//!   is settled by reading the lock back before the batch is tried again:
//!   if it landed, the batch is done; the lock document is written inside
//!   every batch's transaction, so two transactions of one batch cannot
//!   both commit.
//!
//! Should the server refuse transactions after all, the walk goes on
//! without them, batch and checkpoint apart, and says so once.

use mongodb::ClientSession;
use mongodb::bson::Bson;
use mongodb::options::{Acknowledgment, UpdateModifications, WriteConcern};
use tracing::warn;

use super::batches::{BATCH_ATTEMPTS, Walk, at, binary};
use crate::lock::{Checkpoints, NotStaged};
use crate::stored::checkpoint::Checkpoint;
use crate::support::error::Error;
use crate::support::faults::{Failure, MAX_WRITE_TIMEOUT, within};

/// Server codes that say the deployment takes no transaction after all.
const TRANSACTIONS_REFUSED: &[i32] = &[
    20,  // IllegalOperation: "Transaction numbers are only allowed on a replica set member or mongos"
    263, // OperationNotSupportedInTransaction
];

/// Why one try of a batch's transaction did not commit.
enum NotCommitted {
    /// Nothing was applied (or it is settled before the next try): try
    /// again. `unknown` when the commit's outcome was not learnt.
    Again { failure: Failure, unknown: bool },
    /// The server takes no transaction.
    Refused,
    /// The lease is over or the lock another's.
    Lost(Error),
    /// The server refused the batch outright.
    Failed(Failure),
}

impl Walk {
    /// Applies the batch `ids` and saves `checkpoint` after it, in one
    /// transaction. Returns `false`, having done nothing, when the server
    /// refuses transactions: the caller applies the batch without one.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease is over: the batch was not
    /// applied. [`Error::BackfillFailed`] when its transaction failed too
    /// often or was refused, and [`Error::BackfillOutcomeUnknown`] when
    /// the last commit's outcome could not be learnt.
    pub(super) async fn transaction(
        &self,
        update: &UpdateModifications,
        checkpoint: &mut Checkpoint,
        ids: &[Bson],
        checkpoints: &Checkpoints,
    ) -> Result<bool, Error> {
        let at = &at(checkpoint);
        let mut next = checkpoint.clone();
        next.position = ids.last().cloned();
        next.batches += 1;
        next.visited += ids.len() as u64;
        let next = &next;
        let attempt = move |number: u32| async move {
            if number > 1
                && let Some(saved) = checkpoints.saved(&next.key).await.map_err(NotCommitted::Lost)?
                && saved.batches >= next.batches
                && saved.position == next.position
            {
                // A commit whose reply was lost had landed.
                return Ok(Some(saved));
            }
            match self.try_transaction(update, next, ids, checkpoints).await {
                Ok(done) => Ok(Some(done)),
                // Refused at once: this deployment takes no transaction.
                Err(NotCommitted::Refused) if number == 1 => Ok(None),
                Err(other) => Err(other),
            }
        };
        let again = |failure: &NotCommitted, n| {
            if let NotCommitted::Again { failure, .. } = failure {
                self.again("transaction", failure, n);
            }
        };
        let worth_another = |failure: &NotCommitted| matches!(failure, NotCommitted::Again { .. });
        match BATCH_ATTEMPTS.run(|| true, worth_another, again, attempt).await {
            Ok(Some(done)) => {
                *checkpoint = done;
                Ok(true)
            }
            Ok(None) => {
                warn!(
                    collection = %self.collection.name(),
                    "the server refused a transaction: the backfill goes on without, each batch \
                     and its checkpoint apart"
                );
                Ok(false)
            }
            Err(NotCommitted::Refused) => {
                Err(self.batch_failed(at, "the server refused a transaction it took before".into()))
            }
            Err(NotCommitted::Lost(error)) => Err(error),
            Err(NotCommitted::Failed(failure)) => Err(self.failed(at, failure)),
            Err(NotCommitted::Again {
                failure,
                unknown: true,
            }) => Err(Error::BackfillOutcomeUnknown {
                collection: self.collection.name().to_owned(),
                at: at.clone(),
                at_most: None,
                source: failure.into_source(format!("commit a batch of `{}`", self.collection.name())),
            }),
            Err(NotCommitted::Again { failure, .. }) => Err(self.failed(at, failure)),
        }
    }

    /// One try: the update, the checkpoint and the commit, in one session.
    async fn try_transaction(
        &self,
        update: &UpdateModifications,
        next: &Checkpoint,
        ids: &[Bson],
        checkpoints: &Checkpoints,
    ) -> Result<Checkpoint, NotCommitted> {
        let client = self.collection.client();
        let mut session = within(self.bound, client.start_session())
            .await
            .map_err(classify)?;
        let write_concern = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .w_timeout(self.bound.min(MAX_WRITE_TIMEOUT))
            .build();
        session
            .start_transaction()
            .write_concern(write_concern)
            .await
            .map_err(|error| classify(Failure::Server(error)))?;
        let filter = super::walk::batch(&self.filter, ids);
        let sent = self
            .collection
            .update_many(filter, update.clone())
            .collation(binary())
            .session(&mut session);
        let result = match within(self.bound, sent).await {
            Ok(result) => result,
            Err(failure) => {
                abort(&mut session, self.bound).await;
                return Err(classify(failure));
            }
        };
        let mut next = next.clone();
        next.matched = Some(next.matched.unwrap_or(0) + result.matched_count);
        next.modified = Some(next.modified.unwrap_or(0) + result.modified_count);
        let staged = match checkpoints.stage(&next, &mut session).await {
            Ok(staged) => staged,
            Err(not_staged) => {
                abort(&mut session, self.bound).await;
                return Err(match not_staged {
                    NotStaged::Lost(error) => NotCommitted::Lost(error),
                    // Aborted first: losing the lease drops the migration.
                    NotStaged::Taken => NotCommitted::Lost(checkpoints.lose()),
                    NotStaged::Failed(failure) => classify(failure),
                    NotStaged::Again => NotCommitted::Again {
                        failure: Failure::TimedOut(self.bound),
                        unknown: false,
                    },
                });
            }
        };
        match within(self.bound, session.commit_transaction()).await {
            Ok(()) => {
                staged.committed();
                Ok(next)
            }
            Err(Failure::Server(error)) if error.contains_label("TransientTransactionError") => {
                // Aborted by the server: nothing of it was applied.
                staged.aborted();
                Err(NotCommitted::Again {
                    failure: Failure::Server(error),
                    unknown: false,
                })
            }
            Err(failure) => {
                // It may have committed: the checkpoint write stays
                // unresolved, and the next try settles it first.
                drop(staged);
                Err(NotCommitted::Again {
                    failure,
                    unknown: true,
                })
            }
        }
    }
}

/// A failure before the commit: nothing of the transaction was applied.
fn classify(failure: Failure) -> NotCommitted {
    let refused = match &failure {
        Failure::Server(error) => {
            crate::support::error::code(error).is_some_and(|code| TRANSACTIONS_REFUSED.contains(&code))
        }
        Failure::TimedOut(_) => false,
    };
    if refused {
        NotCommitted::Refused
    } else if failure.is_transient()
        || matches!(&failure, Failure::Server(error) if error.contains_label("TransientTransactionError"))
    {
        NotCommitted::Again {
            failure,
            unknown: false,
        }
    } else {
        NotCommitted::Failed(failure)
    }
}

/// Aborts the transaction of `session`, as far as the server answers: one
/// left open is aborted by the server when its lifetime ends, and cannot
/// commit meanwhile.
async fn abort(session: &mut ClientSession, bound: std::time::Duration) {
    if let Err(failure) = within(bound, session.abort_transaction()).await {
        warn!(error = ?failure, "could not abort a backfill's transaction; the server ends it");
    }
}
