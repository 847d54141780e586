//! Index builds a migration waits for: the commit quorum it may choose
//! (sent to a replica set member or a `mongos`, left out on a standalone),
//! the bound it may set (the build goes on in the server, and the next run
//! waits for it), and a build waiting for its quorum as `status` and the
//! command line show it, only where the member's record of the build says
//! so. The emulator builds at once, reports no operation and answers
//! `hello` as a standalone, so a build that takes time is a `createIndexes`
//! held at the proxy, and what `hello`, `$currentOp` and the member's
//! record of its builds show are the real server's replies, injected.

use std::process::Output;
use std::time::{Duration, Instant};

use schema_core::indexes::{ascending, ensure_indexes};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};
use schema_core::mongodb::options::CommitQuorum;
use schema_core::{CommitQuorumWait, Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Answer, Fault, FaultProxy, Match, Rule, RuleHandle};
use schema_tests::server::{ServerKind, kind, require_replica_set_members};
use schema_tests::workers::{self, Worker};
use schema_tests::{fresh_database, index_documents, record_ids};

const GROUP: &str = "index_builds";
const BOUNDED: &str = "ib_0001_bounded_build";

/// A build its migration waits at most half a second for
#[migration(id = "ib_0001_bounded_build", group = "index_builds")]
async fn bounded_build(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "events", [ascending("at")])
        .timeout(Duration::from_millis(500))
        .await
}

/// Whether `collection` has an index on `field` (the emulator renames
/// indexes, so they are found by their keys).
async fn indexed(db: &Database, collection: &str, field: &str) -> bool {
    index_documents(db, collection)
        .await
        .iter()
        .any(|index| index.get_document("key").is_ok_and(|key| key.contains_key(field)))
}

/// The `hello` the library sends on `db` itself; the driver's own (its
/// handshake and monitoring) go to `admin`.
fn library_hello(db: &Database) -> Match {
    let name = db.name().to_owned();
    Match::command("hello").when(move |body| body.get_str("$db") == Ok(name.as_str()))
}

/// A standalone `mongod`'s `hello` (7.0's fields): no `setName`.
fn standalone_hello() -> Document {
    doc! {
        "isWritablePrimary": true, "topologyVersion": { "processId": schema_core::mongodb::bson::oid::ObjectId::new(), "counter": 0_i64 },
        "maxBsonObjectSize": 16_777_216, "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
        "localTime": DateTime::now(), "logicalSessionTimeoutMinutes": 30, "connectionId": 7,
        "minWireVersion": 0, "maxWireVersion": 21, "readOnly": false, "ok": 1.0,
    }
}

/// The `hello` of the primary `m1:27017` of the replica set `rs0`.
fn primary_hello() -> Document {
    let mut hello = standalone_hello();
    hello.insert("hosts", ["m1:27017", "m2:27017", "m3:27017"].to_vec());
    hello.insert("setName", "rs0");
    hello.insert("setVersion", 1);
    hello.insert("secondary", false);
    hello.insert("primary", "m1:27017");
    hello.insert("me", "m1:27017");
    hello
}

/// A `mongos`'s `hello`.
fn mongos_hello() -> Document {
    let mut hello = standalone_hello();
    hello.insert("msg", "isdbgrid");
    hello
}

/// Answers the library's `hello` on `db` with `reply` (its `localTime`
/// fresh each time).
fn answer_hello(proxy: &FaultProxy, db: &Database, reply: fn() -> Document) -> RuleHandle {
    proxy.add(Rule::new(
        library_hello(db),
        Fault::Answer(Answer::new(move |_| reply())),
    ))
}

/// The bodies of the commands named `name` the proxy saw on `db`.
fn sent(proxy: &FaultProxy, db: &Database, name: &str) -> Vec<Document> {
    proxy
        .seen()
        .into_iter()
        .filter(|seen| seen.command == name && seen.body.get_str("$db") == Ok(db.name()))
        .map(|seen| seen.body)
        .collect()
}

#[tokio::test]
async fn a_chosen_commit_quorum_is_left_out_on_a_standalone_which_refuses_one() {
    let db = fresh_database("index_builds_quorum_standalone").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let hello = answer_hello(&proxy, &db, standalone_hello);

    ensure_indexes(&proxied, "events", [ascending("at")])
        .commit_quorum(CommitQuorum::Majority)
        .await
        .expect("built without a quorum");
    assert_eq!(hello.hits(), 1, "one hello told what the server is");
    let create = sent(&proxy, &db, "createIndexes");
    assert_eq!(create.len(), 1, "{create:?}");
    assert!(!create[0].contains_key("commitQuorum"), "{create:?}");
    assert!(indexed(&db, "events", "at").await);

    // Without a choice, no hello and no quorum: the server's default holds.
    ensure_indexes(&proxied, "events", [ascending("by")])
        .await
        .expect("created");
    assert_eq!(hello.hits(), 1, "no hello without a chosen quorum");
    let create = sent(&proxy, &db, "createIndexes");
    assert_eq!(create.len(), 2, "{create:?}");
    assert!(!create[1].contains_key("commitQuorum"), "{create:?}");
    assert!(indexed(&db, "events", "by").await);
}

