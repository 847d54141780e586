use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events", crate = "not a path")]
async fn not_a_path(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_events", crate = "schema<u8>")]
async fn generic(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0003_events", crate = schema)]
async fn not_a_string(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0004_events", crate = "schema_core", crate = "schema")]
async fn twice(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
