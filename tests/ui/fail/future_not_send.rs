use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[migration(id = "0001_events")]
async fn events(db: &Database) -> Result<(), Error> {
    let shared = std::rc::Rc::new(1);
    db.list_collection_names().await?;
    drop(shared);
    Ok(())
}

fn main() {}
