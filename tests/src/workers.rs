//! Driving `apply-worker` processes from the multi-process tests: start
//! them against the server or a proxy, wait for them within a deadline,
//! pause or kill them, and read back what their migrations logged.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};

/// The worker's migrations, in apply order.
pub const MIGRATIONS: [&str; 4] = ["c_0001", "c_0002", "c_0003_slow", "c_0004"];

/// How to start one worker process. `binary` is the test's
/// `env!("CARGO_BIN_EXE_apply-worker")`.
pub struct Worker {
    command: Command,
}

impl Worker {
    /// A worker applying to `db` on the test server, with a lease of
    /// `lease_ms`.
    pub fn new(binary: &str, db: &Database, lease_ms: u64) -> Worker {
        let mut command = Command::new(binary);
        command
            .env("MONGODB_URI", crate::uri())
            .env("WORKER_DB", db.name())
            .env("WORKER_LEASE_MS", lease_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Worker { command }
    }

    /// Connects through `uri` (a proxy's) instead of to the server.
    pub fn through(mut self, uri: &str) -> Worker {
        self.command.env("MONGODB_URI", uri);
        self
    }

    /// Sets one of the worker's variables (see `apply-worker.rs`).
    pub fn env(mut self, variable: &str, value: impl ToString) -> Worker {
        self.command.env(variable, value.to_string());
        self
    }

    /// Holds `c_0003_slow` in the middle of its run until `gate` opens
    /// (see `WORKER_GATE`).
    pub fn gated(self, gate: &Gate) -> Worker {
        self.env("WORKER_GATE", gate.path.display())
    }

    /// Starts the process.
    ///
    /// # Panics
    ///
    /// When the binary cannot be started.
    pub fn spawn(mut self) -> Child {
        self.command.spawn().expect("start apply-worker")
    }

    /// Starts the process with `arguments`.
    ///
    /// # Panics
    ///
    /// When the binary cannot be started.
    pub fn spawn_with(mut self, arguments: &[&str]) -> Child {
        self.command.args(arguments);
        self.spawn()
    }
}

/// A gate that workers' `c_0003_slow` waits at (see [`Worker::gated`]):
/// a file that does not exist until [`Gate::open`]. Dropping the gate
/// opens it, so no worker waits for a test that has failed, and then
/// removes the file.
pub struct Gate {
    path: std::path::PathBuf,
}

impl Gate {
    /// A closed gate of its own for the test `name`.
    pub fn new(name: &str) -> Gate {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "schema-tests-gate-{name}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Gate { path }
    }

    /// Lets the waiting migrations go on.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn open(&self) {
        std::fs::write(&self.path, b"open").expect("open the gate");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        // Opened for a worker still waiting, then removed once it has had
        // time to look; a file left behind in the temporary directory
        // would only open a gate of the same name.
        let _ = std::fs::write(&self.path, b"open");
        let path = self.path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            let _ = std::fs::remove_file(path);
        });
    }
}

/// The processes (`host:pid`, the owner id without its per-acquisition
/// part) whose insert of the lock (the first step of taking it) the server
/// refused with a duplicate key through `proxy`: processes that found the
/// lock held by another. Each once, in the order of their first refusal.
/// Only replies that came from the server count, not ones a rule of the
/// proxy made up.
pub fn refused_lock_inserts(proxy: &crate::proxy::FaultProxy) -> Vec<String> {
    let mut processes: Vec<String> = Vec::new();
    for sent in proxy.seen() {
        if !(sent.command == "insert" && sent.target == "schema_lock") {
            continue;
        }
        let duplicate = proxy.reply_to(&sent).is_some_and(|reply| {
            reply
                .body
                .get_array("writeErrors")
                .ok()
                .and_then(|errors| errors.first())
                .and_then(Bson::as_document)
                .and_then(|error| integer(error.get("code")))
                == Some(11000)
        });
        let owner = sent
            .body
            .get_array("documents")
            .ok()
            .and_then(|documents| documents.first())
            .and_then(Bson::as_document)
            .and_then(|lock| lock.get_str("owner").ok());
        if let (true, Some(process)) = (duplicate, owner.map(process_of))
            && !processes.iter().any(|seen| seen == process)
        {
            processes.push(process.to_owned());
        }
    }
    processes
}

/// The process (`host:pid`) of a lock owner id (`host:pid:random`).
pub fn process_of(owner: &str) -> &str {
    owner.rsplit_once(':').map_or(owner, |(process, _)| process)
}

/// Waits for `child`, killing it if it runs past the deadline.
///
/// # Panics
///
/// When the process cannot be waited for.
pub fn finish(mut child: Child, deadline: Instant) -> Output {
    while child.try_wait().expect("poll the worker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the worker's output")
}

/// Kills `child` with SIGKILL and waits for it; the output of a process
/// that did die of the signal.
///
/// # Panics
///
/// When it exited otherwise (before the signal, or not of it).
pub fn kill(child: Child, deadline: Instant) -> Output {
    signal(&child, "KILL");
    let killed = finish(child, deadline);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(9),
        "killed by the signal: {}",
        text(&killed)
    );
    killed
}

