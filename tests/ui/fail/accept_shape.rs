//! `accept` written in another shape than a code or a list of codes is an
//! error at what is wrong, saying what to write.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_users", accept = validator_rejects)]
async fn not_a_string(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0002_users", accept = ["ttl_deletes", index_in_use])]
async fn not_a_string_in_a_list(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0003_users", accept = [])]
async fn empty(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0004_users", accept = ["ttl_deletes", "index_in_use", "ttl_deletes"])]
async fn listed_twice(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0005_users", accept = "ttl_deletes", accept = "index_in_use")]
async fn given_twice(_db: &Database) -> Result<(), Error> {
    Ok(())
}

#[migration(id = "0006_users", accepts = "ttl_deletes")]
async fn misspelled_argument(_db: &Database) -> Result<(), Error> {
    Ok(())
}

fn main() {}
