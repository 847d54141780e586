//! `{:?}` of an [`Error`]: its message and every cause, and with `{:#?}`
//! its kind, as `main` returning an error shows it; and the same on one
//! line, for the command line and status reports.

use std::fmt::{self, Write as _};

use super::connection::read;
use super::{Error, ServerError};

/// `error`'s message followed by each of its causes, separated by `: `,
/// on one line for a person: the chain ends at a server that could not be
/// reached or refused the client, with the sentence that says so, since
/// what follows is the driver's description of every server it tried
/// (which `{:?}` shows).
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        if !text.is_empty() {
            text.push_str(": ");
        }
        let connection = cause
            .downcast_ref::<ServerError>()
            .and_then(|server| read(server.raw()));
        if let Some(reading) = connection {
            text.push_str(&reading.headline());
            break;
        }
        let _ = write!(text, "{cause}");
        if let Some(Error::ConnectionFailed { .. }) = cause.downcast_ref::<Error>() {
            break;
        }
        next = cause.source();
    }
    text
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        if let Error::ConnectionFailed { action, .. } = self {
            write!(f, "\n\nwhile trying to {action}")?;
        }
        let mut source = std::error::Error::source(self);
        if source.is_some() {
            f.write_str("\n\nCaused by:")?;
        }
        let mut index = 0;
        while let Some(cause) = source {
            write!(f, "\n    {index}: {cause}")?;
            index += 1;
            source = cause.source();
        }
        if f.alternate() {
            write!(f, "\n\nkind: {}", self.kind())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_message_and_every_cause() {
        let error = Error::RecordFailed {
            id: "0001_events".into(),
            collection: "schema_versions".into(),
            source: Box::new(Error::ServerTimeout {
                action: "insert into `schema_versions`".into(),
                waited: std::time::Duration::from_secs(10),
            }),
        };
        let debug = format!("{error:?}");
        assert!(debug.starts_with("migration `0001_events` ran"), "{debug}");
        assert!(
            debug.contains("\n\nCaused by:\n    0: the server did not answer in time (10s)"),
            "{debug}"
        );
        assert!(format!("{error:#?}").ends_with("kind: record_failed"));
        let unreachable = Error::ConnectionFailed {
            failure: super::super::ConnectionFailure::Unreachable,
            host: Some("db:27017".into()),
            reason: "connection refused".into(),
            action: "read `schema_versions`".into(),
            source: Box::new(std::io::Error::other("the driver's whole description")),
        };
        let wrapped = Error::RecordFailed {
            id: "0001_events".into(),
            collection: "schema_versions".into(),
            source: Box::new(unreachable),
        };
        let line = chain(&wrapped);
        assert!(
            line.ends_with(": could not reach the MongoDB server at db:27017: connection refused; check that the server is running and that this machine can reach that host and port (address, firewall, the `tls` option)"),
            "the one line ends at the connection failure: {line}"
        );
        let Error::RecordFailed { source, .. } = &wrapped else {
            unreachable!("built above")
        };
        let debug = format!("{source:?}");
        assert!(
            debug.contains("\n\nwhile trying to read `schema_versions`\n\nCaused by:\n    0: the driver's whole description"),
            "{debug}"
        );
        let alone = Error::UnknownMigration { id: "x".into() };
        assert_eq!(format!("{alone:?}"), "no registered migration has the id `x`");
    }
}
