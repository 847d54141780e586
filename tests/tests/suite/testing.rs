//! The `testing` feature: `#[schema_core::test]`, `TestDatabase`, and
//! `check_idempotent` on the example application's eleven migrations and on
//! two that are not idempotent.

use std::sync::{Arc, Mutex};

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Database, IndexModel, error::Error as DriverError};
use schema_core::testing::{TestDatabase, check_idempotent};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{fresh_database, record_ids};

use example_app as _;

/// Adds an index under a new name each time it runs
#[migration(id = "x_0001_grows", group = "broken")]
async fn grows(db: &Database) -> Result<(), DriverError> {
    let runs = db
        .collection::<Document>("grows")
        .count_documents(doc! {})
        .await?;
    db.collection::<Document>("grows")
        .insert_one(doc! { "run": runs as i64 })
        .await?;
    let index = IndexModel::builder()
        .keys(doc! { format!("field_{runs}"): 1 })
        .build();
    db.collection::<Document>("grows").create_index(index).await?;
    Ok(())
}

/// Refuses to run where it already ran
#[migration(id = "x_0002_once_only", group = "broken")]
async fn once_only(db: &Database) -> Result<(), DriverError> {
    let marker = db.collection::<Document>("once_only");
    if marker.count_documents(doc! {}).await? > 0 {
        return Err(DriverError::custom("already ran"));
    }
    marker.insert_one(doc! { "ran": true }).await?;
    Ok(())
}

/// Idempotent, in the same group
#[migration(id = "x_0003_steady", group = "broken")]
async fn steady(db: &Database) -> Result<(), DriverError> {
    let index = IndexModel::builder().keys(doc! { "steady": 1 }).build();
    db.collection::<Document>("steady").create_index(index).await?;
    Ok(())
}

#[tokio::test]
async fn the_example_applications_migrations_are_idempotent() {
    let db = fresh_database("idempotent_example").await;
    check_idempotent(&SchemaManager::new(db.clone()))
        .await
        .expect("the eleven example migrations are idempotent");
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 11);
}

#[tokio::test]
async fn migrations_that_are_not_idempotent_are_named_with_what_they_did() {
    let db = fresh_database("not_idempotent").await;
    let manager = SchemaManager::new(db.clone()).migrations(Migrations::group("broken").unwrap());
    let error = check_idempotent(&manager).await.unwrap_err();
    let Error::NotIdempotent { ids, reasons } = &error else {
        panic!("expected NotIdempotent, got {error:?}");
    };
    assert_eq!(ids, &["x_0001_grows", "x_0002_once_only"]);
    assert!(reasons[0].contains("created the index"), "{reasons:?}");
    assert!(reasons[0].contains("`grows`"), "{reasons:?}");
    assert!(reasons[1].contains("its second run failed"), "{reasons:?}");
    assert_eq!(error.kind(), "not_idempotent");
}

#[schema_core::test]
async fn a_test_gets_a_database_of_its_own_with_the_migrations_applied(db: Database) {
    assert!(db.name().starts_with("t_"), "{}", db.name());
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 11);
}

#[schema_core::test(group = "broken")]
async fn a_test_can_ask_for_another_group(db: Database) -> Result<(), DriverError> {
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["x_0001_grows", "x_0002_once_only", "x_0003_steady"]
    );
    Ok(())
}

#[tokio::test]
async fn a_test_database_by_hand_is_dropped_when_asked() {
    let test = TestDatabase::new("by_hand", Migrations::default_group().unwrap())
        .await
        .unwrap();
    let db = test.database().clone();
    let name = db.name().to_owned();
    assert_eq!(record_ids(&db, "schema_versions").await.len(), 11);
    let client = db.client().clone();
    let _listing = schema_tests::DATABASE_LISTINGS.lock().await;
    let probe = fresh_database("by_hand_check").await;
    let listed = probe.client().list_database_names().await.unwrap();
    // The listing shows the database while it is there, so its absence
    // below says it was dropped.
    assert!(listed.contains(&name), "{name} is listed: {listed:?}");
    test.drop_database().await.unwrap();
    let names = probe.client().list_database_names().await.unwrap();
    assert!(!names.contains(&name), "{name} was dropped");
    drop(client);
}

/// A failing test keeps its database and says which: run through the same
/// entry point the attribute uses, inside `catch_unwind`.
#[test]
fn a_failing_test_keeps_its_database() {
    let seen = Arc::new(Mutex::new(String::new()));
    let noted = seen.clone();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        schema_core::__private::run_test("keeps_its_database", None, move |db: Database| async move {
            *noted.lock().unwrap() = db.name().to_owned();
            Err::<(), &str>("the body failed")
        });
    }));
    let message = failed.expect_err("the test failed");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("the body failed"), "{message}");

    let name = seen.lock().unwrap().clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let probe = fresh_database("keeps_check").await;
        let kept = probe.client().database(&name);
        assert_eq!(
            record_ids(&kept, "schema_versions").await.len(),
            11,
            "{name} was kept"
        );
        kept.drop().await.unwrap();
    });
}
