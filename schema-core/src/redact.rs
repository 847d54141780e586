//! Keeping a connection string's secrets out of errors and logs.
//!
//! Secrets are the user information (`user:password@`) and the values of
//! options that carry credentials (see [`redact`]). They are kept out of
//! errors twice: the URI an error shows is [`redact`]ed, and what the driver
//! said about it is copied into a [`ScrubbedError`] with every secret
//! replaced by `***`, because the driver's messages quote pieces of the URI
//! (an unknown option, an unparsable host) and its `Debug` output is not
//! under our control.

use std::fmt;
use std::ops::Range;

/// What replaces a secret.
const MASK: &str = "***";

/// `uri` with its secrets replaced by `***`, for logs and error messages.
///
/// - The whole user information, user name included, becomes `***`:
///   `mongodb://app:pa%2Fss@db1,db2/app` becomes `mongodb://***@db1,db2/app`.
/// - The value of every option that carries a credential becomes `***`:
///   options whose name contains `password` (`tlsCertificateKeyFilePassword`,
///   `sslClientCertificateKeyPassword`, `proxyPassword`, ...),
///   `authMechanismProperties` (which can hold an AWS session token) and
///   `proxyUsername`. Option names are compared ignoring case.
///
/// Any string is accepted, valid URI or not, and nothing is assumed to be
/// percent-encoded: a password with a raw `/`, `?` or `@` is still hidden
/// whole. Where the user information ends is a guess when the password
/// holds such characters, and every guess errs towards hiding more (see
/// the source for the rules).
pub fn redact(uri: &str) -> String {
    let parts = Parts::of(uri);
    let mut redacted = String::with_capacity(uri.len());
    let mut copied = 0;
    let mut hide = |range: Range<usize>, redacted: &mut String| {
        redacted.push_str(&uri[copied..range.start]);
        redacted.push_str(MASK);
        copied = range.end;
    };
    if let Some(user_info) = parts.user_info.clone() {
        hide(user_info, &mut redacted);
    }
    for option in &parts.options {
        if option.is_sensitive(uri) {
            hide(option.value.clone(), &mut redacted);
        }
    }
    redacted.push_str(&uri[copied..]);
    redacted
}

/// Where a connection string's secrets are. All ranges are byte ranges of
/// the string, in order, and fall on char boundaries since each starts or
/// ends next to an ASCII delimiter or at an end of the string.
#[derive(Debug, Default)]
struct Parts {
    /// Between `://` and the `@` that ends the user information.
    user_info: Option<Range<usize>>,
    /// The query string's options, in order.
    options: Vec<QueryOption>,
}

/// One `name=value` of the query string.
#[derive(Debug)]
struct QueryOption {
    name: Range<usize>,
    value: Range<usize>,
}

impl QueryOption {
    /// Whether the option's value is a credential.
    fn is_sensitive(&self, uri: &str) -> bool {
        let name = uri[self.name.clone()].to_ascii_lowercase();
        name.contains("password") || name == "authmechanismproperties" || name == "proxyusername"
    }
}

impl Parts {
    fn of(uri: &str) -> Parts {
        // Without a scheme the whole string is treated as the authority, so
        // that `user:password@host` is still hidden.
        let authority_start = uri.find("://").map_or(0, |at| at + 3);
        let user_info_end = user_info_end(uri, authority_start);
        let after_user_info = user_info_end.map_or(authority_start, |at| at + 1);
        let options = uri[after_user_info..]
            .find('?')
            .map(|at| query_options(uri, after_user_info + at + 1))
            .unwrap_or_default();
        Parts {
            user_info: user_info_end.map(|end| authority_start..end),
            options,
        }
    }
}

/// The index of the `@` that ends the user information, searched from
/// `authority_start`.
///
/// A password may hold raw `/`, `?` and `@` (the driver refuses them, but
/// the URI must still be redacted in that error), so neither the first `@`
/// nor the first `/` or `?` can be trusted. The rightmost `@` that is
/// followed by something shaped like a host list and is not in the query
/// string is taken; when none is, the last `@` is, since hiding part of the
/// hosts or the query is better than showing part of a password.
fn user_info_end(uri: &str, authority_start: usize) -> Option<usize> {
    let ats: Vec<usize> = uri[authority_start..]
        .match_indices('@')
        .map(|(at, _)| authority_start + at)
        .collect();
    ats.iter()
        .rev()
        .find(|&&at| is_host_list(uri, at + 1) && !in_query(uri, authority_start, at))
        .or(ats.last())
        .copied()
}

