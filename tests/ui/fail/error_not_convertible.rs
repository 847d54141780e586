use schema_core::migration;
use schema_core::mongodb::Database;

#[derive(Debug)]
struct NotAnError;

#[migration(id = "0001_events")]
async fn events(_db: &Database) -> Result<(), NotAnError> {
    Ok(())
}

fn main() {}
