//! A fault-injecting TCP proxy for the MongoDB wire protocol.
//!
//! [`FaultProxy`] listens on a local port and forwards every connection to
//! one upstream server, byte for byte. Tests point a driver at
//! [`FaultProxy::uri`] (the driver may run in the test process or in a child
//! process) and add [`Rule`]s that make chosen commands misbehave: answer
//! with an error or a made-up reply, arrive late, wait until the test lets
//! them through, run without the client ever hearing back, or cut the
//! connection. This is how the tests reach failure paths that a healthy
//! server never takes: a primary stepping down in the middle of a
//! migration, a lock renewal that is never acknowledged, and so on.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};
//!
//! let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
//! let stepped_down = proxy.add(
//!     Rule::new(Match::command("insert").on("schema_versions"), Fault::not_writable_primary()).times(1),
//! );
//! let client = schema_core::mongodb::Client::with_uri_str(proxy.uri()).await.unwrap();
//! // ... run the code under test with `client` ...
//! assert_eq!(stepped_down.hits(), 1);
//! # }
//! ```
//!
//! Every command a client sends and every reply the server sends back are
//! recorded ([`FaultProxy::seen`], [`FaultProxy::replies`]), so that a test
//! can show a command reached the server and what the server made of it,
//! also when no client was left to hear.
//!
//! Only OP_MSG requests (what current drivers send) are looked at; every
//! other message, and every reply, is forwarded untouched. The proxy parses
//! a request only to decide which rule applies and never re-encodes it.
//!
//! The driver's handshake and server monitoring (`hello`, `isMaster`,
//! `buildInfo`, the SASL conversation, `endSessions`, `killCursors`) go
//! through the proxy too, but [`Match::any`] leaves them alone so that a
//! blanket rule does not keep the driver from connecting at all; a rule
//! reaches them only by naming them with [`Match::command`].
//!
//! Everything the proxy spawns runs on the tokio runtime that called
//! [`FaultProxy::start`] and stops when the proxy is dropped or
//! [`FaultProxy::stop`]ped.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use schema_core::mongodb::bson::{Bson, Document, doc};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// The opcode of OP_MSG, the only message kind the proxy looks into.
const OP_MSG: i32 = 2013;
/// OP_MSG flag bit 0: a CRC-32C checksum follows the sections.
const CHECKSUM_PRESENT: u32 = 1;
/// OP_MSG flag bit 1: the sender will not wait for a reply (requests), or
/// more replies follow without a request (exhaust replies).
const MORE_TO_COME: u32 = 1 << 1;
/// The length of the standard message header.
const HEADER_LEN: usize = 16;
/// The largest message the proxy accepts. The server's limit is 48 MB; a
/// length beyond this means the stream is not MongoDB wire protocol (or is
/// out of step), and the connection is closed rather than buffering it.
const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;
/// How long a new connection waits for the upstream server to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Commands that [`Match::any`] never matches: the connection handshake,
/// authentication, server monitoring and cleanup the driver does on its own.
const HOUSEKEEPING: [&str; 7] = [
    "hello",
    "isMaster",
    "buildInfo",
    "saslStart",
    "saslContinue",
    "endSessions",
    "killCursors",
];

/// A fault-injecting proxy in front of one MongoDB server.
///
/// Dropping it (or calling [`stop`](Self::stop)) closes the listener and
/// every connection through it. Share it between tasks by reference or in an
/// `Arc`; the [`RuleHandle`]s it returns can be moved around freely.
pub struct FaultProxy {
    shared: Arc<Shared>,
    address: SocketAddr,
}

/// One command the proxy saw a client send.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Which client connection sent it; connections are numbered from 1 in
    /// the order the proxy accepted them.
    pub connection: u64,
    /// The command name: the first key of the body, as the client spelled it.
    pub command: String,
    /// The value of the first key when it is a string (usually the target
    /// collection), the `collection` field of a `getMore`, and otherwise empty.
    pub target: String,
    /// The command body, with each document sequence of the message (for
    /// example the `documents` of an `insert`) added as an array under its
    /// identifier, as the driver's command monitoring shows it.
    pub body: Document,
    /// When the proxy received it.
    pub at: Instant,
    /// The request id the client gave it, which the server's reply answers
    /// (see [`Reply::response_to`]).
    pub request_id: i32,
}

/// One reply the server sent to a client through the proxy, recorded
/// whether or not the client got it: a reply that a rule swallowed
/// ([`Fault::BlackholeReply`], [`Fault::DropReply`]) is recorded too, so
/// that a test can tell what the command did on the server. Replies the
/// proxy made up itself are not recorded: no server sent them.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The client connection it went to (see [`Seen::connection`]).
    pub connection: u64,
    /// The request id of the command it answers (see [`Seen::request_id`]).
    pub response_to: i32,
    /// The reply's body section.
    pub body: Document,
    /// When the proxy received it from the server.
    pub at: Instant,
    /// Whether the proxy passed it on to the client.
    pub delivered: bool,
}

/// Which commands a [`Rule`] applies to.
#[derive(Clone)]
pub struct Match {
    command: Option<String>,
    target: Option<String>,
    predicate: Option<Predicate>,
}

/// An extra condition on a command body, from [`Match::when`].
type Predicate = Arc<dyn Fn(&Document) -> bool + Send + Sync>;

