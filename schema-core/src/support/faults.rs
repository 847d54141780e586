//! How the bookkeeping commands (the lock and the records) meet faults:
//! each attempt is bounded in time, and a failure is either transient (a
//! failover, a lost connection, a timeout: worth another attempt) or final.

use std::future::IntoFuture;
use std::time::Duration;

use mongodb::bson::Document;
use mongodb::error::ErrorKind;
use mongodb::options::{
    Acknowledgment, CollectionOptions, ReadConcern, ReadPreference, SelectionCriteria, WriteConcern,
};
use mongodb::{Collection, Database};

use crate::support::error::{BoxError, Error, ServerError, code};

/// The server's code for a duplicate key.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// The server's code for a command stopped at its `maxTimeMS`.
pub(crate) const MAX_TIME_EXPIRED: i32 = 50;

/// Server codes that mean "not now, try again": a primary stepping down or
/// shutting down, an election in progress, a write concern or time limit
/// that ran out while the outcome is unknown.
const TRANSIENT_CODES: &[i32] = &[
    6, // HostUnreachable
    7, // HostNotFound
    MAX_TIME_EXPIRED,
    64,    // WriteConcernFailed (wtimeout: the write may or may not have happened)
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// The longest `wtimeout` a server accepts: a 32-bit count of milliseconds.
pub(crate) const MAX_WRITE_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// The longest `maxTimeMS` a server accepts: also a 32-bit count of
/// milliseconds (about 24.8 days), which the server refuses past it; the
/// driver refuses one that does not fit its own 64 bits.
pub(crate) const MAX_TIME_LIMIT: Duration = Duration::from_millis(i32::MAX as u64);

/// A command's `maxTimeMS` for `bound`, which may come from a lease of
/// any length (even [`Duration::MAX`], "forever"): at most
/// [`MAX_TIME_LIMIT`].
pub(crate) fn time_limit(bound: Duration) -> Duration {
    bound.min(MAX_TIME_LIMIT)
}

/// Server codes that refuse a command before running it: this member is
/// not the primary, or is shutting down and takes no new work.
const REFUSED_BEFORE_RUNNING: &[i32] = &[
    91,    // ShutdownInProgress
    10107, // NotWritablePrimary
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// A bookkeeping collection (the lock, the records) as this crate reads
/// and writes it, whatever the `Database` was opened with: on the primary,
/// with majority read concern, and with majority writes that give up after
/// `write_timeout` instead of waiting forever for a majority that is gone
/// (at most [`MAX_WRITE_TIMEOUT`], the longest the server takes).
pub(crate) fn bookkeeping(db: &Database, name: &str, write_timeout: Duration) -> Collection<Document> {
    let write_concern = WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .w_timeout(write_timeout.min(MAX_WRITE_TIMEOUT))
        .build();
    let options = CollectionOptions::builder()
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        .read_concern(ReadConcern::majority())
        .write_concern(write_concern)
        .build();
    db.collection_with_options(name, options)
}

/// Why one bounded attempt at a command failed.
pub(crate) enum Failure {
    /// No answer within the bound; the command may or may not have run.
    TimedOut(Duration),
    /// The driver or the server reported an error.
    Server(mongodb::error::Error),
}

/// As the log shows it: without the values a server's message may quote
/// (see [`ServerError`]).
impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::TimedOut(waited) => write!(f, "no answer within {waited:?}"),
            Failure::Server(error) => write!(f, "{}", ServerError::from(error.clone())),
        }
    }
}

