use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events", group = "")]
async fn empty(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_events", group = "billing.v2")]
async fn dotted(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0003_events", group = "big billing")]
async fn spaced(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0004_events", group = billing)]
async fn not_a_string(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0005_events", group = "billing", group = "audit")]
async fn twice(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
