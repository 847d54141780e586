//! Results of executions, looked up by execution and listed per user.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

/// Execution results: one per execution, and each user's newest first
#[migration(id = "0008_execution_results")]
async fn execution_results(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "execution_results",
        [
            ascending("execution_id").unique(),
            keys(doc! { "user_id": 1, "created_at": -1 }),
        ],
    )
    .await
}
