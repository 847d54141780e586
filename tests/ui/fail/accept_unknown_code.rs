//! A preflight code `accept` does not know is an error at its string,
//! naming the nearest code when one is near, and every code.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_users", accept = "unique_duplicate")]
async fn misspelled(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_users", accept = ["ttl_deletes", "TTL-not-dates", "drop_everything"])]
async fn in_a_list(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
