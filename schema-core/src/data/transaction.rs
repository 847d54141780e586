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
//! - **its own renewals cannot fence it out**: the lock's writer is held
//!   from before the transaction's first statement to its end (see
//!   `lock::writer::staged`), so no renewal moves the version between the
//!   snapshot the update fixes and the checkpoint's write; before it
//!   starts, the lease is renewed when a renewal is due;
//! - **a lost commit reply** leaves the checkpoint write unresolved, and it
//!   is settled by reading the lock back before the batch is tried again:
//!   if it landed, the batch is done and nothing more is sent for it; if a
//!   read cannot see it yet, the next try's checkpoint write matches
//!   nothing in a snapshot that holds it, and that try is aborted;
//! - **conflicts are ridden out**: a transaction the server aborts as
//!   transient (a write conflict with the application's own writes, a
//!   failover) is tried again after a growing pause, for as long as
//!   [`RETRY_WINDOW`] allows and the lease lasts;
//! - **a batch too long for one transaction is split**: one whose update
//!   does not finish within the time the lease and the server's
//!   transaction lifetime leave, is tried again in halves, each committed
//!   with its own checkpoint;
//! - **nothing is left running on the server**: a statement given up on by
//!   the client (whose transaction the driver would only abort locally, if
//!   the statement was its first) has its session killed on the server
//!   (`killSessions`), which stops the statement and aborts the
//!   transaction, so it holds no lock or snapshot the next try meets.
//!
//! Should the server refuse transactions after all, the walk goes on
//! without them, batch and checkpoint apart, and says so once.

use std::time::Instant;

use mongodb::bson::Bson;
use mongodb::options::{Acknowledgment, UpdateModifications, WriteConcern};
use tracing::warn;

use super::batches::{Walk, at, binary};
use crate::lock::{Checkpoints, NotStaged};
use crate::stored::checkpoint::Checkpoint;
use crate::support::error::{self, Error};
use crate::support::faults::{Failure, MAX_WRITE_TIMEOUT, within};
use crate::support::retry;
use crate::support::transactions::{
    COMMIT_ATTEMPTS, RETRY_WINDOW, TRANSACTION_BUDGET, TRANSACTIONS_REFUSED, abort, end, kill, pause_after,
    too_long,
};

/// Why one try of a batch's transaction did not commit.
enum NotCommitted {
    /// Nothing was applied (or it is settled before the next try): try
    /// again. `unknown` when the commit's outcome was not learnt.
    Again { failure: Failure, unknown: bool },
    /// The update did not finish within the transaction's time: nothing
    /// was applied, and a smaller batch may.
    TooLong(Failure),
    /// The server takes no transaction.
    Refused,
    /// The lease is over or the lock another's.
    Lost(Error),
    /// The server refused the batch outright.
    Failed(Failure),
}

/// How one part of a batch ended.
enum Part {
    Committed,
    /// Too long for one transaction: to be split.
    TooLong(Failure),
    /// The server refused its first transaction.
    Refused,
}

impl Walk {
    /// Applies the batch `ids` and saves `checkpoint` after it, in one
    /// transaction, or in several when the batch is too long for one (its
    /// halves, and theirs, each with its checkpoint). Returns `false`,
    /// having done nothing, when the server refuses transactions: the
    /// caller applies the batch without one.
    ///
    /// # Errors
    ///
    /// [`Error::LockLost`] when the lease is over: the part under way was
    /// not applied. [`Error::BackfillFailed`] when a transaction failed
    /// for longer than [`RETRY_WINDOW`], was refused, or a single
    /// document's update did not fit in one; and
    /// [`Error::BackfillOutcomeUnknown`] when the last commit's outcome
    /// could not be learnt.
    pub(super) async fn transaction(
        &self,
        update: &UpdateModifications,
        checkpoint: &mut Checkpoint,
        ids: &[Bson],
        checkpoints: &Checkpoints,
    ) -> Result<bool, Error> {
        let mut rest = ids;
        let mut size = ids.len();
        let mut first = true;
        while !rest.is_empty() {
            let part = &rest[..size.min(rest.len())];
            match self.part(update, checkpoint, part, checkpoints, first).await? {
                Part::Committed => {
                    // Usually the part; more when a commit of the whole
                    // batch, whose outcome was unknown when it was split,
                    // is found to have landed.
                    let done = ids
                        .iter()
                        .position(|id| checkpoint.position.as_ref().is_some_and(|at| same_id(id, at)))
                        .ok_or_else(|| {
                            self.batch_failed(
                                &at(checkpoint),
                                "its checkpoint was found at an `_id` outside the batch it was \
                                 committing"
                                    .into(),
                            )
                        })?;
                    rest = &ids[done + 1..];
                }
                Part::Refused => {
                    warn!(
                        collection = %self.collection.name(),
                        "the server refused a transaction: the backfill goes on without, each batch \
                         and its checkpoint apart"
                    );
                    return Ok(false);
                }
                Part::TooLong(failure) if part.len() > 1 => {
                    size = part.len().div_ceil(2);
                    warn!(
                        error = ?failure,
                        collection = %self.collection.name(),
                        documents = part.len(),
                        now = size,
                        "a backfill's batch did not finish within one transaction's time; trying it \
                         in smaller parts"
                    );
                }
                Part::TooLong(failure) => {
                    let source = failure.into_source(format!(
                        "update one document of `{}` within one transaction's time (at most \
                         {TRANSACTION_BUDGET:?}, and less than the lease); make the update cheaper, or \
                         raise the lease",
                        self.collection.name(),
                    ));
                    return Err(self.batch_failed(&at(checkpoint), source));
                }
            }
            first = false;
        }
        Ok(true)
    }

