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
//! another emulator missing the same fields is recognised too. A server
//! that does not answer `buildInfo` or `hello` at all fails the test: it is
//! neither, and a test must not pass by skipping.
//!
//! # Runs declared against a real server
//!
//! A run against real MongoDB sets [`TOPOLOGY_VARIABLE`]
//! (`SCHEMA_TESTS_TOPOLOGY`) to the topology it started: `standalone`,
//! `replica-set` (one member), `replica-set-3` (three members) or
//! `sharded` (a `mongos`). The workflow `.github/workflows/mongodb.yml`
//! does. Then nothing is skipped silently:
//!
//! - [`skip_unless_real`] panics instead of skipping, and so does every
//!   helper below when the server is not a real one;
//! - each helper first checks that the server is what the variable
//!   declares, so a run cannot pass against another topology than it says;
//! - [`require_replica_set_members`] and [`require_sharded`], for tests
//!   that need a topology not every run has, skip only where the declared
//!   topology lacks it (a three-member test in the `standalone` job), and
//!   panic where it should have it and the server does not;
//! - [`skip`], for a test that cannot run for another reason (a missing
//!   system facility), panics.
//!
//! ```no_run
//! # async fn example(db: schema_core::mongodb::Database) {
//! use schema_tests::server::require_replica_set_members;
//! if require_replica_set_members(&db, 3, "an election needs a member to take over").await {
//!     return;
//! }
//! // ... step the primary down ...
//! # }
//! ```

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};

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
/// When the server does not answer either command, or refuses it: every
/// real server and the emulator answer both, so a refusal (missing
/// privileges, a server in trouble) is not taken for the emulator, and a
/// test does not pass by skipping.
pub async fn kind(db: &Database) -> ServerKind {
    Server::ask(db).await.kind
}

/// What a server says it is, from `buildInfo` and `hello`.
struct Server {
    kind: ServerKind,
    /// `hello.setName`, on a replica set member.
    set_name: Option<String>,
    /// How many members `hello.hosts` lists (electable data-bearing
    /// members), on a replica set member.
    members: usize,
    /// Whether `hello.msg` is `isdbgrid`: a `mongos`.
    mongos: bool,
}

impl Server {
    async fn ask(db: &Database) -> Server {
        let admin = db.client().database("admin");
        let build_info = answer(&admin, doc! { "buildInfo": 1 }).await;
        let hello = answer(&admin, doc! { "hello": 1 }).await;
        Server::of(&build_info, &hello)
    }

    /// What `buildInfo` and `hello` answers say.
    fn of(build_info: &Document, hello: &Document) -> Server {
        let kind = if is_real(build_info, hello) {
            ServerKind::Real
        } else {
            ServerKind::Emulator
        };
        Server {
            kind,
            set_name: hello.get_str("setName").ok().map(str::to_owned),
            members: hello.get_array("hosts").map_or(0, Vec::len),
            mongos: hello.get_str("msg") == Ok("isdbgrid"),
        }
    }

    /// The topology this server has, as [`TOPOLOGY_VARIABLE`] names them.
    fn topology(&self) -> &'static str {
        match (self.mongos, &self.set_name, self.members) {
            (true, _, _) => "sharded",
            (false, Some(_), members) if members >= 3 => "replica-set-3",
            (false, Some(_), _) => "replica-set",
            (false, None, _) => "standalone",
        }
    }

    /// Checks the server against the run's declared topology, if any;
    /// returns it.
    fn check_declared(&self) -> Option<Topology> {
        let declared = declared()?;
        assert!(
            self.kind == ServerKind::Real,
            "{TOPOLOGY_VARIABLE}={} declares a run against a real MongoDB server, but the server \
             does not answer buildInfo and hello as one does",
            declared.name()
        );
        assert_eq!(
            self.topology(),
            declared.name(),
            "{TOPOLOGY_VARIABLE} declares a `{}` server, and the server is a `{}` one",
            declared.name(),
            self.topology()
        );
        Some(declared)
    }
}

/// The environment variable that declares a run against a real MongoDB
/// server of a given topology: `standalone`, `replica-set`,
/// `replica-set-3` or `sharded`. Set, no test may skip for want of a real
/// server (see the module's documentation).
pub const TOPOLOGY_VARIABLE: &str = "SCHEMA_TESTS_TOPOLOGY";

/// The topologies a run can declare with [`TOPOLOGY_VARIABLE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One `mongod`, not in a replica set.
    Standalone,
    /// A replica set of one member.
    ReplicaSet,
    /// A replica set of three members.
    ReplicaSetOfThree,
    /// A sharded cluster, reached through a `mongos`.
    Sharded,
}

impl Topology {
    const ALL: [Topology; 4] = [
        Topology::Standalone,
        Topology::ReplicaSet,
        Topology::ReplicaSetOfThree,
        Topology::Sharded,
    ];

