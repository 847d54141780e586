//! The fault-injecting proxy (`schema_tests::proxy`) against the real
//! server: each fault as the driver experiences it, and what reached the
//! database meanwhile, read back past the proxy with a direct client.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::error::{Error as DriverError, ErrorKind, WriteFailure};
use schema_core::mongodb::{Client, Collection, Database};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::{documents, fresh_database};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The collection every test writes to.
const ITEMS: &str = "items";

/// How long any one step of a test may take before the test fails instead
/// of hanging: far above what a healthy step needs.
const STEP: Duration = Duration::from_secs(20);

/// Runs one step of a test within [`STEP`].
async fn bounded<F: IntoFuture>(what: &str, step: F) -> F::Output {
    tokio::time::timeout(STEP, step)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

/// A proxy in front of the test server, a fresh database reached directly,
/// and the same database reached through the proxy by a client of its own
/// whose URI ends with `options` (each starting with `&`).
///
/// The proxied client gives up on server selection after 2 s, so that a
/// test expecting a failure fails fast.
async fn setup(test: &str, options: &str) -> (FaultProxy, Database, Database) {
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let direct = fresh_database(test).await;
    let uri = format!("{}&serverSelectionTimeoutMS=2000{options}", proxy.uri());
    let client = Client::with_uri_str(&uri)
        .await
        .expect("a client through the proxy");
    let proxied = client.database(direct.name());
    (proxy, direct, proxied)
}

fn items(db: &Database) -> Collection<Document> {
    db.collection(ITEMS)
}

/// The server error code of a command error or a single write error.
fn code(error: &DriverError) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Command(command) => Some(command.code),
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.code),
        _ => None,
    }
}

