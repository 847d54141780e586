//! Snapshots of user settings, read newest first per user.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

/// User settings snapshots: by id, and each user's newest first
#[migration(id = "0003_user_settings_snapshots")]
async fn user_settings_snapshots(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "user_settings_snapshots",
        [
            ascending("snapshot_id").unique(),
            keys(doc! { "user_id": 1, "created_at": -1 }),
        ],
    )
    .await
}
