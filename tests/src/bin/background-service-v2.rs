//! Release 2 of `background-service`: release 1's migrations, and one more
//! applied at start, `bg_0003_sessions`, which notes in `ran` that it ran.
//! Started while release 1's background migration runs, it must be ready
//! without waiting for it.

use schema_core::migration;
use schema_core::mongodb::{Database, error::Error};

#[path = "background-service.rs"]
mod release_1;

/// Sessions by user
#[migration(id = "bg_0003_sessions", after = "bg_0001_events")]
async fn sessions(db: &Database) -> Result<(), Error> {
    schema_tests::note_ran(db, "bg_0003_sessions").await
}

fn main() -> std::process::ExitCode {
    release_1::main()
}