/// What a [`Rule`] does to a command it applies to.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward the command to the server only after this long. Later commands
    /// on the same connection queue behind it, as they would on a slow link.
    Delay(Duration),
    /// Hold the command until the rule's handle is
    /// [released](RuleHandle::release) or [removed](RuleHandle::remove), or
    /// the proxy is [cleared](FaultProxy::clear), then forward it. Later
    /// commands on the same connection wait behind it.
    Hold,
    /// Do not forward the command; answer it with
    /// `{ ok: 0, code, codeName, errmsg }`.
    Error {
        /// The server error code, e.g. 10107.
        code: i32,
        /// The code name, e.g. `NotWritablePrimary`.
        name: String,
        /// The error message.
        message: String,
    },
    /// Do not forward the command; answer it with this reply document as is.
    Reply(Document),
    /// Do not forward the command; answer it with what this function makes
    /// of it (for a reply that must change with time, such as a `hello`'s
    /// `localTime`).
    Answer(Answer),
    /// Forward the command but swallow the server's reply: the command runs,
    /// the client never hears back, and the connection stays open.
    BlackholeReply,
    /// Forward the command, and when the server's reply comes back, close
    /// the client's connection instead of passing it on: the command ran,
    /// and the client learns only that the connection was lost.
    DropReply,
    /// Close the client's connection (and the proxy's connection to the
    /// server behind it) instead of forwarding the command.
    Reset,
}

/// The function of a [`Fault::Answer`]: from a command's body, the reply.
#[derive(Clone)]
pub struct Answer(Arc<dyn Fn(&Document) -> Document + Send + Sync>);

impl Answer {
    /// Answers each command with `reply(body)`.
    pub fn new(reply: impl Fn(&Document) -> Document + Send + Sync + 'static) -> Answer {
        Answer(Arc::new(reply))
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Answer(..)")
    }
}

/// A fault to inject into the commands a [`Match`] selects; add it with
/// [`FaultProxy::add`].
#[derive(Clone, Debug)]
pub struct Rule {
    matcher: Match,
    fault: Fault,
    times: Option<usize>,
    during: Option<Duration>,
}

/// The test's hold on a rule added with [`FaultProxy::add`]: how often it
/// acted, and the way to release or remove it. Dropping the handle leaves
/// the rule in place.
#[derive(Clone)]
pub struct RuleHandle {
    state: Arc<RuleState>,
    proxy: Weak<Shared>,
}

/// What the proxy and every connection task share.
struct Shared {
    upstream: Vec<SocketAddr>,
    rules: Mutex<Vec<ActiveRule>>,
    seen: Mutex<Vec<Seen>>,
    /// The server's replies, and how many there are (to wait on).
    replies: Mutex<Vec<Reply>>,
    replied: watch::Sender<usize>,
    tasks: Mutex<Tasks>,
    next_connection: AtomicU64,
    next_rule: AtomicU64,
    /// Request ids for the replies the proxy makes up. They only need to be
    /// unique enough for logs; the driver matches replies on `responseTo`.
    next_request_id: AtomicI32,
}

/// The tasks to abort when the proxy stops or its connections are reset.
#[derive(Default)]
struct Tasks {
    stopped: bool,
    listener: Option<AbortHandle>,
    /// Per connection, the task of each direction. An entry goes away when
    /// either direction ends, taking the other down with it.
    connections: HashMap<u64, Vec<AbortHandle>>,
}

/// A rule once added: the [`Rule`] plus when it expires and its live state.
struct ActiveRule {
    matcher: Match,
    fault: Fault,
    times: Option<usize>,
    until: Option<Instant>,
    state: Arc<RuleState>,
}

/// The part of a rule its handle and the connection tasks share.
struct RuleState {
    id: u64,
    /// How many commands the rule acted on; a watch channel so that
    /// [`RuleHandle::wait_for_hits`] can wait for it.
    hits: watch::Sender<usize>,
    /// Commands waiting on a [`Fault::Hold`] right now.
    held: AtomicUsize,
    /// Set once the rule is released or removed: it no longer applies, and
    /// held commands go on.
    ended: watch::Sender<bool>,
}

/// One client connection's state shared by its two direction tasks.
struct Connection {
    id: u64,
    /// Both directions write to the client (forwarded replies, made-up
    /// replies); the lock keeps each message whole.
    client: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Request ids whose reply from the server is to be dropped.
    blackholed: Mutex<HashSet<i32>>,
    /// Request ids whose reply closes the connection instead.
    dropped: Mutex<HashSet<i32>>,
    /// How many forwarded requests still await the server's reply.
    awaiting: watch::Sender<usize>,
}

impl Connection {
    /// Notes a request forwarded to the server that it will answer.
    fn forwarded(&self) {
        self.awaiting.send_modify(|awaiting| *awaiting += 1);
    }

    /// Notes the server's last reply to a request.
    fn answered(&self) {
        self.awaiting
            .send_modify(|awaiting| *awaiting = awaiting.saturating_sub(1));
    }
}

/// How long a connection whose client has gone stays open for the replies
/// to what the proxy forwarded before (see [`forward_requests`]).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The opcode of OP_QUERY, which the driver may use for its first `hello`;
/// the server answers it.
const OP_QUERY: i32 = 2004;

/// An OP_MSG request, parsed as far as matching needs.
#[derive(Debug)]
struct Request {
    request_id: i32,
    more_to_come: bool,
    body: Document,
}

