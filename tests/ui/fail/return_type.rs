use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_nothing")]
async fn nothing(_db: &Database) {}

#[migration(id = "0002_count")]
async fn count(_db: &Database) -> Result<u64, Error> {
    Ok(0)
}

#[migration(id = "0003_option")]
async fn option(_db: &Database) -> Option<()> {
    None
}

/// The suggested error type is written as the attribute reaches schema-core.
#[migration(id = "0004_nothing_either", crate = "::schema_core")]
async fn nothing_either(_db: &Database) {}

fn main() {}
