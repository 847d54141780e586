//! Snapshots of user settings, read newest first per user.

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error;

use crate::{create_indexes, newest_first, unique};

/// User settings snapshots: the latest snapshot of each user
#[migration(id = "0003_user_settings_snapshots")]
async fn user_settings_snapshots(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "user_settings_snapshots",
        [unique("snapshot_id"), newest_first("user_id", "created_at")],
    )
    .await
}
