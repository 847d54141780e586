//! What code asks of an error: its kind as a stable name, the server's
//! error behind it; and the one constructor of database errors.

use super::connection::{self, ConnectionFailure, Reading};
use super::{Error, ServerError};

impl Error {
    /// `source` failed while this crate was doing `action`:
    /// [`Error::ConnectionFailed`] when the server could not be reached or
    /// refused the client, which is what a person needs to hear first,
    /// else [`Error::Database`].
    pub(crate) fn database(action: impl Into<String>, source: mongodb::error::Error) -> Error {
        match connection::read(&source) {
            Some(Reading {
                failure,
                host,
                reason,
            }) => Error::ConnectionFailed {
                failure,
                host,
                reason,
                action: action.into(),
                source: Box::new(ServerError::from(source)),
            },
            None => Error::Database {
                action: action.into(),
                source: ServerError::from(source),
            },
        }
    }

    /// A connection failure told more of by the options of the client that
    /// met it: the hosts, when the driver's error named none (a refused
    /// authentication does not); and, when the client uses TLS, a server
    /// that closed or reset every connection before answering is a TLS
    /// failure, as a server without TLS does on a TLS handshake (the
    /// driver says only that the connection was closed). Any other error
    /// is returned as it is.
    pub(crate) fn with_client(self, options: &mongodb::options::ClientOptions) -> Error {
        let Error::ConnectionFailed {
            mut failure,
            mut host,
            mut reason,
            action,
            source,
        } = self
        else {
            return self;
        };
        if host.is_none() {
            let hosts: Vec<String> = options.hosts.iter().map(ToString::to_string).collect();
            host = match hosts.as_slice() {
                [] => None,
                [one] => Some(one.clone()),
                several => Some(format!("one of {}", several.join(", "))),
            };
        }
        let tls = matches!(options.tls, Some(mongodb::options::Tls::Enabled(_)));
        let closed_everywhere = source
            .downcast_ref::<ServerError>()
            .is_some_and(|server| connection::closed_everywhere(server.raw()));
        if tls && failure == ConnectionFailure::Unreachable && closed_everywhere {
            failure = ConnectionFailure::TlsFailed;
            reason = format!("{reason} while connecting with TLS");
        }
        Error::ConnectionFailed {
            failure,
            host,
            reason,
            action,
            source,
        }
    }

    /// The server's error behind this one, if there is one in its chain of
    /// sources: for code that needs the server's code, or the driver's
    /// error with every value in it ([`ServerError::raw`]).
    pub fn server_error(&self) -> Option<&ServerError> {
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            if let Some(server) = cause.downcast_ref::<ServerError>() {
                return Some(server);
            }
            source = cause.source();
        }
        None
    }

    /// A short, stable name for the kind of error, for scripts and logs:
    /// `lock_held`, `lock_timeout`, `migration_failed`, `drift`,
    /// `unknown_records`, `database`, ... (the variant's name in snake
    /// case, with `Drifted` as `drift`). A server that could not be
    /// reached or refused the client ([`Error::ConnectionFailed`]) has the
    /// kind of its [`ConnectionFailure`](super::ConnectionFailure):
    /// `server_unreachable`, `host_not_found`, `auth_failed`, `tls_failed`
    /// or `replica_set_mismatch`. New kinds may be added; existing ones do
    /// not change.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::DuplicateId { .. } => "duplicate_id",
            Error::UnknownDependency { .. } => "unknown_dependency",
            Error::Cycle { .. } => "cycle",
            Error::BackgroundDependency { .. } => "background_dependency",
            Error::CrossGroupDependency { .. } => "cross_group_dependency",
            Error::Drifted { .. } => "drift",
            Error::UnknownRecords { .. } => "unknown_records",
            Error::UnknownMigration { .. } => "unknown_migration",
            Error::NotIdempotent { .. } => "not_idempotent",
            Error::LockHeld { .. } => "lock_held",
            Error::MigrationFailed { .. } => "migration_failed",
            Error::MigrationPanicked { .. } => "migration_panicked",
            Error::RecordFailed { .. } => "record_failed",
            Error::BackgroundFailed { .. } => "background_failed",
            Error::PreflightFailed { .. } => "preflight_failed",
            Error::NotApplied { .. } => "not_applied",
            Error::MalformedRecord { .. } => "malformed_record",
            Error::MalformedLock { .. } => "malformed_lock",
            Error::LockTimeout { .. } => "lock_timeout",
            Error::LockLost { .. } => "lock_lost",
            Error::LeaseRenewal { .. } => "lease_renewal",
            Error::ServerTimeout { .. } => "server_timeout",
            Error::Configuration { .. } => "configuration",
            Error::IndexConflict { .. } => "index_conflict",
            Error::RepeatedIndex { .. } => "repeated_index",
            Error::IndexBuildTimeout { .. } => "index_build_timeout",
            Error::SnapshotUnauthorized { .. } => "snapshot_unauthorized",
            Error::InvalidBackfill { .. } => "invalid_backfill",
            Error::BackfillFailed { .. } => "backfill_failed",
            Error::BackfillOutcomeUnknown { .. } => "backfill_outcome_unknown",
            Error::BackfillOutOfOrder { .. } => "backfill_out_of_order",
            Error::UnexpectedReply { .. } => "unexpected_reply",
            Error::ConnectionFailed { failure, .. } => failure.kind(),
            Error::Database { .. } => "database",
            Error::InvalidUri { .. } => "invalid_uri",
            Error::MalformedSnapshot { .. } => "malformed_snapshot",
            Error::SnapshotMismatch { .. } => "snapshot_mismatch",
            Error::SnapshotFile { .. } => "snapshot_file",
        }
    }
}
