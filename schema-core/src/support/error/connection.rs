//! A server that could not be reached or refused the client, read from the
//! driver's error: what failed, at which host, in a few words, and what to
//! check ([`Error::ConnectionFailed`](super::Error::ConnectionFailed)).
//!
//! The driver says most of it in its error kinds (`Authentication`,
//! `DnsResolve`, `Io`, `InvalidTlsConfig`). A server selection that timed
//! out says it only as text: its message is the topology description, each
//! server with its address and the error of its last check, and a server
//! that answered with another replica set name is simply left out of it.
//! That text is read defensively: what is not recognised still reads as an
//! unreachable server, with the driver's words for the reason.

use mongodb::error::ErrorKind;

use super::server::without_values;

/// Why the MongoDB server could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionFailure {
    /// No connection could be made or kept: refused, reset, closed, timed
    /// out, or no server answered within the server selection timeout.
    Unreachable,
    /// A host name did not resolve, or the DNS records of a
    /// `mongodb+srv://` host could not be looked up.
    HostNotFound,
    /// The server refused the credentials of the connection string.
    AuthFailed,
    /// The TLS handshake failed, or TLS could not be set up.
    TlsFailed,
    /// The hosts answered, but not as members of the replica set the
    /// connection string names (`replicaSet=`).
    ReplicaSetMismatch,
}

impl ConnectionFailure {
    /// The stable name of the failure, which is the error's
    /// [`kind`](super::Error::kind): `server_unreachable`, `host_not_found`,
    /// `auth_failed`, `tls_failed` or `replica_set_mismatch`.
    pub fn kind(self) -> &'static str {
        match self {
            ConnectionFailure::Unreachable => "server_unreachable",
            ConnectionFailure::HostNotFound => "host_not_found",
            ConnectionFailure::AuthFailed => "auth_failed",
            ConnectionFailure::TlsFailed => "tls_failed",
            ConnectionFailure::ReplicaSetMismatch => "replica_set_mismatch",
        }
    }
}

/// The reasons of a connection the server reset or closed.
const RESET: &str = "the connection was reset";
const CLOSED: &str = "the server closed the connection";

/// Whether `reason` says the server reset or closed the connection.
pub(super) fn is_closed(reason: &str) -> bool {
    reason == RESET || reason == CLOSED
}

/// Whether a server selection's `error` found every server of its
/// topology closing or resetting the connection: what a TLS client meets
/// when no server speaks TLS (one server restarting is not that).
pub(super) fn closed_everywhere(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::ServerSelection { message, .. } => all_closed(message),
        _ => false,
    }
}

/// Whether every server of a selection's `message` closed or reset the
/// connection.
fn all_closed(message: &str) -> bool {
    let Some(topology) = message.strip_prefix("Server selection timeout: ") else {
        return false;
    };
    let servers = servers(topology);
    !servers.is_empty()
        && servers.iter().all(|(_, said)| {
            said.and_then(read_failure).is_some_and(|(failure, reason)| {
                failure == ConnectionFailure::Unreachable && is_closed(&reason)
            })
        })
}

/// What a driver's error says of a connection that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    pub(crate) failure: ConnectionFailure,
    /// `host:port`, when the driver named it.
    pub(crate) host: Option<String>,
    /// What failed, in a few words.
    pub(crate) reason: String,
}

impl Reading {
    /// The one-line sentence for it.
    pub(crate) fn headline(&self) -> String {
        headline(self.failure, self.host.as_deref(), &self.reason)
    }
}

/// What failed, at which host, and what to check, on one line.
pub(super) fn headline(failure: ConnectionFailure, host: Option<&str>, reason: &str) -> String {
    let at = host.map(|host| format!(" at {host}")).unwrap_or_default();
    match failure {
        ConnectionFailure::Unreachable => format!(
            "could not reach the MongoDB server{at}: {reason}; check that the server is running and \
             that this machine can reach that host and port (address, firewall, the `tls` option)"
        ),
        ConnectionFailure::HostNotFound => format!(
            "could not find the MongoDB host{}: {reason}; check the host name in the connection \
             string and this machine's DNS",
            host.map(|host| format!(" {host}")).unwrap_or_default()
        ),
        ConnectionFailure::AuthFailed => format!(
            "the MongoDB server{at} refused the credentials of the connection string: {reason}; check \
             the user name, the password, `authSource` (the database the user is defined in) and \
             `authMechanism`"
        ),
        ConnectionFailure::TlsFailed => format!(
            "could not open a TLS connection to the MongoDB server{at}: {reason}; check that the \
             server accepts TLS on that port, and the connection string's `tls` options \
             (certificate authority, client certificate)"
        ),
        ConnectionFailure::ReplicaSetMismatch => match host {
            Some(host) => format!(
                "the MongoDB server at {host} is not a member of the replica set the connection \
                 string names: {reason}; check the `replicaSet` option and the hosts"
            ),
            None => format!(
                "no MongoDB server of the connection string is a member of the replica set it names: \
                 {reason}; check the `replicaSet` option and the hosts"
            ),
        },
    }
}