/// Locks a mutex even if a panicking thread poisoned it: the proxy's state
/// stays consistent between statements, and a test that panicked has
/// already failed for its own reason.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FaultProxy {
    /// Starts a proxy listening on `127.0.0.1` on a free port, forwarding to
    /// `upstream` (`host:port`, e.g. `127.0.0.1:27017`).
    ///
    /// The proxy connects only to the addresses `upstream` resolves to now,
    /// whatever the server later says about other members of its replica set.
    ///
    /// # Panics
    ///
    /// When `upstream` does not resolve or no local port can be bound.
    pub async fn start(upstream: &str) -> FaultProxy {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(upstream)
            .await
            .unwrap_or_else(|error| panic!("the proxy's upstream {upstream:?} does not resolve: {error}"))
            .collect();
        assert!(
            !resolved.is_empty(),
            "the proxy's upstream {upstream:?} resolves to no address"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy to a free local port");
        let address = listener.local_addr().expect("the proxy's listening address");
        let shared = Arc::new(Shared {
            upstream: resolved,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            replies: Mutex::new(Vec::new()),
            replied: watch::Sender::new(0),
            tasks: Mutex::new(Tasks::default()),
            next_connection: AtomicU64::new(1),
            next_rule: AtomicU64::new(1),
            next_request_id: AtomicI32::new(0x5052_0000),
        });
        let listening = tokio::spawn(accept_loop(listener, shared.clone()));
        lock(&shared.tasks).listener = Some(listening.abort_handle());
        FaultProxy { shared, address }
    }

    /// Starts a proxy in front of the first host of a `mongodb://` URI such
    /// as [`crate::uri`], on port 27017 when the URI names none.
    ///
    /// # Panics
    ///
    /// When the URI is not a `mongodb://` URI with a host (`mongodb+srv://`
    /// names no host to connect to), or as [`start`](Self::start) does.
    pub async fn in_front_of(uri: &str) -> FaultProxy {
        let upstream = upstream_of(uri)
            .unwrap_or_else(|| panic!("{uri:?} is not a mongodb:// URI the proxy can stand in front of"));
        FaultProxy::start(&upstream).await
    }

    /// The local address the proxy listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A URI for the driver that connects through the proxy:
    /// `mongodb://127.0.0.1:<port>/?directConnection=true`.
    ///
    /// `directConnection` keeps the driver on the proxy even when the server
    /// is a replica set member that lists the other members' real addresses.
    /// Append options with `&`, e.g. `&serverSelectionTimeoutMS=2000`. The
    /// URI carries no credentials.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.address)
    }

    /// The database `db` names, on a client of its own that goes through
    /// this proxy and gives up finding a server after two seconds.
    ///
    /// # Panics
    ///
    /// When the client cannot be built.
    pub async fn database(&self, db: &schema_core::mongodb::Database) -> schema_core::mongodb::Database {
        let uri = format!("{}&serverSelectionTimeoutMS=2000", self.uri());
        schema_core::mongodb::Client::with_uri_str(uri)
            .await
            .expect("the proxy's URI")
            .database(db.name())
    }

    /// Adds a rule after the existing ones and returns its handle.
    ///
    /// For each command the rules are checked in the order they were added;
    /// the first one that is active, matches and has `times` left applies,
    /// and at most one rule applies to a command.
    pub fn add(&self, rule: Rule) -> RuleHandle {
        let state = Arc::new(RuleState {
            id: self.shared.next_rule.fetch_add(1, Ordering::Relaxed),
            hits: watch::Sender::new(0),
            held: AtomicUsize::new(0),
            ended: watch::Sender::new(false),
        });
        let until = rule.during.map(|window| Instant::now() + window);
        lock(&self.shared.rules).push(ActiveRule {
            matcher: rule.matcher,
            fault: rule.fault,
            times: rule.times,
            until,
            state: state.clone(),
        });
        RuleHandle {
            state,
            proxy: Arc::downgrade(&self.shared),
        }
    }

    /// Removes every rule; commands they hold go on to the server.
    pub fn clear(&self) {
        let removed = std::mem::take(&mut *lock(&self.shared.rules));
        for rule in removed {
            rule.state.end();
        }
    }

    /// Closes every client connection open through the proxy now, with the
    /// proxy's connection to the server behind each. New connections are
    /// accepted as before.
    pub fn reset_connections(&self) {
        let connections = std::mem::take(&mut lock(&self.shared.tasks).connections);
        for task in connections.into_values().flatten() {
            task.abort();
        }
    }

    /// Every OP_MSG command clients sent so far, handshake and monitoring
    /// included, in the order the proxy received them.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// Every OP_MSG reply the server sent so far, in the order the proxy
    /// received them (see [`Reply`]).
    pub fn replies(&self) -> Vec<Reply> {
        lock(&self.shared.replies).clone()
    }

    /// The server's reply to the command `seen`, if it has come.
    pub fn reply_to(&self, seen: &Seen) -> Option<Reply> {
        lock(&self.shared.replies)
            .iter()
            .find(|reply| reply.connection == seen.connection && reply.response_to == seen.request_id)
            .cloned()
    }

    /// The commands in [`seen`](Self::seen) that `matcher` matches, each
    /// with the server's reply to it if that has come.
    pub fn exchanges(&self, matcher: &Match) -> Vec<(Seen, Option<Reply>)> {
        self.seen()
            .into_iter()
            .filter(|seen| matcher.matches(&seen.body))
            .map(|seen| {
                let reply = self.reply_to(&seen);
                (seen, reply)
            })
            .collect()
    }

    /// Waits for the server's reply to the command `seen`; `None` if none
    /// came within `timeout`.
    pub async fn wait_for_reply(&self, seen: &Seen, timeout: Duration) -> Option<Reply> {
        let mut replied = self.shared.replied.subscribe();
        let until = tokio::time::Instant::now() + timeout;
        loop {
            // Marked seen before looking, so a reply that comes in between
            // wakes the wait below.
            replied.borrow_and_update();
            if let Some(reply) = self.reply_to(seen) {
                return Some(reply);
            }
            match tokio::time::timeout_at(until, replied.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.reply_to(seen),
            }
        }
    }

    /// How many of the commands in [`seen`](Self::seen) `matcher` matches.
    pub fn count(&self, matcher: &Match) -> usize {
        lock(&self.shared.seen)
            .iter()
            .filter(|seen| matcher.matches(&seen.body))
            .count()
    }

    /// Closes the listener and every connection through the proxy. Held
    /// commands are dropped, not forwarded. The sockets close as soon as the
    /// runtime has cancelled the proxy's tasks, which is almost at once but
    /// not before this returns. Dropping the proxy does the same.
    pub fn stop(&self) {
        let tasks = {
            let mut tasks = lock(&self.shared.tasks);
            tasks.stopped = true;
            let connections = std::mem::take(&mut tasks.connections);
            tasks
                .listener
                .take()
                .into_iter()
                .chain(connections.into_values().flatten())
                .collect::<Vec<_>>()
        };
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("address", &self.address)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

impl Match {
    /// Commands named `name`, compared ignoring ASCII case (the driver sends
    /// e.g. `findAndModify`, and older ones `findandmodify`).
    pub fn command(name: &str) -> Match {
        Match {
            command: Some(name.to_owned()),
            target: None,
            predicate: None,
        }
    }

    /// Every OP_MSG command except the driver's housekeeping: `hello`,
    /// `isMaster`, `buildInfo`, `saslStart`, `saslContinue`, `endSessions`
    /// and `killCursors`, which only [`Match::command`] with their name
    /// matches. A blanket rule thus leaves connection handshakes,
    /// authentication and server monitoring working.
    pub fn any() -> Match {
        Match {
            command: None,
            target: None,
            predicate: None,
        }
    }

    /// Only commands whose target (the value of the first key, usually a
    /// collection name; see [`Seen::target`]) is exactly `target`.
    pub fn on(mut self, target: &str) -> Match {
        self.target = Some(target.to_owned());
        self
    }

    /// Only commands whose body `predicate` accepts as well. The body is the
    /// one [`Seen::body`] describes, document sequences included. The
    /// predicate runs while the proxy's rule list is locked, so it must not
    /// call back into the proxy.
    pub fn when(mut self, predicate: impl Fn(&Document) -> bool + Send + Sync + 'static) -> Match {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Whether a command with this body matches.
    pub fn matches(&self, body: &Document) -> bool {
        let Some(name) = body.keys().next() else {
            return false;
        };
        let name_matches = match &self.command {
            Some(wanted) => name.eq_ignore_ascii_case(wanted),
            None => !HOUSEKEEPING
                .iter()
                .any(|skipped| name.eq_ignore_ascii_case(skipped)),
        };
        name_matches
            && self
                .target
                .as_deref()
                .is_none_or(|wanted| target_of(body) == wanted)
            && self.predicate.as_ref().is_none_or(|predicate| predicate(body))
    }
}

impl fmt::Debug for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Match")
            .field("command", &self.command.as_deref().unwrap_or("<any>"))
            .field("target", &self.target)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Fault {
    /// `NotWritablePrimary` (10107): what a secondary, or a former primary,
    /// answers to a write.
    pub fn not_writable_primary() -> Fault {
        Fault::error(10107, "NotWritablePrimary", "not primary")
    }

    /// `PrimarySteppedDown` (189): the primary stepped down while the
    /// command ran.
    pub fn primary_stepped_down() -> Fault {
        Fault::error(
            189,
            "PrimarySteppedDown",
            "primary stepped down while running the command",
        )
    }

    /// `ShutdownInProgress` (91): the server is shutting down.
    pub fn shutdown_in_progress() -> Fault {
        Fault::error(
            91,
            "ShutdownInProgress",
            "the server is in quiesce mode and will shut down",
        )
    }

    /// A successful reply to an `insert` into `collection` whose one
    /// document hit a duplicate `_id`: `ok: 1`, `n: 0` and a write error
    /// with code 11000 at index 0.
    pub fn duplicate_key(collection: &str) -> Fault {
        Fault::Reply(doc! {
            "n": 0,
            "writeErrors": [{
                "index": 0,
                "code": 11000,
                "errmsg": format!("E11000 duplicate key error collection: {collection} index: _id_ dup key"),
            }],
            "ok": 1.0,
        })
    }

    /// A [`Fault::Error`] from its parts.
    pub fn error(code: i32, name: &str, message: &str) -> Fault {
        Fault::Error {
            code,
            name: name.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl Rule {
    /// A rule that applies `fault` to every command `matcher` matches, for
    /// as long as it exists.
    pub fn new(matcher: Match, fault: Fault) -> Rule {
        Rule {
            matcher,
            fault,
            times: None,
            during: None,
        }
    }

    /// Applies only to the first `n` matching commands; later ones go on to
    /// the next rules, or to the server.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }

    /// Applies only for `window` from when the rule is added.
    pub fn during(mut self, window: Duration) -> Rule {
        self.during = Some(window);
        self
    }

    /// A rule that answers the `listIndexes` of `collection` in the
    /// database named `db` (no other) as MongoDB answers it when `indexes`
    /// are that collection's: for a listing the server under test would
    /// not give.
    pub fn list_indexes(db: &str, collection: &str, indexes: Vec<Document>) -> Rule {
        let database = db.to_owned();
        let matcher = Match::command("listIndexes")
            .on(collection)
            .when(move |body| body.get_str("$db") == Ok(database.as_str()));
        let reply = doc! {
            "cursor": { "id": 0_i64, "ns": format!("{db}.{collection}"), "firstBatch": indexes },
            "ok": 1.0,
        };
        Rule::new(matcher, Fault::Reply(reply))
    }
}

impl RuleHandle {
    /// How many commands the rule has acted on so far (a held command counts
    /// from when it is held).
    pub fn hits(&self) -> usize {
        *self.state.hits.borrow()
    }

    /// Waits until the rule has acted on at least `n` commands; `false` if
    /// that did not happen within `timeout`.
    pub async fn wait_for_hits(&self, n: usize, timeout: Duration) -> bool {
        let mut hits = self.state.hits.subscribe();
        // The sender lives in `self.state`, so waiting cannot fail for want
        // of one; treat it as "not reached" all the same.
        matches!(
            tokio::time::timeout(timeout, hits.wait_for(|hits| *hits >= n)).await,
            Ok(Ok(_))
        )
    }

    /// How many commands the rule holds right now ([`Fault::Hold`]).
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Lets the held commands go on to the server, and ends the rule: it
    /// holds (or does) nothing more.
    pub fn release(&self) {
        self.remove();
    }

    /// Ends the rule: it no longer applies, and the commands it holds go on
    /// to the server.
    pub fn remove(&self) {
        if let Some(proxy) = self.proxy.upgrade() {
            lock(&proxy.rules).retain(|rule| rule.state.id != self.state.id);
        }
        self.state.end();
    }
}

impl fmt::Debug for RuleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleHandle")
            .field("hits", &self.hits())
            .field("held", &self.held())
            .field("ended", &*self.state.ended.borrow())
            .finish()
    }
}

impl RuleState {
    /// Marks the rule ended, which lets its held commands go.
    fn end(&self) {
        self.ended.send_replace(true);
    }
}

/// Counts a held command for [`RuleHandle::held`] while it is held,
/// including when its connection is closed meanwhile.
struct HeldGuard(Arc<RuleState>);

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    /// Notes a command in the seen list.
    fn note(&self, connection: u64, request: &Request) {
        let body = &request.body;
        let command = body.keys().next().cloned().unwrap_or_default();
        lock(&self.seen).push(Seen {
            connection,
            command,
            target: target_of(body).to_owned(),
            body: body.clone(),
            at: Instant::now(),
            request_id: request.request_id,
        });
    }

    /// Notes a reply of the server in the replies list, when it is an
    /// OP_MSG whose body parses.
    fn note_reply(&self, connection: u64, message: &[u8], delivered: bool) {
        let (Some(response_to), Some(parsed)) = (i32_at(message, 8), parse_request(message)) else {
            return;
        };
        lock(&self.replies).push(Reply {
            connection,
            response_to,
            body: parsed.body,
            at: Instant::now(),
            delivered,
        });
        self.replied.send_modify(|count| *count += 1);
    }

    /// The fault the first applicable rule injects into a command with this
    /// body, counting the hit (and the hold) before anyone can see the
    /// command's effect.
    fn fault_for(&self, body: &Document) -> Option<(Fault, Arc<RuleState>)> {
        let rules = lock(&self.rules);
        let now = Instant::now();
        let rule = rules.iter().find(|rule| {
            !*rule.state.ended.borrow()
                && rule.until.is_none_or(|until| now < until)
                && rule.times.is_none_or(|times| *rule.state.hits.borrow() < times)
                && rule.matcher.matches(body)
        })?;
        if matches!(rule.fault, Fault::Hold) {
            // Before the hit, so that a test that saw the hit sees the hold.
            rule.state.held.fetch_add(1, Ordering::SeqCst);
        }
        rule.state.hits.send_modify(|hits| *hits += 1);
        Some((rule.fault.clone(), rule.state.clone()))
    }

    /// Closes one connection: aborts both its direction tasks.
    fn close(&self, connection: u64) {
        let tasks = lock(&self.tasks).connections.remove(&connection);
        for task in tasks.into_iter().flatten() {
            task.abort();
        }
    }
}

/// Accepts clients until the proxy stops, starting a connection task for each.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning, and keep serving.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        // Spawn and register under the lock, so that neither `stop` nor the
        // task's own cleanup can run between the two.
        let mut tasks = lock(&shared.tasks);
        if tasks.stopped {
            return;
        }
        let task = tokio::spawn(client_to_server(id, client, shared.clone()));
        tasks.connections.insert(id, vec![task.abort_handle()]);
    }
}

