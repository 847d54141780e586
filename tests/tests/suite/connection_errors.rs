//! What a person reads when the server cannot be reached or refuses the
//! client: one line naming what failed, at which host (never the
//! connection string's user information) and what to check, with a stable
//! kind, also in `--json`; the whole chain in `{:?}`.
//!
//! Each runs the command line as a process (`connect-cli`, which opens the
//! database as the example application does: `schema_core::connect`, then
//! `schema_core::cli::run`) against a port nobody listens on, a proxy that
//! closes every connection, a proxy answering the SASL conversation with
//! the real server's refusal, a proxy answering `hello` with another
//! replica set's name, a `mongodb+srv://` host that does not resolve
//! (offline), TLS to a server that closes the handshake as a real server
//! without TLS does, and a malformed connection string. On a real server
//! only (the emulator behaves otherwise), TLS to the server itself and
//! credentials it does not know.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::workers::finish;
use schema_tests::{fresh_database, record_ids};
use tokio::io::AsyncReadExt;

const CLI: &str = env!("CARGO_BIN_EXE_connect-cli");

/// The user information every connection string here carries: neither
/// part may show.
const USER: &str = "app-USER";
const PASSWORD: &str = "secret-PW";

/// What the command line printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `connect-cli ARGS` on `uri` (the database `db`), prefixed by
/// `wrapper` (such as `unshare --net`), giving up after 90 seconds.
async fn run_wrapped(wrapper: &[&str], uri: &str, db: &str, args: &[&str]) -> Run {
    let mut words: Vec<String> = wrapper.iter().map(|&word| word.to_owned()).collect();
    words.push(CLI.to_owned());
    words.extend(args.iter().map(|&arg| arg.to_owned()));
    let (uri, db) = (uri.to_owned(), db.to_owned());
    // Off the runtime's threads: the proxy the process talks to runs on them.
    let output = tokio::task::spawn_blocking(move || {
        let child = Command::new(&words[0])
            .args(&words[1..])
            .env("MONGODB_URI", uri)
            .env("WORKER_DB", db)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start connect-cli");
        finish(child, Instant::now() + Duration::from_secs(90))
    })
    .await
    .expect("the process's waiter");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `args` and `args --json` on `uri`, checks that both fail with one
/// line of kind `kind`, free of the driver's tail and of the user
/// information, and returns the line.
async fn one_line_error(wrapper: &[&str], uri: &str, db: &str, args: &[&str], kind: &str) -> String {
    let text = run_wrapped(wrapper, uri, db, args).await;
    assert_eq!(text.code, Some(1), "exit status 1: {}", text.stderr);
    assert_eq!(text.stdout, "", "nothing on stdout");
    let lines: Vec<&str> = text.stderr.lines().collect();
    let [line] = lines.as_slice() else {
        panic!("one line on stderr: {}", text.stderr);
    };
    let message = line
        .strip_prefix("error: ")
        .unwrap_or_else(|| panic!("an error line: {line}"));
    for tail in [
        "labels:",
        "source: None",
        "server response",
        "Topology",
        "Kind:",
        "Caused by",
    ] {
        assert!(!message.contains(tail), "{tail} in {message}");
    }
    for secret in [USER, PASSWORD] {
        assert!(!message.contains(secret), "{secret} in {message}");
    }
    assert!(!message.ends_with('.'), "no closing period: {message}");

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let json = run_wrapped(wrapper, uri, db, &json_args).await;
    assert_eq!(json.code, Some(1), "exit status 1 with --json: {}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}{}", json.stdout, json.stderr));
    assert_eq!(value["error"]["kind"], kind, "{value}");
    let json_message = value["error"]["message"].as_str().expect("a message");
    for secret in [USER, PASSWORD] {
        assert!(!json_message.contains(secret), "{secret} in {json_message}");
    }
    assert!(!json_message.contains("labels:"), "{json_message}");
    message.to_owned()
}

