use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "")]
async fn empty(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
