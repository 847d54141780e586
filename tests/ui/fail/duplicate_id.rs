use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

mod events {
    use super::*;

    #[migration(id = "0001_events")]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod notifications {
    use super::*;

    /// Copied from the events module and not renamed
    #[migration(id = "0001_events")]
    async fn notifications(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod users {
    use super::*;

    #[migration(id = "0002_users")]
    async fn users(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    /// Copied from the one above in the same module, and renamed but for its id
    #[migration(id = "0002_users")]
    async fn users_by_email(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
