//! The driver's texts, as mongodb 3.x writes them, read.

use super::*;

/// A selection error's message as the driver writes it when its timeout
/// passes.
fn selection(topology: &str) -> String {
    format!("Server selection timeout: No available servers. Topology: {topology}")
}

/// One server of a topology description whose last check failed.
fn failed(address: &str, error: &str) -> String {
    format!(
        "{{ Address: {address}, Type: Unknown, Error: Kind: {error}, labels: {{}}, source: None, \
         server response: None }}"
    )
}

fn reading(message: &str) -> Reading {
    read_selection(message).unwrap_or_else(|| panic!("not read: {message}"))
}

#[test]
fn a_refused_connection_names_the_host_and_the_cause() {
    let error = selection(&format!(
        "{{ Type: Unknown, Servers: [ {} ] }}",
        failed("127.0.0.1:1", "I/O error: Connection refused (os error 111)")
    ));
    let read = reading(&error);
    assert_eq!(read.failure, ConnectionFailure::Unreachable);
    assert_eq!(read.host.as_deref(), Some("127.0.0.1:1"));
    assert_eq!(read.reason, "connection refused");
    let headline = read.headline();
    assert!(
        headline.starts_with("could not reach the MongoDB server at 127.0.0.1:1: connection refused; check"),
        "{headline}"
    );
    for tail in ["labels", "source: None", "Topology", "\n"] {
        assert!(!headline.contains(tail), "{headline}");
    }
}

#[test]
fn each_cause_of_a_failed_check_is_told_apart() {
    for (said, failure, reason) in [
        (
            "I/O error: Connection reset by peer (os error 104)",
            ConnectionFailure::Unreachable,
            "the connection was reset",
        ),
        (
            "I/O error: unexpected end of file",
            ConnectionFailure::Unreachable,
            "the server closed the connection",
        ),
        (
            "I/O error: timed out",
            ConnectionFailure::Unreachable,
            "the connection timed out (see `connectTimeoutMS`)",
        ),
        (
            "I/O error: failed to lookup address information: Name or service not known",
            ConnectionFailure::HostNotFound,
            "the host name does not resolve",
        ),
        (
            "I/O error: received corrupt message of type InvalidContentType",
            ConnectionFailure::TlsFailed,
            "received corrupt message of type InvalidContentType",
        ),
        (
            "I/O error: invalid peer certificate: UnknownIssuer",
            ConnectionFailure::TlsFailed,
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            "I/O error: tls handshake eof",
            ConnectionFailure::TlsFailed,
            "the server closed the connection during the TLS handshake",
        ),
        (
            "SCRAM failure: Authentication failed.",
            ConnectionFailure::AuthFailed,
            "authentication failed (SCRAM)",
        ),
        (
            "An invalid argument was provided: Connection string replicaSet name \"rs0\" does not \
             match actual name \"other\"",
            ConnectionFailure::ReplicaSetMismatch,
            "connection string replicaSet name `rs0` does not match actual name `other`",
        ),
        (
            "I/O error: Network is unreachable (os error 101)",
            ConnectionFailure::Unreachable,
            "network is unreachable",
        ),
    ] {
        let error = selection(&format!(
            "{{ Type: Unknown, Servers: [ {} ] }}",
            failed("db:27017", said)
        ));
        let read = reading(&error);
        assert_eq!((read.failure, read.reason.as_str()), (failure, reason), "{said}");
        assert_eq!(read.host.as_deref(), Some("db:27017"));
    }
}

#[test]
fn an_unknown_cause_falls_back_to_an_unreachable_server_in_the_drivers_words() {
    let error = selection(&format!(
        "{{ Type: Unknown, Servers: [ {} ] }}",
        failed("db:27017", "Something new { value: \"x\" }.")
    ));
    let read = reading(&error);
    assert_eq!(read.failure, ConnectionFailure::Unreachable);
    assert_eq!(read.reason, "its last check failed (something new {…})");
}

#[test]
fn several_servers_name_the_first_that_failed_and_count_the_others() {
    let error = selection(&format!(
        "{{ Type: ReplicaSetNoPrimary, Set Name: rs0, Servers: [ {{ Address: a:1, Type: Unknown }}, \
         {}, {} ] }}",
        failed("b:2", "I/O error: Connection refused (os error 111)"),
        failed("c:3", "I/O error: timed out")
    ));
    let read = reading(&error);
    assert_eq!(read.host.as_deref(), Some("b:2 (and 2 other hosts)"));
    assert_eq!(read.reason, "connection refused");
}

#[test]
fn servers_not_checked_yet_read_as_not_answering() {
    let error = selection("{ Type: Unknown, Servers: [ { Address: db:27017, Type: Unknown } ] }");
    let read = reading(&error);
    assert_eq!(read.failure, ConnectionFailure::Unreachable);
    assert_eq!(read.host.as_deref(), Some("db:27017"));
    assert!(read.reason.starts_with("no server answered"), "{}", read.reason);
}

