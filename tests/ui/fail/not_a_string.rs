use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

const ID: &str = "0001_events";

#[migration(id = ID)]
async fn constant(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_events", after = 1, description = true)]
async fn numbers(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0003_events", after = ["0001_events", 2])]
async fn list(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id("0004_events"))]
async fn parenthesised(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
