//! A migration that runs at start may not depend on a background one: the
//! set is refused, naming both, before anything is sent to the server.

use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error as DriverError;
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran};

#[migration(id = "0001_slow_index", background)]
async fn slow_index(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0001_slow_index").await
}

#[migration(id = "0002_needs_it", after = "0001_slow_index")]
async fn needs_it(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0002_needs_it").await
}

#[tokio::test]
async fn a_start_migration_after_a_background_one_is_refused_and_the_database_is_untouched() {
    let db = fresh_database("background_dependency").await;
    for error in [
        SchemaManager::new(db.clone()).apply_all().await.unwrap_err(),
        SchemaManager::new(db.clone())
            .wait_applied(std::time::Duration::ZERO)
            .await
            .unwrap_err(),
        Migrations::registered().unwrap_err(),
    ] {
        let Error::BackgroundDependency { id, background } = &error else {
            panic!("expected BackgroundDependency, got {error:?}");
        };
        assert_eq!(
            (id.as_str(), background.as_str()),
            ("0002_needs_it", "0001_slow_index")
        );
        assert_eq!(error.kind(), "background_dependency");
        assert_eq!(
            error.to_string(),
            "migration `0002_needs_it` runs at start but after `0001_slow_index`, a background \
             migration that may finish only after the start: mark `0002_needs_it` `background` \
             too, or remove the `after`"
        );
    }
    let collections = db.list_collection_names().await.unwrap();
    assert!(collections.is_empty(), "nothing was written: {collections:?}");
}