#[test]
fn a_replica_set_without_its_servers_is_a_set_name_mismatch() {
    // The driver removes a server that answers with another set name.
    let error = selection("{ Type: ReplicaSetNoPrimary, Set Name: rs0 }");
    let read = reading(&error);
    assert_eq!(read.failure, ConnectionFailure::ReplicaSetMismatch);
    assert_eq!(read.host, None);
    let headline = read.headline();
    assert!(
        headline.starts_with(
            "no MongoDB server of the connection string is a member of the replica set it names: \
             no host answered as a member of `rs0` within the server selection timeout; check"
        ),
        "{headline}"
    );
    assert!(headline.contains("check the `replicaSet` option"), "{headline}");
}

#[test]
fn the_words_of_the_drivers_error_kinds_are_read() {
    assert_eq!(
        authentication("SCRAM failure: Authentication failed."),
        "authentication failed (SCRAM)"
    );
    assert_eq!(
        authentication("SCRAM failure: no password supplied"),
        "no password supplied (SCRAM)"
    );
    assert_eq!(
        dns("no record found for Query { name: Name(\"_mongodb._tcp.x.invalid.\"), query_type: SRV }"),
        "no such DNS record"
    );
    assert_eq!(dns("request timed out"), "the DNS lookup failed");

    let io = |kind| -> mongodb::error::Error {
        ErrorKind::Io(std::sync::Arc::new(std::io::Error::from(kind))).into()
    };
    let refused = read(&io(std::io::ErrorKind::ConnectionRefused)).expect("a connection not opened");
    assert_eq!(
        (refused.failure, refused.reason.as_str()),
        (ConnectionFailure::Unreachable, "connection refused")
    );
    // The connect timeout (the driver has none on a command's socket).
    let timed_out = read(&io(std::io::ErrorKind::TimedOut)).expect("a connection not opened in time");
    assert_eq!(timed_out.failure, ConnectionFailure::Unreachable);
    // Lost during a command: the command's failure (transient), not a
    // server out of reach.
    for lost in [
        std::io::ErrorKind::ConnectionReset,
        std::io::ErrorKind::UnexpectedEof,
        std::io::ErrorKind::BrokenPipe,
    ] {
        assert_eq!(read(&io(lost)), None, "{lost:?}");
    }

    let cleared = read_pool_cleared(
        "Connection pool for db:27017 cleared because another operation failed with: Kind: I/O \
         error: Connection refused (os error 111), labels: {}",
    )
    .expect("a pool cleared after a connection could not be opened");
    assert_eq!(cleared.host.as_deref(), Some("db:27017"));
    assert_eq!(cleared.reason, "connection refused");
    assert_eq!(
        read_pool_cleared(
            "Connection pool for db:27017 cleared because another operation failed with: Kind: \
             I/O error: Connection reset by peer (os error 104), labels: {}",
        ),
        None,
        "another command's lost connection"
    );
}

#[test]
fn what_is_no_connection_failure_is_left_alone() {
    assert_eq!(
        read_pool_cleared(
            "Connection pool for db:27017 cleared because another operation failed with: Kind: \
             Command failed: Error code 10107 (NotWritablePrimary): not primary"
        ),
        None
    );
    assert_eq!(
        read_selection("Server at db:27017 reports wire version 5, but this version requires at least 6"),
        None
    );
    let internal: mongodb::error::Error = ErrorKind::Custom(std::sync::Arc::new(1_u8)).into();
    assert_eq!(read(&internal), None);
}

#[test]
fn any_text_is_read_without_panicking() {
    let pieces = [
        "{ Address: ",
        ", Error: ",
        "Kind: ",
        ", labels: ",
        " }",
        "Set Name: ",
        ",",
        "é",
        " failure: ",
        "(os error ",
        ")",
        "",
    ];
    for a in pieces {
        for b in pieces {
            for c in pieces {
                let _ = read_selection(&selection(&format!("{a}{b}{c}{a}"))).map(|read| read.headline());
                let _ = read_pool_cleared(&format!(
                    "Connection pool for {a} cleared because another operation failed with: {b}{c}"
                ));
            }
        }
    }
}

#[test]
fn only_every_server_closing_the_connection_looks_like_a_server_without_tls() {
    let closed = "I/O error: unexpected end of file";
    let both_closed = selection(&format!(
        "{{ Type: ReplicaSetNoPrimary, Servers: [ {}, {} ] }}",
        failed("a:27017", closed),
        failed("b:27017", "I/O error: Connection reset by peer (os error 104)")
    ));
    assert!(all_closed(&both_closed));
    // One member restarting while another is refused: no TLS mismatch.
    let one_closed = selection(&format!(
        "{{ Type: ReplicaSetNoPrimary, Servers: [ {}, {} ] }}",
        failed("a:27017", closed),
        failed("b:27017", "I/O error: Connection refused (os error 111)")
    ));
    assert!(!all_closed(&one_closed));
}
