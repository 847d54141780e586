use schema_core::migration;
use schema_core::mongodb::{ClientSession, Database};

#[derive(Debug)]
struct NotAnError;

#[migration(id = "0001_events", transaction)]
async fn events(_db: &Database, _session: &mut ClientSession) -> Result<(), NotAnError> {
    Ok(())
}

fn main() {}
