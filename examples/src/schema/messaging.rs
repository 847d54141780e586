//! Delivery bookkeeping of the message broker: idempotency keys and the
//! dead-letter queue, both cleaned up by TTL indexes.

use std::time::Duration;

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error;

use crate::{create_indexes, expires, newest_first, unique};

const HOUR: Duration = Duration::from_secs(3600);

/// Idempotency keys: unique per key, forgotten after one hour
#[migration(id = "0006_idempotency_keys")]
async fn idempotency_keys(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "idempotency_keys",
        [unique("key"), expires("created_at", HOUR)],
    )
    .await
}

/// DLQ messages: by event, by status, kept for seven days
#[migration(id = "0009_dlq_messages")]
async fn dlq_messages(db: &Database) -> Result<(), Error> {
    create_indexes(
        db,
        "dlq_messages",
        [
            unique("event_id"),
            newest_first("status", "failed_at"),
            expires("failed_at", 7 * 24 * HOUR),
        ],
    )
    .await
}
