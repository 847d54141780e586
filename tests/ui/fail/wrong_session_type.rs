use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

/// Named like the driver's session, but an alias of another type.
type ClientSession = Vec<u8>;

#[migration(id = "0001_own_session", transaction)]
async fn own_session(_db: &Database, _session: &mut ClientSession) -> Result<(), Error> {
    Ok(())
}

fn main() {}
