//! Results of executions, looked up by execution and listed per user.

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error;

use crate::{create_indexes, newest_first, unique};

/// Execution results: one per execution, a user's newest first
#[migration(id = "0008_execution_results")]
async fn execution_results(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "execution_results",
        [unique("execution_id"), newest_first("user_id", "created_at")],
    )
    .await
}
