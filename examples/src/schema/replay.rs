//! Replay sessions: re-running recorded events.

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error;

use crate::{create_indexes, newest_first, unique};

/// Replay sessions: by id, by status and by user
#[migration(id = "0004_replay_sessions")]
async fn replay_sessions(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "replay_sessions",
        [
            unique("session_id"),
            newest_first("status", "created_at"),
            newest_first("user_id", "created_at"),
        ],
    )
    .await
}
