//! What a redacted URI and a scrubbed message keep and hide.

use super::scrub::{Secret, percent_decode, scrub, secrets};
use super::*;

#[test]
fn the_whole_user_info_is_replaced() {
    assert_eq!(
        redact("mongodb://app:s3cr%40t@db1:27017,db2/prod?authSource=admin"),
        "mongodb://***@db1:27017,db2/prod?authSource=admin"
    );
    assert_eq!(
        redact("mongodb+srv://u:p@cluster.example.net"),
        "mongodb+srv://***@cluster.example.net"
    );
    assert_eq!(redact("mongodb://user@host/db"), "mongodb://***@host/db");
    assert_eq!(redact("mongodb://:p@host"), "mongodb://***@host");
}

#[test]
fn raw_slashes_question_marks_and_at_signs_in_the_password_are_hidden() {
    for (uri, expected) in [
        (
            "mongodb://app:pa/ss@host/?badOption=1",
            "mongodb://***@host/?badOption=1",
        ),
        ("mongodb://app:pa?ss@host/db", "mongodb://***@host/db"),
        ("mongodb://app:pa@ss@host/db", "mongodb://***@host/db"),
        (
            "mongodb://app:p@/x@h/ost@[::1]:27017/db",
            "mongodb://***@[::1]:27017/db",
        ),
        ("mongodb://app:pa%40ss@host", "mongodb://***@host"),
        ("mongodb://u:a@b@host/db?w=1", "mongodb://***@host/db?w=1"),
        // An `@` in the query is not where the user info ends.
        (
            "mongodb://u:p@host/db?appName=me@corp",
            "mongodb://***@host/db?appName=me@corp",
        ),
    ] {
        assert_eq!(redact(uri), expected, "{uri}");
    }
}

#[test]
fn when_no_at_sign_looks_right_everything_up_to_the_last_is_hidden() {
    // No host after the `@`: take the last one anyway.
    assert_eq!(redact("mongodb://u:p@/db"), "mongodb://***@/db");
    assert_eq!(redact("mongodb://u:p@"), "mongodb://***@");
    // A password with `?` then `=` looks like a query; hide too much
    // rather than too little.
    assert_eq!(redact("mongodb://u:p?a=b@host/db"), "mongodb://***@host/db");
    assert_eq!(redact("mongodb://host/db?x=a@b:c"), "mongodb://***@b:c");
}

#[test]
fn sensitive_option_values_are_replaced() {
    assert_eq!(
        redact(
            "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=s3cr3t&w=1\
             &AUTHMECHANISMPROPERTIES=AWS_SESSION_TOKEN:tok%2Fen&sslClientCertificateKeyPassword=x\
             &password=y;proxyPassword=z&proxyUsername=me"
        ),
        "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***&w=1\
         &AUTHMECHANISMPROPERTIES=***&sslClientCertificateKeyPassword=***\
         &password=***;proxyPassword=***&proxyUsername=***"
    );
    assert_eq!(
        redact("mongodb://u:p@h/db?authSource=admin&tlsCertificateKeyFilePassword=a&b=c"),
        "mongodb://***@h/db?authSource=admin&tlsCertificateKeyFilePassword=***&b=c"
    );
}

#[test]
fn a_raw_ampersand_does_not_end_a_sensitive_value() {
    assert_eq!(
        redact("mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:ab&cd+/&w=1"),
        "mongodb://h/?authMechanismProperties=***&w=1"
    );
    assert_eq!(
        redact("mongodb://h/?password=&w=1"),
        "mongodb://h/?password=***&w=1"
    );
}

#[test]
fn uris_without_secrets_are_unchanged() {
    for uri in [
        "mongodb://localhost:27017/db",
        "mongodb://host/db?authSource=admin&w=majority",
        "mongodb://host/db?appName=a%40b",
        "mongodb://",
        "not a uri",
        "",
        "?",
        "://",
        "&=;",
    ] {
        assert_eq!(redact(uri), uri);
    }
}

#[test]
fn any_input_is_handled_without_panicking() {
    let alphabet = [
        "a", "é", "@", ":", "/", "?", "=", "&", ";", "%", "%4", "%40", "://", "[", "]", ",", "ü@", "密",
    ];
    // Every string of up to four pieces of the alphabet.
    let mut inputs = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = inputs
            .iter()
            .flat_map(|input| alphabet.iter().map(move |piece| format!("{input}{piece}")))
            .collect();
        inputs.extend(longer);
    }
    for input in &inputs {
        let redacted = redact(input);
        let _ = secrets(input);
        let _ = scrub(input, &secrets(input));
        if let Some(at) = input.find("://") {
            let password = &input[at + 3..];
            if password.contains('@') && !redacted.contains("***") {
                panic!("{input:?} became {redacted:?}");
            }
        }
    }
}