/// What `error` says of a connection that failed, or `None` when it is
/// about something else (a command the server refused, a reply).
pub(crate) fn read(error: &mongodb::error::Error) -> Option<Reading> {
    let unhosted = |failure, reason: String| Reading {
        failure,
        host: None,
        reason,
    };
    match &*error.kind {
        ErrorKind::ServerSelection { message, .. } => read_selection(message),
        ErrorKind::Authentication { message, .. } => {
            Some(unhosted(ConnectionFailure::AuthFailed, authentication(message)))
        }
        ErrorKind::DnsResolve { message, .. } => {
            Some(unhosted(ConnectionFailure::HostNotFound, dns(message)))
        }
        ErrorKind::InvalidTlsConfig { message, .. } => {
            Some(unhosted(ConnectionFailure::TlsFailed, sentence(message)))
        }
        // A connection that could not be opened (refused, not resolved,
        // TLS, the connect timeout: the driver has no timeout of its own on
        // a command's socket); one reset or closed during a command is the
        // command's failure, and stays the server error it is (transient,
        // retried).
        ErrorKind::Io(io) => {
            let (failure, reason) = read_failure(&io.to_string()).unwrap_or_else(|| {
                (
                    ConnectionFailure::Unreachable,
                    format!("the connection failed ({})", sentence(&io.to_string())),
                )
            });
            (!is_closed(&reason)).then(|| unhosted(failure, reason))
        }
        // Cleared because another operation's connection failed: a
        // connection failure only when that one was.
        ErrorKind::ConnectionPoolCleared { message, .. } => read_pool_cleared(message),
        _ => None,
    }
}

/// A cleared pool's message: `Connection pool for host:port cleared
/// because another operation failed with: ...`, a connection failure only
/// when that other operation could not open its connection.
fn read_pool_cleared(message: &str) -> Option<Reading> {
    let rest = message.strip_prefix("Connection pool for ")?;
    let (host, cause) = rest.split_once(" cleared because another operation failed with: ")?;
    let (failure, reason) = read_failure(cause)?;
    // One lost during a command (reset, closed): the command's failure,
    // transient, not a server out of reach.
    if is_closed(&reason) {
        return None;
    }
    Some(Reading {
        failure,
        host: Some(host.to_owned()),
        reason,
    })
}

/// A server selection's message: `Server selection timeout: No available
/// servers. Topology: { Type: ..., Set Name: ..., Servers: [ { Address:
/// host:port, Type: Unknown, Error: Kind: ..., labels: ... }, ... ] }`.
fn read_selection(message: &str) -> Option<Reading> {
    // Anything else (a server too old or too new) is no connection failure.
    let topology = message.strip_prefix("Server selection timeout: ")?;
    let servers = servers(topology);
    let others = servers.len().saturating_sub(1);
    let hosts = |address: &str| match others {
        0 => address.to_owned(),
        1 => format!("{address} (and 1 other host)"),
        _ => format!("{address} (and {others} other hosts)"),
    };
    if let Some((address, said)) = servers
        .iter()
        .find_map(|(address, error)| error.map(|error| (*address, error)))
    {
        let (failure, reason) = read_failure(said).unwrap_or_else(|| {
            (
                ConnectionFailure::Unreachable,
                format!("its last check failed ({})", sentence(said)),
            )
        });
        return Some(Reading {
            failure,
            host: Some(hosts(address)),
            reason,
        });
    }
    if let Some((address, _)) = servers.first() {
        let reason = if topology.starts_with("None of the available servers suitable") {
            "no server there suits the operation (it needs a primary, or one the read preference \
             allows), within the server selection timeout"
        } else {
            "no server answered within the server selection timeout (`serverSelectionTimeoutMS`)"
        };
        return Some(Reading {
            failure: ConnectionFailure::Unreachable,
            host: Some(hosts(address)),
            reason: reason.to_owned(),
        });
    }
    // The driver leaves out of a replica set's topology every server that
    // answers with another set name, or as no member of a set.
    Some(match field(topology, "Set Name: ") {
        Some(set) => Reading {
            failure: ConnectionFailure::ReplicaSetMismatch,
            host: None,
            reason: format!("no host answered as a member of `{set}` within the server selection timeout"),
        },
        None => Reading {
            failure: ConnectionFailure::Unreachable,
            host: None,
            reason: "no server answered within the server selection timeout (`serverSelectionTimeoutMS`)"
                .to_owned(),
        },
    })
}

/// The servers of a topology description: each address, and the error of
/// its last check when it failed.
fn servers(topology: &str) -> Vec<(&str, Option<&str>)> {
    topology
        .split("{ Address: ")
        .skip(1)
        .filter_map(|server| {
            let address = server
                .split([',', ' '])
                .next()
                .filter(|address| !address.is_empty())?;
            let error = server.split_once(", Error: ").map(|(_, error)| {
                let error = error.strip_prefix("Kind: ").unwrap_or(error);
                // The driver's error ends in its labels, source and server
                // response; a server's ends the description.
                error
                    .split_once(", labels: ")
                    .map_or_else(|| error.trim_end_matches([' ', '}', ']']), |(kind, _)| kind)
            });
            Some((address, error))
        })
        .collect()
}

