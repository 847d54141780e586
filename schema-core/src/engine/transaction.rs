//! A migration declared with `transaction`, where the server runs
//! transactions (a replica set or a sharded cluster): its body's writes
//! (made with the session it is given), its fence in the lock and its
//! record in the versions collection commit in one transaction, or none of
//! them does.
//!
//! - **Exactly once**: a holder killed or cut off anywhere before the
//!   commit leaves nothing (the server aborts a transaction whose session
//!   ends, and one that outlives its lifetime); the next holder finds the
//!   migration pending and runs it, once.
//! - **Fenced by the lease**: the fence is the holder's write, filtered on
//!   its version; a holder that lost the lock matches nothing, and its
//!   transaction is aborted with everything the body wrote. The lock's
//!   writer is held from before the transaction's first statement to its
//!   end (`lock::transaction`), so no renewal moves the version under the
//!   snapshot; the lease is renewed first when a renewal is due, and the
//!   body is stopped when the lease ends.
//! - **A lost commit reply** is sent again on the same session (the server
//!   answers as the transaction ended); still unknown, the fence stays
//!   unresolved and the next try reads the lock back first: a fence that
//!   landed means the whole transaction did, and nothing is run again.
//! - **Transient failures** (a write conflict with the application's own
//!   writes, a failover), which abort the whole transaction, are tried
//!   again whole, after a growing pause, while the lease lasts and for
//!   [`RETRY_WINDOW`] at most.
//! - **Too long for a transaction**: the body gets two thirds of what the
//!   lease and the server's transaction lifetime leave; one that does not
//!   finish is stopped, its transaction ended on the server, and the
//!   migration fails saying so.

use std::time::{Duration, Instant};

use mongodb::ClientSession;
use mongodb::bson::DateTime;
use mongodb::options::{Acknowledgment, WriteConcern};
use tracing::{Instrument, info, info_span, warn};

use super::Engine;
use crate::declare::registry::{Migration, TransactionBody};
use crate::lock::{Held, NotStaged};
use crate::stored::lock::Completion;
use crate::support::convert;
use crate::support::error::{self, BoxError, Error};
use crate::support::faults::{Failure, MAX_WRITE_TIMEOUT, within};
use crate::support::panic;
use crate::support::retry;
use crate::support::transactions::{
    COMMIT_ATTEMPTS, RETRY_WINDOW, TRANSACTION_BUDGET, abort, end, kill, lifetime_exceeded, pause_after,
};

/// How long one commit is waited for before it is sent again.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// Why one try did not commit.
enum Try {
    /// Nothing of it was applied, or what it applied is settled by the next
    /// try before anything is sent: try again.
    Again(Failure),
    /// The migration fails (or the lease is lost): stop.
    Failed(Error),
}

/// One try's session and the deadline of everything it sends.
struct Step {
    session: ClientSession,
    deadline: Instant,
}

impl Step {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

impl Engine<'_> {
    /// Runs `migration`, whose body is `body`, in transactions until one
    /// commits with its fence (noting `next` as running) and its record.
    /// Returns how long the committing try's body ran.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationFailed`] or [`Error::MigrationPanicked`] when the
    /// body fails (nothing of it is applied), does not finish within a
    /// transaction's time, or its transaction fails for longer than the
    /// retry window; [`Error::LockLost`] when the lease ends or the lock is
    /// another's: nothing of it is applied.
    pub(super) async fn run_in_transaction(
        &self,
        migration: &Migration,
        body: TransactionBody,
        held: &Held<'_>,
        next: Option<&str>,
        applied_by: &str,
    ) -> Result<Duration, Error> {
        let id = migration.id();
        let span = info_span!("migration", migration.id = id, transaction = true);
        async {
            info!(
                description = migration.description(),
                "applying migration in a transaction with its record"
            );
            let started = Instant::now();
            let mut attempt: u32 = 1;
            loop {
                let failure = match self.try_once(migration, body, held, next, applied_by).await {
                    Ok(took) => return Ok(took),
                    Err(Try::Failed(error)) => return Err(error),
                    Err(Try::Again(failure)) => failure,
                };
                if !held.is_live() {
                    return Err(Error::LockLost {
                        id: id.to_owned(),
                        source: None,
                    });
                }
                if started.elapsed() >= RETRY_WINDOW {
                    return Err(Error::MigrationFailed {
                        id: id.to_owned(),
                        source: failure.into_source(format!(
                            "commit the transaction of `{id}`, tried {attempt} times over {:?}",
                            started.elapsed()
                        )),
                    });
                }
                warn!(error = ?failure, attempt, "the migration's transaction did not commit; trying it again whole");
                retry::pause(pause_after(attempt), Some(started + RETRY_WINDOW)).await;
                attempt = attempt.saturating_add(1);
            }
        }
        .instrument(span)
        .await
    }

