//! What every transaction of this crate needs (a backfill's batch with its
//! checkpoint, a migration with its fence and record): the server's codes
//! that end one, its time budget, and ending one that failed so that it
//! holds nothing on the server.

use std::time::Duration;

use mongodb::ClientSession;
use mongodb::bson::doc;
use tracing::warn;

use super::error::code;
use super::faults::{Failure, within};

/// Server codes that say the deployment takes no transaction after all.
pub(crate) const TRANSACTIONS_REFUSED: &[i32] = &[
    20,  // IllegalOperation: "Transaction numbers are only allowed on a replica set member or mongos"
    263, // OperationNotSupportedInTransaction
];

/// The server's code for a transaction its lifetime limit ended
/// (`transactionLifetimeLimitSeconds`).
const LIFETIME_EXCEEDED: i32 = 290;

/// The longest one transaction is given: under the server's default
/// transaction lifetime (60 s), with room for its commit.
pub(crate) const TRANSACTION_BUDGET: Duration = Duration::from_secs(45);

/// How long a transaction is tried again after transient failures, at
/// most; never past the lease.
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(120);

/// The first pause after a transient failure; it doubles with each try,
/// up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// The pause after the `attempt`th try (from 1) failed as transient: 50 ms,
/// doubling, at most 2 s.
pub(crate) fn pause_after(attempt: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(LONGEST_PAUSE)
}

/// How long killing a session on the server may take.
const KILL_BOUND: Duration = Duration::from_secs(5);

/// How many times a commit is sent when its answer is lost.
pub(crate) const COMMIT_ATTEMPTS: u32 = 3;

/// Whether the server ended the transaction for its lifetime
/// (`transactionLifetimeLimitSeconds`), at any of its statements.
pub(crate) fn too_long(failure: &Failure) -> bool {
    matches!(failure, Failure::Server(error) if lifetime_exceeded(error))
}

/// Whether `error` is the server ending a transaction for its lifetime.
pub(crate) fn lifetime_exceeded(error: &mongodb::error::Error) -> bool {
    code(error) == Some(LIFETIME_EXCEEDED)
}

/// Ends the transaction of `session` after one of its statements failed.
/// A statement the client gave up on may still run on the server, in a
/// transaction the driver aborts only locally when that statement was its
/// first: its session is killed on the server (`killSessions`), which
/// stops the statement and aborts the transaction. Any other failure is
/// answered with an abort.
pub(crate) async fn end(session: &mut ClientSession, client: &mongodb::Client, failure: &Failure) {
    if let Failure::TimedOut(_) = failure {
        kill(session, client).await;
    }
    abort(session).await;
}

/// Kills `session` on the server (`killSessions`, which any user may send
/// for its own sessions): its running statement stops, and its
/// transaction is aborted unless it has committed.
pub(crate) async fn kill(session: &mut ClientSession, client: &mongodb::Client) {
    let admin = client.database("admin");
    let kill = admin.run_command(doc! { "killSessions": [session.id().clone()] });
    if let Err(failure) = within(KILL_BOUND, kill).await {
        warn!(
            error = ?failure,
            "could not end a transaction on the server; the server ends it when its lifetime runs \
             out"
        );
    }
}

/// Aborts the transaction of `session`, as far as the server answers: one
/// left open is aborted by the server when its lifetime ends, and cannot
/// commit meanwhile.
pub(crate) async fn abort(session: &mut ClientSession) {
    if let Err(failure) = within(KILL_BOUND, session.abort_transaction()).await {
        warn!(error = ?failure, "could not abort a transaction; the server ends it");
    }
}
