//! An `after` naming an id nobody declares is reported before anything is
//! sent to the server.

use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error as DriverError;
use schema_core::{Error, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran};

#[migration(id = "0001_events")]
async fn events(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0001_events").await
}

#[migration(id = "0002_events_ttl", after = ["0001_events", "0001_event"])]
async fn events_ttl(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0002_events_ttl").await
}

#[tokio::test]
async fn an_unknown_dependency_is_reported_and_the_database_is_untouched() {
    let db = fresh_database("unknown_dependency").await;
    let error = SchemaManager::new(db.clone()).apply_all().await.unwrap_err();
    assert!(
        matches!(&error, Error::UnknownDependency { id, dependency }
            if id == "0002_events_ttl" && dependency == "0001_event"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "migration `0002_events_ttl` runs after `0001_event`, but no migration with that id is registered; \
         check the spelling, and that the crate declaring it is linked into this binary"
    );
    let collections = db.list_collection_names().await.unwrap();
    assert!(collections.is_empty(), "nothing was written: {collections:?}");
}
