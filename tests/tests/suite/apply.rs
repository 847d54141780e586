//! `apply_all` on a valid set of migrations: order, records, idempotence,
//! configuration and bad input.

use std::time::Duration;

use schema_core::mongodb::bson::{Bson, DateTime, Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{chain, documents, fresh_database, note_ran, ran, record_ids};

// The set, the group `apply`: a diamond (a_base, b_left, b_right, c_join), a chain whose ids
// sort against it (y_first, x_second, w_third) and an independent migration
// (0_tie) that sorts before everything.
const ORDER: [&str; 8] = [
    "0_tie", "a_base", "b_left", "b_right", "c_join", "y_first", "x_second", "w_third",
];

/// Independent of everything
///
/// Only the first line of this comment is the description.
#[migration(id = "0_tie", group = "apply")]
async fn tie(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0_tie").await
}

#[migration(id = "a_base", group = "apply")]
async fn base(db: &Database) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    note_ran(db, "a_base").await?;
    Ok(())
}

/// Left side of the diamond
#[migration(id = "b_left", group = "apply", after = "a_base")]
async fn left(db: &Database) -> anyhow::Result<()> {
    note_ran(db, "b_left").await?;
    Ok(())
}

#[derive(Debug)]
struct AppError;

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("application error")
    }
}

impl std::error::Error for AppError {}

/// This comment is ignored: the description argument wins
#[migration(id = "b_right", group = "apply", after = ["a_base"], description = "Right side of the diamond")]
async fn right(db: &Database) -> Result<(), AppError> {
    note_ran(db, "b_right").await.map_err(|_| AppError)
}

/// Joins both sides
#[migration(id = "c_join", group = "apply", after = ["b_left", "b_right"])]
async fn join(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "c_join").await
}

/// Third link of the chain
#[migration(id = "w_third", group = "apply", after = "x_second")]
async fn third(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "w_third").await
}

/// Second link of the chain
#[migration(id = "x_second", group = "apply", after = "y_first")]
async fn second(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "x_second").await
}

/// First link of the chain
#[migration(id = "y_first", group = "apply")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "y_first").await
}

/// A manager of this file's migrations, the group `apply`, on `db`.
fn manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group("apply").expect("a valid group"))
}

fn expected(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

#[tokio::test]
async fn applies_every_migration_in_dependency_order_and_records_each() {
    let db = fresh_database("applies_in_order").await;
    let before = DateTime::now();
    let report = manager(&db).apply_all().await.expect("apply");
    let after = DateTime::now();

    assert_eq!(report.applied, expected(&ORDER));
    assert!(report.already_applied.is_empty());
    assert_eq!(ran(&db).await, expected(&ORDER));

    let records = documents(&db, "schema_versions").await;
    let mut ids: Vec<&str> = records.iter().map(|r| r.get_str("_id").unwrap()).collect();
    ids.sort_unstable();
    let mut all = ORDER.to_vec();
    all.sort_unstable();
    assert_eq!(ids, all);
    for record in &records {
        let applied_at = record
            .get_datetime("applied_at")
            .expect("applied_at is a BSON date");
        assert!(before <= *applied_at && *applied_at <= after, "{record}");
        // Written as an int64; the emulator hands small integers back as
        // int32, so accept either width.
        let duration_ms = match record.get("duration_ms") {
            Some(Bson::Int64(ms)) => *ms,
            Some(Bson::Int32(ms)) => i64::from(*ms),
            other => panic!("duration_ms is not an integer: {other:?}"),
        };
        assert!(duration_ms >= 0, "{record}");
        let applied_by = record.get_str("applied_by").expect("applied_by is a string");
        assert!(
            applied_by.ends_with(&format!(":{}", std::process::id())),
            "{applied_by}"
        );
    }
    let description = |id: &str| {
        records
            .iter()
            .find(|r| r.get_str("_id") == Ok(id))
            .and_then(|r| r.get_str("description").ok())
            .map(str::to_owned)
    };
    assert_eq!(description("0_tie").as_deref(), Some("Independent of everything"));
    assert_eq!(description("b_left").as_deref(), Some("Left side of the diamond"));
    assert_eq!(
        description("b_right").as_deref(),
        Some("Right side of the diamond")
    );
    assert_eq!(description("a_base").as_deref(), Some("base"));
}

#[tokio::test]
async fn a_second_apply_is_a_no_op() {
    let db = fresh_database("second_apply").await;
    let manager = manager(&db);
    manager.apply_all().await.expect("first apply");
    let records_before = documents(&db, "schema_versions").await;

    let report = manager.apply_all().await.expect("second apply");
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.already_applied, expected(&ORDER));
    assert_eq!(ran(&db).await, expected(&ORDER), "nothing ran twice");
    assert_eq!(documents(&db, "schema_versions").await, records_before);
}

#[tokio::test]
async fn only_the_missing_migrations_run() {
    let db = fresh_database("only_missing").await;
    // Recorded by an earlier deploy, in the shape the seed design stores.
    db.collection::<Document>("schema_versions")
        .insert_many([
            doc! { "_id": "a_base", "description": "base", "applied_at": DateTime::now() },
            doc! { "_id": "y_first", "description": "chain", "applied_at": DateTime::now() },
        ])
        .await
        .unwrap();

    let report = manager(&db).apply_all().await.expect("apply");
    let rest = ["0_tie", "b_left", "b_right", "c_join", "x_second", "w_third"];
    assert_eq!(report.applied, expected(&rest));
    assert_eq!(report.already_applied, expected(&["a_base", "y_first"]));
    assert_eq!(ran(&db).await, expected(&rest));
    assert_eq!(record_ids(&db, "schema_versions").await.len(), ORDER.len());
}

