//! A fleet's command line, for the fleet tests: two chained migrations and
//! `schema_core::cli::run` with a lease of three seconds (short, so a killed
//! run's tenants are taken over soon; long enough for a loaded machine), the manager on the
//! database `WORKER_DB` (not a tenant). `fc_0001` fails while its tenant
//! holds a document in `fail`, and, with `FLEET_PAUSE_MS`, pauses that
//! long after noting that it ran, so that a test can kill the process
//! between tenants.

use std::process::ExitCode;
use std::time::Duration;

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Database, error::Error};
use schema_core::{SchemaManager, migration};
use schema_tests::note_ran;

/// Accounts by tenant
#[migration(id = "fc_0001_accounts")]
async fn accounts(db: &Database) -> Result<(), Error> {
    if db
        .collection::<Document>("fail")
        .find_one(doc! {})
        .await?
        .is_some()
    {
        return Err(Error::custom("this tenant is marked to fail"));
    }
    note_ran(db, "fc_0001_accounts").await?;
    let pause = std::env::var("FLEET_PAUSE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    Ok(())
}

/// Accounts by email
#[migration(id = "fc_0002_emails", after = "fc_0001_accounts")]
async fn emails(db: &Database) -> Result<(), Error> {
    note_ran(db, "fc_0002_emails").await
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let manager = SchemaManager::new(db).lock_lease(Duration::from_secs(3));
    let code = schema_core::cli::run(manager).await;
    client.shutdown().await;
    code
}
