//! Index builds a migration waits for: the commit quorum it may choose,
//! the bound it may set (the build goes on in the server, and the next run
//! waits for it), and a build waiting for its quorum as `status` and the
//! command line show it. The emulator builds at once and reports no
//! operation, so a build that takes time is a `createIndexes` held at the
//! proxy, and what `$currentOp` shows is the real server's reply, injected.

use std::process::Output;
use std::time::{Duration, Instant};

use schema_core::indexes::{ascending, ensure_indexes};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::options::CommitQuorum;
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::workers::{self, Worker};
use schema_tests::{fresh_database, index_documents, monitored_database, record_ids, take_command_documents};

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

#[tokio::test]
async fn a_chosen_commit_quorum_goes_out_with_the_create_indexes() {
    let (db, sent) = monitored_database("index_builds_quorum").await;
    ensure_indexes(&db, "events", [ascending("at")])
        .commit_quorum(CommitQuorum::Majority)
        .await
        .expect("created");
    let commands = take_command_documents(&sent);
    let create: Vec<&Document> = commands
        .iter()
        .filter(|command| command.contains_key("createIndexes"))
        .collect();
    assert_eq!(create.len(), 1, "{commands:?}");
    assert_eq!(create[0].get_str("commitQuorum"), Ok("majority"), "{create:?}");
    assert!(indexed(&db, "events", "at").await);

    // Without a choice, none is sent: the server's default holds.
    ensure_indexes(&db, "events", [ascending("by")])
        .await
        .expect("created");
    let commands = take_command_documents(&sent);
    assert!(
        commands
            .iter()
            .filter(|command| command.contains_key("createIndexes"))
            .all(|command| !command.contains_key("commitQuorum")),
        "{commands:?}"
    );
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
    let lock = manager.lock_status().await.expect("lock status");
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

#[tokio::test]
async fn a_build_waiting_for_its_commit_quorum_shows_once_in_status_and_on_the_command_line() {
    let db = fresh_database("index_builds_quorum_wait").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let reported = proxy.add(Rule::new(
        current_op(),
        Fault::Reply(waiting_for_quorum(db.name())),
    ));

    let status = SchemaManager::new(proxied.clone())
        .migrations(Migrations::group(GROUP).expect("a valid set"))
        .status()
        .await
        .expect("status");
    assert_eq!(reported.hits(), 1, "the proxy answered the $currentOp");
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
    assert!(build.waiting_for_commit_quorum, "{build:?}");
    assert_eq!(
        build.phase.as_deref(),
        Some("draining writes received during build")
    );

    // The command line, as an operator runs it.
    let uri = proxy.uri();
    let child = Worker::new(env!("CARGO_BIN_EXE_schema-snapshot"), &db, 2000)
        .through(&uri)
        .spawn_with(&["status"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let output: Output = tokio::task::spawn_blocking(move || workers::finish(child, deadline))
        .await
        .expect("wait for status");
    let text = workers::text(&output);
    assert_eq!(reported.hits(), 2, "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("index build on events"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("(at_1)"), "{text}");
    assert!(lines[0].contains("waiting for its commit quorum"), "{text}");
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
