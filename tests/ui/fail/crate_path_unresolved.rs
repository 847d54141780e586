//! A `crate` path that names nothing is one error, at the path.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events", crate = "crate::nowhere::schema_core")]
async fn events(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