    /// Its name as [`TOPOLOGY_VARIABLE`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::ReplicaSet => "replica-set",
            Topology::ReplicaSetOfThree => "replica-set-3",
            Topology::Sharded => "sharded",
        }
    }

    /// The topology `name` names, if any.
    pub fn parse(name: &str) -> Option<Topology> {
        Topology::ALL.into_iter().find(|topology| topology.name() == name)
    }

    /// How many replica set members it has (none for a standalone; a
    /// sharded cluster's shards are not counted).
    fn members(self) -> usize {
        match self {
            Topology::Standalone | Topology::Sharded => 0,
            Topology::ReplicaSet => 1,
            Topology::ReplicaSetOfThree => 3,
        }
    }
}

/// The topology [`TOPOLOGY_VARIABLE`] declares, `None` when it is not set
/// (or empty): a run on a developer's machine, which may skip.
///
/// # Panics
///
/// When the variable names no topology.
pub fn declared() -> Option<Topology> {
    let value = std::env::var(TOPOLOGY_VARIABLE).ok()?;
    if value.is_empty() {
        return None;
    }
    let names: Vec<&str> = Topology::ALL.iter().map(|topology| topology.name()).collect();
    Some(
        Topology::parse(&value).unwrap_or_else(|| {
            panic!("{TOPOLOGY_VARIABLE}={value:?} names no topology; it is one of {names:?}")
        }),
    )
}

/// Says that a test stops here without checking what it is for, and why:
/// prints `skipped: <why>`. In a run declared against a real server
/// ([`TOPOLOGY_VARIABLE`]) it panics instead, since that run is where
/// nothing may be left unchecked.
///
/// # Panics
///
/// As described.
pub fn skip(why: &str) {
    if let Some(declared) = declared() {
        panic!(
            "not skipped, since {TOPOLOGY_VARIABLE}={} declares a run where every test runs: {why}",
            declared.name()
        );
    }
    println!("skipped: {why}");
}

/// Whether a test needing a topology the run may not have stops here:
/// prints why and returns true where the run is not declared, or is
/// declared with a topology that lacks what the test needs; panics where
/// the declared topology has it and the server does not.
fn skip_for_topology(declared: Option<Topology>, has_it: bool, why: &str) -> bool {
    match declared {
        Some(declared) if has_it => panic!(
            "{TOPOLOGY_VARIABLE}={} should run this test, and the server lacks what it needs: {why}",
            declared.name()
        ),
        Some(declared) => {
            println!(
                "skipped: {why} (this run is declared `{}` in {TOPOLOGY_VARIABLE}, which lacks it)",
                declared.name()
            );
            true
        }
        None => {
            println!("skipped: {why} (the server lacks it; run against one that has it)");
            true
        }
    }
}

/// Whether the test should stop here because the server is not a real
/// replica set of at least `members` members. False, so the test goes on,
/// when it is one. Otherwise it prints `skipped: <why>` and returns true
/// where the run is not declared ([`TOPOLOGY_VARIABLE`]) or is declared
/// with a topology of fewer members (a `standalone` or `sharded` run for a
/// three-member test), and panics where the declared topology has that
/// many.
///
/// # Panics
///
/// As described, and as [`kind`] does; also when the server is not what
/// the run declares.
pub async fn require_replica_set_members(db: &Database, members: usize, why: &str) -> bool {
    let server = Server::ask(db).await;
    let declared = server.check_declared();
    if server.kind == ServerKind::Real && server.set_name.is_some() && server.members >= members {
        return false;
    }
    let has_it = declared.is_some_and(|declared| declared.members() >= members);
    skip_for_topology(
        declared,
        has_it,
        &format!("{why} (needs a replica set of {members} members)"),
    )
}

/// Whether the test should stop here because the server is not a real
/// `mongos` in front of a sharded cluster. False, so the test goes on,
/// when it is one. Otherwise it prints `skipped: <why>` and returns true,
/// except in a run declared `sharded` ([`TOPOLOGY_VARIABLE`]), where it
/// panics.
///
/// # Panics
///
/// As described, and as [`kind`] does; also when the server is not what
/// the run declares.
pub async fn require_sharded(db: &Database, why: &str) -> bool {
    let server = Server::ask(db).await;
    let declared = server.check_declared();
    if server.kind == ServerKind::Real && server.mongos {
        return false;
    }
    let has_it = declared == Some(Topology::Sharded);
    skip_for_topology(declared, has_it, &format!("{why} (needs a sharded cluster)"))
}

