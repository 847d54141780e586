use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001 events")]
async fn space(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002/événements")]
async fn slash(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
