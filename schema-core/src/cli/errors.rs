//! How the command line prints an error: one line, as JSON on stdout with
//! `--json`, else on stderr.

use std::process::ExitCode;

use serde_json::json;

use crate::support::error::{Error, chain};

/// Prints `error` as [`run`](super::run) prints the error of a command, and returns the
/// exit status to end with (1): to stdout as `{"error": {"kind": ...,
/// "message": ...}}` when this process's command line has `--json`, else
/// to stderr as `error: ...`. The message is one line: a server that could
/// not be reached or refused the client says what failed, at which host,
/// and what to check.
///
/// For an application's `main` that fails before it has a manager to give
/// [`run`](super::run), as when [`connect`](crate::connect) fails:
///
/// ```no_run
/// # async fn main_of_the_application() -> std::process::ExitCode {
/// match schema_core::connect("mongodb://localhost:27017/app", "app").await {
///     Ok(connection) => schema_core::cli::run(connection.manager()).await,
///     Err(error) => schema_core::cli::fail(&error),
/// }
/// # }
/// ```
pub fn fail(error: &Error) -> ExitCode {
    print_error(error, std::env::args_os().skip(1).any(|arg| arg == "--json"))
}

/// Prints `error` on one line, as JSON on stdout or on stderr.
pub(super) fn print_error(error: &Error, json: bool) -> ExitCode {
    if json {
        println!(
            "{}",
            json!({ "error": { "kind": error.kind(), "message": chain(error) } })
        );
    } else {
        eprintln!("error: {}", chain(error));
    }
    ExitCode::FAILURE
}
