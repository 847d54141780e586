//! The schema lock: a lease in its own collection (`schema_lock` by
//! default), so that of many processes starting at once exactly one
//! applies migrations, and a process that dies holding it blocks the others
//! only until its lease runs out.
//!
//! - **Taking it** is an insert of a document with a fixed `_id`: the
//!   unique `_id` index decides between processes racing for it.
//! - **Time** is always the server's: expiry is `renewed_at + lease_ms`,
//!   where `renewed_at` is written from the server's clock (`hello`'s
//!   `localTime` on insert, `$currentDate` on renewal) and compared with
//!   the server's `localTime`. Hosts whose clocks disagree still agree on
//!   when a lease ends.
//! - **Taking over** an expired lease is a compare-and-swap on the holder
//!   and its `renewed_at`, so of several processes noticing the expiry only
//!   one wins.
//! - **Holding** it means renewing `renewed_at` while migrations run, and
//!   noting in `running` which migration is under way, so whoever takes
//!   over after a crash can say which one was interrupted.

use std::time::{Duration, Instant};

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{CollectionOptions, ReadConcern, WriteConcern};
use mongodb::{Collection, Database};
use tracing::{debug, warn};

use crate::error::Error;
use crate::owner::Owner;

/// The default name of the lock collection.
pub const DEFAULT_LOCK_COLLECTION: &str = "schema_lock";
/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(30);
/// The shortest lease accepted: shorter ones would have the holder do
/// little but renew, and others take over between two renewals.
pub const MIN_LOCK_LEASE: Duration = Duration::from_millis(300);
/// How long `apply_all` waits for another process's lock, by default.
pub const DEFAULT_LOCK_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

const DUPLICATE_KEY: i32 = 11000;

/// A lease that ended without being released: its holder died or was cut
/// off while applying migrations, and this process took the lock over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Interrupted {
    /// The previous holder, as `host:pid:random`.
    pub previous_owner: String,
    /// The migration it was running, if it had started one. It was not
    /// recorded, so it runs again.
    pub migration: Option<String>,
    /// When its lease ended, by the server's clock.
    pub lease_ended_at: DateTime,
}

/// The lock document as read back.
#[derive(Debug, Clone)]
struct Holder {
    owner: String,
    renewed_at: DateTime,
    lease_ms: i64,
    running: Option<String>,
}

impl Holder {
    fn expires_at(&self) -> DateTime {
        DateTime::from_millis(self.renewed_at.timestamp_millis().saturating_add(self.lease_ms))
    }
}

/// One process's handle on the lock guarding one versions collection.
pub(crate) struct Lock {
    db: Database,
    collection: Collection<Document>,
    /// The lock document's `_id`: the versions collection's name, so
    /// managers of different versions collections do not block each other.
    key: String,
    owner: Owner,
    lease: Duration,
}

impl Lock {
    pub(crate) fn new(db: &Database, collection: &str, key: &str, owner: Owner, lease: Duration) -> Lock {
        let options = CollectionOptions::builder()
            .read_concern(ReadConcern::majority())
            .write_concern(WriteConcern::majority())
            .build();
        Lock {
            db: db.clone(),
            collection: db.collection_with_options(collection, options),
            key: key.to_owned(),
            owner,
            lease,
        }
    }

    /// How often a holder renews its lease: three times per lease, so two
    /// renewals in a row may fail before it runs out.
    pub(crate) fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// Takes the lock, waiting up to `wait` for another holder to release
    /// it or for its lease to end.
    ///
    /// Returns the interrupted run when the lock was taken over from a
    /// holder whose lease had ended.
    ///
    /// # Errors
    ///
    /// [`Error::LockTimeout`] naming the holder when `wait` runs out,
    /// [`Error::Database`] when the server fails, and
    /// [`Error::MalformedRecord`] when the lock document has another shape.
    pub(crate) async fn acquire(&self, wait: Duration) -> Result<Option<Interrupted>, Error> {
        let started = Instant::now();
        loop {
            let now = self.server_now().await?;
            let fresh = doc! {
                "_id": &self.key,
                "owner": &self.owner.id,
                "host": &self.owner.host,
                "pid": i64::from(self.owner.pid),
                "acquired_at": now,
                "renewed_at": now,
                "lease_ms": lease_ms(self.lease),
                "running": Bson::Null,
            };
            match self.collection.insert_one(fresh).await {
                Ok(_) => {
                    debug!(owner = %self.owner.id, "took the schema lock");
                    return Ok(None);
                }
                Err(error) if is_duplicate_key(&error) => {}
                Err(error) => return Err(database("take the schema lock", error)),
            }
            // Someone holds it. `now` is from before the insert, so using it
            // errs on the side of a lease that has not ended yet.
            let Some(holder) = self.read().await? else {
                continue; // Released in between: try again at once.
            };
            if now > holder.expires_at() {
                if self.take_over(&holder).await? {
                    let interrupted = Interrupted {
                        lease_ended_at: holder.expires_at(),
                        previous_owner: holder.owner,
                        migration: holder.running,
                    };
                    warn!(
                        previous_owner = %interrupted.previous_owner,
                        interrupted_migration = interrupted.migration.as_deref().unwrap_or("none"),
                        lease_ended_at = %interrupted.lease_ended_at,
                        "took over the schema lock from a process whose lease ended; \
                         the migration it was running was not recorded and runs again"
                    );
                    return Ok(Some(interrupted));
                }
                continue; // Another process took it over first.
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(Error::LockTimeout {
                    expires_at: holder.expires_at(),
                    holder: holder.owner,
                    running: holder.running,
                    waited,
                });
            }
            tokio::time::sleep(self.poll_interval().min(wait - waited)).await;
        }
    }

