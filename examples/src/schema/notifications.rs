//! Notifications sent to users, and the rules that decide them.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

/// Notifications and notification rules: a user's inbox, and the rules matching an event type
#[migration(id = "0005_notifications")]
async fn notifications(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "notifications",
        [
            ascending("notification_id").unique(),
            keys(doc! { "user_id": 1, "created_at": -1 }),
            keys(doc! { "user_id": 1, "status": 1 }),
        ],
    )
    .await?;
    ensure_indexes(
        db,
        "notification_rules",
        [
            ascending("rule_id").unique(),
            keys(doc! { "event_types": 1, "enabled": 1 }),
        ],
    )
    .await
}
