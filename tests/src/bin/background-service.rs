//! A service with a background migration, for the background tests: on
//! the database `WORKER_DB` of `MONGODB_URI`, `bg_0001_events` runs at
//! start and `bg_0002_backfill` in the background.
//!
//! Without arguments it is the service: `apply_all`, then `ready=<ids
//! left to the background>` on stdout as soon as it returns, then it waits
//! for the background migration (`wait_applied`) and prints `done=ok` or
//! `done=<error kind>`. With arguments it is the application's schema
//! command line (`background-service wait --timeout 1`).
//!
//! `bg_0002_backfill` notes in `ran` that it started, then waits until the
//! collection `gate` holds a document (so the test decides when it ends),
//! notes that it finished, and succeeds, or fails when that document says
//! `fail: true`. `WORKER_LEASE_MS` is the lease (default 2000).

use std::process::ExitCode;
use std::time::Duration;

use schema_core::mongodb::bson::{Document, doc};
use schema_core::mongodb::{Database, error::Error};
use schema_core::{SchemaManager, migration};
use schema_tests::note_ran;

/// Events by time
#[migration(id = "bg_0001_events")]
async fn events(db: &Database) -> Result<(), Error> {
    note_ran(db, "bg_0001_events").await
}

/// A long backfill, allowed to end after the service is up
#[migration(id = "bg_0002_backfill", after = "bg_0001_events", background)]
async fn backfill(db: &Database) -> Result<(), Error> {
    note_ran(db, "bg_0002_backfill started").await?;
    let gate = db.collection::<Document>("gate");
    let opened = loop {
        if let Some(opened) = gate.find_one(doc! {}).await? {
            break opened;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if opened.get_bool("fail").unwrap_or(false) {
        return Err(Error::custom("the gate said to fail"));
    }
    note_ran(db, "bg_0002_backfill finished").await
}

/// The service, or its command line; release 2 (`background-service-v2`)
/// starts the same way.
#[tokio::main]
pub(crate) async fn main() -> ExitCode {
    let Some((options, _client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let lease = std::env::var("WORKER_LEASE_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000);
    let manager = SchemaManager::new(db)
        .lock_lease(Duration::from_millis(lease))
        .lease_client(options);
    if std::env::args_os().len() > 1 {
        return schema_core::cli::run(manager).await;
    }
    let report = match manager.apply_all().await {
        Ok(report) => report,
        Err(error) => {
            println!("ready=error {}", error.kind());
            return ExitCode::FAILURE;
        }
    };
    println!("ready={}", report.background.join(","));
    match manager.wait_applied(Duration::from_secs(60)).await {
        Ok(()) => {
            println!("done=ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            println!("done={}", error.kind());
            eprintln!("{error:?}");
            ExitCode::FAILURE
        }
    }
}