    /// Renews the lease and notes which migration is running. Returns
    /// `false` when this process no longer holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server fails; the lock may or may not
    /// still be held.
    pub(crate) async fn hold(&self, running: Option<&str>) -> Result<bool, Error> {
        let result = self
            .collection
            .update_one(
                doc! { "_id": &self.key, "owner": &self.owner.id },
                doc! {
                    "$set": { "running": running },
                    "$currentDate": { "renewed_at": true },
                },
            )
            .await
            .map_err(|error| database("renew the schema lock", error))?;
        Ok(result.matched_count == 1)
    }

    /// Releases the lock if this process still holds it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the server fails; the lease then ends on
    /// its own.
    pub(crate) async fn release(&self) -> Result<(), Error> {
        self.collection
            .delete_one(doc! { "_id": &self.key, "owner": &self.owner.id })
            .await
            .map_err(|error| database("release the schema lock", error))?;
        debug!(owner = %self.owner.id, "released the schema lock");
        Ok(())
    }

    /// Replaces `holder` with this process, unless someone changed the lock
    /// since it was read.
    async fn take_over(&self, holder: &Holder) -> Result<bool, Error> {
        let result = self
            .collection
            .update_one(
                doc! { "_id": &self.key, "owner": &holder.owner, "renewed_at": holder.renewed_at },
                doc! {
                    "$set": {
                        "owner": &self.owner.id,
                        "host": &self.owner.host,
                        "pid": i64::from(self.owner.pid),
                        "lease_ms": lease_ms(self.lease),
                        "running": Bson::Null,
                    },
                    "$currentDate": { "acquired_at": true, "renewed_at": true },
                },
            )
            .await
            .map_err(|error| database("take over the schema lock", error))?;
        Ok(result.matched_count == 1)
    }

    async fn read(&self) -> Result<Option<Holder>, Error> {
        let document = self
            .collection
            .find_one(doc! { "_id": &self.key })
            .await
            .map_err(|error| database("read the schema lock", error))?;
        document
            .map(|document| {
                parse(&document).map_err(|reason| Error::MalformedRecord {
                    collection: self.collection.name().to_owned(),
                    document: format!("{:?}", self.key),
                    reason,
                })
            })
            .transpose()
    }

    /// The server's clock, from `hello`.
    async fn server_now(&self) -> Result<DateTime, Error> {
        let reply = self
            .db
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|error| database("read the server's clock", error))?;
        match reply.get("localTime") {
            Some(Bson::DateTime(now)) => Ok(*now),
            _ => Err(Error::UnexpectedReply {
                command: "hello".to_owned(),
                reason: "it has no `localTime`, which the schema lock needs as the one clock all \
                         processes share"
                    .to_owned(),
            }),
        }
    }

    /// How long to sleep between looks at a held lock: a tenth of the lease
    /// within 50 ms to 1 s, spread by process id so waiters do not knock in
    /// step.
    fn poll_interval(&self) -> Duration {
        let base = (self.lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
        base + Duration::from_millis(u64::from(self.owner.pid % 50))
    }
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

fn parse(document: &Document) -> Result<Holder, String> {
    let owner = match document.get("owner") {
        Some(Bson::String(owner)) => owner.clone(),
        _ => return Err("`owner` should be a string".to_owned()),
    };
    let renewed_at = match document.get("renewed_at") {
        Some(Bson::DateTime(at)) => *at,
        _ => return Err("`renewed_at` should be a date".to_owned()),
    };
    let lease_ms = match document.get("lease_ms") {
        Some(Bson::Int64(ms)) => *ms,
        Some(Bson::Int32(ms)) => i64::from(*ms),
        _ => return Err("`lease_ms` should be an integer".to_owned()),
    };
    let running = match document.get("running") {
        None | Some(Bson::Null) => None,
        Some(Bson::String(id)) => Some(id.clone()),
        Some(_) => return Err("`running` should be a migration id or null".to_owned()),
    };
    Ok(Holder {
        owner,
        renewed_at,
        lease_ms,
        running,
    })
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == DUPLICATE_KEY,
        ErrorKind::Command(command) => command.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn database(action: &str, source: mongodb::error::Error) -> Error {
    Error::Database {
        action: action.to_owned(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_document_parses_and_knows_its_expiry() {
        let holder = parse(&doc! {
            "_id": "schema_versions",
            "owner": "api-1:7:abc",
            "renewed_at": DateTime::from_millis(1_000),
            "lease_ms": 30_000_i32,
            "running": "0003_sagas",
        })
        .unwrap();
        assert_eq!(holder.expires_at(), DateTime::from_millis(31_000));
        assert_eq!(holder.running.as_deref(), Some("0003_sagas"));
    }

    #[test]
    fn a_malformed_lock_document_says_what_is_wrong() {
        let reason = parse(&doc! { "owner": "x", "renewed_at": "now", "lease_ms": 1 }).unwrap_err();
        assert_eq!(reason, "`renewed_at` should be a date");
    }

    #[test]
    fn an_expiry_far_in_the_future_saturates() {
        let holder = parse(&doc! {
            "owner": "x", "renewed_at": DateTime::from_millis(i64::MAX - 1), "lease_ms": i64::MAX,
        })
        .unwrap();
        assert_eq!(holder.expires_at(), DateTime::from_millis(i64::MAX));
    }
}
