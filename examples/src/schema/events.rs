//! The event store: the collection the application queries most.

use std::time::Duration;

use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::doc;
use schema_core::mongodb::error::Error;
use schema_core::mongodb::options::IndexOptions;

use crate::{create_indexes, expires, index, newest_first, unique};

/// Events indexes: lookups by id, type, aggregate, user, service and status; expiry; text search
#[migration(id = "0001_events")]
async fn events(db: &Database) -> Result<(), Error> {
    let text = IndexOptions::builder()
        .name("events_text".to_owned())
        .weights(doc! { "event_type": 10, "metadata.service_name": 5, "payload.message": 1 })
        .default_language("english".to_owned())
        .build();
    create_indexes(
        db,
        "events",
        [
            unique("event_id"),
            newest_first("event_type", "timestamp"),
            newest_first("aggregate_id", "timestamp"),
            newest_first("metadata.user_id", "timestamp"),
            newest_first("metadata.service_name", "timestamp"),
            newest_first("status", "timestamp"),
            // Each event carries its own expiry date.
            expires("ttl_expires_at", Duration::ZERO),
            index(
                doc! { "event_type": "text", "metadata.service_name": "text", "payload.message": "text" },
                text,
            ),
        ],
    )
    .await
}

/// Events validator: the shape every event should have, logged rather than enforced
#[migration(id = "0002_events_validator", after = "0001_events")]
async fn events_validator(db: &Database) -> Result<(), Error> {
    // `collMod` needs the collection, which the indexes of `0001_events`
    // created.
    db.run_command(doc! {
        "collMod": "events",
        "validator": { "$jsonSchema": {
            "bsonType": "object",
            "required": ["event_id", "event_type", "timestamp"],
            "properties": {
                "event_id": { "bsonType": "string" },
                "event_type": { "bsonType": "string" },
                "timestamp": { "bsonType": "date" },
                "aggregate_id": { "bsonType": ["string", "null"] },
                "metadata": {
                    "bsonType": "object",
                    "properties": {
                        "service_name": { "bsonType": "string" },
                        "user_id": { "bsonType": ["string", "null"] },
                    },
                },
            },
        } },
        "validationLevel": "moderate",
        "validationAction": "warn",
    })
    .await?;
    Ok(())
}