#[test]
fn non_ascii_user_info_is_hidden() {
    assert_eq!(redact("mongodb://ü:密码@host/db"), "mongodb://***@host/db");
    assert_eq!(redact("ü:密@host"), "***@host");
}

/// The texts of `uri`'s secrets, and of those scrubbed anywhere.
fn secret_texts(uri: &str) -> (Vec<String>, Vec<String>) {
    let found = secrets(uri);
    assert!(
        found
            .windows(2)
            .all(|pair| pair[0].text.len() >= pair[1].text.len())
    );
    let anywhere = found
        .iter()
        .filter(|secret| secret.anywhere)
        .map(|secret| secret.text.clone());
    (
        found.iter().map(|secret| secret.text.clone()).collect(),
        anywhere.collect(),
    )
}

#[test]
fn secrets_cover_the_user_info_its_parts_and_their_decoded_forms() {
    let (all, anywhere) =
        secret_texts("mongodb://app:pa%2Fss-SECRET@host/db?tlsCertificateKeyFilePassword=k%21ey");
    for expected in [
        "app:pa%2Fss-SECRET",
        "app:pa/ss-SECRET",
        "pa%2Fss-SECRET",
        "pa/ss-SECRET",
        "k%21ey",
        "k!ey",
    ] {
        assert!(
            anywhere.iter().any(|secret| secret == expected),
            "{expected} in {anywhere:?}"
        );
    }
    // A user name this short is scrubbed only where it stands alone.
    assert!(all.iter().any(|secret| secret == "app"));
    assert!(!anywhere.iter().any(|secret| secret == "app"));
}

#[test]
fn pieces_the_driver_cuts_out_are_secrets_too() {
    let (all, anywhere) = secret_texts("mongodb://app:pa?ss-SECRET1@host/");
    for expected in ["ss-SECRET1", "app:pa", "app:pa?ss-SECRET1"] {
        assert!(
            anywhere.iter().any(|secret| secret == expected),
            "{expected} in {anywhere:?}"
        );
    }
    // Too short to scrub inside words, so `password` stays readable.
    assert!(all.iter().any(|secret| secret == "pa"));
    assert!(!anywhere.iter().any(|secret| secret == "pa"));
}

#[test]
fn scrubbing_replaces_longest_first_and_ignores_case() {
    let secret = |text: &str, anywhere| Secret {
        text: text.to_owned(),
        anywhere,
    };
    let secrets = [
        secret("secret-long", true),
        secret("secret", true),
        secret("x", true),
    ];
    assert_eq!(
        scrub("a SECRET-LONG and a secret, x", &secrets),
        "a *** and a ***, ***"
    );
    assert_eq!(scrub("naïve 密 text", &[secret("密", true)]), "naïve *** text");
    assert_eq!(scrub("", &secrets), "");
    // A short piece only where it stands alone.
    let piece = [secret("pa", false)];
    assert_eq!(
        scrub("password: got pa, pa. spa (pa)pax", &piece),
        "password: got ***, ***. spa (***)pax"
    );
    assert_eq!(scrub("pa", &piece), "***");
}

#[test]
fn the_driver_message_keeps_its_words() {
    let uri = "mongodb://app:pa?ss@127.0.0.1:1/";
    let message = "invalid server address app:pa: the port must be an integer between 1 and \
                   65535, got pa; password must be URL encoded";
    assert_eq!(
        scrub(message, &secrets(uri)),
        "invalid server address ***: the port must be an integer between 1 and 65535, got ***; \
         password must be URL encoded"
    );
}

#[test]
fn percent_decoding_keeps_malformed_escapes() {
    assert_eq!(percent_decode("pa%40ss"), "pa@ss");
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%4"), "%4");
    assert_eq!(percent_decode("%zz%2f"), "%zz/");
    assert_eq!(percent_decode("%ff"), "\u{fffd}");
}

#[test]
fn the_hosts_are_named_without_the_user_info() {
    for (uri, expected) in [
        (
            "mongodb://app:pa@ss@db1:27017,db2/app?tls=true",
            Some("db1:27017,db2"),
        ),
        (
            "mongodb+srv://u:p@cluster0.example.invalid/app",
            Some("cluster0.example.invalid"),
        ),
        ("mongodb://localhost", Some("localhost")),
        ("mongodb://u:p?a=b@host/db", Some("host")),
        ("mongodb:///db", None),
        ("localhost:27017", None),
        ("", None),
    ] {
        assert_eq!(hosts(uri).as_deref(), expected, "{uri}");
    }
}