/// Connects to the server for a new client, starts the server-to-client
/// task, then forwards the client's messages and injects the faults. When it
/// ends, for whatever reason, the whole connection closes.
async fn client_to_server(id: u64, client: TcpStream, shared: Arc<Shared>) {
    if let Some(server) = connect_upstream(&shared.upstream).await {
        // Both sides at once: the driver and server send small messages and
        // wait for the answer, which Nagle's algorithm would delay.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let connection = Arc::new(Connection {
            id,
            client: tokio::sync::Mutex::new(client_write),
            blackholed: Mutex::new(HashSet::new()),
            dropped: Mutex::new(HashSet::new()),
            awaiting: watch::Sender::new(0),
        });
        let started = {
            let mut tasks = lock(&shared.tasks);
            // Absent when the connection was reset or the proxy stopped
            // while connecting: then this task is being aborted anyway.
            match tasks.connections.get_mut(&id) {
                Some(entry) => {
                    let task =
                        tokio::spawn(server_to_client(server_read, connection.clone(), shared.clone()));
                    entry.push(task.abort_handle());
                    true
                }
                None => false,
            }
        };
        if started {
            forward_requests(client_read, server_write, &connection, &shared).await;
        }
    }
    shared.close(id);
}

/// A connection to the first upstream address that accepts one in time.
async fn connect_upstream(upstream: &[SocketAddr]) -> Option<TcpStream> {
    for address in upstream {
        if let Ok(Ok(server)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            return Some(server);
        }
    }
    None
}

