//! Replay sessions: re-running recorded events.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

/// Replay sessions: by id, by status and by user
#[migration(id = "0004_replay_sessions")]
async fn replay_sessions(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "replay_sessions",
        [
            ascending("session_id").unique(),
            keys(doc! { "status": 1, "created_at": -1 }),
            keys(doc! { "user_id": 1, "created_at": -1 }),
        ],
    )
    .await
}