/// The value after `name` in a description, up to its next field.
fn field<'a>(description: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = description.split_once(name)?;
    let value = rest.split([',', '}']).next()?.trim();
    (!value.is_empty()).then_some(value)
}

/// What a failed check or connection says, when it is recognised: the
/// driver's error kind as text (`I/O error: Connection refused (os error
/// 111)`, `SCRAM failure: Authentication failed.`, ...).
fn read_failure(said: &str) -> Option<(ConnectionFailure, String)> {
    let lower = said.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| lower.contains(word));
    let unreachable = |reason: &str| Some((ConnectionFailure::Unreachable, reason.to_owned()));
    if has(&["replicaset name"]) && has(&["does not match"]) {
        // Set names are no values: shown in backticks, not quotes.
        let what = said.rsplit_once("provided: ").map_or(said, |(_, what)| what);
        return Some((
            ConnectionFailure::ReplicaSetMismatch,
            sentence(&what.replace('"', "`")),
        ));
    }
    if has(&["authentication failed", "auth failed"])
        || said
            .split_once(" failure: ")
            .is_some_and(|(name, _)| is_mechanism(name))
    {
        return Some((ConnectionFailure::AuthFailed, authentication(said)));
    }
    if has(&["tls handshake eof"]) {
        return Some((
            ConnectionFailure::TlsFailed,
            "the server closed the connection during the TLS handshake".to_owned(),
        ));
    }
    if has(&[
        "tls handshake",
        "invalidcontenttype",
        "corrupt message",
        "invalid peer certificate",
        "certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
        "received unexpected message",
        "cannot decrypt peer's message",
        "handshake not complete",
        "peer sent excess record size",
    ]) {
        return Some((ConnectionFailure::TlsFailed, sentence(io_words(said))));
    }
    if has(&[
        "failed to lookup address",
        "name or service not known",
        "no address associated",
        "nodename nor servname",
        "name resolution",
        "dns resolution",
        "could not resolve",
    ]) {
        return Some((
            ConnectionFailure::HostNotFound,
            "the host name does not resolve".to_owned(),
        ));
    }
    if has(&["connection refused"]) {
        return unreachable("connection refused");
    }
    if has(&["connection reset"]) {
        return unreachable("the connection was reset");
    }
    if has(&[
        "unexpected end of file",
        "early eof",
        "unexpectedeof",
        "broken pipe",
        "connection aborted",
    ]) {
        return unreachable("the server closed the connection");
    }
    if has(&["timed out"]) {
        return unreachable("the connection timed out (see `connectTimeoutMS`)");
    }
    if has(&[
        "network is unreachable",
        "no route to host",
        "host is unreachable",
    ]) {
        return Some((ConnectionFailure::Unreachable, sentence(io_words(said))));
    }
    None
}

/// Whether `name` is an authentication mechanism's, as the driver names
/// them in its authentication errors.
fn is_mechanism(name: &str) -> bool {
    let name = name.trim_start_matches("Kind: ");
    matches!(
        name,
        "SCRAM"
            | "SCRAM-SHA-1"
            | "SCRAM-SHA-256"
            | "PLAIN"
            | "MONGODB-X509"
            | "MONGODB-AWS"
            | "MONGODB-OIDC"
            | "GSSAPI"
    )
}

/// An authentication error's words (`SCRAM failure: Authentication
/// failed.`): the mechanism and what went wrong.
fn authentication(message: &str) -> String {
    let message = message.trim_start_matches("Kind: ");
    match message.split_once(" failure: ") {
        Some((mechanism, what)) if is_mechanism(mechanism) => format!("{} ({mechanism})", sentence(what)),
        _ => sentence(message),
    }
}

/// A DNS error's words, from the kind of failure and never the records.
fn dns(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("no record") || lower.contains("nxdomain") || lower.contains("no such") {
        "no such DNS record".to_owned()
    } else {
        "the DNS lookup failed".to_owned()
    }
}

/// An I/O error's words without the driver's prefixes.
fn io_words(said: &str) -> &str {
    let said = said.trim_start_matches("Kind: ");
    said.strip_prefix("I/O error: ").unwrap_or(said)
}

/// The driver's or the system's words as part of a sentence: without the
/// driver's prefixes, the OS error number and a closing period, starting in
/// lower case, and without any value they quote.
fn sentence(said: &str) -> String {
    let said = io_words(said).trim();
    let said = match said.rfind(" (os error ") {
        Some(at) if said.ends_with(')') => &said[..at],
        _ => said,
    };
    let said = said.trim_end_matches('.');
    let mut characters = said.chars();
    let text = match characters.next() {
        // Keep an acronym (`TLS`, `SCRAM`) as it is.
        Some(first) if !characters.next().is_some_and(char::is_uppercase) => {
            first.to_lowercase().chain(said.chars().skip(1)).collect()
        }
        _ => said.to_owned(),
    };
    without_values(&text)
}

#[cfg(test)]
mod tests;
