use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0003_events", after = ["0001_base", "0002_more", "0001_base"])]
async fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