#[tokio::test]
async fn a_chosen_commit_quorum_goes_out_to_a_replica_set_member() {
    let db = fresh_database("index_builds_quorum_replica_set").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let injected = match kind(&db).await {
        // The emulator answers hello as a standalone: a primary's answer.
        ServerKind::Emulator => Some(answer_hello(&proxy, &db, primary_hello)),
        // A real replica set member or mongos answers for itself.
        ServerKind::Real if takes_commit_quorum(&db).await => None,
        ServerKind::Real => {
            let why = "a real standalone server refuses a commit quorum";
            assert!(
                require_replica_set_members(&db, 1, why).await,
                "a real standalone"
            );
            return;
        }
    };

    ensure_indexes(&proxied, "events", [ascending("at")])
        .commit_quorum(CommitQuorum::Majority)
        .await
        .expect("created");
    assert_eq!(
        sent(&proxy, &db, "hello").len(),
        1,
        "one hello told what the server is"
    );
    if let Some(injected) = injected {
        assert_eq!(injected.hits(), 1, "the proxy answered it as a primary");
    }
    let create = sent(&proxy, &db, "createIndexes");
    assert_eq!(create.len(), 1, "{create:?}");
    assert_eq!(create[0].get_str("commitQuorum"), Ok("majority"), "{create:?}");
    assert!(indexed(&db, "events", "at").await);
}

/// Whether the server is a replica set member or a `mongos`.
async fn takes_commit_quorum(db: &Database) -> bool {
    let hello = db
        .run_command(doc! { "hello": 1 })
        .await
        .expect("the server answers hello");
    hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid")
}

#[tokio::test]
async fn a_build_past_its_timeout_fails_the_migration_lets_the_lock_go_and_the_next_run_finds_it_built() {
    let db = fresh_database("index_builds_timeout").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let manager = SchemaManager::new(proxied.clone())
        .migrations(Migrations::group(GROUP).expect("a valid set"))
        .lock_lease(Duration::from_secs(2));

    // The build does not end: its createIndexes is held, as one waiting for
    // a commit quorum that a member down keeps from coming.
    let held = proxy.add(Rule::new(Match::command("createIndexes").on("events"), Fault::Hold).times(1));
    let error = tokio::time::timeout(Duration::from_secs(20), manager.apply_all())
        .await
        .expect("given up on after its bound, not held for ever")
        .expect_err("the build is not done in time");
    assert_eq!(held.held(), 1, "the proxy held the createIndexes");
    let Error::MigrationFailed { id, source } = &error else {
        panic!("expected MigrationFailed, got {error:?}");
    };
    assert_eq!(id, BOUNDED);
    let source = source
        .downcast_ref::<Error>()
        .unwrap_or_else(|| panic!("the helper's error: {source:?}"));
    let Error::IndexBuildTimeout {
        collection,
        indexes,
        waited,
    } = source
    else {
        panic!("expected IndexBuildTimeout, got {source:?}");
    };
    assert_eq!(
        (collection.as_str(), indexes.as_slice()),
        ("events", &["at_1".to_owned()][..])
    );
    assert_eq!(*waited, Duration::from_millis(500));
    assert_eq!(source.kind(), "index_build_timeout");
    assert!(
        source.to_string().contains("the server goes on building them"),
        "{source}"
    );
    // Not recorded, and the lock is let go: nobody waits a lease for it.
    assert!(record_ids(&db, "schema_versions").await.is_empty());
    let lock = manager.lock_status().await.expect("lock status").start;
    assert!(lock.as_ref().is_none_or(|lock| lock.released), "{lock:?}");

    // The server goes on: the held command reaches it and builds.
    held.release();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !indexed(&db, "events", "at").await {
        assert!(Instant::now() < deadline, "the build ends in the server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next run sends the same createIndexes, which finds it built.
    let report = manager.apply_all().await.expect("the next run");
    assert_eq!(report.applied, [BOUNDED]);
    assert_eq!(record_ids(&db, "schema_versions").await, [BOUNDED]);
}

/// What a replica set member's `$currentOp` lists while `db.events` builds
/// `at_1` and waits for its commit quorum: the client waiting for its
/// `createIndexes`, and the builder, done scanning, draining the writes
/// that arrive (fields as 7.0 lists them).
fn waiting_for_quorum(db: &str) -> Document {
    let command = doc! {
        "createIndexes": "events",
        "indexes": [{ "key": { "at": 1 }, "name": "at_1" }],
        "$db": db,
    };
    doc! {
        "ok": 1.0,
        "cursor": {
            "id": 0_i64,
            "ns": "admin.$cmd.aggregate",
            "firstBatch": [
                {
                    "type": "op", "active": true, "op": "command", "ns": format!("{db}.events"),
                    "command": command.clone(), "secs_running": 600_i64,
                },
                {
                    "type": "op", "active": true, "op": "command", "ns": format!("{db}.events"),
                    "command": command, "secs_running": 600_i64,
                    "msg": "Index Build: draining writes received during build",
                    "progress": { "done": 0_i64, "total": 0_i64 },
                },
            ],
        },
    }
}

fn current_op() -> Match {
    Match::command("aggregate").when(|body| {
        body.get_array("pipeline").is_ok_and(|pipeline| {
            pipeline
                .first()
                .and_then(|stage| stage.as_document())
                .is_some_and(|stage| stage.contains_key("$currentOp"))
        })
    })
}

/// The identity `listCollections` gives `db.events` in the injected
/// answers.
const EVENTS_UUID: [u8; 16] = [0x5e; 16];

fn uuid(bytes: [u8; 16]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: bytes.to_vec(),
    })
}

