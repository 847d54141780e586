//! A command line for an application's migrations (feature `cli`): the
//! whole command line with one call, [`run`], or a [`Command`] nested in the
//! application's own clap tree and run with [`execute`].
//!
//! ```no_run
//! # async fn main_of_the_application(db: schema_core::mongodb::Database) -> std::process::ExitCode {
//! // The process is the schema command line: `app status`, `app apply`, ...
//! schema_core::cli::run(schema_core::SchemaManager::new(db)).await
//! # }
//! ```
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//!
//! #[derive(Parser)]
//! struct App {
//!     #[command(subcommand)]
//!     command: AppCommand,
//! }
//!
//! #[derive(Subcommand)]
//! enum AppCommand {
//!     /// Serve requests
//!     Serve,
//!     /// The schema's migrations: `app schema status`, `app schema apply`, ...
//!     #[command(subcommand)]
//!     Schema(schema_core::cli::Command),
//! }
//!
//! # async fn start(db: schema_core::mongodb::Database) -> std::process::ExitCode {
//! match App::parse().command {
//!     AppCommand::Serve => std::process::ExitCode::SUCCESS,
//!     AppCommand::Schema(command) => {
//!         schema_core::cli::execute(&schema_core::SchemaManager::new(db), &command).await
//!     }
//! }
//! # }
//! ```
//!
//! Nesting needs the application's own `clap` with its `derive` feature
//! (`clap = { version = "4.5", features = ["derive"] }`, the major version
//! schema-core uses) for the `#[derive(Parser)]` above; `run` needs nothing
//! more than schema-core's `cli` feature.
//!
//! Commands: `status [--check]`, `plan [--commands]`, `apply`, `wait --timeout SECONDS`,
//! `forget [--unknown] <id>`, `mark-applied <id>`, `lock`, `unlock [--background] [--force]`,
//! `snapshot [--out FILE] [--snapshot-database NAME]`, `verify --snapshot FILE [--deny-extra]`,
//! `preflight [--show-ids] [--max-time SECONDS] [--deny SEVERITY]`, and `fleet status` and
//! `fleet apply` over many tenant databases (see [`FleetCommand`] and [`crate::fleet`]),
//! each with `--json` for machine-readable output.
//!
//! A drifted migration (edited after it was applied) is accepted with `mark-applied <id>`,
//! or run again with `forget <id>`, then `apply`. With `--json`, an error is printed to stdout as
//! `{"error": {"kind": ..., "message": ...}}`, `kind` being
//! [`Error::kind`]; without, to stderr as `error: ...`. Either is one line:
//! a server that cannot be reached or refuses the client says what failed,
//! at which host and what to check ([`fail`] prints an error of
//! [`connect`](crate::connect) the same way). Exit status: 0 when fine; 1 on an error (for
//! `verify` and `preflight`: the database could not be checked); 2 on a usage error; 3 from
//! `status --check` while a migration is pending, or drift or unknown records are present
//! that the manager's policies make errors, from `verify` when a declared index or validator
//! is missing or changed (or, with `--deny-extra`, an undeclared one is present), and from
//! `preflight` when a finding no migration accepts is denied (`--deny`, `fails` by default).
//!
//! `verify --json` prints `{"drift": bool, "missing": [...], "extra":
//! [...], "changed": [...]}`, each entry with `collection`, `kind`
//! (`index` or `validator`), `keys` (the key pattern as an object, empty
//! for a validator), `name` (for an index) and `details` (for a changed
//! one, each option that differs).
//!
//! `apply` shows how the migrations' [backfills](crate::data::Backfill)
//! are going, on stderr: a progress bar for each when stderr is a
//! terminal, otherwise a line at most every two seconds for each and one
//! when it finishes; with `--json`, nothing (stdout stays JSON alone).
//! `status` and `lock` show the backfills under way, from their
//! checkpoints in the lock.

mod errors;
mod fleet;
mod plan;
mod preflight;
mod progress;
mod schema;
mod text;
mod wait;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

