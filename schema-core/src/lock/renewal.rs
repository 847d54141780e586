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
//! Either way an attempt starts every third of the lease, measured from the
//! start of the previous one, and is abandoned when it has not answered by
//! the next, so one stuck attempt never holds up the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use mongodb::bson::{Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::clock::LeaseClock;
use crate::faults::within;

/// What renews one lease, and where.
pub(crate) struct Renewal {
    stop: Option<oneshot::Sender<()>>,
    /// Resolves when a renewal thread has shut its client down.
    finished: Option<oneshot::Receiver<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What a renewal needs to know of the lock.
pub(crate) struct Target {
    pub(crate) database: String,
    pub(crate) collection: String,
    pub(crate) key: String,
    pub(crate) owner: String,
    pub(crate) clock: Arc<LeaseClock>,
}

impl Renewal {
    /// Starts renewing on a thread of its own with a client built from
    /// `options`, or, without options, in a task on the current runtime
    /// over `shared`.
    pub(crate) fn start(
        target: Target,
        options: Option<ClientOptions>,
        shared: &Collection<Document>,
    ) -> Renewal {
        let (stop, stopped) = oneshot::channel();
        match options {
            Some(options) => {
                let (done, finished) = oneshot::channel();
                let spawned = std::thread::Builder::new()
                    .name("schema-lock-renewal".to_owned())
                    .spawn(move || {
                        renew_on_own_thread(target, options, stopped);
                        let _ = done.send(());
                    });
                if let Err(error) = spawned {
                    warn!(%error, "could not start the schema lock's renewal thread; the lease is not renewed");
                }
                Renewal {
                    stop: Some(stop),
                    finished: Some(finished),
                    task: None,
                }
            }
            None => {
                warn_once_on_current_thread_runtime();
                let collection = shared.clone();
                let task = tokio::spawn(renew(target, collection, stopped));
                Renewal {
                    stop: Some(stop),
                    finished: None,
                    task: Some(task),
                }
            }
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
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), finished).await;
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

fn renew_on_own_thread(target: Target, options: ClientOptions, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            warn!(%error, "could not start the schema lock's renewal runtime; the lease is not renewed");
            return;
        }
    };
    runtime.block_on(async move {
        let client = match Client::with_options(options) {
            Ok(client) => client,
            Err(error) => {
                warn!(%error, "could not open the schema lock's renewal client; the lease is not renewed");
                return;
            }
        };
        let collection = crate::faults::bookkeeping(
            &client.database(&target.database),
            &target.collection,
            target.clock.lease() / 3,
        );
        renew(target, collection, stopped).await;
        // Close the connections while this runtime still runs.
        client.shutdown().await;
    });
}

/// Renews until stopped, or until the lease is lost.
async fn renew(target: Target, collection: Collection<Document>, mut stopped: oneshot::Receiver<()>) {
    let every = target.clock.lease() / 3;
    let mut next = Instant::now() + every;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            _ = &mut stopped => return,
        }
        let sent = Instant::now();
        next = sent + every;
        let attempt = collection.update_one(
            doc! { "_id": &target.key, "owner": &target.owner },
            doc! { "$currentDate": { "renewed_at": true } },
        );
        let outcome = tokio::select! {
            outcome = within(every, attempt) => outcome,
            _ = &mut stopped => return,
        };
        match outcome {
            Ok(result) if result.matched_count == 1 => {
                target.clock.renewed(sent);
                debug!(owner = %target.owner, "renewed the schema lock");
            }
            Ok(_) => {
                warn!(owner = %target.owner, "the schema lock is no longer this process's; stopping");
                target.clock.lose();
                return;
            }
            Err(failure) => {
                warn!(error = ?failure, "could not renew the schema lock; trying again");
            }
        }
        if !target.clock.is_live() {
            warn!(owner = %target.owner, "the schema lock's lease ended before a renewal got through");
            return;
        }
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
