//! Every function `#[migration]` cannot run is an error at what is wrong
//! with it, one case per module.

mod extern_fn {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events")]
    async extern "C" fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod generic {
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
}

mod not_a_function {
    use schema_core::migration;

    #[migration(id = "0001_events")]
    struct Events;

    #[migration(id = "0002_events")]
    const EVENTS: &str = "events";
}

mod not_async {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events")]
    fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod parameters {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_none")]
    async fn none() -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_two")]
    async fn two(_db: &Database, _retries: u32) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0003_by_value")]
    async fn by_value(_db: Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0004_mutable")]
    async fn mutable(_db: &mut Database) -> Result<(), Error> {
        Ok(())
    }
}

mod takes_self {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    struct Schema;

    impl Schema {
        #[migration(id = "0001_events")]
        async fn events(&self, _db: &Database) -> Result<(), Error> {
            Ok(())
        }
    }
}

mod unsafe_fn {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events")]
    async unsafe fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
