//! An application whose own command line nests the schema commands under
//! `schema`, for the CLI tests: `nested-cli serve`, `nested-cli schema
//! status --json`, on the database `WORKER_DB`. It declares one migration.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use schema_core::mongodb::{Database, error::Error};
use schema_core::{SchemaManager, migration};

/// Carts by customer
#[migration(id = "n_0001_carts")]
async fn carts(db: &Database) -> Result<(), Error> {
    schema_tests::note_ran(db, "n_0001_carts").await
}

#[derive(Parser)]
#[command(about = "A service with its schema commands nested")]
struct App {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Serve requests (here: say so and stop)
    Serve,
    /// The schema's migrations
    #[command(subcommand)]
    Schema(schema_core::cli::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = match App::parse().command {
        AppCommand::Serve => {
            println!("serving");
            return ExitCode::SUCCESS;
        }
        AppCommand::Schema(command) => command,
    };
    let Some((_, client, db)) = schema_tests::connect_worker().await else {
        return ExitCode::FAILURE;
    };
    let code = schema_core::cli::execute(&SchemaManager::new(db), &command).await;
    client.shutdown().await;
    code
}
