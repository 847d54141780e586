//! The sentences of the errors whose messages are long: what went wrong
//! and what to do about it, one function per variant of [`Error`](super::Error).

use super::words::{outcome_unknown, quoted};
use crate::support::location::Location;

pub(super) fn duplicate_id(id: &str, first: &Location, second: &Location) -> String {
    format!(
        "migration id `{id}` is declared twice, at {first} and at {second}; \
     give each migration its own id"
    )
}

pub(super) fn unknown_dependency(id: &str, dependency: &str) -> String {
    format!(
        "migration `{id}` runs after `{dependency}`, but no migration with that id is registered; \
     check the spelling, and that the crate declaring it is linked into this binary"
    )
}

pub(super) fn cross_group_dependency(
    id: &str,
    group: &str,
    dependency: &str,
    dependency_group: &str,
) -> String {
    format!(
        "migration `{id}` of group `{group}` runs after `{dependency}` of group `{dependency_group}`; \
     groups apply independently, so a migration can only run after migrations of its own group: \
     move one of them, or remove the `after`"
    )
}

pub(super) fn background_failed(id: &str, kind: &str, in_a_row: u32, by: &str, message: &str) -> String {
    format!(
        "background migration `{id}` failed ({kind}, {in_a_row} in a row, by {by}): {message}; it is \
     not recorded, and background tasks try it again after a pause"
    )
}

pub(super) fn preflight_failed(
    migration: &str,
    code: &str,
    collection: &str,
    message: &str,
    others: usize,
) -> String {
    let others = match others {
        0 => String::new(),
        1 => "; 1 other finding says a migration fails".to_owned(),
        n => format!("; {n} other findings say a migration fails"),
    };
    format!(
        "preflight: migration `{migration}` would fail ({code} on `{collection}`): {message}{others}; \
     nothing was applied (`preflight` lists every finding; a finding the team has weighed is \
     accepted with `#[migration(accept = \"{code}\")]`)"
    )
}

pub(super) fn background_dependency(id: &str, background: &str) -> String {
    format!(
        "migration `{id}` runs at start but after `{background}`, a background migration that may \
     finish only after the start: mark `{id}` `background` too, or remove the `after`"
    )
}

pub(super) fn drifted(ids: &[String]) -> String {
    format!(
        "migrations {} were edited after they were applied (their checksums differ from the \
     recorded ones); revert the edits, or accept them with `mark_applied`",
        quoted(ids)
    )
}

pub(super) fn unknown_records(collection: &str, ids: &[String]) -> String {
    format!(
        "`{collection}` records migrations this binary does not declare: {}; nothing was run. \
     During a rolling deploy a newer version applied them: start with \
     `on_unknown(Policy::Warn)` (the default). Otherwise link the crate that declares them \
     into this binary, or remove each record with `forget --unknown <id>`",
        quoted(ids)
    )
}

pub(super) fn lock_held(
    holder: &str,
    running: &Option<String>,
    expires_at: &mongodb::bson::DateTime,
) -> String {
    format!(
        "another process holds the schema lock: {holder}{}, until {expires_at} (server time) \
     unless renewed; try again when it is done",
        running
            .as_ref()
            .map(|id| format!(", applying `{id}`"))
            .unwrap_or_default()
    )
}

pub(super) fn record_failed(id: &str, collection: &str) -> String {
    format!(
        "migration `{id}` ran and its completion was noted in the schema lock, but its record \
     could not be written to `{collection}`; the next start records it without running it again"
    )
}

pub(super) fn malformed_record(collection: &str, id: &str, reason: &str) -> String {
    format!(
        "the record of `{id}` in `{collection}` is malformed: {reason}; nothing was run: remove it \
     with `forget {id}`, then apply again to run `{id}`, or record it without running it with \
     `mark-applied {id}`"
    )
}

pub(super) fn malformed_lock(collection: &str, reason: &str) -> String {
    format!(
        "the schema lock in `{collection}` is malformed: {reason}; nothing was run: if no process \
     is applying migrations, remove it with `unlock --force` (`SchemaManager::unlock_force`)"
    )
}

pub(super) fn lock_timeout(
    holder: &str,
    running: &Option<String>,
    expires_at: &mongodb::bson::DateTime,
    waited: &std::time::Duration,
) -> String {
    format!(
        "gave up waiting for the schema lock after {waited:?}: it is held by {holder}{}, \
     and its lease ends at {expires_at} (server time) unless renewed",
        running
            .as_ref()
            .map(|id| format!(", which is applying `{id}`"))
            .unwrap_or_default()
    )
}

pub(super) fn lock_lost(id: &str) -> String {
    format!(
        "lost the schema lock while applying `{id}`: this process's lease ended or another \
     process took the lock over, so `{id}` was not recorded here and nothing more was applied; \
     the next holder of the lock runs it again"
    )
}

pub(super) fn lease_renewal(reason: &str) -> String {
    format!(
        "could not start renewing the schema lock's lease: {reason}; the lock was let go and nothing \
     was applied"
    )
}

pub(super) fn index_conflict(collection: &str, index: &str, existing: &str, difference: &str) -> String {
    format!(
        "index `{index}` declared on `{collection}` conflicts with the existing index `{existing}` \
     ({difference}); nothing was created: drop the existing index or declare it as it is"
    )
}

pub(super) fn repeated_index(collection: &str, index: &str) -> String {
    format!(
        "index `{index}` is declared twice on `{collection}` (by name or by keys); \
     declare each index once"
    )
}

pub(super) fn index_build_timeout(
    collection: &str,
    indexes: &[String],
    waited: &std::time::Duration,
) -> String {
    format!(
        "the indexes {} of `{collection}` were not built within {waited:?}; the server goes on \
     building them and the next run of this migration waits for that build: see `status` for \
     a build waiting for its commit quorum (a voting member behind or down), or raise the \
     timeout",
        quoted(indexes)
    )
}

pub(super) fn snapshot_unauthorized(database: &str) -> String {
    format!(
        "the snapshot may not use the scratch database `{database}` (Unauthorized); a user allowed \
     only its own databases cannot create or drop another: name a database this user may write \
     to with `SchemaManager::snapshot_database` (it must be empty; only what the snapshot \
     creates in it is dropped)"
    )
}

pub(super) fn backfill_outcome_unknown(
    collection: &str,
    at: &str,
    at_most: &Option<u64>,
    counted: &bool,
) -> String {
    format!(
        "the backfill of `{collection}` got no answer to the update of {at}, so it may or may not \
     have been applied; {}",
        outcome_unknown(*at_most, *counted)
    )
}

pub(super) fn backfill_out_of_order(
    collection: &str,
    at: &str,
    place: &usize,
    before: &str,
    after: &str,
) -> String {
    format!(
        "the server returned the documents of `{collection}` out of `_id` order in {at} (its `_id` \
     number {place}, of BSON type {after}, does not sort after the one before it, of BSON type \
     {before}), so the backfill stopped before changing them: nothing was skipped silently, \
     and the batches before are done. The walk needs `_id`s sorted in MongoDB's order (the \
     simple collation)"
    )
}

pub(super) fn snapshot_mismatch(path: &str, diff: &str) -> String {
    format!(
        "{path} differs from the schema the migrations declare (- in the file, + declared); \
     if the change is meant, write the file with SCHEMA_SNAPSHOT=overwrite and review it:\n{diff}"
    )
}
