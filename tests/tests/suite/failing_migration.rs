//! A migration that fails stops the run: it is not recorded, later ones do
//! not run, earlier ones stay recorded, and the error names it. The set is
//! the group `failing`.

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Database, error::Error as DriverError, error::ErrorKind};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{documents, fresh_database, note_ran, ran, record_ids};

#[migration(id = "0001_first", group = "failing")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0001_first").await
}

/// Inserts the same `_id` twice, which every server refuses
#[migration(id = "0002_fails", group = "failing", after = "0001_first")]
async fn fails(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0002_fails").await?;
    let things = db.collection::<Document>("things");
    things.insert_one(doc! { "_id": 1 }).await?;
    things.insert_one(doc! { "_id": 1 }).await?;
    Ok(())
}

#[migration(id = "0003_never", group = "failing", after = "0002_fails")]
async fn never(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0003_never").await
}

/// Independent of the failing one, but sorts after it
#[migration(id = "0004_independent", group = "failing")]
async fn independent(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0004_independent").await
}

#[tokio::test]
async fn a_failing_migration_stops_the_run_and_is_not_recorded() {
    let db = fresh_database("failing_migration").await;
    let manager = SchemaManager::new(db.clone()).migrations(Migrations::group("failing").unwrap());

    let error = manager.apply_all().await.unwrap_err();
    let Error::MigrationFailed { id, source } = &error else {
        panic!("expected a failed migration, got {error:?}");
    };
    assert_eq!(id, "0002_fails");
    // The migration's own error, shown without the values it quotes; the
    // driver's error itself is there for code that asks.
    let shown = source
        .downcast_ref::<schema_core::ServerError>()
        .expect("the source is the migration's own error");
    assert_eq!(
        error.server_error().map(|server| server.code()),
        Some(shown.code())
    );
    let driver: &DriverError = shown.raw();
    assert!(
        matches!(&*driver.kind, ErrorKind::Write(_)),
        "a duplicate key write error: {driver:?}"
    );
    assert_eq!(
        error.to_string(),
        "migration `0002_fails` failed; it was not recorded and no later migration ran"
    );
    assert_eq!(record_ids(&db, "schema_versions").await, ["0001_first"]);
    assert_eq!(ran(&db).await, ["0001_first", "0002_fails"]);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "the lock was released"
    );

    // The next start tries the failed migration again, and only it.
    let error = manager.apply_all().await.unwrap_err();
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "0002_fails"),
        "{error:?}"
    );
    assert_eq!(ran(&db).await, ["0001_first", "0002_fails", "0002_fails"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["0001_first"]);
}
