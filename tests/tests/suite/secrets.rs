//! No error shows a secret of the connection string: not the password, in
//! whatever form it was written (raw `/`, `?`, `@`, or percent-encoded),
//! not the user name when the URI is refused, and not the values of
//! credential options.
//!
//! Each case is tried two ways: with an option the driver refuses, so that
//! `connect` fails with `Error::InvalidUri`, and with an unreachable host
//! (`127.0.0.1:1`, short timeouts), so that `connect` succeeds (it sends no
//! command) and `apply_all` fails on server selection, unless the driver
//! already refuses the URI: it refuses passwords with a raw `/`, `?` or
//! `@`, and `tlsCertificateKeyFilePassword` without the `cert-key-password`
//! feature. Every error is checked whole: its `Display`, each of its
//! sources, and its `Debug` output. Nothing here needs a server, and
//! nothing leaves the machine.

use schema_core::{connect, redact};
use schema_tests::chain;

const USER: &str = "app-USER7";

/// A password as written in the URI, and what it means once decoded.
struct Password {
    raw: &'static str,
    decoded: &'static str,
}

/// The passwords checked: each shape exactly, and again with a distinctive
/// tail so that a piece of it showing up is caught too.
const PASSWORDS: [Password; 10] = [
    Password {
        raw: "pa/ss",
        decoded: "pa/ss",
    },
    Password {
        raw: "pa?ss",
        decoded: "pa?ss",
    },
    Password {
        raw: "pa%40ss",
        decoded: "pa@ss",
    },
    Password {
        raw: "p%2Fss",
        decoded: "p/ss",
    },
    Password {
        raw: "pa@ss",
        decoded: "pa@ss",
    },
    Password {
        raw: "pa/ss-SECRET1",
        decoded: "pa/ss-SECRET1",
    },
    Password {
        raw: "pa?ss-SECRET2",
        decoded: "pa?ss-SECRET2",
    },
    Password {
        raw: "pa%40ss-SECRET3",
        decoded: "pa@ss-SECRET3",
    },
    Password {
        raw: "p%2Fss-SECRET4",
        decoded: "p/ss-SECRET4",
    },
    Password {
        raw: "pa@ss-SECRET5",
        decoded: "pa@ss-SECRET5",
    },
];

/// Credential options, and the strings of them that must never show.
const QUERY_SECRETS: [(&str, &[&str]); 2] = [
    ("tlsCertificateKeyFilePassword=s3cr3t-q1", &["s3cr3t-q1"]),
    (
        "authMechanismProperties=AWS_SESSION_TOKEN:s3cr3t-q2",
        &["s3cr3t-q2", "AWS_SESSION_TOKEN:s3cr3t-q2"],
    ),
];

/// Options that make the unreachable host fail fast.
const FAST: &str = "serverSelectionTimeoutMS=500&connectTimeoutMS=500";

/// How the URI of a case goes wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Failure {
    /// An option the driver does not know: refused by `connect`.
    BadOption,
    /// Nothing listens on the host: `apply_all` times out.
    Unreachable,
}

struct Case {
    uri: String,
    failure: Failure,
    /// What must not appear in any error.
    secrets: Vec<String>,
    /// The distinctive tail of a password, which no piece of the error
    /// may contain either.
    tail: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for failure in [Failure::BadOption, Failure::Unreachable] {
        let query = match failure {
            Failure::BadOption => "badOption=1",
            Failure::Unreachable => FAST,
        };
        for password in &PASSWORDS {
            let secrets = vec![
                password.raw.to_owned(),
                password.decoded.to_owned(),
                USER.to_owned(),
            ];
            cases.push(Case {
                uri: format!("mongodb://{USER}:{}@127.0.0.1:1/?{query}", password.raw),
                failure,
                secrets,
                tail: password.raw.rsplit_once('-').map(|(_, tail)| tail),
            });
        }
        for (option, values) in QUERY_SECRETS {
            let secrets: Vec<String> = values.iter().map(|value| value.to_string()).collect();
            cases.push(Case {
                uri: format!("mongodb://127.0.0.1:1/?{option}&{query}"),
                failure,
                secrets: secrets.clone(),
                tail: None,
            });
            // With a user as well, the option coming first.
            let mut with_user = secrets;
            with_user.extend(["pw-SECRET6".to_owned(), USER.to_owned()]);
            cases.push(Case {
                uri: format!("mongodb://{USER}:pw-SECRET6@127.0.0.1:1/admin?{option}&{query}"),
                failure,
                secrets: with_user,
                tail: Some("SECRET6"),
            });
        }
    }
    cases
}

/// The error `uri` ends in: `connect`'s, or else `apply_all`'s.
async fn error_of(uri: &str) -> (schema_core::Error, &'static str) {
    match connect(uri, "app").await {
        Err(error) => (error, "connect"),
        Ok(connection) => {
            // The manager renews over a client of its own, built from the
            // same options: its errors must not leak either.
            let outcome = connection.manager().apply_all().await;
            connection.shutdown().await;
            match outcome {
                Err(error) => (error, "apply_all"),
                Ok(report) => panic!("{uri}: nothing listens on 127.0.0.1:1, yet {report:?}"),
            }
        }
    }
}

/// Each of `error`'s sources, in `Display`, after the error itself.
fn every_message(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        messages.push(cause.to_string());
        source = cause.source();
    }
    messages
}

#[tokio::test]
async fn no_error_shows_a_secret_of_the_uri() {
    let mut leaks = Vec::new();
    for case in cases() {
        let (error, from) = error_of(&case.uri).await;
        if case.failure == Failure::BadOption {
            assert!(
                matches!(error, schema_core::Error::InvalidUri { .. }),
                "{}: expected InvalidUri, got {error:?}",
                case.uri
            );
        }
        let mut shown = every_message(&error);
        shown.push(format!("{error:?}"));
        for text in &shown {
            let found = case
                .secrets
                .iter()
                .map(String::as_str)
                .chain(case.tail)
                .filter(|secret| text.contains(secret));
            for secret in found {
                leaks.push(format!("{} ({from}): `{secret}` in {text}", case.uri));
            }
        }
        println!("{} ({from}): {}", redact(&case.uri), chain(&error));
    }
    assert!(leaks.is_empty(), "secrets shown:\n{}", leaks.join("\n"));
}

#[test]
fn redact_hides_every_case() {
    for case in cases() {
        let redacted = redact(&case.uri);
        for secret in case
            .secrets
            .iter()
            .map(String::as_str)
            .chain(case.tail)
            .chain([USER])
        {
            assert!(!redacted.contains(secret), "`{secret}` in {redacted}");
        }
        assert!(
            redacted.contains("127.0.0.1:1/"),
            "the host is hidden: {redacted}"
        );
    }
    assert_eq!(
        redact(&format!("mongodb://{USER}:pa@ss@127.0.0.1:1/?badOption=1")),
        "mongodb://***@127.0.0.1:1/?badOption=1"
    );
    assert_eq!(
        redact(
            "mongodb://127.0.0.1:1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:s3cr3t-q2"
        ),
        "mongodb://127.0.0.1:1/?authMechanism=MONGODB-AWS&authMechanismProperties=***"
    );
    assert_eq!(
        redact("mongodb://127.0.0.1:1/?tlsCertificateKeyFilePassword=s3cr3t-q1&badOption=1"),
        "mongodb://127.0.0.1:1/?tlsCertificateKeyFilePassword=***&badOption=1"
    );
}
