use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events")]
async fn events<T: Default>(_db: &Database) -> Result<(), Error> {
    let _ = T::default();
    Ok(())
}

#[migration(id = "0002_events")]
async fn bounded(_db: &Database) -> Result<(), Error>
where
    Error: Send,
{
    Ok(())
}

fn main() {}
