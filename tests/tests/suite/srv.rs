//! `mongodb+srv://` URIs are supported (schema-core's default
//! `dns-resolver` feature): opening one looks its SRV record up, and when
//! that fails the error is a DNS error naming the host, not a refusal of the
//! scheme, and shows no secret of the URI.
//!
//! The lookup must not leave the machine, so the `srv-connect` binary makes
//! it inside a network namespace of its own (`schema_tests::offline`).
//! Where none can be made, the test prints why and
//! passes without checking anything, except in a run declared against a
//! real server (`SCHEMA_TESTS_TOPOLOGY`, as the workflow sets it), where it
//! fails.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SRV_CONNECT: &str = env!("CARGO_BIN_EXE_srv-connect");

/// What `srv-connect` opens: see its source.
const HOST: &str = "cluster0.example.invalid";
const PASSWORD: &str = "secret-SRV";

/// Runs `srv-connect` without network, giving up after a minute.
fn run_without_network(unshare: &[&str]) -> String {
    let mut child = Command::new("unshare")
        .args(unshare)
        .arg(SRV_CONNECT)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start srv-connect under unshare");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for srv-connect") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("srv-connect did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut output)
        .expect("srv-connect prints UTF-8");
    assert!(status.success(), "srv-connect failed ({status}): {output}");
    output
}

/// The rest of the line of `output` that starts with `prefix`.
fn line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {output}"))
}

#[test]
fn an_srv_uri_is_resolved_and_a_failed_lookup_names_the_host_but_no_secret() {
    let Some(unshare) = schema_tests::offline::network_namespace_or_skip() else {
        return;
    };
    let output = run_without_network(unshare);
    assert_eq!(line(&output, "outcome: "), "error", "{output}");
    let chain = line(&output, "chain: ");
    let debug = line(&output, "debug: ");

    // The driver got as far as the lookup.
    assert!(chain.contains("DNS resolution"), "not a DNS error: {chain}");
    assert!(chain.contains(HOST), "the host is not named: {chain}");
    for refusal in ["dns-resolver", "unsupported", "cannot be used"] {
        assert!(!chain.contains(refusal), "SRV refused ({refusal}): {chain}");
    }
    assert!(debug.contains("could not find the MongoDB host"), "{debug}");

    for shown in [chain, debug] {
        assert!(!shown.contains(PASSWORD), "the password is shown: {shown}");
        assert!(!shown.contains("user:"), "the user info is shown: {shown}");
    }
}
