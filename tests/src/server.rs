//! Whether the server under test is a real MongoDB server or the
//! wire-protocol emulator that `scripts/with-mongodb` falls back to, told
//! from the server's own answers rather than from how it was started, so a
//! test skips exactly when the server in front of it lacks what it checks.
//!
//! What the two answer (seen with MongoDB 6.0 to 8.0 and nx-27017 0.8.1):
//!
//! - A real `mongod` or `mongos` answers `buildInfo` with `version`
//!   (`"7.0.14"`), `gitVersion` (the 40-hex-digit commit it was built
//!   from), `versionArray` (`[7, 0, 14, 0]`), `modules` (`[]`, or
//!   `["enterprise"]`), and more (`allocator`, `javascriptEngine`,
//!   `openssl`, `buildEnvironment`, `bits`, `debug`, `storageEngines`,
//!   the last not on `mongos`). Its `hello` has `topologyVersion` (since
//!   4.4), `msg: "isdbgrid"` on a `mongos`, and `setName`, `hosts` and
//!   `primary` on a replica set member.
//! - The emulator answers `buildInfo` with `version: "7.0.0"`,
//!   `process: "nx_27017"` and `serverStatus`-like fields (`uptime`,
//!   `connections`, `mem`), but no `gitVersion`, `versionArray` or
//!   `modules`; its `hello` has `isWritablePrimary`, the wire versions
//!   (17 to 25) and `localTime`, but no `topologyVersion`.
//!
//! So a server is taken as real when its `buildInfo` has a 40-hex-digit
//! `gitVersion`, a `versionArray` and `modules`, and its `hello` has a
//! `topologyVersion`: all four are part of every real server's answer and
//! absent from the emulator's. The emulator's name is not looked for, so
//! another emulator missing the same fields is recognised too.

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::error::ErrorKind;

/// What kind of server answers on `MONGODB_URI`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// A real `mongod` or `mongos`.
    Real,
    /// A server speaking the wire protocol without being MongoDB, such as
    /// the emulator `scripts/with-mongodb` starts.
    Emulator,
}

/// Asks the server behind `db` what it is (`buildInfo` and `hello`, on the
/// `admin` database).
///
/// # Panics
///
/// When the server does not answer at all: a test must not pass by
/// skipping because the server is down. A command the server refuses
/// counts as an emulator's answer, since every real server has both.
pub async fn kind(db: &Database) -> ServerKind {
    let admin = db.client().database("admin");
    let (Some(build_info), Some(hello)) = (
        answer(&admin, doc! { "buildInfo": 1 }).await,
        answer(&admin, doc! { "hello": 1 }).await,
    ) else {
        return ServerKind::Emulator;
    };
    if is_real(&build_info, &hello) {
        ServerKind::Real
    } else {
        ServerKind::Emulator
    }
}

/// Whether `buildInfo` and `hello` answers are a real server's.
pub fn is_real(build_info: &Document, hello: &Document) -> bool {
    let git_version = build_info
        .get_str("gitVersion")
        .is_ok_and(|commit| commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()));
    let version_array =
        matches!(build_info.get("versionArray"), Some(Bson::Array(parts)) if !parts.is_empty());
    let modules = matches!(build_info.get("modules"), Some(Bson::Array(_)));
    let topology_version = matches!(hello.get("topologyVersion"), Some(Bson::Document(_)));
    git_version && version_array && modules && topology_version
}

/// The reply to `command`, or `None` when the server refused it.
async fn answer(admin: &Database, command: Document) -> Option<Document> {
    match admin.run_command(command.clone()).await {
        Ok(reply) => Some(reply),
        Err(error) if matches!(&*error.kind, ErrorKind::Command(_)) => None,
        Err(error) => panic!("the server did not answer {command}: {error}"),
    }
}

/// Whether the test should stop here because the server is not a real
/// MongoDB server; when so, prints
/// `skipped: <why> (the server is the emulator, which ...)`, so the test
/// output says what was not checked.
///
/// `why` says what the test needs and how the emulator falls short of it,
/// such as "a conflicting index must be refused; the emulator replaces it".
pub async fn skip_unless_real(db: &Database, why: &str) -> bool {
    match kind(db).await {
        ServerKind::Real => false,
        ServerKind::Emulator => {
            println!(
                "skipped: {why} (the server is the emulator, which does not answer buildInfo and \
                 hello as a real MongoDB server does; run with MONGODB_URI naming a real server)"
            );
            true
        }
    }
}

/// Whether the server is a replica set member (its `hello` names a set).
///
/// # Panics
///
/// When the server does not answer `hello`.
pub async fn is_replica_set(db: &Database) -> bool {
    let hello = db
        .run_command(doc! { "hello": 1 })
        .await
        .expect("the server answers hello");
    hello.get_str("setName").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `buildInfo` as MongoDB 7.0 answers it, trimmed.
    fn mongod_build_info() -> Document {
        doc! {
            "version": "7.0.14",
            "gitVersion": "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188",
            "modules": [],
            "allocator": "tcmalloc",
            "javascriptEngine": "mozjs",
            "versionArray": [7, 0, 14, 0],
            "bits": 64,
            "storageEngines": ["devnull", "wiredTiger"],
            "ok": 1.0,
        }
    }

    fn mongod_hello() -> Document {
        doc! {
            "topologyVersion": { "processId": Bson::ObjectId(Default::default()), "counter": 0_i64 },
            "isWritablePrimary": true,
            "maxWireVersion": 21,
            "minWireVersion": 0,
            "readOnly": false,
            "ok": 1.0,
        }
    }

    /// The emulator's answers, as nx-27017 0.8.1 gives them.
    fn emulator_answers() -> (Document, Document) {
        (
            doc! {
                "ok": 1, "host": "vm", "version": "7.0.0", "process": "nx_27017", "pid": 18421,
                "uptime": 0, "connections": { "current": 2, "available": 1000 },
            },
            doc! {
                "ok": 1, "isWritablePrimary": true, "maxBsonObjectSize": 16777216,
                "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
                "minWireVersion": 17, "maxWireVersion": 25,
            },
        )
    }

    #[test]
    fn a_real_server_is_recognised() {
        assert!(is_real(&mongod_build_info(), &mongod_hello()));
        let mut mongos = mongod_hello();
        mongos.insert("msg", "isdbgrid");
        assert!(is_real(&mongod_build_info(), &mongos));
    }

    #[test]
    fn the_emulator_is_not_taken_for_a_real_server() {
        let (build_info, hello) = emulator_answers();
        assert!(!is_real(&build_info, &hello));
        // Claiming a version is not enough.
        let mut claims = build_info.clone();
        claims.insert("gitVersion", "not a commit");
        claims.insert("versionArray", vec![7, 0, 0, 0]);
        claims.insert("modules", Vec::<String>::new());
        assert!(!is_real(&claims, &mongod_hello()));
    }
}
