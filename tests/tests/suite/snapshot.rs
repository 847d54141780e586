//! The declared schema as a file, and a live database held against it:
//! `SchemaManager::snapshot` and `verify`, the command line's `snapshot`
//! and `verify`, and `testing::check_snapshot` as an application's test
//! runs it (`schema-snapshot`, a binary with two collections' indexes).
//!
//! The indexes here are those the emulator lists as declared (ascending
//! keys, `unique`, TTL seconds); `real_server.rs` verifies every other
//! shape against a real server.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, drop_index, ensure_indexes, keys, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::snapshot::{Snapshot, Subject, declare_indexes};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
use schema_tests::{
    fresh_database, index_documents, monitored_database, scratch_databases, scratch_prefix, take_commands,
};

const GROUP: &str = "snapshot";

#[migration(id = "s_0001_orders", group = "snapshot")]
async fn orders(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "orders",
        [
            ascending("order_id").unique(),
            keys(doc! { "customer_id": 1, "placed_at": 1 }),
            ascending("legacy_code"),
        ],
    )
    .await
}

/// An index built with a raw command, declared so that the snapshot has it
#[migration(id = "s_0002_sessions", group = "snapshot", after = "s_0001_orders")]
async fn sessions(db: &Database) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ensure_indexes(db, "sessions", [ttl("expires_at", Duration::from_secs(3600))]).await?;
    db.run_command(doc! {
        "createIndexes": "sessions",
        "indexes": [{ "key": { "user_id": 1 }, "name": "by_user" }],
    })
    .await?;
    declare_indexes(db, "sessions", [ascending("user_id").named("by_user")])?;
    Ok(())
}

#[migration(id = "s_0003_drop_legacy", group = "snapshot", after = "s_0001_orders")]
async fn drop_legacy(db: &Database) -> Result<(), Error> {
    drop_index(db, "orders", doc! { "legacy_code": 1 }).await
}

#[migration(id = "f_0001_index", group = "snapshot_failing")]
async fn failing_index(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "things", [ascending("thing_id")]).await
}

#[migration(id = "f_0002_fails", group = "snapshot_failing", after = "f_0001_index")]
async fn fails(_db: &Database) -> Result<(), Error> {
    Err(Error::Configuration {
        reason: "refused on purpose".into(),
    })
}

fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group(group).expect("a valid set"))
}

/// `(collection, key pattern, name)` of every index of `snapshot`.
fn listed(snapshot: &Snapshot) -> Vec<(String, Document, String)> {
    snapshot
        .collections()
        .flat_map(|(collection, declared)| {
            declared.indexes().iter().map(move |index| {
                (
                    collection.to_owned(),
                    index.get_document("key").expect("a key").clone(),
                    index.get_str("name").expect("a name").to_owned(),
                )
            })
        })
        .collect()
}

fn keys_of(subject: &Subject) -> Document {
    match subject {
        Subject::Index { keys, .. } => keys.clone(),
        Subject::Validator => Document::new(),
    }
}

#[tokio::test]
async fn the_snapshot_holds_what_the_migrations_declare_the_same_every_time_and_leaves_nothing_behind() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_declared").await;
    let snapshot = manager(&db, GROUP).snapshot().await.expect("snapshot");
    assert_eq!(snapshot.groups(), ["snapshot"]);
    assert_eq!(
        listed(&snapshot),
        [
            (
                "orders".to_owned(),
                doc! { "customer_id": 1, "placed_at": 1 },
                "customer_id_1_placed_at_1".to_owned()
            ),
            (
                "orders".to_owned(),
                doc! { "order_id": 1 },
                "order_id_1".to_owned()
            ),
            (
                "sessions".to_owned(),
                doc! { "expires_at": 1 },
                "expires_at_1".to_owned()
            ),
            ("sessions".to_owned(), doc! { "user_id": 1 }, "by_user".to_owned()),
        ]
    );
    let sessions = snapshot.collection("sessions").expect("sessions");
    assert_eq!(sessions.indexes()[0].get_i32("expireAfterSeconds"), Ok(3600));

    // Again, and from the set registered in the reverse order.
    let again = manager(&db, GROUP).snapshot().await.expect("snapshot");
    assert_eq!(again.to_json(), snapshot.to_json());
    let group = Migrations::group(GROUP).expect("a valid set");
    let reversed = Migrations::new(group.iter().collect::<Vec<_>>().into_iter().rev()).expect("a valid set");
    let reversed = SchemaManager::new(db.clone())
        .migrations(reversed)
        .snapshot()
        .await
        .expect("snapshot");
    assert_eq!(reversed.to_json(), snapshot.to_json());
    assert_eq!(
        Snapshot::from_json(&snapshot.to_json()).expect("read back"),
        snapshot
    );

    // The manager's own database was not touched; no scratch database is left.
    let collections = db.list_collection_names().await.expect("listCollections");
    assert!(collections.is_empty(), "{collections:?}");
    let scratch = scratch_databases(&db).await;
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[tokio::test]
async fn a_failing_migration_fails_the_snapshot_and_its_scratch_database_is_dropped() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_failing").await;
    let error = manager(&db, "snapshot_failing")
        .snapshot()
        .await
        .expect_err("a migration fails");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "f_0002_fails"),
        "{error:?}"
    );
    let scratch = scratch_databases(&db).await;
    assert!(scratch.is_empty(), "{scratch:?}");
}

