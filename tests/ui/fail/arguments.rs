//! Every mistake in `#[migration]`'s arguments is an error at the argument,
//! one case per module.

mod after_itself {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", after = "0001_events")]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod after_repeated {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0003_events", after = ["0001_base", "0002_more", "0001_base"])]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod background_with_a_value {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", background = true)]
    async fn with_value(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", background, background)]
    async fn twice(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod bad_crate_path {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", crate = "not a path")]
    async fn not_a_path(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", crate = "schema<u8>")]
    async fn generic(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0003_events", crate = schema)]
    async fn not_a_string(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0004_events", crate = "schema_core", crate = "schema")]
    async fn twice(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod bad_group {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", group = "")]
    async fn empty(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", group = "billing.v2")]
    async fn dotted(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0003_events", group = "big billing")]
    async fn spaced(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0004_events", group = billing)]
    async fn not_a_string(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0005_events", group = "billing", group = "audit")]
    async fn twice(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod empty_id {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "")]
    async fn empty(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod id_characters {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001 events")]
    async fn space(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002/événements")]
    async fn slash(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod id_too_long {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(
        id = "0001_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    )]
    async fn long(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod missing_id {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration]
    async fn bare(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(after = "0001_bare")]
    async fn only_after(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod not_a_string {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    const ID: &str = "0001_events";

    #[migration(id = ID)]
    async fn constant(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", after = 1, description = true)]
    async fn numbers(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0003_events", after = ["0001_events", 2])]
    async fn list(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id("0004_events"))]
    async fn parenthesised(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod repeated_argument {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(
        id = "0001_a",
        id = "0001_b",
        description = "a",
        description = "b",
        after = "x",
        after = "y"
    )]
    async fn repeated(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod unknown_argument {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events", depends_on = "0000_base")]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }

    #[migration(id = "0002_events", ttl)]
    async fn events_ttl(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

mod unparsable_arguments {
    use schema_core::migration;
    use schema_core::mongodb::{Database, error::Error};

    #[migration(id = "0001_events" group = "billing")]
    async fn events(_db: &Database) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {}
