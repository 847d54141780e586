//! Renewing the lease while the lock is held, independently of the
//! migration that runs meanwhile.
//!
//! A migration may block the thread it runs on (a synchronous call, a long
//! computation). Renewals must not wait for it, so they never run in the
//! migration's task:
//!
//! - **With a client of its own** (the manager was given the connection's
//!   `ClientOptions`), renewal runs on a thread of its own, with its own
//!   single-threaded runtime and its own client. Nothing the migration does
//!   to the application's runtime, including blocking every worker, can
//!   delay it.
//! - **Otherwise** it is a task spawned on the application's runtime,
//!   using the application's client. On a multi-threaded runtime that
//!   survives a migration blocking one worker in most cases; but a task the
//!   blocked worker had just woken (the driver's own connection-pool task)
//!   cannot be stolen by another worker, so a renewal can still stall, and
//!   on a single-threaded runtime a blocking migration stops renewals
//!   outright.
//!
//! Either way a renewal is one write through the holder's
//! [`Writer`](super::writer::Writer), in turn with its other writes, every
//! third of the lease measured from the start of the previous one; one
//! that fails is not retried before the next turn.
//!
//! **Supervised.** A renewal that cannot start (its thread, runtime or
//! client) fails the acquisition instead of leaving the lease to run out.
//! Once started, it stops only when told to or when the lock is found to
//! be another's: when the holder's own clock says the lease ended, it
//! waits for a write found landed in time to revive it (see
//! [`clock`](super::clock)) and goes on from there, and a panic inside it
//! is logged and the renewal started again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mongodb::bson::Document;
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

use super::writer::{Next, Write, Writer};
use crate::support::error::{BoxError, Error};
use crate::support::panic;

/// How long a renewal thread may take to build its runtime and client.
const START_BOUND: Duration = Duration::from_secs(30);

/// What renews one lease, and where.
pub(crate) struct Renewal {
    stop: Option<oneshot::Sender<()>>,
    /// Resolves when a renewal thread has shut its client down.
    finished: Option<oneshot::Receiver<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Where renewals write: the lock collection, by name, for a client of
/// the renewal's own.
pub(crate) struct Target {
    pub(crate) database: String,
    pub(crate) collection: String,
    /// How long a majority write may wait for acknowledgement.
    pub(crate) write_timeout: Duration,
}

impl Renewal {
    /// Starts renewing on a thread of its own with a client built from
    /// `options`, or, without options, in a task on the current runtime
    /// over `shared`. Returns once renewals are under way.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseRenewal`] when the thread, its runtime or its client
    /// cannot be started.
    pub(crate) async fn start(
        writer: Arc<Writer>,
        options: Option<ClientOptions>,
        shared: &Collection<Document>,
        target: Target,
    ) -> Result<Renewal, Error> {
        let (stop, stopped) = oneshot::channel();
        let Some(options) = options else {
            warn_once_on_current_thread_runtime();
            let task = tokio::spawn(supervise(writer, shared.clone(), stopped));
            return Ok(Renewal {
                stop: Some(stop),
                finished: None,
                task: Some(task),
            });
        };
        let (ready, started) = oneshot::channel();
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("schema-lock-renewal".to_owned())
            .spawn(move || {
                renew_on_own_thread(writer, options, target, ready, stopped);
                let _ = done.send(());
            })
            .map_err(|source| failed("its thread could not be started", Some(Box::new(source))))?;
        match tokio::time::timeout(START_BOUND, started).await {
            Ok(Ok(Ok(()))) => Ok(Renewal {
                stop: Some(stop),
                finished: Some(finished),
                task: None,
            }),
            Ok(Ok(Err(error))) => Err(error),
            Ok(Err(_)) => Err(failed("its thread ended before it started", None)),
            Err(_) => Err(failed("its thread did not start in time", None)),
        }
    }

    /// Stops renewing and waits, briefly, for a renewal thread to close its
    /// client.
    pub(crate) async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(finished) = self.finished.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), finished).await;
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        // Dropping the sender stops the loop; a dropped `apply_all` future
        // ends here too.
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn failed(reason: &str, source: Option<BoxError>) -> Error {
    Error::LeaseRenewal {
        reason: reason.to_owned(),
        source,
    }
}

fn renew_on_own_thread(
    writer: Arc<Writer>,
    options: ClientOptions,
    target: Target,
    ready: oneshot::Sender<Result<(), Error>>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(failed(
                "its runtime could not be built",
                Some(Box::new(error)),
            )));
            return;
        }
    };
    runtime.block_on(async move {
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                let _ = ready.send(Err(failed(
                    "its client could not be built from the options given to `lease_client`",
                    Some(Box::new(error)),
                )));
                return;
            }
        };
        let collection = crate::support::faults::bookkeeping(
            &client.database(&target.database),
            &target.collection,
            target.write_timeout,
        );
        if ready.send(Ok(())).is_ok() {
            supervise(writer, collection, stopped).await;
        }
        // Close the connections while this runtime still runs.
        client.shutdown().await;
    });
}

/// Renews until stopped or the lock is found another's, starting the
/// renewal again should it panic.
async fn supervise(
    writer: Arc<Writer>,
    collection: Collection<Document>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        let renewing = Box::pin(renew(&writer, &collection, &mut stopped));
        match panic::caught(renewing).await {
            Ok(()) => return,
            Err(panic) => {
                error!(%panic, "the schema lock's renewal panicked; starting it again");
            }
        }
    }
}

/// Renews until stopped, or until the lock is found another's.
async fn renew(writer: &Writer, collection: &Collection<Document>, stopped: &mut oneshot::Receiver<()>) {
    let clock = writer.clock();
    let every = clock.lease() / 3;
    let mut next = Instant::now().checked_add(every);
    loop {
        tokio::select! {
            () = sleep_until(next) => {}
            _ = &mut *stopped => return,
        }
        if clock.is_lost() {
            return;
        }
        if !clock.is_live() {
            warn!(
                "the schema lock's lease ended by this process's clock before a renewal got through; \
                 renewing again if a write of this process is found to have landed in time"
            );
            tokio::select! {
                revived = clock.revived() => if !revived { return },
                _ = &mut *stopped => return,
            }
        }
        next = Instant::now().checked_add(every);
        let action = || "renew the schema lock's lease".to_owned();
        let renewal = Write::until_lost("renewal", &action).once();
        let outcome = tokio::select! {
            outcome = writer.write(collection, renewal, |contents| Next::Contents(contents.clone())) => outcome,
            _ = &mut *stopped => return,
        };
        match outcome {
            Ok(_) => debug!("renewed the schema lock"),
            Err(Error::LockLost { .. }) if clock.is_lost() => {
                warn!("the schema lock is no longer this process's; stopping");
                return;
            }
            Err(error) => warn!(%error, "could not renew the schema lock; trying again"),
        }
    }
}

/// Sleeps until `deadline`; forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// On a single-threaded runtime, a migration that blocks its thread stops
/// a renewal task; say so once per process.
fn warn_once_on_current_thread_runtime() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor == tokio::runtime::RuntimeFlavor::CurrentThread && !WARNED.swap(true, Ordering::Relaxed) {
        warn!(
            "the schema lock is renewed by a task on this single-threaded runtime: a migration that \
             blocks the thread stops the renewals; give the manager the connection's options \
             (`SchemaManager::lease_client`) to renew from a thread of its own"
        );
    }
}
