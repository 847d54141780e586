//! Notifications sent to users, and the rules that decide them.

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::mongodb::error::Error;
use schema_core::mongodb::options::IndexOptions;

use crate::{create_indexes, index, newest_first, unique};

/// Notifications and notification rules: a user's inbox and the rules matching an event type
#[migration(id = "0005_notifications")]
async fn notifications(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "notifications",
        [
            unique("notification_id"),
            newest_first("user_id", "created_at"),
            index(doc! { "user_id": 1, "status": 1 }, IndexOptions::default()),
        ],
    )
    .await?;
    create_indexes(
        db,
        "notification_rules",
        [
            unique("rule_id"),
            index(doc! { "event_types": 1, "enabled": 1 }, IndexOptions::default()),
        ],
    )
    .await
}