/// The client-to-server direction: reads each request, applies the first
/// applicable rule and forwards it (or not). Returns when either side is
/// closed, the stream stops making sense, or a rule resets the connection.
///
/// When the client goes away (a process killed) while the server has yet
/// to answer what the proxy forwarded (a held command let go after the
/// client died), the connection to the server stays open until those
/// replies come, for [`DRAIN_TIMEOUT`] at most: the server runs the command
/// as it would for a client that vanished on a real network, and its reply
/// is recorded (see [`FaultProxy::replies`]).
async fn forward_requests(
    client: OwnedReadHalf,
    mut server: OwnedWriteHalf,
    connection: &Connection,
    shared: &Shared,
) {
    let mut client = BufReader::new(client);
    while let Ok(Some(message)) = read_message(&mut client).await {
        let Some(request) = parse_request(&message) else {
            // Not OP_MSG (OP_QUERY, OP_COMPRESSED, ...) or not parseable:
            // pass it on untouched and let the server judge it.
            if i32_at(&message, 12) == Some(OP_QUERY) {
                connection.forwarded();
            }
            if server.write_all(&message).await.is_err() {
                return;
            }
            continue;
        };
        shared.note(connection.id, &request);
        let forward = match shared.fault_for(&request.body) {
            None => true,
            Some((Fault::Delay(delay), _)) => {
                tokio::time::sleep(delay).await;
                true
            }
            Some((Fault::Hold, rule)) => {
                let _held = HeldGuard(rule.clone());
                let mut ended = rule.ended.subscribe();
                // The sender lives in `rule`, so this returns only once the
                // rule has ended.
                let _ = ended.wait_for(|ended| *ended).await;
                true
            }
            Some((Fault::Error { code, name, message }, _)) => {
                let reply = doc! { "ok": 0.0, "errmsg": message, "code": code, "codeName": name };
                if !answer(connection, shared, &request, &reply).await {
                    return;
                }
                false
            }
            Some((Fault::Reply(reply), _)) => {
                if !answer(connection, shared, &request, &reply).await {
                    return;
                }
                false
            }
            Some((Fault::Answer(reply), _)) => {
                let reply = (reply.0)(&request.body);
                if !answer(connection, shared, &request, &reply).await {
                    return;
                }
                false
            }
            Some((Fault::DropReply, _)) => {
                if !request.more_to_come {
                    // Noted before forwarding, so the reply cannot overtake it.
                    lock(&connection.dropped).insert(request.request_id);
                }
                true
            }
            Some((Fault::BlackholeReply, _)) => {
                if !request.more_to_come {
                    // Noted before forwarding, so the reply cannot overtake it.
                    lock(&connection.blackholed).insert(request.request_id);
                }
                true
            }
            Some((Fault::Reset, _)) => return,
        };
        if forward && !request.more_to_come {
            connection.forwarded();
        }
        if forward && server.write_all(&message).await.is_err() {
            return;
        }
    }
    let mut awaiting = connection.awaiting.subscribe();
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, awaiting.wait_for(|awaiting| *awaiting == 0)).await;
}