/// Waits until `collection` (read directly) holds `expected` documents;
/// what it holds when it gives up after 5 s.
async fn settle(db: &Database, expected: usize) -> Vec<Document> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = documents(db, ITEMS).await;
        if found.len() == expected || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_error_answer_reaches_the_client_and_the_command_never_runs() {
    let (proxy, direct, proxied) = setup("proxy_error", "").await;
    let rule = proxy.add(Rule::new(
        Match::command("insert").on(ITEMS),
        Fault::not_writable_primary(),
    ));

    let error = bounded("the insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect_err("the proxy answers the insert with an error");

    assert_eq!(code(&error), Some(10107), "{error:?}");
    assert!(rule.hits() >= 1);
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_made_up_errors_carry_their_codes() {
    // No retries: a retryable error would otherwise be retried once and
    // answered by the rule again, which is not what this test looks at.
    let (proxy, direct, proxied) = setup("proxy_codes", "&retryWrites=false").await;
    for (fault, expected) in [
        (Fault::primary_stepped_down(), 189),
        (Fault::shutdown_in_progress(), 91),
        (Fault::error(2, "BadValue", "made up"), 2),
    ] {
        let rule = proxy.add(Rule::new(Match::command("insert"), fault));
        let error = bounded("the insert", items(&proxied).insert_one(doc! { "_id": expected }))
            .await
            .expect_err("the proxy answers the insert with an error");
        assert_eq!(code(&error), Some(expected), "{error:?}");
        assert_eq!(rule.hits(), 1);
        rule.remove();
    }
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_key_reply_is_a_write_error_and_nothing_is_written() {
    let (proxy, direct, proxied) = setup("proxy_duplicate", "").await;
    let rule = proxy.add(Rule::new(
        Match::command("insert").on(ITEMS),
        Fault::duplicate_key(ITEMS),
    ));

    let error = bounded("the insert", items(&proxied).insert_one(doc! { "_id": "new" }))
        .await
        .expect_err("the reply carries a write error");

    assert!(
        matches!(&*error.kind, ErrorKind::Write(WriteFailure::WriteError(write)) if write.code == 11000),
        "{error:?}"
    );
    assert_eq!(rule.hits(), 1);
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_command_arrives_late_but_runs() {
    let (proxy, direct, proxied) = setup("proxy_delay", "").await;
    // Connect first, so that only the insert is timed.
    bounded("a find", items(&proxied).find_one(doc! {}))
        .await
        .expect("a find");
    let delay = Duration::from_millis(600);
    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::Delay(delay)));

    let started = Instant::now();
    bounded("the insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect("the delayed insert succeeds");

    assert!(started.elapsed() >= delay, "took only {:?}", started.elapsed());
    assert_eq!(rule.hits(), 1);
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 1 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_command_runs_only_once_released() {
    let (proxy, direct, proxied) = setup("proxy_hold", "").await;
    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::Hold));

    let collection = items(&proxied);
    let insert = tokio::spawn(async move { collection.insert_one(doc! { "_id": 1 }).await });
    assert!(rule.wait_for_hits(1, STEP).await, "the insert reached the proxy");
    assert_eq!(rule.held(), 1);
    // Give a command that slipped through time to land, then look.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());
    assert!(!insert.is_finished());

    rule.release();
    bounded("the released insert", insert)
        .await
        .expect("the insert task")
        .expect("the released insert succeeds");

    assert_eq!(rule.held(), 0);
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 1 }]);
    // A released rule is inert: the next insert goes straight through.
    bounded("another insert", items(&proxied).insert_one(doc! { "_id": 2 }))
        .await
        .expect("an insert after the release");
    assert_eq!(rule.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn clearing_or_removing_rules_lets_held_commands_go() {
    let (proxy, direct, proxied) = setup("proxy_hold_clear", "").await;

    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::Hold));
    let collection = items(&proxied);
    let insert = tokio::spawn(async move { collection.insert_one(doc! { "_id": 1 }).await });
    assert!(
        rule.wait_for_hits(1, STEP).await,
        "the first insert reached the proxy"
    );
    proxy.clear();
    bounded("the insert", insert)
        .await
        .expect("the task")
        .expect("the insert");

    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::Hold));
    let collection = items(&proxied);
    let insert = tokio::spawn(async move { collection.insert_one(doc! { "_id": 2 }).await });
    assert!(
        rule.wait_for_hits(1, STEP).await,
        "the second insert reached the proxy"
    );
    rule.remove();
    bounded("the insert", insert)
        .await
        .expect("the task")
        .expect("the insert");

    assert_eq!(
        documents(&direct, ITEMS).await,
        vec![doc! { "_id": 1 }, doc! { "_id": 2 }]
    );
    assert_eq!(rule.held(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blackholed_reply_times_the_client_out_but_the_command_ran() {
    let (proxy, direct, proxied) = setup("proxy_blackhole", "").await;
    let rule = proxy.add(Rule::new(
        Match::command("insert").on(ITEMS),
        Fault::BlackholeReply,
    ));

    let outcome = tokio::time::timeout(
        Duration::from_secs(1),
        items(&proxied).insert_one(doc! { "_id": 1 }),
    )
    .await;

    assert!(outcome.is_err(), "the client heard back: {outcome:?}");
    assert!(rule.hits() >= 1);
    assert_eq!(settle(&direct, 1).await, vec![doc! { "_id": 1 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_reply_is_a_network_error_but_the_command_ran() {
    let (proxy, direct, proxied) = setup("proxy_drop_reply", "").await;
    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::DropReply).times(1));

    let error = bounded("the insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect_err("the connection closes instead of the reply");

    assert!(matches!(&*error.kind, ErrorKind::Io(_)), "{error:?}");
    assert_eq!(rule.hits(), 1);
    assert_eq!(settle(&direct, 1).await, vec![doc! { "_id": 1 }]);
    bounded("an insert", items(&proxied).insert_one(doc! { "_id": 2 }))
        .await
        .expect("the next insert, on a new connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_is_a_network_error_and_nothing_is_written() {
    let (proxy, direct, proxied) = setup("proxy_reset", "").await;
    let rule = proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::Reset));

    let error = bounded("the insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect_err("the connection closes under the insert");

    assert!(matches!(&*error.kind, ErrorKind::Io(_)), "{error:?}");
    assert!(rule.hits() >= 1);
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());

    // The proxy keeps serving new connections once the rule is gone.
    rule.remove();
    bounded("an insert", items(&proxied).insert_one(doc! { "_id": 2 }))
        .await
        .expect("an insert after the reset");
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 2 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_for_one_time_lets_the_second_command_pass() {
    // No retries: the driver would retry the failed insert, and the retry
    // (the second matching command) would pass.
    let (proxy, direct, proxied) = setup("proxy_times", "&retryWrites=false").await;
    let rule =
        proxy.add(Rule::new(Match::command("insert").on(ITEMS), Fault::not_writable_primary()).times(1));

    let first = bounded("the first insert", items(&proxied).insert_one(doc! { "_id": 1 })).await;
    let second = bounded("the second insert", items(&proxied).insert_one(doc! { "_id": 1 })).await;

    assert_eq!(code(&first.expect_err("the first insert fails")), Some(10107));
    second.expect("the second insert passes");
    assert_eq!(rule.hits(), 1);
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 1 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_during_a_window_stops_applying_after_it() {
    let (proxy, direct, proxied) = setup("proxy_during", "&retryWrites=false").await;
    // Connect first, so that the window is not spent on the handshake.
    bounded("a find", items(&proxied).find_one(doc! {}))
        .await
        .expect("a find");
    let window = Duration::from_millis(800);
    let added = Instant::now();
    let rule = proxy
        .add(Rule::new(Match::command("insert").on(ITEMS), Fault::not_writable_primary()).during(window));

    let inside = bounded(
        "the insert inside the window",
        items(&proxied).insert_one(doc! { "_id": 1 }),
    )
    .await;
    assert!(added.elapsed() < window, "the first insert took the whole window");
    assert_eq!(
        code(&inside.expect_err("the insert inside the window fails")),
        Some(10107)
    );

    tokio::time::sleep_until((added + window + Duration::from_millis(50)).into()).await;
    bounded(
        "the insert after the window",
        items(&proxied).insert_one(doc! { "_id": 2 }),
    )
    .await
    .expect("the insert after the window passes");

    assert_eq!(rule.hits(), 1);
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 2 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_apply_in_order_and_predicates_narrow_them() {
    let (proxy, direct, proxied) = setup("proxy_order", "&retryWrites=false").await;
    let bad = |body: &Document| {
        body.get_array("documents")
            .is_ok_and(|documents| documents.contains(&Bson::Document(doc! { "_id": "bad" })))
    };
    let narrow = proxy.add(Rule::new(
        Match::command("insert").when(bad),
        Fault::duplicate_key(ITEMS),
    ));
    let broad = proxy.add(Rule::new(
        Match::any().on(ITEMS),
        Fault::Delay(Duration::from_millis(1)),
    ));

    let error = bounded(
        "the bad insert",
        items(&proxied).insert_one(doc! { "_id": "bad" }),
    )
    .await
    .expect_err("the narrow rule answers");
    bounded(
        "the good insert",
        items(&proxied).insert_one(doc! { "_id": "good" }),
    )
    .await
    .expect("the good insert goes through");

    assert_eq!(code(&error), Some(11000));
    assert_eq!((narrow.hits(), broad.hits()), (1, 1));
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": "good" }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_lists_the_commands_it_saw() {
    let (proxy, _direct, proxied) = setup("proxy_seen", "").await;

    bounded("an insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect("an insert");
    bounded("a find", items(&proxied).find_one(doc! { "_id": 1 }))
        .await
        .expect("a find");

    let seen = proxy.seen();
    let commands: Vec<(String, String)> = seen
        .iter()
        .filter(|seen| Match::any().matches(&seen.body))
        .map(|seen| (seen.command.clone(), seen.target.clone()))
        .collect();
    assert_eq!(
        commands,
        [
            ("insert".to_owned(), ITEMS.to_owned()),
            ("find".to_owned(), ITEMS.to_owned())
        ]
    );
    let insert = seen
        .iter()
        .find(|seen| seen.command == "insert")
        .expect("the insert");
    assert_eq!(
        insert.body.get_array("documents").ok(),
        Some(&vec![Bson::Document(doc! { "_id": 1 })])
    );
    assert!(seen.windows(2).all(|pair| pair[0].at <= pair[1].at));
    // The handshake went through the proxy too, but `any` leaves it alone.
    let handshakes = proxy.count(&Match::command("hello")) + proxy.count(&Match::command("isMaster"));
    assert!(handshakes >= 1, "{seen:?}");
    assert_eq!(proxy.count(&Match::any()), 2);
    assert_eq!(proxy.count(&Match::command("INSERT").on(ITEMS)), 1);
    assert_eq!(proxy.count(&Match::command("find").on("elsewhere")), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blanket_rule_leaves_the_handshake_alone() {
    let (proxy, direct, proxied) = setup("proxy_blanket", "").await;
    let rule = proxy.add(Rule::new(Match::any(), Fault::not_writable_primary()));

    // The client connects (the handshake passes) and only its command fails.
    let error = bounded("an insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect_err("the blanket rule answers the insert");

    assert_eq!(code(&error), Some(10107), "{error:?}");
    assert!(rule.hits() >= 1);
    assert!(proxy.count(&Match::command("hello")) + proxy.count(&Match::command("isMaster")) >= 1);
    assert_eq!(documents(&direct, ITEMS).await, Vec::<Document>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn resetting_connections_closes_them_and_new_ones_work() {
    let (proxy, direct, proxied) = setup("proxy_reset_all", "&retryReads=false").await;
    bounded("a find", items(&proxied).find_one(doc! {}))
        .await
        .expect("a find");
    let before = proxy
        .seen()
        .iter()
        .map(|seen| seen.connection)
        .max()
        .expect("a connection");

    proxy.reset_connections();
    // The pooled connection is dead now; the driver notices when it uses it
    // (or sooner, through its monitor) and connects anew.
    let mut failures = 0;
    loop {
        match bounded("a find", items(&proxied).find_one(doc! {})).await {
            Ok(_) => break,
            Err(_) if failures < 3 => failures += 1,
            Err(error) => panic!("the driver did not reconnect: {error:?}"),
        }
    }
    bounded("an insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect("an insert after the reset");

    let after: Vec<u64> = proxy
        .seen()
        .iter()
        .filter(|seen| seen.command == "insert")
        .map(|seen| seen.connection)
        .collect();
    assert!(
        after.iter().all(|connection| *connection > before),
        "{after:?} after {before}"
    );
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 1 }]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_or_dropped_proxy_closes_its_port_and_connections() {
    let (proxy, direct, proxied) = setup("proxy_stop", "").await;
    bounded("an insert", items(&proxied).insert_one(doc! { "_id": 1 }))
        .await
        .expect("an insert");
    let address = proxy.address();

    proxy.stop();
    let error = bounded("an insert", items(&proxied).insert_one(doc! { "_id": 2 }))
        .await
        .expect_err("nothing answers once the proxy stopped");
    assert!(
        matches!(&*error.kind, ErrorKind::ServerSelection { .. } | ErrorKind::Io(_)),
        "{error:?}"
    );
    assert!(refuses(address).await, "the proxy still accepts connections");
    assert_eq!(documents(&direct, ITEMS).await, vec![doc! { "_id": 1 }]);

    let other = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let address = other.address();
    drop(other);
    assert!(
        refuses(address).await,
        "the dropped proxy still accepts connections"
    );
}

/// Whether connections to `address` are refused, soon: the proxy's tasks
/// end shortly after it stops, not at once.
async fn refuses(address: std::net::SocketAddr) -> bool {
    for _ in 0..40 {
        if TcpStream::connect(address).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An OP_MSG request with `body` as its one section.
fn op_msg(request_id: i32, body: &Document) -> Vec<u8> {
    let mut message = vec![0; 16];
    message.extend_from_slice(&0u32.to_le_bytes());
    message.push(0);
    body.to_writer(&mut message).expect("encode the body");
    let length = message.len() as i32;
    for (index, field) in [length, request_id, 0, 2013].into_iter().enumerate() {
        message[index * 4..index * 4 + 4].copy_from_slice(&field.to_le_bytes());
    }
    message
}

/// Reads one reply: its `responseTo` and body (the first section of an
/// OP_MSG).
async fn read_reply(stream: &mut TcpStream) -> (i32, Document) {
    let mut header = [0u8; 16];
    bounded("a reply header", stream.read_exact(&mut header))
        .await
        .expect("a reply header");
    let length = i32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let mut rest = vec![0; length - 16];
    bounded("a reply", stream.read_exact(&mut rest))
        .await
        .expect("a reply");
    let response_to = i32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
    let body = Document::from_reader(&rest[5..]).expect("a reply body");
    (response_to, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn made_up_replies_answer_the_request_on_the_wire() {
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let rule = proxy.add(Rule::new(Match::command("ping"), Fault::shutdown_in_progress()).times(1));
    let mut stream = bounded("connecting", TcpStream::connect(proxy.address()))
        .await
        .expect("a connection");

    let ping = doc! { "ping": 1, "$db": "admin" };
    stream.write_all(&op_msg(41, &ping)).await.expect("send a ping");
    let (response_to, reply) = read_reply(&mut stream).await;
    assert_eq!(response_to, 41);
    assert_eq!(reply.get_i32("code"), Ok(91));
    assert_eq!(reply.get_str("codeName"), Ok("ShutdownInProgress"));

    // The rule is used up: the next ping gets the server's own answer.
    stream.write_all(&op_msg(42, &ping)).await.expect("send a ping");
    let (response_to, reply) = read_reply(&mut stream).await;
    assert_eq!(response_to, 42);
    assert!(!reply.contains_key("codeName"), "{reply:?}");
    assert_eq!(rule.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bytes_close_the_connection_and_the_proxy_goes_on() {
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let mut stream = bounded("connecting", TcpStream::connect(proxy.address()))
        .await
        .expect("a connection");

    // A header claiming a 3-byte message cannot be framed.
    let mut garbage = 3i32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xFF; 12]);
    stream.write_all(&garbage).await.expect("send garbage");
    let mut buffer = [0u8; 64];
    let read = bounded("the proxy closing", stream.read(&mut buffer)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // An OP_MSG whose body is not BSON is forwarded, never matched.
    let rule = proxy.add(Rule::new(Match::any(), Fault::Reset));
    let mut broken = op_msg(7, &doc! { "ping": 1, "$db": "admin" });
    broken[21..25].copy_from_slice(&1000i32.to_le_bytes());
    let mut stream = bounded("connecting", TcpStream::connect(proxy.address()))
        .await
        .expect("a connection");
    stream.write_all(&broken).await.expect("send a broken OP_MSG");
    // Whatever the server makes of it, the proxy did not apply the rule.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await;
    assert_eq!(rule.hits(), 0);
    assert!(proxy.seen().is_empty());
    rule.remove();

    let mut stream = bounded("connecting", TcpStream::connect(proxy.address()))
        .await
        .expect("a connection");
    stream
        .write_all(&op_msg(8, &doc! { "ping": 1, "$db": "admin" }))
        .await
        .expect("send a ping");
    let (response_to, reply) = read_reply(&mut stream).await;
    assert_eq!(response_to, 8);
    assert!(reply.get("ok").is_some(), "{reply:?}");
}
