use schema_core::migration;
use schema_core::mongodb::Database;

#[derive(Debug)]
struct NotAnError;

#[migration(id = "0001_events")]
async fn events(_db: &Database) -> Result<(), NotAnError> {
    Ok(())
}

type Outcome = std::result::Result<(), NotAnError>;

#[migration(id = "0002_through_an_alias")]
async fn through_an_alias(_db: &Database) -> Outcome {
    Ok(())
}

fn main() {}
