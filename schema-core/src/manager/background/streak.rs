//! Which failures the background task rides out, and how many in a row:
//! [`worth_another`] reads a failure and its causes; [`Streak`] counts the
//! transient ones in a row, starting again when the migrations got
//! further ([`Standing`], read after each failure).

use std::collections::{BTreeMap, BTreeSet};

use tracing::warn;

use crate::manager::SchemaManager;
use crate::support::error::Error;
use crate::support::faults;

impl SchemaManager {
    /// How far the migrations stand, read after a transient failure of the
    /// background task: the ids recorded and the batches each backfill's
    /// checkpoint counts. `None` when either cannot be read (the server may
    /// still be failing over): that failure then counts as one without
    /// progress.
    pub(super) async fn standing(&self) -> Option<Standing> {
        let stored = match self.records().read_all().await {
            Ok(stored) => stored,
            Err(error) => {
                warn!(%error, "background migrations: could not read how far they stand");
                return None;
            }
        };
        let backfills = match self.backfills().await {
            Ok(backfills) => backfills,
            Err(error) => {
                warn!(%error, "background migrations: could not read the backfills' checkpoints");
                return None;
            }
        };
        Some(Standing {
            recorded: stored.records.into_iter().map(|record| record.id).collect(),
            batches: backfills
                .into_iter()
                .map(|backfill| ((backfill.migration, backfill.key), backfill.batches))
                .collect(),
        })
    }
}

/// Whether the background task tries again after `failure`: it, or an
/// error among its causes (a migration returns a backfill's error, which
/// becomes the cause of `MigrationFailed`), says the server did not answer
/// in time, the lease was lost, or a backfill's batch has an outcome
/// unknown that the checkpoint counts (the next run does it once more); or
/// the first server error among them is a transient one: a failover
/// (`NotWritablePrimary`, `InterruptedDueToReplStateChange`,
/// `ShutdownInProgress`, ...), the network, a write concern not met. The
/// migration was not fenced, so the next attempt runs it again, its body
/// from the start, as the next holder would after a crash. A panic, a
/// migration's own error, an outcome unknown that the checkpoint could not
/// count (each run more would be counted one short) and any other refusal
/// of the server are final.
pub(super) fn worth_another(failure: &Error) -> bool {
    if matches!(failure, Error::MigrationPanicked { .. }) {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(failure);
    while let Some(error) = cause {
        match error.downcast_ref::<Error>() {
            Some(Error::BackfillOutcomeUnknown { counted, .. }) => return *counted,
            Some(Error::ServerTimeout { .. } | Error::LockLost { .. }) => return true,
            _ => {}
        }
        cause = error.source();
    }
    failure
        .server_error()
        .is_some_and(|server| faults::is_transient(server.raw()))
}

/// How far the migrations stand after a failure: the ids recorded, and
/// the batches done by each backfill's checkpoint, by migration and key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Standing {
    recorded: BTreeSet<String>,
    batches: BTreeMap<(String, String), u64>,
}

impl Standing {
    /// Whether this stands further than `before`: an id recorded that was
    /// not, or a checkpoint with more batches done (a new one included).
    /// A checkpoint gone with its migration's record shows as that record.
    fn beyond(&self, before: &Standing) -> bool {
        self.recorded.difference(&before.recorded).next().is_some()
            || self
                .batches
                .iter()
                .any(|(key, batches)| before.batches.get(key).is_none_or(|before| batches > before))
    }
}

/// The transient failures of the background task in a row, whatever their
/// kind, code or migration: during a failover they alternate (10107,
/// 11602, 91, a lost connection without a code), and should not start the
/// count again. Progress does: a migration recorded, or a backfill's
/// checkpoint moved, since the last failure, so that a long backfill that
/// gets further on each run is not stopped.
#[derive(Debug, Default)]
pub(super) struct Streak {
    /// How far things stood at the last failure whose progress was read.
    last: Option<Standing>,
    count: u32,
}