    /// One try: with the lock's writer held, the body, the fence, the
    /// record and the commit, in one session, all before one deadline.
    async fn try_once(
        &self,
        migration: &Migration,
        body: TransactionBody,
        held: &Held<'_>,
        next: Option<&str>,
        applied_by: &str,
    ) -> Result<Duration, Try> {
        let id = migration.id();
        let fenced = Completion::ran(migration, 0, applied_by).in_transaction(true);
        let mut hold = held.fence_hold().await;
        match hold.fenced(&fenced).await {
            Ok(None) => {}
            Ok(Some(landed)) => {
                // An earlier try's commit, whose reply was lost, landed:
                // the body, the fence and the record with it.
                drop(hold);
                held.recorded(id).await;
                let took = landed.duration_ms.and_then(|ms| u64::try_from(ms).ok());
                return Ok(Duration::from_millis(took.unwrap_or(0)));
            }
            Err(not_staged) => return Err(not_staged_try(held, id, not_staged)),
        }
        hold.refresh(id).await.map_err(Try::Failed)?;
        // The whole transaction ends while the lease lasts and well within
        // the server's transaction lifetime; the body gets two thirds.
        let budget = hold.remaining().min(TRANSACTION_BUDGET);
        let deadline = Instant::now() + budget;
        let client = self.db.client();
        let session = within(budget, client.start_session())
            .await
            .map_err(|failure| classify(id, failure))?;
        let mut step = Step { session, deadline };
        let write_concern = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .w_timeout(budget.min(MAX_WRITE_TIMEOUT))
            .build();
        step.session
            .start_transaction()
            .write_concern(write_concern)
            .await
            .map_err(|error| classify(id, Failure::Server(error)))?;
        let started = Instant::now();
        let run = panic::caught(body(self.db, &mut step.session));
        let ran = tokio::time::timeout(budget * 2 / 3, held.hold_while(run)).await;
        // A body stopped half way may have a statement still running on
        // the server: its session is killed, which stops it.
        let stopped = !matches!(ran, Ok(Some(_)));
        if let Err(failure) = body_outcome(id, ran, budget) {
            if stopped {
                kill(&mut step.session, client).await;
            }
            abort(&mut step.session).await;
            return Err(failure);
        }
        let took = started.elapsed();
        // The transaction must still be open: one the body committed or
        // aborted itself cannot hold the fence and the record. Starting
        // another is refused, without a command, while one is open.
        if step.session.start_transaction().await.is_ok() {
            abort(&mut step.session).await;
            return Err(Try::Failed(Error::MigrationFailed {
                id: id.to_owned(),
                source: "it ended its session's transaction itself (`commit_transaction` or \
                         `abort_transaction`); a migration declared with `transaction` leaves that to \
                         the library, which commits it with the fence and the record: what it wrote \
                         may have been committed without its record"
                    .into(),
            }));
        }
        let completion = Completion::ran(migration, convert::millis(took), applied_by).in_transaction(true);
        let left = step.left();
        let staged = match hold.stage(&completion, next, &mut step.session, left).await {
            Ok(staged) => staged,
            Err(not_staged) => {
                match &not_staged {
                    NotStaged::Failed(failure) => end(&mut step.session, client, failure).await,
                    _ => abort(&mut step.session).await,
                }
                // Aborted first: losing the lease drops the migration.
                return Err(not_staged_try(held, id, not_staged));
            }
        };
        let applied_at = staged.renewed_at().unwrap_or_else(DateTime::now);
        let left = step.left();
        if let Err(failure) = self
            .records
            .insert_in(&completion, applied_at, &mut step.session, left)
            .await
        {
            end(&mut step.session, client, &failure).await;
            staged.aborted();
            return Err(classify(id, failure));
        }
        // A commit whose answer is lost is sent again on the same session,
        // at the same transaction number: the server answers as it ended,
        // committed or aborted, and commits it now if it had not arrived.
        let mut commits = 0;
        let failure = loop {
            commits += 1;
            // A commit that is not answered within a few seconds is sent
            // again; one left unanswered is settled from the lock.
            let share = (step.left() / (COMMIT_ATTEMPTS + 1 - commits)).min(COMMIT_WAIT);
            match within(share, step.session.commit_transaction()).await {
                Ok(()) => {
                    staged.committed();
                    held.recorded(id).await;
                    return Ok(took);
                }
                Err(Failure::Server(error))
                    if error.contains_label("TransientTransactionError")
                        && !error.contains_label("UnknownTransactionCommitResult") =>
                {
                    // Aborted by the server: nothing of it was applied.
                    staged.aborted();
                    return Err(Try::Again(Failure::Server(error)));
                }
                Err(failure) if commits < COMMIT_ATTEMPTS && !step.left().is_zero() => {
                    warn!(error = ?failure, "a migration's commit was not answered; sending it again");
                }
                Err(failure) => break failure,
            }
        };
        // Still unknown: the fence stays unresolved for the next try to
        // settle, and the transaction, should it not have committed, is
        // ended on the server so it holds nothing until its lifetime ends.
        drop(staged);
        kill(&mut step.session, client).await;
        Err(Try::Again(failure))
    }
}

