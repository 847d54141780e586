//! Keeping a connection string's secrets out of errors and logs.
//!
//! Secrets are the user information (`user:password@`) and the values of
//! options that carry credentials (see [`redact`]). They are kept out of
//! errors twice: the URI an error shows is [`redact`]ed, and what the driver
//! said about it is copied into a [`ScrubbedError`] with every secret
//! replaced by `***`, because the driver's messages quote pieces of the URI
//! (an unknown option, an unparsable host) and its `Debug` output is not
//! under our control.

mod scrub;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub(crate) use self::scrub::{ScrubbedError, scrub_of};

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

/// The hosts of `uri` as it names them (`db1:27017,db2`, or the
/// `mongodb+srv://` name), never its user information: what follows the
/// `@` [`redact`] takes as its end, up to the path or the query. `None`
/// for a string without a scheme or without hosts.
pub(crate) fn hosts(uri: &str) -> Option<String> {
    let authority_start = uri.find("://")? + 3;
    let parts = Parts::of(uri);
    // The last `@` ends the user information, as for redaction: an `@`
    // in the options (`appName=a@b`) then names the wrong host, but a
    // password with an unescaped `/` or `?` is never shown as one.
    let start = parts
        .user_info
        .map_or(authority_start, |user_info| user_info.end + 1);
    let rest = uri.get(start..)?;
    let hosts = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    (!hosts.is_empty()).then(|| hosts.to_owned())
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