/// Answers a request with a reply the proxy made up, unless the client said
/// it expects none (`moreToCome`). `false` when the client is gone.
async fn answer(connection: &Connection, shared: &Shared, request: &Request, reply: &Document) -> bool {
    if request.more_to_come {
        return true;
    }
    let request_id = shared.next_request_id.fetch_add(1, Ordering::Relaxed);
    let Some(message) = reply_message(request_id, request.request_id, reply) else {
        return false;
    };
    connection.client.lock().await.write_all(&message).await.is_ok()
}

/// The server-to-client direction: forwards every message except replies
/// to blackholed requests, and closes at a dropped request's reply. A
/// client that is gone gets nothing more, but the replies it was owed are
/// still read and recorded. When it ends the whole connection closes.
async fn server_to_client(server: OwnedReadHalf, connection: Arc<Connection>, shared: Arc<Shared>) {
    let mut server = BufReader::new(server);
    let mut client_gone = false;
    while let Ok(Some(message)) = read_message(&mut server).await {
        if let Some((request_id, response_to, more_to_come)) = reply_ids(&message) {
            if lock(&connection.dropped).remove(&response_to) {
                shared.note_reply(connection.id, &message, false);
                break;
            }
            let swallowed = {
                let mut blackholed = lock(&connection.blackholed);
                let swallowed = blackholed.remove(&response_to);
                if swallowed && more_to_come {
                    // An exhaust reply: the next one answers this one, and is
                    // part of the same swallowed reply.
                    blackholed.insert(request_id);
                }
                swallowed
            };
            shared.note_reply(connection.id, &message, !swallowed);
            if !more_to_come {
                connection.answered();
            }
            if swallowed {
                continue;
            }
        }
        if !client_gone && connection.client.lock().await.write_all(&message).await.is_err() {
            client_gone = true;
        }
        if client_gone && *connection.awaiting.borrow() == 0 {
            break;
        }
    }
    shared.close(connection.id);
}

