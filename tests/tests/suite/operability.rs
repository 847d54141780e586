//! Checksums, drift, unknown records, strict mode, and the operations that
//! change records: `forget` and `mark_applied`. The set is the group
//! `operability`.

use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migrations, Policy, SchemaManager, State, migration};
use schema_tests::{fresh_database, monitored_database, note_ran, ran, record_ids, take_commands};

#[migration(id = "p_0001", group = "operability")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "p_0001").await
}

#[migration(id = "p_0002", group = "operability", after = "p_0001")]
async fn second(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "p_0002").await
}

#[migration(id = "p_0003", group = "operability", after = "p_0002")]
async fn third(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "p_0003").await
}

// The same body as `third`, formatted and commented differently.
#[migration(id = "p_0004_same_body", group = "operability", after = "p_0003")]
async fn same_body(db: &Database) -> Result<(), DriverError> {
    // Only layout and this comment differ.
    note_ran(db, "p_0003").await
}

/// A manager of this file's migrations, the group `operability`, on `db`.
fn manager(db: &Database) -> SchemaManager {
    SchemaManager::new(db.clone()).migrations(Migrations::group("operability").expect("a valid group"))
}

fn checksum(id: &str) -> &'static str {
    schema_core::Migrations::registered()
        .expect("a valid set")
        .get(id)
        .map(|migration| migration.checksum())
        .expect("registered")
}

async fn set_checksum(db: &Database, id: &str, checksum: &str) {
    db.collection::<Document>("schema_versions")
        .update_one(doc! { "_id": id }, doc! { "$set": { "checksum": checksum } })
        .await
        .unwrap();
}

#[test]
fn checksums_ignore_formatting_and_comments_but_not_edits() {
    assert_eq!(checksum("p_0003"), checksum("p_0004_same_body"));
    assert_ne!(
        checksum("p_0002"),
        checksum("p_0003"),
        "a different literal is an edit"
    );
    assert_eq!(checksum("p_0001").len(), 16);
}

#[tokio::test]
async fn records_carry_the_checksum_and_status_tells_each_state() {
    let db = fresh_database("status_states").await;
    let manager = manager(&db);
    let status = manager.status().await.unwrap();
    assert_eq!(
        status.pending(),
        ["p_0001", "p_0002", "p_0003", "p_0004_same_body"]
    );

    manager.apply_all().await.unwrap();
    let record = db
        .collection::<Document>("schema_versions")
        .find_one(doc! { "_id": "p_0002" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.get_str("checksum"), Ok(checksum("p_0002")));

    set_checksum(&db, "p_0002", "ffffffffffffffff").await;
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "p_0009_unknown", "applied_at": DateTime::now() })
        .await
        .unwrap();
    // A record without checksum, as older tools write, is not drift.
    db.collection::<Document>("schema_versions")
        .update_one(doc! { "_id": "p_0003" }, doc! { "$unset": { "checksum": "" } })
        .await
        .unwrap();

    let status = manager.status().await.unwrap();
    assert!(status.pending().is_empty());
    assert_eq!(status.drifted(), ["p_0002"]);
    assert_eq!(status.unknown_ids(), ["p_0009_unknown"]);
    assert_eq!(status.migrations[2].state, State::Applied);
    // Nothing is pending; only policies that fail on drift or unknown
    // records make this status out of date.
    assert!(status.is_up_to_date());
    assert!(status.is_up_to_date_under(Policy::Warn, Policy::Warn));
    assert!(!status.is_up_to_date_under(Policy::Fail, Policy::Ignore));
    assert!(!status.is_up_to_date_under(Policy::Ignore, Policy::Fail));

    // By default they are reported, and nothing stops.
    let report = manager.apply_all().await.unwrap();
    assert_eq!(report.drifted, ["p_0002"]);
    assert_eq!(report.unknown, ["p_0009_unknown"]);
}

#[tokio::test]
async fn strict_mode_refuses_drift_and_unknown_records_before_running_anything() {
    let db = fresh_database("strict").await;
    let manager = manager(&db).strict(true);
    manager.apply_all().await.unwrap();
    manager.forget("p_0003").await.unwrap();
    set_checksum(&db, "p_0001", "ffffffffffffffff").await;
    let before = ran(&db).await;

    let error = manager.apply_all().await.unwrap_err();
    assert!(
        matches!(&error, Error::Drifted { ids } if ids == &["p_0001"]),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("`p_0001` were edited after they were applied"),
        "{error}"
    );
    assert_eq!(ran(&db).await, before, "p_0003 did not run");

    manager.mark_applied("p_0001").await.unwrap();
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "p_0009_unknown" })
        .await
        .unwrap();
    let error = manager.apply_all().await.unwrap_err();
    assert!(
        matches!(&error, Error::UnknownRecords { ids, .. } if ids == &["p_0009_unknown"]),
        "{error:?}"
    );
    assert_eq!(ran(&db).await, before, "p_0003 did not run");
}

