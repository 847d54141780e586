use schema_core::migration;
use schema_core::mongodb::{Client, error::Error};

#[migration(id = "0001_client")]
async fn client(_client: &Client) -> Result<(), Error> {
    Ok(())
}

fn main() {}