/// Reads one whole message. `Ok(None)` at the end of the stream, an error
/// when the stream breaks or the length in the header cannot be right.
async fn read_message<R: AsyncReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER_LEN];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = i32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let length = usize::try_from(length).unwrap_or(0);
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&length) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("message length {length} in a wire protocol header"),
        ));
    }
    let mut message = vec![0u8; length];
    message[..HEADER_LEN].copy_from_slice(&header);
    reader.read_exact(&mut message[HEADER_LEN..]).await?;
    Ok(Some(message))
}

/// The little-endian `i32` at `offset`, if the bytes are there.
fn i32_at(bytes: &[u8], offset: usize) -> Option<i32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(i32::from_le_bytes(field.try_into().ok()?))
}

/// A length field at `offset` as a `usize`; `None` when negative or absent.
fn length_at(bytes: &[u8], offset: usize) -> Option<usize> {
    usize::try_from(i32_at(bytes, offset)?).ok()
}

/// Parses a whole OP_MSG request; `None` for other opcodes and for anything
/// malformed.
fn parse_request(message: &[u8]) -> Option<Request> {
    if length_at(message, 0)? != message.len() || i32_at(message, 12)? != OP_MSG {
        return None;
    }
    let request_id = i32_at(message, 4)?;
    let flags = i32_at(message, HEADER_LEN)? as u32;
    let mut end = message.len();
    if flags & CHECKSUM_PRESENT != 0 {
        end = end.checked_sub(4)?;
    }
    let mut position = HEADER_LEN + 4;
    let mut body = None;
    let mut sequences = Vec::new();
    while position < end {
        let kind = message[position];
        position += 1;
        let size = length_at(message, position)?;
        let section_end = position
            .checked_add(size)
            .filter(|section_end| *section_end <= end)?;
        match kind {
            0 if body.is_none() => {
                body = Some(Document::from_reader(&message[position..section_end]).ok()?);
            }
            1 => {
                let section = &message[position..section_end];
                let name_start = 4;
                let name_len = section.get(name_start..)?.iter().position(|byte| *byte == 0)?;
                let name = std::str::from_utf8(&section[name_start..name_start + name_len]).ok()?;
                let mut documents = Vec::new();
                let mut offset = name_start + name_len + 1;
                while offset < section.len() {
                    let document_len = length_at(section, offset)?;
                    let document_end = offset
                        .checked_add(document_len)
                        .filter(|document_end| *document_end <= section.len())?;
                    documents.push(Bson::Document(
                        Document::from_reader(&section[offset..document_end]).ok()?,
                    ));
                    offset = document_end;
                }
                sequences.push((name.to_owned(), documents));
            }
            _ => return None,
        }
        position = section_end;
    }
    let mut body = body?;
    for (name, documents) in sequences {
        if !body.contains_key(&name) {
            body.insert(name, documents);
        }
    }
    Some(Request {
        request_id,
        more_to_come: flags & MORE_TO_COME != 0,
        body,
    })
}

/// `(requestID, responseTo, moreToCome)` of a message from the server;
/// `moreToCome` is only ever set on an OP_MSG.
fn reply_ids(message: &[u8]) -> Option<(i32, i32, bool)> {
    let more_to_come =
        i32_at(message, 12)? == OP_MSG && (i32_at(message, HEADER_LEN)? as u32) & MORE_TO_COME != 0;
    Some((i32_at(message, 4)?, i32_at(message, 8)?, more_to_come))
}

/// An OP_MSG reply: no flags and `reply` as its one body section.
fn reply_message(request_id: i32, response_to: i32, reply: &Document) -> Option<Vec<u8>> {
    let mut message = Vec::with_capacity(64);
    message.extend_from_slice(&[0; HEADER_LEN]);
    message.extend_from_slice(&0u32.to_le_bytes());
    message.push(0);
    reply.to_writer(&mut message).ok()?;
    let length = i32::try_from(message.len()).ok()?;
    message[0..4].copy_from_slice(&length.to_le_bytes());
    message[4..8].copy_from_slice(&request_id.to_le_bytes());
    message[8..12].copy_from_slice(&response_to.to_le_bytes());
    message[12..16].copy_from_slice(&OP_MSG.to_le_bytes());
    Some(message)
}

/// What a command acts on, as [`Seen::target`] describes it.
fn target_of(body: &Document) -> &str {
    let Some((name, value)) = body.iter().next() else {
        return "";
    };
    match value {
        Bson::String(target) => target,
        _ if name.eq_ignore_ascii_case("getMore") => body.get_str("collection").unwrap_or_default(),
        _ => "",
    }
}

