use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

/// TTL on events.timestamp
#[migration(id = "0002_events_ttl", after = "0001_events")]
async fn events_ttl(db: &Database) -> Result<(), Error> {
    // create indexes, set validators...
    Ok(())
}
