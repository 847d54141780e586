//! `{:?}` of an [`Error`]: its message and every cause, and with `{:#?}`
//! its kind, as `main` returning an error shows it; and the same on one
//! line, for the command line and status reports.

use std::fmt::{self, Write as _};

use super::Error;

/// `error`'s message followed by each of its causes, separated by `: `.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
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
        let alone = Error::UnknownMigration { id: "x".into() };
        assert_eq!(format!("{alone:?}"), "no registered migration has the id `x`");
    }
}