/// `listCollections` of `events`, as a replica set member lists it.
fn events_listed(db: &str) -> Document {
    doc! {
        "ok": 1.0,
        "cursor": {
            "id": 0_i64,
            "ns": format!("{db}.$cmd.listCollections"),
            "firstBatch": [{
                "name": "events", "type": "collection", "options": {},
                "info": { "readOnly": false, "uuid": uuid(EVENTS_UUID) },
                "idIndex": { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            }],
        },
    }
}

/// The primary's record of the build of `at_1` on `events`
/// (`config.system.indexBuilds`, fields as 7.0 stores them): it has built
/// the index and voted, and waits for the rest of its voting members.
fn voted_record() -> Document {
    doc! {
        "ok": 1.0,
        "cursor": {
            "id": 0_i64,
            "ns": "config.system.indexBuilds",
            "firstBatch": [{
                "_id": uuid([0x1b; 16]),
                "collectionUUID": uuid(EVENTS_UUID),
                "commitQuorum": "votingMembers",
                "indexNames": ["at_1"],
                "commitReadyMembers": ["m1:27017"],
            }],
        },
    }
}

fn index_builds_record() -> Match {
    Match::command("find").on("system.indexBuilds")
}

/// `schema-snapshot status` through `proxy`: the lines about `events`'s
/// build.
async fn status_lines(proxy: &FaultProxy, db: &Database) -> (Vec<String>, String) {
    let uri = proxy.uri();
    let child = Worker::new(env!("CARGO_BIN_EXE_schema-snapshot"), db, 2000)
        .through(&uri)
        .spawn_with(&["status"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let output: Output = tokio::task::spawn_blocking(move || workers::finish(child, deadline))
        .await
        .expect("wait for status");
    let text = workers::text(&output);
    let lines = text
        .lines()
        .filter(|line| line.contains("index build on events"))
        .map(str::to_owned)
        .collect();
    (lines, text)
}

#[tokio::test]
async fn a_build_waiting_for_its_commit_quorum_shows_once_in_status_and_on_the_command_line() {
    let db = fresh_database("index_builds_quorum_wait").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let reported = proxy.add(Rule::new(
        current_op(),
        Fault::Reply(waiting_for_quorum(db.name())),
    ));
    let hello = answer_hello(&proxy, &db, primary_hello);
    let record = proxy.add(Rule::new(index_builds_record(), Fault::Reply(voted_record())));
    let listed = proxy.add(Rule::new(
        Match::command("listCollections").when(|body| {
            body.get_document("filter")
                .and_then(|filter| filter.get_document("name"))
                .and_then(|name| name.get_array("$in"))
                .is_ok_and(|names| names.as_slice() == [Bson::from("events")])
        }),
        Fault::Reply(events_listed(db.name())),
    ));

    let status = SchemaManager::new(proxied.clone())
        .migrations(Migrations::group(GROUP).expect("a valid set"))
        .status()
        .await
        .expect("status");
    assert_eq!(reported.hits(), 1, "the proxy answered the $currentOp");
    assert_eq!(
        (hello.hits(), record.hits(), listed.hits()),
        (1, 1, 1),
        "the proxy answered as the primary, with its record"
    );
    let [build] = status.index_builds.as_slice() else {
        panic!(
            "the client and the builder are one build: {:?}",
            status.index_builds
        );
    };
    assert_eq!(
        (build.collection.as_str(), build.indexes.as_slice()),
        ("events", &["at_1".to_owned()][..])
    );
    assert_eq!(
        build.commit_quorum,
        CommitQuorumWait::Waiting {
            quorum: "votingMembers".into(),
            ready: vec!["m1:27017".into()],
        }
    );
    assert_eq!(
        build.phase.as_deref(),
        Some("draining writes received during build")
    );

    // The command line, as an operator runs it.
    let (lines, text) = status_lines(&proxy, &db).await;
    assert_eq!(reported.hits(), 2, "{text}");
    assert_eq!(record.hits(), 2, "{text}");
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("(at_1)"), "{text}");
    assert!(
        lines[0].contains("waiting for its commit quorum (`votingMembers`; voted: m1:27017)"),
        "{text}"
    );
}

/// On a standalone every build, whatever its phase, is known not to wait
/// for a quorum (it has none), and nothing more is read to say so; the
/// phase in which a build waits for its quorum is also the one in which
/// every build drains the writes that arrived while it ran.
#[tokio::test]
async fn a_draining_build_on_a_standalone_never_shows_as_waiting_for_a_commit_quorum() {
    let db = fresh_database("index_builds_standalone_drain").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let reported = proxy.add(Rule::new(
        current_op(),
        Fault::Reply(waiting_for_quorum(db.name())),
    ));
    let hello = answer_hello(&proxy, &db, standalone_hello);

    let status = SchemaManager::new(proxied.clone())
        .migrations(Migrations::group(GROUP).expect("a valid set"))
        .status()
        .await
        .expect("status");
    assert_eq!(
        (reported.hits(), hello.hits()),
        (1, 1),
        "the proxy answered the $currentOp, and hello as a standalone"
    );
    let [build] = status.index_builds.as_slice() else {
        panic!("one build: {:?}", status.index_builds);
    };
    assert_eq!(
        build.phase.as_deref(),
        Some("draining writes received during build")
    );
    assert_eq!(build.commit_quorum, CommitQuorumWait::NotWaiting);

    let (lines, text) = status_lines(&proxy, &db).await;
    assert_eq!((reported.hits(), hello.hits()), (2, 2), "{text}");
    assert_eq!(lines.len(), 1, "{text}");
    assert!(!lines[0].contains("commit quorum"), "{text}");
    assert_eq!(
        proxy.count(&index_builds_record()),
        0,
        "a standalone has no record of builds waiting for a quorum"
    );
}

/// Where the member's record cannot be read, through a `mongos` (which
/// does not show the shards' records) or by a user without the privilege,
/// whether a build waits is unknown, and not claimed.
#[tokio::test]
async fn a_build_whose_record_cannot_be_read_is_not_said_to_wait_for_its_quorum() {
    let db = fresh_database("index_builds_quorum_unknown").await;
    for mongos in [true, false] {
        let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
        let proxied = proxy.database(&db).await;
        let reported = proxy.add(Rule::new(
            current_op(),
            Fault::Reply(waiting_for_quorum(db.name())),
        ));
        let hello = answer_hello(&proxy, &db, if mongos { mongos_hello } else { primary_hello });
        let refused = proxy.add(Rule::new(
            index_builds_record(),
            Fault::error(
                13,
                "Unauthorized",
                "not authorized on config to execute command { find: \"system.indexBuilds\" }",
            ),
        ));
        let status = SchemaManager::new(proxied)
            .migrations(Migrations::group(GROUP).expect("a valid set"))
            .status()
            .await
            .expect("status");
        assert_eq!((reported.hits(), hello.hits()), (1, 1), "mongos: {mongos}");
        // A mongos is not asked; a member refuses.
        assert_eq!(refused.hits(), usize::from(!mongos), "mongos: {mongos}");
        let [build] = status.index_builds.as_slice() else {
            panic!("one build: {:?}", status.index_builds);
        };
        assert_eq!(build.commit_quorum, CommitQuorumWait::Unknown, "mongos: {mongos}");
    }
}

/// A `$currentOp` the server never answers is given up on: the status
/// comes back, its index builds unknown (none listed), instead of waiting
/// for ever.
#[tokio::test]
async fn a_current_op_that_never_answers_leaves_the_builds_unknown_and_status_answers() {
    let db = fresh_database("index_builds_current_op_held").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let held = proxy.add(Rule::new(current_op(), Fault::Hold));
    let manager = SchemaManager::new(proxied).migrations(Migrations::group(GROUP).expect("a valid set"));
    let status = tokio::time::timeout(Duration::from_secs(60), manager.status())
        .await
        .expect("status answers, not held for ever")
        .expect("status");
    assert_eq!(held.held(), 1, "the proxy held the $currentOp");
    assert!(status.index_builds.is_empty(), "{:?}", status.index_builds);
    assert_eq!(status.pending(), [BOUNDED]);
    held.remove();
}