impl Streak {
    /// Counts a failure after which things stand at `now` (`None` when
    /// that could not be read: no progress seen); returns how many in a
    /// row it makes.
    pub(super) fn note(&mut self, now: Option<Standing>) -> u32 {
        let progressed = match (&self.last, &now) {
            (Some(before), Some(now)) => now.beyond(before),
            _ => false,
        };
        if now.is_some() {
            self.last = now;
        }
        self.count = if progressed {
            1
        } else {
            self.count.saturating_add(1)
        };
        self.count
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::support::error::ServerError;
    use mongodb::bson::doc;
    use mongodb::error::{CommandError, ErrorKind};

    /// A server's refusal with `code`, as the driver makes it of a reply.
    fn refused(code: i32) -> ServerError {
        let reply = doc! { "ok": 0, "code": code, "codeName": "Test", "errmsg": "injected" };
        let command: CommandError = mongodb::bson::from_document(reply).expect("a command error document");
        ServerError::from(mongodb::error::Error::from(ErrorKind::Command(command)))
    }

    fn migration_failed(id: &str, code: i32) -> Error {
        Error::MigrationFailed {
            id: id.to_owned(),
            source: Box::new(refused(code)),
        }
    }

    #[test]
    fn a_failover_during_a_migration_s_body_is_worth_another_attempt_and_its_own_errors_are_not() {
        for code in [10107, 11602, 91, 189] {
            assert!(worth_another(&migration_failed("m", code)), "{code}");
            let database = Error::Database {
                action: "read the records".to_owned(),
                source: refused(code),
            };
            assert!(worth_another(&database), "{code}");
        }
        let outcome_unknown = Error::BackfillOutcomeUnknown {
            collection: "items".to_owned(),
            at: "its first batch".to_owned(),
            at_most: Some(2),
            counted: true,
            source: Box::new(refused(6)),
        };
        assert!(worth_another(&outcome_unknown));
        // As a migration returns it, and a timeout under a backfill's
        // failed batch.
        let returned = Error::MigrationFailed {
            id: "m".to_owned(),
            source: Box::new(outcome_unknown),
        };
        assert!(worth_another(&returned));
        let timed_out = Error::MigrationFailed {
            id: "m".to_owned(),
            source: Box::new(Error::BackfillFailed {
                collection: "items".to_owned(),
                at: "its first batch".to_owned(),
                source: Box::new(Error::ServerTimeout {
                    action: "read a batch".to_owned(),
                    waited: Duration::from_secs(1),
                }),
            }),
        };
        assert!(worth_another(&timed_out));
        // A duplicate key, a refused validation, a permission: final.
        for code in [11000, 121, 13] {
            assert!(!worth_another(&migration_failed("m", code)), "{code}");
        }
        let own = Error::MigrationFailed {
            id: "m".to_owned(),
            source: "the migration's own error".into(),
        };
        assert!(!worth_another(&own));
        let panicked = Error::MigrationPanicked {
            id: "m".to_owned(),
            message: "boom".to_owned(),
        };
        assert!(!worth_another(&panicked));
    }

    #[test]
    fn an_outcome_unknown_that_the_checkpoint_could_not_count_is_final() {
        let uncounted = || Error::BackfillOutcomeUnknown {
            collection: "items".to_owned(),
            at: "its first batch".to_owned(),
            at_most: Some(2),
            counted: false,
            source: Box::new(refused(6)),
        };
        assert!(!worth_another(&uncounted()));
        let returned = Error::MigrationFailed {
            id: "m".to_owned(),
            source: Box::new(uncounted()),
        };
        assert!(!worth_another(&returned));
        let said = crate::support::error::chain(&returned);
        assert!(
            said.contains("later runs count one such run fewer than there were")
                && said.contains("may have been changed up to 2 times, one more than those runs say"),
            "{said}"
        );
    }

    /// How far things stand: `recorded` ids, and one backfill of `m2`
    /// with `batches` done.
    fn standing(recorded: &[&str], batches: u64) -> Standing {
        Standing {
            recorded: recorded.iter().map(|id| (*id).to_owned()).collect(),
            batches: [(("m2".to_owned(), "items".to_owned()), batches)].into(),
        }
    }

    #[test]
    fn failures_are_counted_in_a_row_whatever_they_are_until_something_moves() {
        let mut streak = Streak::default();
        // Nothing moves between them (whatever their codes): one more each
        // time, unread progress included.
        let counts: Vec<u32> = [
            Some(standing(&["m1"], 3)),
            Some(standing(&["m1"], 3)),
            None,
            Some(standing(&["m1"], 3)),
            Some(standing(&["m1"], 3)),
            Some(standing(&["m1"], 3)),
        ]
        .into_iter()
        .map(|now| streak.note(now))
        .collect();
        assert_eq!(counts, [1, 2, 3, 4, 5, 6]);
        // The backfill's checkpoint moved: the count starts again.
        assert_eq!(streak.note(Some(standing(&["m1"], 4))), 1);
        assert_eq!(streak.note(Some(standing(&["m1"], 4))), 2);
        // Moved while its progress could not be read: seen at the next
        // read, against the last one read.
        assert_eq!(streak.note(None), 3);
        assert_eq!(streak.note(Some(standing(&["m1"], 5))), 1);
        // A checkpoint that starts over is no progress; a migration
        // recorded is.
        assert_eq!(streak.note(Some(standing(&["m1"], 0))), 2);
        assert_eq!(streak.note(Some(standing(&["m1", "m2"], 0))), 1);
        // A checkpoint that appears is progress; one that goes is not,
        // when its migration was not recorded.
        let mut more = standing(&["m1", "m2"], 0);
        more.batches.insert(("m3".to_owned(), "users".to_owned()), 1);
        assert_eq!(streak.note(Some(more)), 1);
        assert_eq!(streak.note(Some(standing(&["m1", "m2"], 0))), 2);
    }
}
