//! A dependency cycle is reported with the ids on it before anything is
//! sent to the server.

use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error as DriverError;
use schema_core::{Error, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran};

#[migration(id = "0001_roots")]
async fn roots(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0001_roots").await
}

#[migration(id = "0002_a", after = ["0001_roots", "0004_c"])]
async fn a(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0002_a").await
}

#[migration(id = "0003_b", after = "0002_a")]
async fn b(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0003_b").await
}

#[migration(id = "0004_c", after = "0003_b")]
async fn c(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "0004_c").await
}

#[tokio::test]
async fn a_cycle_is_reported_and_the_database_is_untouched() {
    let db = fresh_database("cycle").await;
    let error = SchemaManager::new(db.clone()).apply_all().await.unwrap_err();
    let Error::Cycle { ids } = &error else {
        panic!("expected a cycle, got {error:?}");
    };
    assert_eq!(ids, &["0002_a", "0004_c", "0003_b"]);
    assert_eq!(
        error.to_string(),
        "migrations `0002_a`, `0004_c` and `0003_b` depend on each other in a cycle \
         (`0002_a` runs after `0004_c`, `0004_c` after `0003_b`, `0003_b` after `0002_a`); \
         remove one of these `after` entries"
    );
    let collections = db.list_collection_names().await.unwrap();
    assert!(collections.is_empty(), "nothing was written: {collections:?}");
}
