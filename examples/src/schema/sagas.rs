//! Sagas: long-running workflows across services.

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::mongodb::error::Error;
use schema_core::mongodb::options::IndexOptions;

use crate::{create_indexes, index, newest_first, unique};

/// Sagas: by id, by the execution they drive, and by state
#[migration(id = "0007_sagas")]
async fn sagas(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "sagas",
        [
            unique("saga_id"),
            index(doc! { "execution_id": 1 }, IndexOptions::default()),
            newest_first("state", "created_at"),
        ],
    )
    .await
}
