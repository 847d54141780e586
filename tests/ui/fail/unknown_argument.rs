use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events", depends_on = "0000_base")]
async fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_events", ttl)]
async fn events_ttl(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
