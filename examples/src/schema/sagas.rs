//! Sagas: long-running workflows across services.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

/// Sagas: by id, by the execution they drive, and by state
#[migration(id = "0007_sagas")]
async fn sagas(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "sagas",
        [
            ascending("saga_id").unique(),
            ascending("execution_id"),
            keys(doc! { "state": 1, "created_at": -1 }),
        ],
    )
    .await
}
