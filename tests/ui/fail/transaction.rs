//! Every misuse of `transaction` is an error saying what to write, one case
//! per module.

mod flag_without_session {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", transaction)]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod session_without_flag {
    use schema_core::migration;
    use schema_core::mongodb::{ClientSession, Database, error::Error};

    #[migration(id = "0001_events")]
    async fn events(_db: &Database, _session: &mut ClientSession) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", group = "billing")]
    async fn by_its_full_path(
        _db: &Database,
        _session: &mut schema_core::mongodb::ClientSession,
    ) -> Result<(), Error> {
        Ok(())
    }
}

mod with_background {
    use schema_core::migration;
    use schema_core::mongodb::{ClientSession, Database, error::Error};

    #[migration(id = "0001_events", transaction, background)]
    async fn events(_db: &Database, _session: &mut ClientSession) -> Result<(), Error> {
        Ok(())
    }
}

mod shared_session {
    use schema_core::migration;
    use schema_core::mongodb::{ClientSession, Database, error::Error};

    #[migration(id = "0001_events", transaction)]
    async fn events(_db: &Database, _session: &ClientSession) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", transaction)]
    async fn by_value(_db: &Database, _session: ClientSession) -> Result<(), Error> {
        Ok(())
    }
}

mod other_parameters {
    use schema_core::migration;
    use schema_core::mongodb::{ClientSession, Database, error::Error};

    #[migration(id = "0001_none", transaction)]
    async fn none() -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_not_a_session", transaction)]
    async fn not_a_session(_db: &Database, _retries: &mut u32) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0003_three", transaction)]
    async fn three(_db: &Database, _session: &mut ClientSession, _retries: u32) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0004_session_alone", transaction)]
    async fn session_alone(_session: &mut ClientSession) -> Result<(), Error> {
        Ok(())
    }
}

mod flag_with_a_value {
    use schema_core::migration;
    use schema_core::mongodb::{ClientSession, Database, error::Error};

    #[migration(id = "0001_events", transaction = true)]
    async fn with_value(_db: &Database, _session: &mut ClientSession) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", transaction, transaction)]
    async fn twice(_db: &Database, _session: &mut ClientSession) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