/// A local port nobody listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// Asserts that `db` holds nothing of the library's: no record, no lock.
async fn untouched(db: &Database) {
    assert_eq!(record_ids(db, "schema_versions").await, Vec::<String>::new());
    assert_eq!(record_ids(db, "schema_lock").await, Vec::<String>::new());
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_naming_the_host_and_the_chain_stays_in_debug() {
    let port = closed_port();
    let uri = format!(
        "mongodb://{USER}:{PASSWORD}@127.0.0.1:{port}/app?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000"
    );
    let line = one_line_error(&[], &uri, "app", &["status"], "server_unreachable").await;
    assert!(
        line.starts_with(&format!(
            "could not reach the MongoDB server at 127.0.0.1:{port}: connection refused; check that \
             the server is running"
        )),
        "{line}"
    );
    assert!(
        !line.contains("schema_versions"),
        "the headline names the server: {line}"
    );

    // The library's error: its kind, and in `{:?}` what was being done and
    // the driver's whole description of the server it tried.
    let connection = schema_core::connect(&uri, "app")
        .await
        .expect("no command is sent");
    // The bound only keeps a broken driver from hanging the suite; the
    // server selection timeout ends the call.
    let error = tokio::time::timeout(Duration::from_secs(60), connection.manager().status())
        .await
        .expect("status gives up on its own")
        .expect_err("nothing listens there");
    connection.shutdown().await;
    assert_eq!(error.kind(), "server_unreachable");
    let debug = format!("{error:?}");
    assert!(debug.starts_with(&line), "{debug}");
    assert!(debug.contains("\n\nwhile trying to "), "{debug}");
    assert!(debug.contains("Server selection timeout"), "{debug}");
    assert!(debug.contains("Connection refused"), "{debug}");
    for secret in [USER, PASSWORD] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_closes_every_connection_is_unreachable_and_nothing_is_written() {
    let db = fresh_database("connection_errors_reset").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let hello = proxy.add(Rule::new(Match::command("hello"), Fault::Reset));
    let is_master = proxy.add(Rule::new(Match::command("isMaster"), Fault::Reset));
    let uri = format!(
        "mongodb://{USER}:{PASSWORD}@{}/?directConnection=true&serverSelectionTimeoutMS=1500",
        proxy.address()
    );
    let line = one_line_error(&[], &uri, db.name(), &["apply"], "server_unreachable").await;
    assert!(
        hello.hits() + is_master.hits() >= 2,
        "the proxy closed the connections"
    );
    let at = format!("could not reach the MongoDB server at {}: ", proxy.address());
    assert!(line.starts_with(&at), "{line}");
    assert!(
        line.contains(": the server closed the connection; check")
            || line.contains(": the connection was reset; check"),
        "{line}"
    );
    untouched(&db).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_name_the_host_and_what_to_check_and_nothing_is_written() {
    let db = fresh_database("connection_errors_auth").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    // The real server's refusal of a wrong password.
    let refused = proxy.add(Rule::new(
        Match::command("saslStart"),
        Fault::error(18, "AuthenticationFailed", "Authentication failed."),
    ));
    let uri = format!(
        "mongodb://{USER}:{PASSWORD}@{}/?directConnection=true&serverSelectionTimeoutMS=2000",
        proxy.address()
    );
    let line = one_line_error(&[], &uri, db.name(), &["apply"], "auth_failed").await;
    assert!(refused.hits() >= 2, "the proxy refused the credentials");
    assert!(
        line.starts_with(&format!(
            "the MongoDB server at {} refused the credentials of the connection string: \
             authentication failed (SCRAM",
            proxy.address()
        )),
        "{line}"
    );
    assert!(
        line.contains("check the user name, the password, `authSource`"),
        "{line}"
    );
    untouched(&db).await;
}

/// A replica set member's `hello`, of the set `other`, at `address`.
fn member_of_other(address: &str) -> Document {
    doc! {
        "isWritablePrimary": true, "secondary": false, "setName": "other", "setVersion": 1,
        "hosts": [address], "primary": address, "me": address,
        "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
        "localTime": DateTime::now(), "logicalSessionTimeoutMinutes": 30, "connectionId": 7,
        "minWireVersion": 0, "maxWireVersion": 21, "readOnly": false, "ok": 1.0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_replica_set_name_is_a_mismatch_naming_the_host_and_nothing_is_written() {
    let db = fresh_database("connection_errors_set").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let address = proxy.address().to_string();
    let hello = proxy.add(Rule::new(
        Match::command("hello"),
        Fault::Reply(member_of_other(&address)),
    ));
    let is_master = proxy.add(Rule::new(
        Match::command("isMaster"),
        Fault::Reply(member_of_other(&address)),
    ));

    // Connected directly, the driver keeps the server and says why it
    // cannot use it.
    let direct = format!("{}&replicaSet=rs0&serverSelectionTimeoutMS=1500", proxy.uri());
    let line = one_line_error(&[], &direct, db.name(), &["apply"], "replica_set_mismatch").await;
    assert!(hello.hits() + is_master.hits() >= 2, "the proxy answered hello");
    assert!(
        line.starts_with(&format!(
            "the MongoDB server at {address} is not a member of the replica set the connection \
             string names: connection string replicaSet name `rs0` does not match actual name \
             `other`; check the `replicaSet` option"
        )),
        "{line}"
    );

    // As a seed of a replica set, the driver drops the server from the
    // topology: the hosts come from the connection string.
    let seeded = format!("mongodb://{address}/?replicaSet=rs0&serverSelectionTimeoutMS=1500");
    let line = one_line_error(&[], &seeded, db.name(), &["apply"], "replica_set_mismatch").await;
    assert!(
        line.starts_with(&format!(
            "the MongoDB server at {address} is not a member of the replica set the connection \
             string names: no host answered as a member of `rs0`"
        )),
        "{line}"
    );
    untouched(&db).await;
}

#[tokio::test]
async fn an_srv_host_that_does_not_resolve_is_named_as_not_found() {
    let Some(unshare) = schema_tests::offline::network_namespace_or_skip() else {
        return;
    };
    let mut wrapper = vec!["unshare"];
    wrapper.extend_from_slice(unshare);
    // `.invalid` is reserved never to exist (RFC 2606), and the lookup
    // cannot leave the machine.
    let uri = format!("mongodb+srv://{USER}:{PASSWORD}@nonexistent.invalid/app");
    let line = one_line_error(&wrapper, &uri, "app", &["status"], "host_not_found").await;
    assert!(
        line.starts_with("could not find the MongoDB host nonexistent.invalid: "),
        "{line}"
    );
    assert!(
        line.contains("; check the host name in the connection string and this machine's DNS"),
        "{line}"
    );
}

/// A server without TLS as MongoDB is one: it reads a TLS handshake's
/// first bytes, sees no message of its protocol in them ("SSL handshake
/// received but server is started without SSL support") and closes the
/// connection. Returns its address and the number of handshakes it
/// refused. (The emulator waits for the rest of a message instead.)
async fn without_tls() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("its address");
    let refused = Arc::new(AtomicUsize::new(0));
    let counted = refused.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut first = [0_u8; 5];
                // A TLS record of a handshake: content type 22, version 3.x.
                if stream.read_exact(&mut first).await.is_ok() && first[0] == 22 && first[1] == 3 {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                drop(stream);
            });
        }
    });
    (address, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_to_a_server_without_tls_is_a_tls_failure() {
    let (address, refused) = without_tls().await;
    let uri = format!(
        "mongodb://{USER}:{PASSWORD}@{address}/app?tls=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000"
    );
    let line = one_line_error(&[], &uri, "app", &["status"], "tls_failed").await;
    assert!(
        refused.load(Ordering::SeqCst) >= 2,
        "the server saw TLS handshakes and closed them"
    );
    let at = format!("could not open a TLS connection to the MongoDB server at {address}: ");
    let rest = line.strip_prefix(&at).unwrap_or_else(|| panic!("{line}"));
    // Closed before or after the driver saw its first bytes, or reset with
    // them unread: the server's timing decides which.
    assert!(
        [
            "the server closed the connection during the TLS handshake; ",
            "the server closed the connection while connecting with TLS; ",
            "the connection was reset while connecting with TLS; ",
        ]
        .iter()
        .any(|reason| rest.starts_with(reason)),
        "{line}"
    );
    assert!(
        rest.contains("; check that the server accepts TLS on that port"),
        "{line}"
    );
}

#[tokio::test]
async fn a_malformed_connection_string_says_what_is_wrong_without_the_drivers_tail() {
    let uri = format!("mongodb://{USER}:{PASSWORD}@127.0.0.1:notaport/app");
    let line = one_line_error(&[], &uri, "app", &["status"], "invalid_uri").await;
    assert!(
        line.starts_with("cannot use the connection string mongodb://***@127.0.0.1:notaport/app: "),
        "{line}"
    );
    assert!(line.contains("port"), "says what is wrong: {line}");
}

/// The server's URI with `options` added to its query string.
fn with_options(uri: &str, options: &str) -> String {
    let joint = match (uri.contains('?'), uri.ends_with('/')) {
        (true, _) => "&",
        (false, true) => "?",
        (false, false) => "/?",
    };
    format!("{uri}{joint}{options}")
}

/// The server's URI with the user information `USER:PASSWORD`, in place
/// of any it has.
fn with_user(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("a URI with a scheme");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hosts_start = rest[..authority_end].rfind('@').map_or(0, |at| at + 1);
    format!("{scheme}://{USER}:{PASSWORD}@{}", &rest[hosts_start..])
}

#[tokio::test]
async fn tls_to_a_real_server_without_tls_and_credentials_it_does_not_know_are_refused_as_such() {
    let db = fresh_database("connection_errors_real").await;
    if schema_tests::server::skip_unless_real(
        &db,
        "a real server closes a TLS handshake it cannot read and refuses unknown credentials \
         (AuthenticationFailed); the emulator waits for the rest of a message, and answers the \
         SASL conversation with no reply the driver can read",
    )
    .await
    {
        return;
    }
    // The test servers speak no TLS.
    let tls = with_options(
        &schema_tests::uri(),
        "tls=true&serverSelectionTimeoutMS=3000&connectTimeoutMS=2000",
    );
    let line = one_line_error(&[], &tls, db.name(), &["apply"], "tls_failed").await;
    assert!(
        line.starts_with("could not open a TLS connection to the MongoDB server at "),
        "{line}"
    );

    // A server without access control still authenticates, and refuses a
    // user it does not have.
    let stranger = with_options(&with_user(&schema_tests::uri()), "serverSelectionTimeoutMS=3000");
    let line = one_line_error(&[], &stranger, db.name(), &["apply"], "auth_failed").await;
    assert!(
        line.contains(" refused the credentials of the connection string: "),
        "{line}"
    );
    untouched(&db).await;
}
