//! Opens a `mongodb+srv://` URI with `schema_core::connect` and prints what
//! happened, for the `srv` test, which runs it in a network namespace of its
//! own (`unshare --net`) so that the DNS lookups fail without leaving the
//! machine.
//!
//! Prints three lines: `outcome: error` (or `outcome: connected`), then
//! `chain: ` and the error followed by each of its sources, then `debug: `
//! and the error's `Debug` output. The URI is the first argument, or the
//! test's own when none is given.

use schema_core::connect;

/// The URI the `srv` test checks: a user and password, and a host under
/// `.invalid`, a top-level domain reserved never to exist (RFC 2606).
const URI: &str = "mongodb+srv://user:secret-SRV@cluster0.example.invalid/app";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let uri = std::env::args().nth(1).unwrap_or_else(|| URI.to_owned());
    match connect(&uri, "app").await {
        Ok(connection) => {
            println!("outcome: connected");
            connection.shutdown().await;
        }
        Err(error) => {
            println!("outcome: error");
            println!("chain: {}", schema_tests::chain(&error));
            println!("debug: {error:?}");
        }
    }
}
