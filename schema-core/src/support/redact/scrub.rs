//! Scrubbing the driver's messages about a connection string: every secret
//! of the string, every piece the driver may cut out of one, and their
//! percent-decoded forms, replaced by `***`.

use std::fmt;

use super::{MASK, Parts};

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
    /// What the driver says in `error` and its sources, each by its kind
    /// alone: the driver's `Display` ends every error in its labels,
    /// source and server response (`labels: {}, source: None, server
    /// response: None`), which say nothing to a person.
    pub(crate) fn new(error: &mongodb::error::Error, uri: &str) -> ScrubbedError {
        let mut message = said(error);
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            match cause.downcast_ref::<mongodb::error::Error>() {
                Some(driver) => message.push_str(&said(driver)),
                None => message.push_str(&cause.to_string()),
            }
            source = cause.source();
        }
        ScrubbedError {
            message: scrub(&message, &secrets(uri)),
        }
    }
}

/// `text` with every secret of `uri` replaced by `***`.
pub(crate) fn scrub_of(text: &str, uri: &str) -> String {
    scrub(text, &secrets(uri))
}

/// The words of one driver error: an invalid argument's message alone,
/// else its kind's.
fn said(error: &mongodb::error::Error) -> String {
    match &*error.kind {
        mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
        kind => kind.to_string(),
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
pub(super) struct Secret {
    pub(super) text: String,
    /// Scrubbed inside longer words too, rather than only where it stands
    /// alone.
    pub(super) anywhere: bool,
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
pub(super) fn secrets(uri: &str) -> Vec<Secret> {
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
pub(super) fn pieces(secret: &str) -> Vec<&str> {
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
pub(super) fn percent_decode(text: &str) -> String {
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
pub(super) fn scrub(text: &str, secrets: &[Secret]) -> String {
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