/// Sends `signal` (`"STOP"`, `"CONT"`, `"KILL"`) to `child`.
///
/// # Panics
///
/// When `kill` cannot be run or fails.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// The lines a running process prints on stdout, read as they come.
pub struct Lines {
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Reads `child`'s stdout (which must be piped) from a thread of its
    /// own; `child` keeps its stderr.
    ///
    /// # Panics
    ///
    /// When stdout is not piped.
    pub fn of(child: &mut Child) -> Lines {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            lines,
            seen: Vec::new(),
        }
    }

    /// The value of the first line `key=value` printed from now on, or
    /// `None` when the process closes stdout or `deadline` passes first.
    pub fn wait_for(&mut self, key: &str, deadline: Instant) -> Option<String> {
        let prefix = format!("{key}=");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if let Some(value) = line.strip_prefix(prefix.as_str()) {
                return Some(value.to_owned());
            }
        }
    }

    /// Every line read so far, for messages.
    pub fn seen(&self) -> String {
        self.seen.join("\n")
    }
}

/// Standard output and error of a finished worker, for messages.
pub fn text(output: &Output) -> String {
    format!(
        "{:?}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The line of the worker's output that starts with `key=`, without it.
pub fn line<'o>(output: &'o str, key: &str) -> Option<&'o str> {
    let prefix = format!("{key}=");
    output.lines().find_map(|line| line.strip_prefix(prefix.as_str()))
}

/// Creates the worker's counters, all at zero.
///
/// # Panics
///
/// When the server refuses.
pub async fn create_counters(db: &Database) {
    let counters: Vec<Document> = MIGRATIONS.iter().map(|id| doc! { "_id": *id, "n": 0 }).collect();
    db.collection::<Document>("counters")
        .insert_many(counters)
        .await
        .expect("create the counters");
}

/// How many times migration `id` started.
///
/// # Panics
///
/// When the counter is missing or not a number.
pub async fn counter(db: &Database, id: &str) -> i64 {
    let document = db
        .collection::<Document>("counters")
        .find_one(doc! { "_id": id })
        .await
        .expect("read the counters")
        .expect("the counter exists");
    integer(document.get("n")).unwrap_or_else(|| panic!("counter {id} is {document:?}"))
}

/// One run of a migration, as the worker logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The process that ran it.
    pub pid: i64,
    /// The shared sequence's value when it started.
    pub start: i64,
    /// ... and when it ended, if it did.
    pub end: Option<i64>,
    /// The sequence's value at its last heartbeat, if it beat
    /// (`WORKER_HEARTBEAT_MS`).
    pub beat: Option<i64>,
}

impl Run {
    /// The last sign of life: its end, else its last heartbeat, else its
    /// start.
    pub fn last_seen(&self) -> i64 {
        self.end.or(self.beat).unwrap_or(self.start)
    }
}

/// The logged runs of migration `id`, in the order they started.
///
/// # Panics
///
/// When the log cannot be read.
pub async fn runs(db: &Database, id: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = crate::documents(db, "runs")
        .await
        .into_iter()
        .filter(|run| run.get_str("id") == Ok(id))
        .map(|run| Run {
            pid: integer(run.get("pid")).unwrap_or(0),
            start: integer(run.get("start")).unwrap_or(0),
            end: integer(run.get("end")),
            beat: integer(run.get("beat")),
        })
        .collect();
    runs.sort_by_key(|run| run.start);
    runs
}

/// Whether a run showed a sign of life (see [`Run::last_seen`]) after a
/// later run had started: two processes ran the migration at once. A run
/// without an end counts only until its last sign.
pub fn seen_overlapping(runs: &[Run]) -> bool {
    runs.iter().enumerate().any(|(index, run)| {
        runs[index + 1..]
            .iter()
            .any(|later| later.start < run.last_seen())
    })
}

/// The start lock guarding `schema_versions`, if there is one.
///
/// # Panics
///
/// When the lock collection cannot be read.
pub async fn lock_document(db: &Database) -> Option<Document> {
    db.collection::<Document>("schema_lock")
        .find_one(doc! { "_id": "schema_versions" })
        .await
        .expect("read the lock")
}

/// The background lock guarding `schema_versions`, if there is one.
///
/// # Panics
///
/// When the lock collection cannot be read.
pub async fn background_lock_document(db: &Database) -> Option<Document> {
    db.collection::<Document>("schema_lock")
        .find_one(doc! { "_id": "schema_versions$background" })
        .await
        .expect("read the lock")
}

/// Waits until `child`'s lock shows `running` and that migration has
/// started, failing if the process exits first or the deadline passes.
///
/// # Panics
///
/// As described.
pub async fn wait_until_running(db: &Database, child: &mut Child, running: &str, deadline: Instant) {
    loop {
        let lock = lock_document(db).await;
        let noted = lock.as_ref().and_then(|lock| lock.get_str("running").ok());
        if noted == Some(running) && counter(db, running).await >= 1 {
            return;
        }
        assert!(
            child.try_wait().expect("poll the worker").is_none(),
            "the worker exited before running {running}"
        );
        assert!(Instant::now() < deadline, "the worker reached {running} in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn integer(value: Option<&Bson>) -> Option<i64> {
    match value {
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        Some(Bson::Int64(n)) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pid: i64, start: i64, end: Option<i64>) -> Run {
        Run {
            pid,
            start,
            end,
            beat: None,
        }
    }

    #[test]
    fn a_run_seen_alive_after_a_later_start_overlaps_it() {
        let cut_off = |beat| Run {
            beat: Some(beat),
            ..run(1, 1, None)
        };
        assert!(!seen_overlapping(&[cut_off(2), run(2, 3, Some(4))]));
        assert!(seen_overlapping(&[cut_off(5), run(2, 3, Some(6))]));
        assert!(!seen_overlapping(&[run(1, 1, None), run(2, 3, Some(4))]));
    }
}