    /// Commits `part` and its checkpoint in one transaction, tried again
    /// after transient failures for as long as the retry window and the
    /// lease allow.
    async fn part(
        &self,
        update: &UpdateModifications,
        checkpoint: &mut Checkpoint,
        part: &[Bson],
        checkpoints: &Checkpoints,
        first: bool,
    ) -> Result<Part, Error> {
        let at = &at(checkpoint);
        let mut next = checkpoint.clone();
        next.position = part.last().cloned();
        next.batches += 1;
        next.visited += part.len() as u64;
        let started = Instant::now();
        let mut attempt: u32 = 1;
        // A commit whose outcome is not known yet: until it is settled,
        // the part is not split (a smaller part would not recognise the
        // whole one's checkpoint).
        let mut unsettled = false;
        loop {
            let (failure, unknown) = match self.try_transaction(update, &next, part, checkpoints).await {
                Ok(done) => {
                    *checkpoint = done;
                    return Ok(Part::Committed);
                }
                Err(NotCommitted::Refused) if first && attempt == 1 => return Ok(Part::Refused),
                Err(NotCommitted::Refused) => {
                    return Err(
                        self.batch_failed(at, "the server refused a transaction it took before".into())
                    );
                }
                // A stall, not a long update, may have timed out a part of
                // one document, or a part whose earlier commit is
                // unsettled: tried again as it is.
                Err(NotCommitted::TooLong(failure @ Failure::TimedOut(_)))
                    if part.len() == 1 || unsettled =>
                {
                    (failure, unsettled)
                }
                Err(NotCommitted::TooLong(failure)) if !unsettled => return Ok(Part::TooLong(failure)),
                Err(NotCommitted::TooLong(failure)) => (failure, true),
                Err(NotCommitted::Lost(error)) => return Err(error),
                Err(NotCommitted::Failed(failure)) => return Err(self.failed(at, failure)),
                Err(NotCommitted::Again { failure, unknown }) => (failure, unknown),
            };
            unsettled |= unknown;
            let window = RETRY_WINDOW.min(checkpoints.lease());
            if started.elapsed() >= window || checkpoints.ensure_live().is_err() {
                return Err(if unsettled {
                    Error::BackfillOutcomeUnknown {
                        collection: self.collection.name().to_owned(),
                        at: at.clone(),
                        at_most: None,
                        counted: true,
                        source: failure
                            .into_source(format!("commit a batch of `{}`", self.collection.name())),
                    }
                } else {
                    self.failed(at, failure)
                });
            }
            self.again("transaction", &failure, attempt);
            retry::pause(pause_after(attempt), Some(started + window)).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// One try: with the lock's writer held, the update, the checkpoint
    /// and the commit, in one session, all before one deadline.
    async fn try_transaction(
        &self,
        update: &UpdateModifications,
        next: &Checkpoint,
        ids: &[Bson],
        checkpoints: &Checkpoints,
    ) -> Result<Checkpoint, NotCommitted> {
        let mut hold = checkpoints.hold().await;
        let saved = hold.saved(&next.key).await;
        if let Some(saved) = saved.map_err(|not_staged| self.not_staged(checkpoints, not_staged))?
            && saved.batches >= next.batches
        {
            // An earlier try's commit, whose reply was lost, had landed
            // (this part's, or the whole batch's before it was split):
            // nothing more is sent for it.
            return Ok(saved);
        }
        // A renewal that cannot land while the lease lasts ends the try
        // with its error.
        hold.refresh().await.map_err(NotCommitted::Lost)?;
        // The whole transaction ends while the lease lasts and well within
        // the server's transaction lifetime, each of its steps bounded by
        // what is left of that; the update gets two thirds.
        let budget = hold.remaining().min(TRANSACTION_BUDGET);
        let deadline = Instant::now() + budget;
        let left = || deadline.saturating_duration_since(Instant::now());
        let client = self.collection.client();
        let mut session = within(left(), client.start_session()).await.map_err(classify)?;
        let write_concern = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .w_timeout(budget.min(MAX_WRITE_TIMEOUT))
            .build();
        session
            .start_transaction()
            .write_concern(write_concern)
            .await
            .map_err(|error| classify(Failure::Server(error)))?;
        let filter = super::walk::batch(&self.filter, ids);
        let mut sent = self.collection.update_many(filter, update.clone());
        if super::walk::update_needs_collation(&self.filter, ids) {
            sent = sent.collation(binary());
        }
        let sent = sent.session(&mut session);
        let result = match within(budget * 2 / 3, sent).await {
            Ok(result) => result,
            Err(failure) => {
                // The lock was not written: renewals may go on.
                drop(hold);
                end(&mut session, client, &failure).await;
                return Err(match failure {
                    Failure::TimedOut(_) => NotCommitted::TooLong(failure),
                    failure if too_long(&failure) => NotCommitted::TooLong(failure),
                    other => classify(other),
                });
            }
        };
        let mut next = next.clone();
        next.matched = Some(next.matched.unwrap_or(0) + result.matched_count);
        next.modified = Some(next.modified.unwrap_or(0) + result.modified_count);
        let staged = match hold.stage(&next, &mut session, left()).await {
            Ok(staged) => staged,
            Err(not_staged) => {
                match &not_staged {
                    NotStaged::Failed(failure) => end(&mut session, client, failure).await,
                    _ => abort(&mut session).await,
                }
                // Aborted first: losing the lease drops the migration.
                return Err(match not_staged {
                    NotStaged::Failed(failure) if too_long(&failure) => NotCommitted::TooLong(failure),
                    other => self.not_staged(checkpoints, other),
                });
            }
        };
        // A commit whose answer is lost is sent again on the same session,
        // at the same transaction number: the server answers as it ended,
        // committed or aborted, and commits it now if it had not arrived.
        let mut commits = 0;
        let failure = loop {
            commits += 1;
            // What is left is shared with the attempts after this one, so
            // that a commit given up on is sent again before the deadline.
            let share = left() / (COMMIT_ATTEMPTS + 1 - commits);
            match within(share, session.commit_transaction()).await {
                Ok(()) => {
                    staged.committed();
                    return Ok(next);
                }
                Err(Failure::Server(error))
                    if error.contains_label("TransientTransactionError")
                        && !error.contains_label("UnknownTransactionCommitResult") =>
                {
                    // Aborted by the server: nothing of it was applied.
                    staged.aborted();
                    let failure = Failure::Server(error);
                    return Err(if too_long(&failure) {
                        NotCommitted::TooLong(failure)
                    } else {
                        NotCommitted::Again {
                            failure,
                            unknown: false,
                        }
                    });
                }
                Err(failure) if commits < COMMIT_ATTEMPTS && !left().is_zero() => {
                    warn!(error = ?failure, "a backfill's commit was not answered; sending it again");
                }
                Err(failure) => break failure,
            }
        };
        // Still unknown: the checkpoint write stays unresolved for the next
        // try to settle, and the transaction, should it not have committed,
        // is ended on the server so it holds nothing (the lock document
        // above all) until its lifetime runs out.
        drop(staged);
        kill(&mut session, client).await;
        Err(NotCommitted::Again {
            failure,
            unknown: true,
        })
    }
}

impl Walk {
    /// What a write or read of the lock under the hold that did not go
    /// through means for the try.
    fn not_staged(&self, checkpoints: &Checkpoints, not_staged: NotStaged) -> NotCommitted {
        match not_staged {
            NotStaged::Lost(error) => NotCommitted::Lost(error),
            NotStaged::Taken => NotCommitted::Lost(checkpoints.lose()),
            NotStaged::Failed(failure) => classify(failure),
            // An earlier write's outcome is still unknown.
            NotStaged::Again => NotCommitted::Again {
                failure: Failure::TimedOut(self.bound),
                unknown: true,
            },
        }
    }
}

/// Whether `a` and `b` are the same `_id`: equal, or both `NaN` of one
/// type (a unique `_id` index holds one, since the server compares `NaN`
/// equal to itself where `==` does not).
fn same_id(a: &Bson, b: &Bson) -> bool {
    a == b
        || std::mem::discriminant(a) == std::mem::discriminant(b)
            && super::walk::is_nan(a)
            && super::walk::is_nan(b)
}

/// A failure before the commit: nothing of the transaction was applied.
fn classify(failure: Failure) -> NotCommitted {
    let refused = match &failure {
        Failure::Server(error) => error::code(error).is_some_and(|code| TRANSACTIONS_REFUSED.contains(&code)),
        Failure::TimedOut(_) => false,
    };
    if refused {
        NotCommitted::Refused
    } else if failure.is_transient() {
        NotCommitted::Again {
            failure,
            unknown: false,
        }
    } else {
        NotCommitted::Failed(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nan_id_is_the_same_id_as_itself_and_nothing_else_is_by_type() {
        let nan = Bson::Double(f64::NAN);
        assert!(same_id(&nan, &nan.clone()));
        assert!(same_id(&Bson::Null, &Bson::Null));
        assert!(same_id(&Bson::Int32(1), &Bson::Int32(1)));
        assert!(!same_id(&nan, &Bson::Double(1.0)));
        assert!(
            !same_id(&Bson::Int32(1), &Bson::Int64(1)),
            "as `==` says: one type"
        );
        let mut bytes = [0; 16];
        bytes[15] = 0x7C;
        let decimal_nan = Bson::Decimal128(mongodb::bson::Decimal128::from_bytes(bytes));
        assert!(same_id(&decimal_nan, &decimal_nan.clone()));
        assert!(!same_id(&decimal_nan, &nan));
    }
}