/// `host:port` of the first host in a `mongodb://` URI, with the default
/// port when it names none.
fn upstream_of(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("mongodb://")?;
    let hosts = rest.split(['/', '?']).next()?;
    // Credentials end at the last `@` (a password may not contain one
    // unescaped, but a user name in an odd URI might).
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, hosts)| hosts);
    let host = hosts.split(',').next()?;
    if host.is_empty() {
        return None;
    }
    let has_port = match host.rfind(']') {
        // An IPv6 literal: a port follows the bracket.
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    };
    Some(if has_port {
        host.to_owned()
    } else {
        format!("{host}:27017")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OP_MSG request built by hand: `flags`, a body section and one
    /// document sequence.
    fn request(
        request_id: i32,
        flags: u32,
        body: &Document,
        sequence: Option<(&str, &[Document])>,
    ) -> Vec<u8> {
        let mut sections = vec![0u8];
        body.to_writer(&mut sections).expect("encode the body");
        if let Some((name, documents)) = sequence {
            let mut payload = Vec::new();
            payload.extend_from_slice(name.as_bytes());
            payload.push(0);
            for document in documents {
                document.to_writer(&mut payload).expect("encode a document");
            }
            sections.push(1);
            sections.extend_from_slice(&(payload.len() as i32 + 4).to_le_bytes());
            sections.extend_from_slice(&payload);
        }
        let checksum = if flags & CHECKSUM_PRESENT != 0 { 4 } else { 0 };
        let length = (HEADER_LEN + 4 + sections.len() + checksum) as i32;
        let mut message = Vec::new();
        for field in [length, request_id, 0, OP_MSG] {
            message.extend_from_slice(&field.to_le_bytes());
        }
        message.extend_from_slice(&flags.to_le_bytes());
        message.extend_from_slice(&sections);
        message.extend_from_slice(&[0xAB; 4][..checksum]);
        message
    }

    #[test]
    fn parses_the_body_and_document_sequences() {
        let documents = [doc! { "_id": 1 }, doc! { "_id": 2 }];
        let message = request(
            7,
            MORE_TO_COME | CHECKSUM_PRESENT,
            &doc! { "insert": "items", "$db": "app" },
            Some(("documents", &documents)),
        );
        let parsed = parse_request(&message).expect("a valid OP_MSG");
        assert_eq!(parsed.request_id, 7);
        assert!(parsed.more_to_come);
        assert_eq!(
            parsed.body,
            doc! { "insert": "items", "$db": "app", "documents": [{ "_id": 1 }, { "_id": 2 }] }
        );
        assert_eq!(target_of(&parsed.body), "items");
    }

    #[test]
    fn malformed_or_other_messages_are_not_parsed_and_do_not_panic() {
        let good = request(1, 0, &doc! { "find": "items" }, Some(("x", &[doc! {}])));
        assert!(parse_request(&good).is_some());
        // Every truncation, and every single corrupted byte.
        for end in 0..good.len() {
            let _ = parse_request(&good[..end]);
        }
        for index in 0..good.len() {
            for value in [0x00, 0x01, 0x7F, 0xFF] {
                let mut bad = good.clone();
                bad[index] = value;
                let _ = parse_request(&bad);
                let _ = reply_ids(&bad);
            }
        }
        let mut query = good.clone();
        query[12..16].copy_from_slice(&2004i32.to_le_bytes());
        assert!(parse_request(&query).is_none());
        assert!(parse_request(&[]).is_none());
        assert!(reply_ids(&[1, 2, 3]).is_none());
    }

    #[test]
    fn made_up_replies_answer_the_request() {
        let message = reply_message(5, 9, &doc! { "ok": 1 }).expect("a reply");
        assert_eq!(i32_at(&message, 0), Some(message.len() as i32));
        assert_eq!(reply_ids(&message), Some((5, 9, false)));
        let parsed = parse_request(&message).expect("a well-formed OP_MSG");
        assert_eq!(parsed.body, doc! { "ok": 1 });
    }

    #[test]
    fn matches_by_name_target_and_predicate_but_any_skips_housekeeping() {
        let update = doc! { "update": "schema_lock", "updates": [] };
        assert!(Match::any().matches(&update));
        assert!(Match::command("UPDATE").on("schema_lock").matches(&update));
        assert!(!Match::command("update").on("other").matches(&update));
        assert!(
            !Match::command("update")
                .when(|body| body.contains_key("x"))
                .matches(&update)
        );
        for housekeeping in [
            doc! { "hello": 1 },
            doc! { "ismaster": 1 },
            doc! { "saslStart": 1 },
        ] {
            assert!(!Match::any().matches(&housekeeping));
        }
        assert!(Match::command("isMaster").matches(&doc! { "ismaster": 1 }));
        assert!(!Match::any().matches(&doc! {}));
        let get_more = doc! { "getMore": 42i64, "collection": "items" };
        assert!(Match::command("getMore").on("items").matches(&get_more));
    }

    #[test]
    fn finds_the_upstream_in_a_uri() {
        for (uri, upstream) in [
            ("mongodb://127.0.0.1:27018/", Some("127.0.0.1:27018")),
            ("mongodb://localhost", Some("localhost:27017")),
            ("mongodb://u:p@h1:1,h2:2/db?replicaSet=rs", Some("h1:1")),
            ("mongodb://[::1]/?x=1", Some("[::1]:27017")),
            ("mongodb://[::1]:5", Some("[::1]:5")),
            ("mongodb+srv://cluster.example", None),
            ("mongodb:///", None),
        ] {
            assert_eq!(upstream_of(uri).as_deref(), upstream, "{uri}");
        }
    }
}
