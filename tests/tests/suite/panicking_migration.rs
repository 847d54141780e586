//! A migration that panics is reported as an error naming it, not recorded,
//! and the process goes on. The set is the group `panicking` (its ids
//! differ from `failing_migration`'s, which share this binary).

use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error as DriverError;
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{documents, fresh_database, note_ran, ran, record_ids};

#[migration(id = "0001_before_the_panic", group = "panicking")]
async fn first(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0001_before_the_panic").await
}

#[migration(id = "0002_panics", group = "panicking", after = "0001_before_the_panic")]
async fn panics(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0002_panics").await?;
    let indexes: Vec<usize> = Vec::new();
    // An out-of-bounds index, as a bug in a migration would do.
    let _ = indexes[indexes.len()];
    Ok(())
}

#[migration(id = "0003_never_after_the_panic", group = "panicking", after = "0002_panics")]
async fn never(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0003_never_after_the_panic").await
}

#[tokio::test]
async fn a_panicking_migration_is_an_error_naming_it() {
    let db = fresh_database("panicking_migration").await;
    let error = SchemaManager::new(db.clone())
        .migrations(Migrations::group("panicking").unwrap())
        .apply_all()
        .await
        .unwrap_err();
    let Error::MigrationPanicked { id, message } = &error else {
        panic!("expected a panicked migration, got {error:?}");
    };
    assert_eq!(id, "0002_panics");
    assert!(message.contains("index out of bounds"), "{message}");
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["0001_before_the_panic"]
    );
    assert_eq!(ran(&db).await, ["0001_before_the_panic", "0002_panics"]);
    assert!(
        documents(&db, "schema_lock").await.is_empty(),
        "the lock was released"
    );
}