#[tokio::test]
async fn forget_then_apply_reruns_exactly_that_migration() {
    let db = fresh_database("forget").await;
    let manager = manager(&db);
    manager.apply_all().await.unwrap();
    assert!(manager.forget("p_0002").await.unwrap().removed);
    assert!(
        !manager.forget("p_0002").await.unwrap().removed,
        "nothing left to forget"
    );

    let report = manager.apply_all().await.unwrap();
    assert_eq!(report.applied, ["p_0002"]);
    assert_eq!(ran(&db).await, ["p_0001", "p_0002", "p_0003", "p_0003", "p_0002"]);
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 4);

    let error = manager.forget("p_0404").await.unwrap_err();
    assert!(
        matches!(&error, Error::UnknownMigration { id } if id == "p_0404"),
        "{error:?}"
    );
}

#[tokio::test]
async fn forget_refuses_while_another_process_holds_the_lock() {
    let db = fresh_database("forget_locked").await;
    let manager = manager(&db);
    manager.apply_all().await.unwrap();
    db.collection::<Document>("schema_lock")
        .insert_one(schema_tests::held_lock(doc! {
            "_id": "schema_versions",
            "owner": "deployer:77:x",
            "renewed_at": DateTime::from_millis(DateTime::now().timestamp_millis() + 3_600_000),
            "lease_ms": 30_000,
            "running": "p_0003",
        }))
        .await
        .unwrap();
    let error = manager.forget("p_0001").await.unwrap_err();
    assert!(
        matches!(&error, Error::LockHeld { holder, .. } if holder == "deployer:77:x"),
        "{error:?}"
    );
    assert_eq!(
        record_ids(&db, "schema_versions").await.len(),
        4,
        "nothing removed"
    );
}

#[tokio::test]
async fn mark_applied_records_a_migration_and_its_dependencies_without_running_them() {
    let db = fresh_database("mark_applied").await;
    let manager = manager(&db);
    let marked = manager.mark_applied("p_0002").await.unwrap();
    assert_eq!(marked.marked, ["p_0001", "p_0002"]);
    assert_eq!(marked.interrupted, None);
    assert_eq!(record_ids(&db, "schema_versions").await, ["p_0001", "p_0002"]);
    assert!(ran(&db).await.is_empty());

    let report = manager.apply_all().await.unwrap();
    assert_eq!(report.applied, ["p_0003", "p_0004_same_body"]);
    assert_eq!(
        manager.mark_applied("p_0002").await.unwrap().marked,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn status_and_plan_only_read() {
    let (db, sent) = monitored_database("read_only").await;
    let manager = manager(&db);
    let plan: Vec<&str> = manager.plan().await.unwrap().iter().map(|m| m.id()).collect();
    assert_eq!(plan, ["p_0001", "p_0002", "p_0003", "p_0004_same_body"]);
    manager.status().await.unwrap();
    let commands = take_commands(&sent);
    let read = |collection: &str| ("find".to_owned(), collection.to_owned());
    // The plan reads the records; so does the status, and, with migrations
    // pending, both locks for the backfills under way and the server's
    // operations (`$currentOp`, on `admin`) for the index builds (no
    // background migration is pending: no failure is read).
    assert_eq!(
        commands,
        [
            read("schema_versions"),
            read("schema_versions"),
            read("schema_lock"),
            read("schema_lock"),
            ("aggregate".to_owned(), String::new()),
        ]
    );
    assert!(db.list_collection_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn each_policy_governs_only_its_own_kind() {
    let db = fresh_database("policies").await;
    manager(&db).apply_all().await.unwrap();
    set_checksum(&db, "p_0001", "ffffffffffffffff").await;

    // Drift alone: refused only by a failing drift policy.
    let drift_fails = manager(&db).on_drift(Policy::Fail);
    assert!(matches!(
        drift_fails.apply_all().await,
        Err(Error::Drifted { .. })
    ));
    let unknown_fails = manager(&db).on_unknown(Policy::Fail);
    let report = unknown_fails
        .apply_all()
        .await
        .expect("drift does not concern it");
    assert_eq!(report.drifted, ["p_0001"]);

    // An unknown record alone: refused only by a failing unknown policy.
    let ignoring = manager(&db).on_drift(Policy::Ignore);
    ignoring.mark_applied("p_0001").await.unwrap();
    db.collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "p_0010_newer" })
        .await
        .unwrap();
    assert!(drift_fails.apply_all().await.is_ok());
    let error = unknown_fails.apply_all().await.unwrap_err();
    assert_eq!(error.kind(), "unknown_records");
    assert!(error.to_string().contains("`p_0010_newer`"), "{error}");
}
