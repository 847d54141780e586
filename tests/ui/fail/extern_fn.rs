use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events")]
async extern "C" fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
