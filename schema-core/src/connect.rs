//! An optional way to open the database from a connection string, with
//! bounded waiting and errors that never show the password.

use std::time::Duration;

use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::error::Error;

/// How long a command waits for a reachable server when the connection
/// string does not say (`serverSelectionTimeoutMS`). The driver's own
/// default is 30 seconds, long for a process that cannot start without it.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the database named by the path of `uri` (as
/// [`Client::default_database`] reads it), or `default_database` when the
/// path names none.
///
/// No command is sent: the first one, usually
/// [`SchemaManager::apply_all`](crate::SchemaManager::apply_all), reports an
/// unreachable server after the server selection timeout, which is
/// [`DEFAULT_SERVER_SELECTION_TIMEOUT`] unless the URI sets one.
///
/// # Errors
///
/// [`Error::InvalidUri`] when the driver cannot use `uri`; the error shows
/// the URI with its password replaced by `***`.
pub async fn connect(uri: &str, default_database: &str) -> Result<Database, Error> {
    let invalid = |source: mongodb::error::Error| Error::InvalidUri {
        uri: redact(uri),
        source: Box::new(source),
    };
    let mut options = ClientOptions::parse(uri).await.map_err(invalid)?;
    options
        .server_selection_timeout
        .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
    let client = Client::with_options(options).map_err(invalid)?;
    Ok(client
        .default_database()
        .unwrap_or_else(|| client.database(default_database)))
}

/// `uri` with the password of its user info, if any, replaced by `***`.
pub fn redact(uri: &str) -> String {
    let authority_start = uri.find("://").map_or(0, |at| at + 3);
    let rest = &uri[authority_start..];
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return uri.to_owned();
    };
    let user_info = &authority[..at];
    let Some(colon) = user_info.find(':') else {
        return uri.to_owned();
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    format!("{}***{}", &uri[..password_start], &uri[password_end..])
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn the_password_is_replaced() {
        assert_eq!(
            redact("mongodb://app:s3cr%40t@db1:27017,db2/prod?authSource=admin"),
            "mongodb://app:***@db1:27017,db2/prod?authSource=admin"
        );
        assert_eq!(
            redact("mongodb+srv://u:p@cluster.example.net"),
            "mongodb+srv://u:***@cluster.example.net"
        );
    }

    #[test]
    fn a_password_containing_at_signs_is_replaced_whole() {
        assert_eq!(redact("mongodb://u:a@b@host/db"), "mongodb://u:***@host/db");
    }

    #[test]
    fn uris_without_a_password_are_unchanged() {
        for uri in [
            "mongodb://localhost:27017/db",
            "mongodb://user@host/db",
            "mongodb://host/db?x=a@b:c",
            "not a uri",
            "",
        ] {
            assert_eq!(redact(uri), uri);
        }
    }
}
