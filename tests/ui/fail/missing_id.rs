use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration]
async fn bare(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(after = "0001_bare")]
async fn only_after(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