/// How the body's run ended: within the time it had or not, within the
/// lease or not, panicked or not, and what it returned.
type Ran = Result<Option<Result<Result<(), BoxError>, String>>, tokio::time::error::Elapsed>;

/// What the body's run says of the try: `Ok` when it finished well.
fn body_outcome(id: &str, ran: Ran, budget: Duration) -> Result<(), Try> {
    match ran {
        Ok(Some(Ok(Ok(())))) => Ok(()),
        Err(_) => Err(Try::Failed(Error::MigrationFailed {
            id: id.to_owned(),
            source: too_long_for_one(budget),
        })),
        Ok(None) => {
            warn!("the schema lock's lease ended while the migration ran; its transaction is aborted");
            Err(Try::Failed(Error::LockLost {
                id: id.to_owned(),
                source: None,
            }))
        }
        Ok(Some(Err(message))) => {
            let message = error::without_values(&message);
            tracing::error!(panic = %message, "migration panicked; its transaction is aborted");
            Err(Try::Failed(Error::MigrationPanicked {
                id: id.to_owned(),
                message,
            }))
        }
        Ok(Some(Ok(Err(source)))) => {
            // The driver's error, wherever the body's own error type holds it.
            if let Some(cause) = driver_cause(source.as_ref()) {
                if cause.contains_label("TransientTransactionError") {
                    return Err(Try::Again(Failure::Server(cause.clone())));
                }
                if lifetime_exceeded(cause) {
                    return Err(Try::Failed(Error::MigrationFailed {
                        id: id.to_owned(),
                        source: too_long_for_one(budget),
                    }));
                }
            }
            let source = error::shown(source);
            tracing::error!(error = %source, "migration failed; its transaction is aborted");
            Err(Try::Failed(Error::MigrationFailed {
                id: id.to_owned(),
                source,
            }))
        }
    }
}

/// The driver's error in `error` or among its causes.
fn driver_cause<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e mongodb::error::Error> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(driver) = error.downcast_ref::<mongodb::error::Error>() {
            return Some(driver);
        }
        cause = error.source();
    }
    None
}

/// The error of a body that did not finish within one transaction.
fn too_long_for_one(budget: Duration) -> BoxError {
    format!(
        "it did not finish within one transaction's time ({budget:?}: under the server's \
         transaction lifetime and the lock's lease); a transaction must be short: move the work \
         over many documents into a `Backfill`, in a migration without `transaction`"
    )
    .into()
}

/// What a write or read of the lock under the hold that did not go through
/// means for the try. The transaction is aborted already.
fn not_staged_try(held: &Held<'_>, id: &str, not_staged: NotStaged) -> Try {
    match not_staged {
        NotStaged::Lost(error) => Try::Failed(error),
        NotStaged::Taken => Try::Failed(held.lose(id)),
        NotStaged::Failed(failure) => classify(id, failure),
        // An earlier write's outcome is still unknown: settled first.
        NotStaged::Again => Try::Again(Failure::TimedOut(Duration::ZERO)),
    }
}

/// A failure before the commit: nothing of the transaction was applied.
fn classify(id: &str, failure: Failure) -> Try {
    // A `TransientTransactionError` label among them.
    if failure.is_transient() {
        Try::Again(failure)
    } else {
        Try::Failed(failure.into_error(format!("run the transaction of `{id}`")))
    }
}
