//! An optional way to open the database from a connection string, with
//! bounded waiting and errors that never show the connection string's
//! secrets (see [`redact`](crate::redact) for how they are hidden).

use std::time::Duration;

use mongodb::options::ClientOptions;
use mongodb::{Client, Database};

use crate::manager::SchemaManager;
use crate::support::error::{Error, Reading, read_connection};
use crate::support::redact::{ScrubbedError, hosts, redact, scrub_of};

/// An open connection: the client, the database to migrate, and the
/// options the client was built from. Shut it down with
/// [`shutdown`](Connection::shutdown) before the runtime ends: a client
/// dropped while the runtime shuts down can panic in a background task.
#[derive(Clone)]
pub struct Connection {
    client: Client,
    database: Database,
    options: ClientOptions,
}

/// Names the database and the hosts, never the other options: they hold
/// passwords and keys (`tlsCertificateKeyFilePassword`, a proxy's
/// password).
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hosts: Vec<String> = self.options.hosts.iter().map(ToString::to_string).collect();
        f.debug_struct("Connection")
            .field("database", &self.database.name())
            .field("hosts", &hosts)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// How long a command waits for a reachable server when the connection
    /// string given to [`connect`] does not say
    /// (`serverSelectionTimeoutMS`): 10 seconds. The driver's own default is
    /// 30 seconds, long for a process that cannot start without it.
    pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(10);

    /// The database named by the URI's path, or the default given to
    /// [`connect`].
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The client, for the application's own use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A manager for [`database`](Connection::database) that renews the
    /// lock's lease over a client of its own built from the same options
    /// (see [`SchemaManager::lease_client`]).
    pub fn manager(&self) -> SchemaManager {
        SchemaManager::new(self.database.clone()).lease_client(self.options.clone())
    }

    /// Closes the client's connections and waits for its background tasks.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}

/// Opens the database named by the path of `uri` (as
/// [`Client::default_database`] reads it), or `default_database` when the
/// path names none.
///
/// No command is sent: the first one, usually
/// [`SchemaManager::apply_all`], reports an unreachable server
/// ([`Error::ConnectionFailed`]) after the server selection timeout, which is
/// [`Connection::DEFAULT_SERVER_SELECTION_TIMEOUT`] unless the URI sets
/// one. A `mongodb+srv://` URI is resolved here, though (its SRV and TXT
/// records), and needs the `dns-resolver` feature, on by default.
///
/// ```no_run
/// # async fn start() -> Result<(), schema_core::Error> {
/// let connection = schema_core::connect("mongodb://localhost:27017/app", "app").await?;
/// let report = connection.manager().apply_all().await;
/// connection.shutdown().await;
/// println!("applied {:?}", report?.applied);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`Error::ConnectionFailed`] when the DNS lookups of a `mongodb+srv://`
/// URI fail (kind `host_not_found`), naming the host, or when TLS cannot be
/// set up (`tls_failed`: a certificate file that cannot be read, say).
/// [`Error::InvalidUri`] when the driver cannot use `uri` otherwise: the
/// error says what is wrong with it, and shows the URI
/// [`redact`](crate::redact)ed, and its source is the driver's message
/// (with the messages of the driver's own sources appended) with every
/// secret of `uri` replaced by `***`; the driver's error itself is not
/// kept, so neither `Display` nor `Debug` of the error can show a secret.
pub async fn connect(uri: &str, default_database: &str) -> Result<Connection, Error> {
    let mut options = ClientOptions::parse(uri)
        .await
        .map_err(|source| refused(uri, "read the connection string", &source))?;
    options
        .server_selection_timeout
        .get_or_insert(Connection::DEFAULT_SERVER_SELECTION_TIMEOUT);
    let client =
        Client::with_options(options.clone()).map_err(|source| refused(uri, "set up the client", &source))?;
    let database = client
        .default_database()
        .unwrap_or_else(|| client.database(default_database));
    Ok(Connection {
        client,
        database,
        options,
    })
}

/// The error for `source`, met while doing `action` with `uri`: a host
/// that could not be found (the DNS records of a `mongodb+srv://` host) or
/// TLS that could not be set up, naming the hosts of `uri`; otherwise a
/// connection string the driver cannot use. Either keeps only the driver's
/// words scrubbed of every secret of `uri`.
fn refused(uri: &str, action: &str, source: &mongodb::error::Error) -> Error {
    let scrubbed = Box::new(ScrubbedError::new(source, uri));
    match read_connection(source) {
        Some(Reading { failure, reason, .. }) => Error::ConnectionFailed {
            failure,
            host: hosts(uri).map(|hosts| scrub_of(&hosts, uri)),
            reason: scrub_of(&reason, uri),
            action: action.to_owned(),
            source: scrubbed,
        },
        None => Error::InvalidUri {
            uri: redact(uri),
            source: scrubbed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_driver_error_is_replaced_by_a_scrubbed_one() {
        let uri = "mongodb://app-USER:pa?ss-SECRET1@127.0.0.1:1/?badOption=1";
        let error = connect(uri, "app").await.expect_err("the driver refuses the URI");
        let Error::InvalidUri { uri: shown, source } = &error else {
            panic!("not InvalidUri: {error:?}");
        };
        assert_eq!(shown, "mongodb://***@127.0.0.1:1/?badOption=1");
        assert!(std::error::Error::source(source.as_ref()).is_none());
        let everything = format!("{error} {source} {error:?}");
        for secret in ["app-USER", "SECRET1", "ss-SECRET1"] {
            assert!(!everything.contains(secret), "{secret} in {everything}");
        }
        // What is wrong, without the driver's labels, source and response.
        assert!(
            source.to_string().contains("the port must be an integer"),
            "{source}"
        );
        for tail in ["labels:", "source: None", "server response", "Kind:"] {
            assert!(!everything.contains(tail), "{tail} in {everything}");
        }
    }
}
