use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_none")]
async fn none() -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_two")]
async fn two(_db: &Database, _retries: u32) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0003_by_value")]
async fn by_value(_db: Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0004_mutable")]
async fn mutable(_db: &mut Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
