//! The event store: the collection the application queries most.

use schema_core::data::Backfill;
use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes, keys, text, ttl};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::mongodb::options::{ValidationAction, ValidationLevel};
use schema_core::{Error, Validator, migration, set_validator};
use std::time::Duration;

/// Events indexes: by id, type, aggregate, user, service and status; expiry; text search
#[migration(id = "0001_events")]
async fn events(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "events",
        [
            ascending("event_id").unique(),
            keys(doc! { "event_type": 1, "timestamp": -1 }),
            keys(doc! { "aggregate_id": 1, "timestamp": -1 }),
            keys(doc! { "metadata.user_id": 1, "timestamp": -1 }),
            keys(doc! { "metadata.service_name": 1, "timestamp": -1 }),
            keys(doc! { "status": 1, "timestamp": -1 }),
            // Each event carries the date it expires at.
            ttl("ttl_expires_at", Duration::ZERO),
            text(&["event_type", "metadata.service_name", "payload.message"])
                .named("events_text")
                .weights(doc! { "event_type": 10, "metadata.service_name": 5, "payload.message": 1 })
                .default_language("english"),
        ],
    )
    .await
}

/// Events validator: the shape every event should have, logged rather than enforced
#[migration(id = "0002_events_validator")]
async fn events_validator(db: &Database) -> Result<(), Error> {
    let schema = doc! {
        "bsonType": "object",
        "required": ["event_id", "event_type", "timestamp"],
        "properties": {
            "event_id": { "bsonType": "string" },
            "event_type": { "bsonType": "string" },
            "timestamp": { "bsonType": "date" },
            "aggregate_id": { "bsonType": ["string", "null"] },
            "status": { "bsonType": "string" },
            "metadata": {
                "bsonType": "object",
                "properties": {
                    "service_name": { "bsonType": "string" },
                    "user_id": { "bsonType": ["string", "null"] },
                },
            },
        },
    };
    let validator = Validator::new(schema)
        .level(ValidationLevel::Moderate)
        .action(ValidationAction::Warn);
    set_validator(db, "events", validator).await
}

/// Events status: every event written before the status field existed is pending
///
/// A data migration: it walks the events without a `status` in batches,
/// checkpointing each one in the schema lock, so a process that takes over
/// after a crash continues where the other stopped. The update sets what
/// the filter tests, so a batch done twice changes nothing the second time.
#[migration(id = "0010_events_status", after = "0002_events_validator")]
async fn events_status(db: &Database) -> Result<(), Error> {
    Backfill::new(db, "events")
        .filter(doc! { "status": { "$exists": false } })
        .update(doc! { "$set": { "status": "pending" } })
        .batch_size(1_000)
        .run()
        .await?;
    Ok(())
}

/// Events by correlation id: tracing one request across services
///
/// A background migration: on a large event store the build takes minutes,
/// and the service need not wait for it. Until it is recorded, a trace
/// query scans the events of the time range instead of using the index.
#[migration(id = "0011_events_by_correlation", after = "0001_events", background)]
async fn events_by_correlation(db: &Database) -> Result<(), Error> {
    ensure_indexes(
        db,
        "events",
        [keys(doc! { "metadata.correlation_id": 1, "timestamp": -1 })],
    )
    .await
}
