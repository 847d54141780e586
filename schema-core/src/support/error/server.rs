//! The driver's errors as this crate shows them: what failed, the
//! server's code and code name, and the server's message with every value
//! taken out of it.
//!
//! A server's message can quote the data it refused: a duplicate key's
//! value (`dup key: { email: "..." }`), a string the query held. A
//! validation failure's `errInfo` lists the rejected document's fields and
//! values, and the driver's own `Display` of a write error prints it. None
//! of that belongs in an error an operator reads, a `--json` report or a
//! log line, so [`ServerError`] shows only the words around the values:
//! every `{ ... }` and every double-quoted string of the message becomes
//! `{…}` or `"…"`, and `errInfo` is left out. Collection and index names stand
//! unquoted in the server's messages (`collection: app.users index:
//! email_1`) and stay. The driver's error itself is kept for code that asks
//! for it with [`ServerError::raw`]; it is not a
//! [`source`](std::error::Error::source), so no chain of causes prints it.

use std::fmt;

use mongodb::error::{ErrorKind, WriteFailure};

/// A driver or server error, shown without the values it may quote.
///
/// `Display` says what failed, with the server's code and code name when
/// it gave them, and its message with every `{ ... }` and every
/// double-quoted string replaced: a server's message can quote the data it
/// refused (a duplicate key's value), and a validation failure's `errInfo`
/// lists the rejected document's fields, which is left out. Collection and
/// index names stand unquoted in the server's messages and stay.
/// [`raw`](ServerError::raw) is the driver's error as it came, values and
/// all, for code that needs it; it is not a
/// [`source`](std::error::Error::source), so no chain of causes prints it.
pub struct ServerError(Box<Inner>);

/// Boxed, so that errors carrying one stay small.
struct Inner {
    shown: String,
    code: Option<i32>,
    raw: mongodb::error::Error,
}

impl ServerError {
    /// The driver's error as it came, values included: for code that
    /// needs the details, never for showing.
    pub fn raw(&self) -> &mongodb::error::Error {
        &self.0.raw
    }

    /// The driver's error, values included.
    pub fn into_raw(self) -> mongodb::error::Error {
        self.0.raw
    }

    /// The server's error code, for command, write and write concern
    /// errors.
    pub fn code(&self) -> Option<i32> {
        self.0.code
    }
}

impl From<mongodb::error::Error> for ServerError {
    fn from(raw: mongodb::error::Error) -> ServerError {
        let (shown, code) = show(&raw);
        ServerError(Box::new(Inner { shown, code, raw }))
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.shown)
    }
}

impl fmt::Debug for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerError")
            .field("shown", &self.0.shown)
            .field("code", &self.0.code)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for ServerError {}

/// `source` as this crate shows it: a driver error in it is replaced by its
/// [`ServerError`]; any other error, the migration's own, is kept.
pub(crate) fn shown(source: super::BoxError) -> super::BoxError {
    match source.downcast::<mongodb::error::Error>() {
        Ok(raw) => Box::new(ServerError::from(*raw)),
        Err(other) => other,
    }
}

/// The server's error code in `error`, for command, write and write
/// concern errors.
pub(crate) fn code(error: &mongodb::error::Error) -> Option<i32> {
    match &*error.kind {
        ErrorKind::Command(command) => Some(command.code),
        ErrorKind::Write(WriteFailure::WriteError(write)) => Some(write.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(concern)) => Some(concern.code),
        _ => None,
    }
}

/// What to show of `error`, and its code.
fn show(error: &mongodb::error::Error) -> (String, Option<i32>) {
    let coded = |what: &str, code: i32, name: &str, message: &str| {
        let name = if name.is_empty() {
            String::new()
        } else {
            format!(" {name}")
        };
        (
            format!("{what}: error {code}{name}: {}", without_values(message)),
            Some(code),
        )
    };
    match &*error.kind {
        ErrorKind::Command(command) => coded(
            "the server refused the command",
            command.code,
            &command.code_name,
            &command.message,
        ),
        ErrorKind::Write(WriteFailure::WriteError(write)) => coded(
            "the server refused the write",
            write.code,
            write.code_name.as_deref().unwrap_or_default(),
            &write.message,
        ),
        ErrorKind::Write(WriteFailure::WriteConcernError(concern)) => coded(
            "the write was not acknowledged as asked",
            concern.code,
            &concern.code_name,
            &concern.message,
        ),
        // The network and server selection say where, not what: no
        // document is in them.
        ErrorKind::Io(io) => (format!("a network error: {io}"), None),
        ErrorKind::ServerSelection { message, .. } => {
            (format!("no server could be selected: {message}"), None)
        }
        ErrorKind::ConnectionPoolCleared { message, .. } => {
            (format!("the connection pool was cleared: {message}"), None)
        }
        _ => (without_values(&error.kind.to_string()), None),
    }
}

/// `message` with every `{ ... }` replaced by `{…}` and every double-quoted
/// string by `"…"`. Single quotes stay: the server's messages put names in
/// them (`index 'email_1'`, `the field '_id'`), and its values in
/// documents or double quotes.
pub(crate) fn without_values(message: &str) -> String {
    let mut shown = String::with_capacity(message.len());
    let mut depth = 0_usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for character in message.chars() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if character == '\\' {
                escaped = true;
            } else if character == open {
                quote = None;
                if depth == 0 {
                    shown.push(open);
                }
            }
            continue;
        }
        match character {
            '{' => {
                if depth == 0 {
                    shown.push_str("{…");
                }
                depth += 1;
            }
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    shown.push('}');
                }
            }
            '"' => {
                quote = Some(character);
                if depth == 0 {
                    shown.push(character);
                    shown.push('…');
                }
            }
            _ if depth == 0 => shown.push(character),
            _ => {}
        }
    }
    if depth > 0 {
        shown.push('}');
    }
    if let Some(open) = quote.filter(|_| depth == 0) {
        shown.push(open);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn command_error(code: i32, name: &str, message: &str) -> mongodb::error::Error {
        // The driver builds its errors from server replies; a reply is the
        // one public way to make a command error with a given code.
        let reply = doc! { "ok": 0, "code": code, "codeName": name, "errmsg": message };
        let command: mongodb::error::CommandError =
            mongodb::bson::from_document(reply).expect("a command error document");
        mongodb::error::Error::from(ErrorKind::Command(command))
    }

    #[test]
    fn a_duplicate_keys_value_is_taken_out_and_its_index_stays() {
        let raw = command_error(
            11000,
            "DuplicateKey",
            "E11000 duplicate key error collection: app.users index: email_1 dup key: { email: \"x@secret.org\" }",
        );
        let error = ServerError::from(raw);
        let shown = error.to_string();
        assert_eq!(
            shown,
            "the server refused the command: error 11000 DuplicateKey: E11000 duplicate key error \
             collection: app.users index: email_1 dup key: {…}"
        );
        assert_eq!(error.code(), Some(11000));
        assert!(error.raw().to_string().contains("x@secret.org"));
        assert!(!format!("{error:?}").contains("secret"));
        assert!(std::error::Error::source(&error).is_none());
    }

    #[test]
    fn values_are_taken_out_of_any_message() {
        assert_eq!(without_values("a { b: { c: 1 } } d"), "a {…} d");
        assert_eq!(without_values("name \"x \\\" y\" and 'z'"), "name \"…\" and 'z'");
        assert_eq!(without_values("unclosed { a: \"b"), "unclosed {…}");
        assert_eq!(without_values("no values here"), "no values here");
        assert_eq!(without_values("{ \"}\" }"), "{…}");
    }
}
