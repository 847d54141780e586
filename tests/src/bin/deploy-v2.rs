//! Release 2 of the rolling-deploy application: release 1's migrations and
//! one more.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[path = "../deploy/migrations.rs"]
mod migrations;
#[path = "../deploy/start.rs"]
mod start;

/// Accounts by referral code
#[migration(id = "d_0003_referrals", after = "d_0002_sessions")]
async fn referrals(db: &Database) -> Result<(), Error> {
    schema_tests::note_ran(db, "d_0003_referrals").await
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    start::run().await
}