impl Failure {
    /// Whether another attempt may succeed where this one failed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::TimedOut(_) => true,
            Failure::Server(error) => is_transient(error),
        }
    }

    /// Whether the command certainly did not run: no server was selected
    /// to send it to, or the server refused it before running it because
    /// it is not (or no longer) the primary. Any other failure of a write
    /// leaves its outcome unknown: it may have run, wholly or in part.
    pub(crate) fn did_not_run(&self) -> bool {
        match self {
            Failure::TimedOut(_) => false,
            Failure::Server(error) => {
                matches!(&*error.kind, ErrorKind::ServerSelection { .. })
                    || code(error).is_some_and(|code| REFUSED_BEFORE_RUNNING.contains(&code))
            }
        }
    }

    /// Whether the server refused a write because the key exists.
    pub(crate) fn is_duplicate_key(&self) -> bool {
        match self {
            Failure::TimedOut(_) => false,
            Failure::Server(error) => code(error) == Some(DUPLICATE_KEY),
        }
    }

    /// The crate's error for this failure while doing `action`.
    pub(crate) fn into_error(self, action: impl Into<String>) -> Error {
        match self {
            Failure::TimedOut(waited) => Error::ServerTimeout {
                action: action.into(),
                waited,
            },
            Failure::Server(source) => Error::database(action.into(), source),
        }
    }

    /// The failure as a boxed error, for variants that carry any source.
    pub(crate) fn into_source(self, action: impl Into<String>) -> BoxError {
        Box::new(self.into_error(action))
    }
}

/// Runs `command`, giving up after `bound`.
///
/// A command given up on is dropped: the driver closes its connection
/// rather than reuse it, and whatever the server did with it stands.
pub(crate) async fn within<T>(
    bound: Duration,
    command: impl IntoFuture<Output = mongodb::error::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(bound, command.into_future()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Failure::Server(error)),
        Err(_) => Err(Failure::TimedOut(bound)),
    }
}

/// Whether a driver error is worth another attempt: the network, server
/// selection, a failover, or a write whose outcome is unknown.
pub(crate) fn is_transient(error: &mongodb::error::Error) -> bool {
    if error.contains_label("RetryableWriteError") || error.contains_label("TransientTransactionError") {
        return true;
    }
    match &*error.kind {
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } | ErrorKind::ServerSelection { .. } => {
            true
        }
        _ => code(error).is_some_and(|code| TRANSIENT_CODES.contains(&code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn command_error(code: i32) -> mongodb::error::Error {
        // The driver builds its errors from server replies; a reply is the
        // one public way to make a command error with a given code.
        let reply = doc! { "ok": 0, "code": code, "codeName": "Test", "errmsg": "injected" };
        let command: mongodb::error::CommandError =
            mongodb::bson::from_document(reply).expect("a command error document");
        mongodb::error::Error::from(ErrorKind::Command(command))
    }

    #[test]
    fn failover_codes_are_transient_and_others_are_not() {
        for code in [10107, 189, 91, 11602, 64] {
            assert!(is_transient(&command_error(code)), "{code}");
        }
        for code in [11000, 13, 2, 121] {
            assert!(!is_transient(&command_error(code)), "{code}");
        }
    }

    #[test]
    fn a_timeout_is_transient_and_not_a_duplicate() {
        let failure = Failure::TimedOut(Duration::from_millis(5));
        assert!(failure.is_transient());
        assert!(!failure.is_duplicate_key());
        assert!(Failure::Server(command_error(11000)).is_duplicate_key());
    }

    #[tokio::test]
    async fn bookkeeping_reads_the_primary_and_bounds_majority_writes_whatever_the_database_says() {
        // No command is sent: a client connects lazily.
        let client = mongodb::Client::with_uri_str(
            "mongodb://127.0.0.1:1/?readPreference=secondary&readConcernLevel=local&w=1",
        )
        .await
        .expect("a valid URI");
        let db = client.database("app");
        let collection = bookkeeping(&db, "schema_lock", Duration::from_secs(7));
        assert_eq!(
            collection.selection_criteria(),
            Some(&SelectionCriteria::ReadPreference(ReadPreference::Primary))
        );
        assert_eq!(collection.read_concern(), Some(&ReadConcern::majority()));
        let write = collection.write_concern().expect("a write concern");
        assert_eq!(write.w, Some(Acknowledgment::Majority));
        assert_eq!(write.w_timeout, Some(Duration::from_secs(7)));
        let forever = bookkeeping(&db, "schema_lock", Duration::MAX);
        let write = forever.write_concern().expect("a write concern");
        assert_eq!(write.w_timeout, Some(MAX_WRITE_TIMEOUT));
    }
}
