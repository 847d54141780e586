//! An application's schema command line opened as the example
//! application's `main` opens it: `schema_core::connect` on `MONGODB_URI`
//! (the database `WORKER_DB`, unless the URI names one), then
//! `schema_core::cli::run`; an error of `connect` printed by
//! `schema_core::cli::fail`. For the tests of what a person reads when the
//! server cannot be reached or refuses the client, and of `plan --commands`,
//! which needs the client's options `connect` gives the manager.

use std::process::ExitCode;

use schema_core::indexes::{ascending, ensure_indexes};
use schema_core::migration;
use schema_core::mongodb::Database;
use schema_core::mongodb::error::Error;

/// Nothing to do; there to be pending.
#[migration(id = "c_0001_nothing")]
async fn nothing(_db: &Database) -> Result<(), Error> {
    Ok(())
}

/// Sessions by user: a command for `plan --commands` to show.
#[migration(id = "c_0002_sessions", after = "c_0001_nothing")]
async fn sessions(db: &Database) -> Result<(), schema_core::Error> {
    ensure_indexes(db, "sessions", [ascending("user_id")]).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let uri = std::env::var("MONGODB_URI").unwrap_or_default();
    let database = std::env::var("WORKER_DB").unwrap_or_else(|_| "app".to_owned());
    match schema_core::connect(&uri, &database).await {
        Ok(connection) => {
            let code = schema_core::cli::run(connection.manager()).await;
            connection.shutdown().await;
            code
        }
        Err(error) => schema_core::cli::fail(&error),
    }
}