/// Whether what follows `from`, up to the next `/` or `?` or the end, is a
/// non-empty run of characters a host list can have (names, IPv4 and
/// bracketed IPv6 addresses, ports, commas, percent-encoded socket paths).
fn is_host_list(uri: &str, from: usize) -> bool {
    let rest = &uri[from..];
    let hosts = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    !hosts.is_empty()
        && hosts
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._~%:[],-".contains(c))
}

/// Whether the `@` at `at` seems to be in the query string: a `?` after
/// `authority_start` that is followed by a `=` before `at`. A password
/// holding `?` and then `=` looks the same, and is then over-redacted by
/// the last-`@` fallback rather than shown.
fn in_query(uri: &str, authority_start: usize, at: usize) -> bool {
    let before = &uri[authority_start..at];
    before
        .find('?')
        .is_some_and(|question| before[question..].contains('='))
}

/// The options of the query string that starts at `start`.
///
/// Options are separated by `&` (or `;`, which older URIs use). A piece
/// that does not start with `name=` is taken as part of the previous
/// option's value, since a secret with a raw `&` must still be hidden
/// whole.
fn query_options(uri: &str, start: usize) -> Vec<QueryOption> {
    let mut options: Vec<QueryOption> = Vec::new();
    let mut piece_start = start;
    let query = &uri[start..];
    let ends = query
        .match_indices(['&', ';'])
        .map(|(at, _)| start + at)
        .chain([uri.len()]);
    for piece_end in ends {
        let piece = &uri[piece_start..piece_end];
        let name_len = piece.find('=').filter(|&len| {
            len > 0
                && piece[..len]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match (name_len, options.last_mut()) {
            (Some(len), _) => options.push(QueryOption {
                name: piece_start..piece_start + len,
                value: piece_start + len + 1..piece_end,
            }),
            (None, Some(previous)) => previous.value.end = piece_end,
            (None, None) => {}
        }
        piece_start = (piece_end + 1).min(uri.len());
    }
    options
}

/// What the driver said about a connection string, with the string's
/// secrets replaced by `***`.
///
/// It stands in for the driver's error as the source of
/// [`Error::InvalidUri`]: the driver's error (and its `Debug` output) can
/// quote the connection string, so only this scrubbed text is kept. The
/// driver's chain of sources is folded into the message, hence
/// [`source`](std::error::Error::source) is `None`.
pub(crate) struct ScrubbedError {
    message: String,
}

impl ScrubbedError {
    pub(crate) fn new(error: &mongodb::error::Error, uri: &str) -> ScrubbedError {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ScrubbedError {
            message: scrub(&message, &secrets(uri)),
        }
    }
}

impl fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrubbedError")
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for ScrubbedError {}

/// Secrets, and pieces of secrets, shorter than this are scrubbed only where
/// they stand alone, not inside a longer word: everywhere, they would turn
/// ordinary words of a message into `***` (`pa` in `password`, a user `u`
/// in `argument`). What a message quotes of a connection string stands
/// between delimiters, so it is still found.
const MIN_PIECE_LEN: usize = 4;

/// Where the driver cuts a connection string (scheme, hosts, path, query,
/// options, option values, authMechanismProperties entries), so where a
/// message can start or stop quoting a piece of a secret.
const CUTS: [char; 9] = ['/', '?', '@', '&', ';', '=', ',', ':', '#'];

/// A string to scrub from the driver's messages.
#[derive(Debug, PartialEq, Eq)]
struct Secret {
    text: String,
    /// Scrubbed inside longer words too, rather than only where it stands
    /// alone.
    anywhere: bool,
}

/// Every string to scrub from the driver's messages about `uri`, longest
/// first, without duplicates.
///
/// Each secret counts raw and percent-decoded: the user information, the
/// user name, the password and every sensitive option's value. So do its
/// pieces between the characters where the driver cuts a URI: a password
/// with a raw `?` is cut there by the driver, which may then quote the part
/// before it as a port and the part after it as an option. Pieces shorter
/// than [`MIN_PIECE_LEN`] count only where they stand alone.
fn secrets(uri: &str) -> Vec<Secret> {
    let parts = Parts::of(uri);
    let mut whole: Vec<&str> = Vec::new();
    if let Some(user_info) = parts.user_info {
        let user_info = &uri[user_info];
        whole.push(user_info);
        if let Some((user, password)) = user_info.split_once(':') {
            whole.extend([user, password]);
        }
    }
    for option in &parts.options {
        if option.is_sensitive(uri) {
            whole.push(&uri[option.value.clone()]);
        }
    }

    let mut found: Vec<Secret> = Vec::new();
    let mut add = |text: String| {
        let anywhere = text.chars().count() >= MIN_PIECE_LEN;
        if !text.is_empty() {
            found.push(Secret { text, anywhere });
        }
    };
    for secret in whole {
        add(secret.to_owned());
        add(percent_decode(secret));
        for piece in pieces(secret) {
            add(piece.to_owned());
            add(percent_decode(piece));
        }
    }
    // Longest first; of equal strings the one scrubbed anywhere first, so
    // that it is the one kept.
    found.sort_by(|a, b| {
        b.text
            .len()
            .cmp(&a.text.len())
            .then_with(|| a.text.cmp(&b.text))
            .then_with(|| b.anywhere.cmp(&a.anywhere))
    });
    found.dedup_by(|later, kept| later.text == kept.text);
    found
}

/// Above this many cuts, only the pieces between neighbouring cuts and
/// those reaching either end are taken, to stay linear on absurd input.
const MAX_CUTS_FOR_ALL_PIECES: usize = 32;

/// The substrings of `secret` that start at its beginning or just after a
/// cut character, and end at its end or just before one.
fn pieces(secret: &str) -> Vec<&str> {
    let cuts: Vec<usize> = secret.match_indices(CUTS).map(|(at, _)| at).collect();
    let starts: Vec<usize> = [0].into_iter().chain(cuts.iter().map(|at| at + 1)).collect();
    let ends: Vec<usize> = cuts.iter().copied().chain([secret.len()]).collect();
    let mut found = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        for (end_index, &end) in ends.iter().enumerate().skip(index) {
            let wanted = cuts.len() <= MAX_CUTS_FOR_ALL_PIECES
                || start == 0
                || end == secret.len()
                || end_index == index;
            if wanted && start < end {
                found.push(&secret[start..end]);
            }
        }
    }
    found
}

/// `text` with `%XX` sequences decoded; other `%` are kept as they are, and
/// bytes that do not form UTF-8 become U+FFFD, as the driver decodes option
/// values.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = match (bytes[index], bytes.get(index + 1..index + 3)) {
            (b'%', Some(&[high, low])) => hex(high).zip(hex(low)).map(|(high, low)| (high << 4) | low),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// `text` with each occurrence of any of `secrets` (longest first, ASCII
/// case ignored, since the driver lowercases option names it quotes)
/// replaced by `***`, in one pass so that a mask is never matched again.
fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut scrubbed = String::with_capacity(text.len());
    let mut at = 0;
    'text: while let Some(rest) = text.get(at..).filter(|rest| !rest.is_empty()) {
        for secret in secrets {
            let len = secret.text.len();
            let matches = rest
                .as_bytes()
                .get(..len)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(secret.text.as_bytes()));
            // Case folding maps ASCII to ASCII only, so a match ends on a
            // char boundary; `get` checks rather than trusts that.
            let Some(after) = rest.get(len..).filter(|_| matches) else {
                continue;
            };
            let alone = !ends_in_word(&text[..at]) && !starts_in_word(after);
            if secret.anywhere || alone {
                scrubbed.push_str(MASK);
                at += len;
                continue 'text;
            }
        }
        let next = rest.chars().next().map_or(1, char::len_utf8);
        scrubbed.push_str(&rest[..next]);
        at += next;
    }
    scrubbed
}

/// Whether `text` ends with a letter or digit.
fn ends_in_word(text: &str) -> bool {
    text.chars().next_back().is_some_and(char::is_alphanumeric)
}

/// Whether `text` starts with a letter or digit.
fn starts_in_word(text: &str) -> bool {
    text.chars().next().is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
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
}