#[tokio::test]
async fn the_versions_collection_is_configurable() {
    let db = fresh_database("versions_collection").await;
    manager(&db)
        .versions_collection("applied_migrations")
        .apply_all()
        .await
        .expect("apply");
    assert_eq!(record_ids(&db, "applied_migrations").await.len(), ORDER.len());
    assert!(documents(&db, "schema_versions").await.is_empty());
}

#[tokio::test]
async fn a_malformed_record_of_a_declared_migration_is_named_with_the_way_out_and_nothing_runs() {
    let db = fresh_database("malformed_record").await;
    let versions = db.collection::<Document>("schema_versions");
    versions
        .insert_one(doc! { "_id": "a_base", "applied_at": "yesterday" })
        .await
        .unwrap();

    let error = manager(&db).apply_all().await.unwrap_err();
    let Error::MalformedRecord {
        collection,
        id,
        reason,
    } = &error
    else {
        panic!("expected a malformed record error, got {error:?}");
    };
    assert_eq!(collection, "schema_versions");
    assert_eq!(id, "a_base");
    assert_eq!(reason, "`applied_at` should be a date but is a string");
    let message = error.to_string();
    assert!(message.contains("`forget a_base`"), "{message}");
    assert!(message.contains("`mark-applied a_base`"), "{message}");
    assert!(ran(&db).await.is_empty());
    assert_eq!(
        documents(&db, "schema_versions").await.len(),
        1,
        "the bad record is kept"
    );

    // The way out the message names works.
    let manager = manager(&db);
    assert!(manager.forget("a_base").await.unwrap().removed);
    manager.apply_all().await.expect("apply after forgetting");
    assert_eq!(ran(&db).await, ORDER);
}

#[tokio::test]
async fn a_foreign_document_is_an_unknown_record_not_a_failure() {
    let db = fresh_database("foreign_document").await;
    let versions = db.collection::<Document>("schema_versions");
    versions.insert_one(doc! { "_id": 42 }).await.unwrap();
    versions
        .insert_one(doc! { "_id": "someone_elses", "applied_at": "yesterday" })
        .await
        .unwrap();

    let manager = manager(&db);
    let report = manager
        .apply_all()
        .await
        .expect("foreign documents do not block a start");
    assert_eq!(report.applied.len(), ORDER.len());
    // In `_id` order, as the server sorts them: numbers before strings.
    assert_eq!(report.unknown, ["42", "someone_elses"]);
    let status = manager.status().await.unwrap();
    let problems: Vec<(&str, Option<&str>)> = status
        .unknown
        .iter()
        .map(|record| (record.id.as_str(), record.problem.as_deref()))
        .collect();
    assert_eq!(
        problems,
        [
            ("42", Some("its `_id` is an int32, but migration ids are strings")),
            (
                "someone_elses",
                Some("`applied_at` should be a date but is a string")
            ),
        ]
    );
    // An operator can remove them, the integer one included.
    assert!(manager.forget_unknown("42").await.unwrap().removed);
    assert!(manager.forget_unknown("someone_elses").await.unwrap().removed);
    assert!(manager.status().await.unwrap().unknown.is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_that_hides_the_password() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap();
    let uri = format!("mongodb://admin:hunter2@127.0.0.1:{port}/app?serverSelectionTimeoutMS=500");
    let connection = schema_core::connect(&uri, "fallback").await.expect("a valid URI");
    assert_eq!(connection.database().name(), "app");

    // The bound only keeps a broken driver from hanging the suite; the
    // server selection timeout above is what ends the call.
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        connection
            .manager()
            .migrations(Migrations::group("apply").unwrap())
            .apply_all(),
    )
    .await
    .expect("apply_all gives up on its own");
    connection.shutdown().await;
    let error = result.unwrap_err();
    assert_eq!(error.kind(), "server_unreachable", "{error:?}");
    let text = format!("{} / {error:?}", chain(&error));
    assert!(text.contains("read `schema_versions`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_invalid_uri_is_reported_without_the_password() {
    let error = schema_core::connect("mongodb://admin:hunter2@db.internal:notaport/app", "app")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidUri { .. }), "{error:?}");
    let text = format!("{} / {error:?}", chain(&error));
    assert!(text.contains("mongodb://***@db.internal:notaport/app"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("admin"), "the user name is hidden too: {text}");
}

#[tokio::test]
async fn connect_falls_back_to_the_given_database_name() {
    for uri in ["mongodb://127.0.0.1:1", "mongodb://127.0.0.1:1/"] {
        let connection = schema_core::connect(uri, "fallback").await.unwrap();
        assert_eq!(connection.database().name(), "fallback");
        connection.shutdown().await;
    }
}

#[tokio::test]
async fn a_migration_stays_callable_as_written() {
    let db = fresh_database("callable").await;
    tie(&db).await.expect("the function runs on its own");
    assert_eq!(ran(&db).await, ["0_tie"]);
    assert!(
        documents(&db, "schema_versions").await.is_empty(),
        "calling it records nothing"
    );
}