#[tokio::test]
async fn verify_finds_nothing_after_apply_then_names_what_was_changed_by_hand() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_verify").await;
    let manager = manager(&db, GROUP);
    let snapshot = manager.snapshot().await.expect("snapshot");
    manager.apply_all().await.expect("apply");
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:?}");

    // By hand: one declared index dropped, one added, a TTL changed.
    let by_hand = |command: Document| {
        let db = db.clone();
        async move { db.run_command(command).await.expect("a command by hand") }
    };
    by_hand(doc! { "dropIndexes": "orders", "index": { "order_id": 1 } }).await;
    by_hand(doc! { "createIndexes": "orders", "indexes": [{ "key": { "note": 1 }, "name": "note_1" }] })
        .await;
    by_hand(doc! { "dropIndexes": "sessions", "index": { "expires_at": 1 } }).await;
    by_hand(doc! {
        "createIndexes": "sessions",
        "indexes": [{ "key": { "expires_at": 1 }, "name": "expires_at_1", "expireAfterSeconds": 60 }],
    })
    .await;

    let drift = manager.verify(&snapshot).await.expect("verify");
    let found = |differences: &[schema_core::snapshot::Difference]| {
        differences
            .iter()
            .map(|difference| (difference.collection.clone(), keys_of(&difference.subject)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        found(&drift.missing),
        [("orders".to_owned(), doc! { "order_id": 1 })]
    );
    assert_eq!(found(&drift.extra), [("orders".to_owned(), doc! { "note": 1 })]);
    assert_eq!(
        found(&drift.changed),
        [("sessions".to_owned(), doc! { "expires_at": 1 })]
    );
    assert_eq!(
        drift.changed[0].details,
        ["expireAfterSeconds: declared 3600, existing 60"]
    );
    assert!(drift.is_failure(false));
}

#[tokio::test]
async fn verify_reads_the_collections_once_and_the_indexes_of_each_once() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database("snapshot_verify_cost").await;
    let manager = manager(&db, GROUP);
    let snapshot = manager.snapshot().await.expect("snapshot");
    manager.apply_all().await.expect("apply");
    take_commands(&sent);
    let drift = manager.verify(&snapshot).await.expect("verify");
    assert!(drift.is_empty(), "{drift:?}");
    let mut commands = take_commands(&sent);
    commands.sort();
    assert_eq!(
        commands,
        [
            ("listCollections".to_owned(), String::new()),
            ("listIndexes".to_owned(), "orders".to_owned()),
            ("listIndexes".to_owned(), "sessions".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_snapshot_of_one_group_is_refused_for_a_database_of_another() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_other_group").await;
    let snapshot = manager(&db, GROUP).snapshot().await.expect("snapshot");
    let error = manager(&db, "snapshot_failing")
        .verify(&snapshot)
        .await
        .expect_err("another group");
    assert_eq!(error.kind(), "configuration", "{error}");
    assert!(error.to_string().contains("[\"snapshot\"]"), "{error}");
}

fn schema_snapshot(db: &Database, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_schema-snapshot"))
        .args(args)
        .env("WORKER_DB", db.name())
        .env_remove("SCHEMA_SNAPSHOT")
        .envs(env.iter().copied())
        .output()
        .expect("run schema-snapshot")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scratch_file(name: &str) -> PathBuf {
    let directory =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a directory");
    directory.join(name)
}

#[tokio::test]
async fn check_snapshot_writes_the_file_then_passes_and_fails_on_an_edit_with_a_diff() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_check").await;
    let file = scratch_file("check.json");
    let _ = std::fs::remove_file(&file);
    let path = file.to_str().expect("a UTF-8 path");

    let missing = schema_snapshot(&db, &["check", path], &[]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        text(&missing).contains("could not read the schema snapshot"),
        "{}",
        text(&missing)
    );

    let written = schema_snapshot(&db, &["check", path], &[("SCHEMA_SNAPSHOT", "overwrite")]);
    assert!(written.status.success(), "{}", text(&written));
    let contents = std::fs::read_to_string(&file).expect("the file was written");
    let snapshot = Snapshot::from_json(&contents).expect("a snapshot");
    assert_eq!(
        snapshot.collections().map(|(name, _)| name).collect::<Vec<_>>(),
        ["orders", "sessions"]
    );

    let passed = schema_snapshot(&db, &["check", path], &[]);
    assert!(passed.status.success(), "{}", text(&passed));

    std::fs::write(&file, contents.replace("3600", "60")).expect("edit the file");
    let failed = schema_snapshot(&db, &["check", path], &[]);
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("differs from the schema the migrations declare"),
        "{stderr}"
    );
    let shows = |mark: char, value: &str| {
        stderr
            .lines()
            .any(|line| line.starts_with(mark) && line.trim_start_matches(mark).trim() == value)
    };
    assert!(shows('-', "\"expireAfterSeconds\": 60"), "{stderr}");
    assert!(shows('+', "\"expireAfterSeconds\": 3600"), "{stderr}");
    // The database the binary names was never written to.
    assert!(
        db.list_collection_names()
            .await
            .expect("listCollections")
            .is_empty()
    );
}

#[tokio::test]
async fn the_command_line_writes_a_snapshot_and_verify_exits_3_on_drift_with_json_entries() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_cli").await;
    let file = scratch_file("cli.json");
    let path = file.to_str().expect("a UTF-8 path");
    let written = schema_snapshot(&db, &["snapshot", "--out", path], &[]);
    assert!(written.status.success(), "{}", text(&written));
    let printed = schema_snapshot(&db, &["snapshot"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        std::fs::read_to_string(&file).expect("written")
    );

    let applied = schema_snapshot(&db, &["apply"], &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    let clean = schema_snapshot(&db, &["verify", "--snapshot", path, "--json"], &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    let clean: serde_json::Value = serde_json::from_slice(&clean.stdout).expect("JSON");
    assert_eq!(clean["drift"], false);

    db.run_command(doc! { "dropIndexes": "orders", "index": { "order_id": 1 } })
        .await
        .expect("drop by hand");
    db.run_command(
        doc! { "createIndexes": "sessions", "indexes": [{ "key": { "tmp": 1 }, "name": "tmp_1" }] },
    )
    .await
    .expect("add by hand");
    let drifted = schema_snapshot(&db, &["verify", "--snapshot", path, "--json"], &[]);
    assert_eq!(drifted.status.code(), Some(3), "{}", text(&drifted));
    let drifted: serde_json::Value = serde_json::from_slice(&drifted.stdout).expect("JSON");
    assert_eq!(drifted["drift"], true);
    assert_eq!(drifted["missing"][0]["collection"], "orders");
    assert_eq!(
        drifted["missing"][0]["keys"],
        serde_json::json!({ "order_id": 1 })
    );
    assert_eq!(drifted["extra"][0]["keys"], serde_json::json!({ "tmp": 1 }));
    assert_eq!(drifted["changed"], serde_json::json!([]));

    // Extra alone is a warning, unless denied.
    db.run_command(doc! {
        "createIndexes": "orders",
        "indexes": [{ "key": { "order_id": 1 }, "name": "order_id_1", "unique": true }],
    })
    .await
    .expect("put it back");
    let warned = schema_snapshot(&db, &["verify", "--snapshot", path], &[]);
    assert_eq!(warned.status.code(), Some(0), "{}", text(&warned));
    assert!(
        String::from_utf8_lossy(&warned.stdout).contains("extra    sessions"),
        "{}",
        text(&warned)
    );
    let denied = schema_snapshot(&db, &["verify", "--snapshot", path, "--deny-extra"], &[]);
    assert_eq!(denied.status.code(), Some(3), "{}", text(&denied));

    let unreadable = schema_snapshot(&db, &["verify", "--snapshot", "/nonexistent/schema.json"], &[]);
    assert_eq!(unreadable.status.code(), Some(1), "{}", text(&unreadable));
}

/// A text index is stored under `{ _fts: "text", _ftsx: 1 }`, so the
/// server answers IndexNotFound to a drop by the declared keys. The
/// emulator does not list text indexes: the listing a real server gives is
/// injected by the proxy, naming an index the emulator has, and the drop
/// must reach that index by its name.
#[tokio::test]
async fn dropping_a_text_index_by_its_declared_fields_drops_it_by_name() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_drop_text").await;
    db.run_command(doc! {
        "createIndexes": "articles",
        "indexes": [{ "key": { "title": 1 }, "name": "title_text" }],
    })
    .await
    .expect("an index by hand");
    let name = index_documents(&db, "articles")
        .await
        .into_iter()
        .find(|index| {
            index
                .get_document("key")
                .is_ok_and(|key| key.contains_key("title"))
        })
        .and_then(|index| index.get_str("name").ok().map(str::to_owned))
        .expect("the index is listed");

    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let listing = proxy.add(Rule::new(
        Match::command("listIndexes").on("articles"),
        Fault::Reply(doc! {
            "ok": 1.0,
            "cursor": {
                "id": 0_i64,
                "ns": format!("{}.articles", db.name()),
                "firstBatch": [
                    { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    {
                        "v": 2, "key": { "_fts": "text", "_ftsx": 1 }, "name": &name,
                        "weights": { "title": 1 }, "default_language": "english",
                        "language_override": "language", "textIndexVersion": 3,
                    },
                ],
            },
        }),
    ));
    // The collection's text index is over other fields: nothing to drop.
    drop_index(&proxied, "articles", doc! { "body": "text" })
        .await
        .expect("absent");
    assert_eq!(listing.hits(), 1, "the proxy answered the listing");
    assert!(!proxy.seen().iter().any(|seen| seen.command == "dropIndexes"));
    drop_index(&proxied, "articles", doc! { "title": "text" })
        .await
        .expect("dropped");
    assert_eq!(listing.hits(), 2, "the proxy answered the listing");
    let drops: Vec<Document> = proxy
        .seen()
        .into_iter()
        .filter(|seen| seen.command == "dropIndexes")
        .map(|seen| seen.body)
        .collect();
    assert_eq!(drops.len(), 1, "{drops:?}");
    assert_eq!(drops[0].get_str("index"), Ok(name.as_str()), "{drops:?}");
    listing.remove();
    let left: Vec<String> = index_documents(&db, "articles")
        .await
        .iter()
        .filter_map(|index| index.get_str("name").ok().map(str::to_owned))
        .collect();
    assert!(!left.contains(&name), "{left:?}");
}

#[tokio::test]
async fn a_snapshot_in_a_given_database_is_the_same_and_empties_it_of_what_it_created() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_given").await;
    let scratch = fresh_database("snapshot_given_scratch").await;
    let expected = manager(&db, GROUP).snapshot().await.expect("snapshot");
    let snapshot = manager(&db, GROUP)
        .snapshot_database(scratch.clone())
        .snapshot()
        .await
        .expect("snapshot in the given database");
    assert_eq!(snapshot.to_json(), expected.to_json());
    // The given database is empty again, no other was made, and the
    // manager's own was not touched.
    let left = scratch.list_collection_names().await.expect("listCollections");
    assert!(left.is_empty(), "{left:?}");
    let made = scratch_databases(&db).await;
    assert!(made.is_empty(), "{made:?}");
    assert!(
        db.list_collection_names()
            .await
            .expect("listCollections")
            .is_empty()
    );

    // One that holds anything is refused, and kept as it was.
    scratch
        .collection::<Document>("kept")
        .insert_one(doc! { "n": 1 })
        .await
        .expect("insert");
    let error = manager(&db, GROUP)
        .snapshot_database(scratch.clone())
        .snapshot()
        .await
        .expect_err("not empty");
    assert_eq!(error.kind(), "configuration", "{error}");
    assert!(error.to_string().contains("must start empty"), "{error}");
    assert_eq!(
        scratch.list_collection_names().await.expect("listCollections"),
        ["kept"]
    );
    assert_eq!(
        scratch
            .collection::<Document>("kept")
            .count_documents(doc! {})
            .await
            .expect("count"),
        1
    );
    // And so is the manager's own database.
    let error = manager(&db, GROUP)
        .snapshot_database(db.clone())
        .snapshot()
        .await
        .expect_err("its own database");
    assert_eq!(error.kind(), "configuration", "{error}");
    scratch.drop().await.expect("drop the scratch database");
}

/// A user with `readWrite` on its own database only is refused the scratch
/// database: the server's Unauthorized, injected for the snapshot's first
/// command there, as a real server answers it.
#[tokio::test]
async fn a_user_refused_the_scratch_database_is_told_to_name_one() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_unauthorized").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let prefix = scratch_prefix(&db);
    let refused = proxy.add(Rule::new(
        Match::any().when(move |body| body.get_str("$db").is_ok_and(|name| name.starts_with(&prefix))),
        Fault::error(
            13,
            "Unauthorized",
            "not authorized on the database to execute command",
        ),
    ));
    let error = manager(&proxied, GROUP).snapshot().await.expect_err("refused");
    assert!(refused.hits() >= 1, "the proxy refused the scratch database");
    let Error::SnapshotUnauthorized { database, .. } = &error else {
        panic!("expected SnapshotUnauthorized, got {error:?}");
    };
    assert!(database.starts_with(&scratch_prefix(&db)), "{database}");
    assert_eq!(error.kind(), "snapshot_unauthorized");
    let message = error.to_string();
    assert!(message.contains("SchemaManager::snapshot_database"), "{message}");
    assert!(message.contains("Unauthorized"), "{message}");
    assert_eq!(error.server_error().and_then(|server| server.code()), Some(13));
    refused.remove();
    // Through `snapshot_database`, the same user succeeds.
    let scratch = fresh_database("snapshot_unauthorized_scratch").await;
    let given = proxy.database(&scratch).await;
    manager(&proxied, GROUP)
        .snapshot_database(given)
        .snapshot()
        .await
        .expect("snapshot in the given database");
    assert!(scratch_databases(&db).await.is_empty());
}

/// The scratch database's drop is given up on after a third of the lease
/// instead of waiting for ever: held at the proxy.
#[tokio::test]
async fn a_scratch_drop_that_never_answers_is_given_up_on() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_drop_held").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let held = proxy.add(Rule::new(Match::command("dropDatabase"), Fault::Hold));
    let manager = manager(&proxied, GROUP).lock_lease(Duration::from_secs(2));
    let error = tokio::time::timeout(Duration::from_secs(20), manager.snapshot())
        .await
        .expect("given up on, not held for ever")
        .expect_err("the drop is not answered");
    assert_eq!(held.held(), 1, "the proxy held the dropDatabase");
    assert_eq!(error.kind(), "server_timeout", "{error}");
    assert!(error.to_string().contains("drop the scratch database"), "{error}");
    held.remove();
    // Let through, the drop lands in the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !scratch_databases(&db).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the held drop lands");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_command_line_takes_a_snapshot_in_a_named_database() {
    // Each creates and drops whole scratch databases, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("snapshot_cli_named").await;
    let scratch = fresh_database("snapshot_cli_named_scratch").await;
    let plain = schema_snapshot(&db, &["snapshot"], &[]);
    assert!(plain.status.success(), "{}", text(&plain));
    let named = schema_snapshot(&db, &["snapshot", "--snapshot-database", scratch.name()], &[]);
    assert!(named.status.success(), "{}", text(&named));
    assert_eq!(named.stdout, plain.stdout);
    assert!(
        scratch
            .list_collection_names()
            .await
            .expect("listCollections")
            .is_empty()
    );
}
