//! Delivery bookkeeping of the message broker: idempotency keys and the
//! dead-letter queue, both cleaned up by TTL indexes.

use std::time::Duration;

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::{Error, migration};

const HOUR: Duration = Duration::from_secs(3600);

/// Idempotency keys: unique per key, forgotten after one hour
#[migration(id = "0006_idempotency_keys")]
async fn idempotency_keys(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "idempotency_keys",
        [ascending("key").unique(), ttl("created_at", HOUR)],
    )
    .await
}

/// DLQ messages: by event and by status, kept for seven days
#[migration(id = "0009_dlq_messages")]
async fn dlq_messages(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "dlq_messages",
        [
            ascending("event_id").unique(),
            keys(doc! { "status": 1, "failed_at": -1 }),
            ttl("failed_at", 7 * 24 * HOUR),
        ],
    )
    .await
}
