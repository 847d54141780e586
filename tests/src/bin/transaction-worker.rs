//! One start of an application with a migration declared with
//! `transaction`, for the test of a holder killed before its commit: it
//! applies `tw_0001_routes` to the database `WORKER_DB` on `MONGODB_URI`.
//! With `WORKER_PAUSE_AFTER_WRITES=1`, the migration, once its writes are
//! made (not committed), prints `wrote the routes, not committed` and
//! waits a minute, to be killed there (its transaction's time, two thirds
//! of what the lease leaves, ends before then). The lease is ten seconds,
//! so the next start takes over soon.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use schema_core::mongodb::bson::{Document, doc, oid::ObjectId};
use schema_core::mongodb::error::Error;
use schema_core::mongodb::{ClientSession, Database};
use schema_core::{SchemaManager, migration};

/// Parcels get three default routes
#[migration(id = "tw_0001_routes", transaction)]
async fn routes(db: &Database, session: &mut ClientSession) -> Result<(), Error> {
    // Fresh `_id`s each run: a killed run's transaction, open on the
    // server until its lifetime ends, holds none of them.
    db.collection::<Document>("routes")
        .insert_many((0..3).map(|n| doc! { "_id": ObjectId::new(), "n": n }))
        .session(session)
        .await?;
    if std::env::var("WORKER_PAUSE_AFTER_WRITES").is_ok_and(|value| value == "1") {
        println!("wrote the routes, not committed");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let applied = SchemaManager::new(db)
        .lock_lease(Duration::from_secs(10))
        .lock_wait_timeout(Duration::from_secs(60))
        .apply_all()
        .await;
    client.shutdown().await;
    match applied {
        Ok(report) => {
            println!("applied {:?}", report.applied);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