pub use self::errors::fail;
use self::errors::print_error;
pub use self::fleet::{FleetCommand, Tenants};
pub use self::preflight::Deny;
use self::progress::Shown;
use self::text::{StatusOutput, apply_text, locks_text, plan_json, plan_table, status_table, to_json};
use crate::manager::SchemaManager;
use crate::stored::lock::Lane;
use crate::support::error::Error;

/// The exit status of `status --check` while something is pending, or
/// present that the manager's policies make an error, of `verify` when it
/// finds drift, and of `wait` when it times out.
pub const CHECK_FAILED: u8 = 3;

const EXIT_STATUS: &str = "\
Exit status:
  0  done; for `status --check`, nothing is pending and nothing the policies refuse is present
  1  an error (with --json, printed to stdout as {\"error\": {\"kind\": ..., \"message\": ...}})
  2  a usage error
  3  `status --check` found a pending migration, or drift or unknown records the policies refuse;
     `verify` found a declared index or validator missing or changed (or, with --deny-extra, one undeclared);
     `wait` timed out with migrations still pending; `fleet status` found a tenant with migrations pending;
     `preflight` found what a pending migration fails on (with --deny hurts, also what it hurts), not accepted
  `fleet apply` exits 1 when a tenant failed or was skipped, 0 when each was applied, up to date or locked";

#[derive(Debug, Parser)]
#[command(
    about = "Inspect and apply this application's MongoDB schema migrations",
    after_help = EXIT_STATUS
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

/// One command of the schema command line, for an application's own clap
/// tree (`#[command(subcommand)] Schema(schema_core::cli::Command)`); run
/// it with [`execute`]. Every command takes `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Every known migration with its state, and records nobody declares
    ///
    /// A migration edited after it was applied is drifted. To accept the edit without running it, run
    /// `mark-applied <id>`; to run it, `forget <id>`, then `apply`.
    #[command(after_help = EXIT_STATUS)]
    Status {
        /// Exit with status 3 while anything is pending, or drift or unknown records are present that the policies refuse
        #[arg(long)]
        check: bool,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// What `apply` would run now, in order, without running it
    ///
    /// With --commands, the commands each would send, heard while the migrations are applied to an
    /// empty scratch database (dropped afterwards), bookkeeping left out.
    Plan {
        /// Show the commands each pending migration would send, in relaxed extended JSON
        #[arg(long)]
        commands: bool,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Apply every pending migration, background migrations included
    Apply {
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Remove a migration's record so the next apply runs it again
    Forget {
        /// The migration id, or with --unknown the `_id` of a record this binary does not declare
        id: String,
        /// Remove a record this binary does not declare (a newer version's, or not a record at all)
        #[arg(long)]
        unknown: bool,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Record a migration and its dependencies as applied without running them
    ///
    /// For a database whose indexes already exist, and to accept the edit of a drifted migration
    /// (edited after it was applied): its current checksum is recorded, and the edit does not run.
    MarkApplied {
        /// The migration id (a drifted one: its edit is accepted)
        id: String,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Wait until every migration is recorded (for an init container or a deploy step)
    #[command(after_help = EXIT_STATUS)]
    Wait {
        /// Give up after this many seconds, with exit status 3
        #[arg(long, value_name = "SECONDS")]
        timeout: u64,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Who holds each schema lock (start, background), since when, running what, until when
    Lock {
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Remove the start lock when its lease has ended (with --background, the background lock; with --force, whatever its state)
    Unlock {
        /// Remove the lock even while its lease is live or when it is malformed; the holder's running migration may then run twice
        #[arg(long)]
        force: bool,
        /// The background migrations' lock instead of the start lock
        #[arg(long)]
        background: bool,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// The schema the migrations declare (indexes, validators), as canonical JSON to check in
    Snapshot {
        /// Write it to FILE instead of printing it
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Apply the migrations to this empty database of the same server, emptied afterwards,
        /// instead of creating and dropping one (for a user allowed only certain databases)
        #[arg(long, value_name = "NAME")]
        snapshot_database: Option<String>,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Compare the database's indexes and validators with a snapshot, read-only
    #[command(after_help = EXIT_STATUS)]
    Verify {
        /// The snapshot file, as `snapshot` writes it
        #[arg(long, value_name = "FILE")]
        snapshot: PathBuf,
        /// Count indexes and validators that nobody declares as drift (exit 3), not as warnings
        #[arg(long)]
        deny_extra: bool,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// What the pending migrations will do to this database's documents, read-only, before a deploy
    ///
    /// Applies the migrations to a scratch database (dropped afterwards) to learn what each
    /// pending one declares, then probes this database: duplicates under a new unique index,
    /// documents a new validator refuses or a TTL deletes, a dropped index in use, and more.
    #[command(after_help = EXIT_STATUS)]
    Preflight {
        /// Show the `_id`s of a few offending documents (never their values)
        #[arg(long)]
        show_ids: bool,
        /// Stop each probe after this many seconds; it is then inconclusive
        #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=2_147_483))]
        max_time: u64,
        /// Exit 3 on findings of this severity or worse that no migration accepts
        #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = Deny::Fails)]
        deny: Deny,
        /// Apply the migrations to this empty database, emptied afterwards, as `snapshot` does
        #[arg(long, value_name = "NAME")]
        snapshot_database: Option<String>,
        /// How it prints what it did.
        #[command(flatten)]
        output: Output,
    },
    /// Many tenant databases with the same migrations: `fleet status`, `fleet apply`
    #[command(subcommand)]
    Fleet(FleetCommand),
}

/// How a command prints what it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
#[non_exhaustive]
pub struct Output {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// Whether the command prints JSON.
    pub fn json(&self) -> bool {
        match self {
            Command::Status { output, .. }
            | Command::Plan { output, .. }
            | Command::Apply { output }
            | Command::Forget { output, .. }
            | Command::MarkApplied { output, .. }
            | Command::Wait { output, .. }
            | Command::Lock { output }
            | Command::Unlock { output, .. }
            | Command::Snapshot { output, .. }
            | Command::Verify { output, .. }
            | Command::Preflight { output, .. } => output.json,
            Command::Fleet(command) => command.output().json,
        }
    }
}

/// Runs the command given on this process's command line (after the
/// program name) and returns the exit status to end with.
pub async fn run(manager: SchemaManager) -> ExitCode {
    run_with(manager, std::env::args_os()).await
}

/// Runs the command in `args`, whose first item is the program name.
pub async fn run_with<I, T>(manager: SchemaManager, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let arguments = match Arguments::try_parse_from(args) {
        Ok(arguments) => arguments,
        Err(error) => {
            // Help and version go to stdout with status 0; usage errors to
            // stderr with status 2.
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    execute(&manager, &arguments.command).await
}

/// Runs `command` on `manager`: prints what it did to stdout, or the error
/// (to stderr; to stdout as `{"error": {"kind", "message"}}` with
/// `--json`), and returns the exit status to end with (see [`run`]).
///
/// `apply` without `--json` shows its backfills' progress on stderr
/// through an observer added to a clone of `manager`, besides any
/// [`on_progress`](SchemaManager::on_progress) observer `manager` has, and
/// the index builds the server reports in progress (read every two
/// seconds while it runs).
pub async fn execute(manager: &SchemaManager, command: &Command) -> ExitCode {
    let shown = match command {
        Command::Apply { output } if !output.json => Some(Shown::new(std::io::stderr().is_terminal())),
        _ => None,
    };
    let observed;
    let manager = match &shown {
        Some(shown) => {
            observed = manager.clone().on_progress(shown.observer());
            &observed
        }
        None => manager,
    };
    let outcome = match &shown {
        Some(shown) => tokio::select! {
            outcome = output(manager, command) => outcome,
            never = shown.watch_index_builds(manager.database()) => match never {},
        },
        None => output(manager, command).await,
    };
    if let Some(shown) = &shown {
        // Before anything else is printed, so that no bar is drawn over it.
        shown.close();
    }
    match outcome {
        Ok((output, code)) => {
            print!("{output}");
            ExitCode::from(code)
        }
        Err(error) => {
            // What the client's options tell: its hosts, whether it uses TLS.
            let error = match manager.lease_options() {
                Some(options) => error.with_client(options),
                None => error,
            };
            print_error(&error, command.json())
        }
    }
}

/// What `command` prints, and its exit status.
async fn output(manager: &SchemaManager, command: &Command) -> Result<(String, u8), Error> {
    let json = command.json();
    Ok(match command {
        Command::Status { check, .. } => {
            let status = manager.status().await?;
            let up_to_date = status.is_up_to_date_under(manager.drift_policy(), manager.unknown_policy());
            let code = if *check && !up_to_date { CHECK_FAILED } else { 0 };
            let output = if json {
                to_json(&StatusOutput {
                    status: &status,
                    up_to_date,
                })
            } else {
                status_table(&status)
            };
            (output, code)
        }
        Command::Plan { commands: true, .. } => plan::commands(manager, json).await?,
        Command::Plan { .. } => {
            let plan = manager.plan().await?;
            (if json { plan_json(&plan) } else { plan_table(&plan) }, 0)
        }
        Command::Apply { .. } => {
            // A command runs to the end: the background migrations too.
            let report = manager.clone().wait_for_background(true).apply_all().await?;
            (
                if json {
                    to_json(&report)
                } else {
                    apply_text(&report)
                },
                0,
            )
        }
        Command::Forget { id, unknown, .. } => {
            let report = if *unknown {
                manager.forget_unknown(id).await?
            } else {
                manager.forget(id).await?
            };
            let output = if json {
                to_json(&report)
            } else if report.removed {
                format!("forgot `{id}`: it runs again on the next apply\n")
            } else {
                format!("`{id}` had no record: it is pending already\n")
            };
            (output, 0)
        }
        Command::MarkApplied { id, .. } => {
            let report = manager.mark_applied(id).await?;
            let output = if json {
                to_json(&report)
            } else if report.marked.is_empty() {
                format!("`{id}` and its dependencies were already recorded\n")
            } else {
                let mut text = String::new();
                for id in &report.marked {
                    let _ = writeln!(text, "marked `{id}` as applied");
                }
                text
            };
            (output, 0)
        }
        Command::Lock { .. } => {
            let locks = manager.lock_status().await?;
            let output = if json {
                to_json(&json!({ "locks": locks }))
            } else {
                locks_text(&locks)
            };
            (output, 0)
        }
        Command::Unlock {
            force, background, ..
        } => {
            let lane = if *background {
                Lane::Background
            } else {
                Lane::Start
            };
            let removed = if *force {
                manager.unlock_force(lane).await?
            } else {
                manager.unlock(lane).await?
            };
            let output = if json {
                to_json(&json!({ "lane": lane, "removed": removed }))
            } else if removed {
                format!("removed {lane}\n")
            } else {
                format!("nobody holds {lane}\n")
            };
            (output, 0)
        }
        Command::Wait { timeout, .. } => {
            wait::wait(manager, std::time::Duration::from_secs(*timeout), json).await?
        }
        Command::Snapshot {
            out,
            snapshot_database,
            ..
        } => schema::snapshot(manager, out.as_deref(), snapshot_database.as_deref(), json).await?,
        Command::Verify {
            snapshot, deny_extra, ..
        } => schema::verify(manager, snapshot, *deny_extra, json).await?,
        Command::Preflight {
            show_ids,
            max_time,
            deny,
            snapshot_database,
            ..
        } => {
            let probes = preflight::Probes {
                show_ids: *show_ids,
                max_time: *max_time,
                deny: *deny,
                scratch: snapshot_database.as_deref(),
            };
            preflight::preflight(manager, &probes, json).await?
        }
        Command::Fleet(command) => fleet::run(manager, command).await?,
    })
}
