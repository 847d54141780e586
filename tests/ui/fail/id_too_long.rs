use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
async fn long(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
