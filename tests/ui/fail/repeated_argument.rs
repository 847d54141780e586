use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_a", id = "0001_b", description = "a", description = "b", after = "x", after = "y")]
async fn repeated(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