/// Whether the test should stop here because the server runs
/// transactions (a replica set member or a `mongos`) and the test is of a
/// standalone server, which runs none (the emulator answers as one). False,
/// so the test goes on, on a standalone; otherwise as
/// [`require_sharded`] for a standalone run.
///
/// # Panics
///
/// As [`require_sharded`].
pub async fn require_standalone(db: &Database, why: &str) -> bool {
    let server = Server::ask(db).await;
    let declared = server.check_declared();
    if server.set_name.is_none() && !server.mongos {
        return false;
    }
    let has_it = declared == Some(Topology::Standalone);
    skip_for_topology(declared, has_it, &format!("{why} (needs a standalone server)"))
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

/// The reply to `command`.
///
/// # Panics
///
/// When the server does not answer it, or refuses it.
async fn answer(admin: &Database, command: Document) -> Document {
    admin.run_command(command.clone()).await.unwrap_or_else(|error| {
        panic!("the server did not answer {command} as every MongoDB server and the emulator do: {error}")
    })
}

/// Whether the test should stop here because the server is not a real
/// MongoDB server; when so, prints
/// `skipped: <why> (the server is the emulator, which ...)`, so the test
/// output says what was not checked.
///
/// `why` says what the test needs and how the emulator falls short of it,
/// such as "a conflicting index must be refused; the emulator replaces it".
///
/// # Panics
///
/// In a run declared against a real server ([`TOPOLOGY_VARIABLE`]) when
/// the server is not one, or not the declared topology; and as [`kind`]
/// does.
pub async fn skip_unless_real(db: &Database, why: &str) -> bool {
    let server = Server::ask(db).await;
    server.check_declared();
    match server.kind {
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

/// A proxy in front of a server that runs transactions, for the tests of
/// what the library sends in one: a real replica set as it is, or the
/// emulator with the lock's own `hello` (the one sent to `db`, not the
/// driver's to `admin`) answered as a replica set's primary would answer
/// it, so that the library sends transactions, which the emulator commits
/// and aborts (isolating nothing). `None`, with the reason printed, on a
/// real standalone server, which runs no transaction.
///
/// # Panics
///
/// When the server cannot be asked what it is.
pub async fn replica_set_proxy(db: &Database) -> Option<crate::proxy::FaultProxy> {
    use crate::proxy::{Answer, Fault, FaultProxy, Match, Rule};
    let proxy = FaultProxy::in_front_of(&crate::uri()).await;
    let server = Server::ask(db).await;
    match server.kind {
        ServerKind::Real if server.set_name.is_some() => {}
        ServerKind::Real => {
            let why = "a standalone MongoDB server runs no transaction";
            let skipped = require_replica_set_members(db, 1, why).await;
            assert!(skipped, "a real server that is no replica set member");
            return None;
        }
        ServerKind::Emulator => {
            let name = db.name().to_owned();
            proxy.add(Rule::new(
                Match::command("hello").when(move |body| body.get_str("$db") == Ok(name.as_str())),
                Fault::Answer(Answer::new(|_| {
                    doc! {
                        "ok": 1.0, "isWritablePrimary": true, "setName": "rs0",
                        "localTime": schema_core::mongodb::bson::DateTime::now(), "maxWireVersion": 21,
                        "logicalSessionTimeoutMinutes": 30,
                    }
                })),
            ));
        }
    }
    Some(proxy)
}

/// The transaction (`lsid`, `txnNumber`) of a command sent as a statement
/// of one; `None` for a command outside any.
pub fn transaction_of(body: &Document) -> Option<(Bson, Bson)> {
    (body.get_bool("autocommit") == Ok(false)).then(|| {
        (
            body.get("lsid").cloned().unwrap_or(Bson::Null),
            body.get("txnNumber").cloned().unwrap_or(Bson::Null),
        )
    })
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
    fn the_topology_is_read_from_hello() {
        let standalone = Server::of(&mongod_build_info(), &mongod_hello());
        assert_eq!(standalone.topology(), "standalone");
        let member = |hosts: &[&str]| {
            let mut hello = mongod_hello();
            hello.insert("setName", "rs0");
            hello.insert("hosts", hosts.to_vec());
            Server::of(&mongod_build_info(), &hello).topology()
        };
        assert_eq!(member(&["127.0.0.1:27017"]), "replica-set");
        assert_eq!(
            member(&["127.0.0.1:27017", "127.0.0.1:27018", "127.0.0.1:27019"]),
            "replica-set-3"
        );
        let mut mongos = mongod_hello();
        mongos.insert("msg", "isdbgrid");
        assert_eq!(Server::of(&mongod_build_info(), &mongos).topology(), "sharded");
        for topology in Topology::ALL {
            assert_eq!(Topology::parse(topology.name()), Some(topology));
        }
        assert_eq!(Topology::parse("replicaset"), None);
    }

    #[test]
    fn a_topology_test_skips_only_where_the_declared_run_lacks_the_topology() {
        // Not declared: a developer's machine skips.
        assert!(skip_for_topology(None, false, "needs three members"));
        // Declared without it: the standalone job skips a three-member test.
        assert!(skip_for_topology(
            Some(Topology::Standalone),
            false,
            "needs three members"
        ));
        // Declared with it, and the server lacks it: a failure.
        let failed = std::panic::catch_unwind(|| {
            skip_for_topology(Some(Topology::ReplicaSetOfThree), true, "needs three members")
        });
        let message = failed.expect_err("no skip where the run has the topology");
        let message = message.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("replica-set-3"), "{message}");
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
