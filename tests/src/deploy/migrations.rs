//! The migrations both releases of the rolling-deploy application declare.
//! Included by path from `deploy-v1` and `deploy-v2`, never from the
//! library, so that no other test binary registers them.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

/// Accounts by email
#[migration(id = "d_0001_accounts")]
async fn accounts(db: &Database) -> Result<(), Error> {
    schema_tests::note_ran(db, "d_0001_accounts").await
}

/// Sessions expire
#[migration(id = "d_0002_sessions", after = "d_0001_accounts")]
async fn sessions(db: &Database) -> Result<(), Error> {
    schema_tests::note_ran(db, "d_0002_sessions").await
}
