//! `index_in_use`: a dropped index that queries used, read from
//! `$indexStats`.
//!
//! `$indexStats` says, for each index, how many operations used it
//! (`accesses.ops`) since `accesses.since`, when the server started or the
//! index was built. The counts are the member's own: on a replica set each
//! member counts the queries it ran, and its counts start again from zero
//! when it restarts; through a `mongos` the stage answers one document per
//! shard, from the member of that shard it reads.
//!
//! This probe reads the primary (each shard's primary through a `mongos`),
//! not a secondary as the other probes may: what it asks is whether the
//! application's queries use the index, and an application reads from the
//! primary unless it says otherwise. Queries sent to secondaries are
//! counted on those members only, so an index kept for them is not seen
//! used here. Through a `mongos` the shards' counts are summed.
//!
//! An index already hidden is not asked about: no query can use it, and a
//! drop changes nothing any query sees. A `$indexStats` that is refused
//! (the user lacks the `indexStats` action) or that the server does not
//! know makes the probe inconclusive, never clean.

use mongodb::bson::{DateTime, Document, doc};

use super::Probe;
use crate::assess::drift::LiveCollection;
use crate::assess::preflight::{Code, Observed};
use crate::declare::indexes::compare;
use crate::support::convert;

/// How much each index of `collection` on the dropped `keys` was used:
/// a finding for each one queries used, nothing for one they did not.
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    keys: &Document,
    live: &LiveCollection,
) -> Vec<Observed> {
    let dropped = doc! { "key": keys.clone() };
    let mut observed = Vec::new();
    for index in live
        .indexes
        .iter()
        .filter(|index| compare::same_fields(&dropped, index))
    {
        let Ok(name) = index.get_str("name") else {
            continue;
        };
        if index.get_bool("hidden") == Ok(true) {
            continue;
        }
        let pipeline = vec![doc! { "$indexStats": {} }, doc! { "$match": { "name": name } }];
        let seen = match probe.aggregate_on_primary(collection, pipeline).await {
            Ok(stats) => judge(collection, name, &stats),
            Err(reason) => Some(inconclusive(collection, name, &reason)),
        };
        observed.extend(seen);
    }
    observed
}

/// What `$indexStats`' documents `stats` about the index `name` say.
fn judge(collection: &str, name: &str, stats: &[Document]) -> Option<Observed> {
    match Usage::read(stats) {
        Err(reason) => Some(inconclusive(collection, name, &reason)),
        // Gone since the listing: the drop has nothing left to drop.
        Ok(None) => None,
        Ok(Some(usage)) if usage.ops == 0 => None,
        Ok(Some(usage)) => Some(Observed::found(
            Code::IndexInUse,
            collection,
            Some(name),
            usage.ops,
            usage.message(name),
            Vec::new(),
        )),
    }
}

fn inconclusive(collection: &str, name: &str, reason: &str) -> Observed {
    Observed::inconclusive(
        Code::IndexInUse,
        collection,
        Some(name),
        format!(
            "`$indexStats` could not say how often queries use the index ({reason}); check its \
             use on every member before the drop"
        ),
    )
}

/// How much one index was used, summed over the documents `$indexStats`
/// answered: one from a standalone or a replica set member, one per shard
/// through a `mongos`.
#[derive(Debug, Clone, PartialEq)]
struct Usage {
    /// The operations that used it.
    ops: u64,
    /// The earliest `accesses.since`: from when the counts run.
    since: Option<DateTime>,
    /// Where it was counted: each document's `host`, after its `shard`
    /// when there is one.
    hosts: Vec<String>,
}

impl Usage {
    /// The usage `stats` (`$indexStats`' documents about one index) show;
    /// `None` when there is none, the index being gone. An error says what
    /// is missing from a document whose shape is not `$indexStats`'.
    fn read(stats: &[Document]) -> Result<Option<Usage>, String> {
        if stats.is_empty() {
            return Ok(None);
        }
        let mut usage = Usage {
            ops: 0,
            since: None,
            hosts: Vec::new(),
        };
        for document in stats {
            let accesses = document
                .get_document("accesses")
                .map_err(|_| "its reply has no `accesses`".to_owned())?;
            let ops = accesses
                .get("ops")
                .and_then(convert::integer)
                .and_then(|ops| u64::try_from(ops).ok())
                .ok_or_else(|| "its reply has no count of operations (`accesses.ops`)".to_owned())?;
            usage.ops = usage.ops.saturating_add(ops);
            if let Ok(since) = accesses.get_datetime("since") {
                usage.since = Some(usage.since.map_or(*since, |known| known.min(*since)));
            }
            let host = document.get_str("host").ok();
            let shard = document.get_str("shard").ok();
            let place = match (shard, host) {
                (Some(shard), Some(host)) => format!("{shard} ({host})"),
                (Some(shard), None) => shard.to_owned(),
                (None, Some(host)) => host.to_owned(),
                (None, None) => continue,
            };
            if !usage.hosts.contains(&place) {
                usage.hosts.push(place);
            }
        }
        Ok(Some(usage))
    }

    /// What the finding says: how much, since when and where, then what to
    /// do.
    fn message(&self, name: &str) -> String {
        let times = if self.ops == 1 { "time" } else { "times" };
        let since = self
            .since
            .and_then(|since| since.try_to_rfc3339_string().ok())
            .map(|since| format!(" since {since}"))
            .unwrap_or_default();
        let hosts = if self.hosts.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.hosts.join(", "))
        };
        format!(
            "queries used the index {} {times}{since}{hosts} (each server counts its own since it \
             started; queries sent to secondaries are not in this count): hide it first \
             (`collMod` with `index: {{ name: \"{name}\", hidden: true }}`), watch that no query \
             slows down, then drop it",
            self.ops
        )
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::Bson;

    use super::*;

    fn at(text: &str) -> DateTime {
        DateTime::parse_rfc3339_str(text).expect("an RFC 3339 time")
    }

    /// One document of `$indexStats` as a replica set member answers it.
    fn member(ops: Bson, since: &str) -> Document {
        doc! {
            "name": "legacy_1",
            "key": { "legacy": 1 },
            "host": "db1.example:27017",
            "accesses": { "ops": ops, "since": at(since) },
            "spec": { "v": 2, "key": { "legacy": 1 }, "name": "legacy_1" },
        }
    }

    /// One document per shard, as a `mongos` answers it.
    fn shard(shard: &str, host: &str, ops: i64, since: &str) -> Document {
        doc! {
            "name": "legacy_1",
            "key": { "legacy": 1 },
            "host": host,
            "accesses": { "ops": ops, "since": at(since) },
            "shard": shard,
            "spec": { "v": 2, "key": { "legacy": 1 }, "name": "legacy_1" },
        }
    }

    #[test]
    fn a_members_count_is_read_as_the_server_writes_it() {
        let stats = [member(Bson::Int64(7), "2026-11-30T08:00:00Z")];
        assert_eq!(
            Usage::read(&stats),
            Ok(Some(Usage {
                ops: 7,
                since: Some(at("2026-11-30T08:00:00Z")),
                hosts: vec!["db1.example:27017".to_owned()],
            }))
        );
        let found = judge("events", "legacy_1", &stats).expect("used");
        assert_eq!(found.code, Code::IndexInUse);
        assert_eq!(found.index.as_deref(), Some("legacy_1"));
        let crate::assess::preflight::Seen::Found {
            count,
            severity,
            message,
            ids,
        } = found.seen
        else {
            panic!("a finding: {found:?}");
        };
        assert_eq!(count, 7);
        assert_eq!(severity, crate::assess::preflight::Severity::Hurts);
        assert!(ids.is_empty());
        assert!(
            message.starts_with(
                "queries used the index 7 times since 2026-11-30T08:00:00Z on db1.example:27017"
            ),
            "{message}"
        );
        assert!(
            message.contains("`collMod` with `index: { name: \"legacy_1\", hidden: true }`"),
            "{message}"
        );
    }

    #[test]
    fn the_shards_counts_are_summed_from_the_earliest_since() {
        let stats = [
            shard("shardA", "a1.example:27018", 5, "2026-11-30T08:00:00Z"),
            shard("shardB", "b1.example:27018", 6, "2026-11-29T08:00:00Z"),
        ];
        let usage = Usage::read(&stats).expect("read").expect("listed");
        assert_eq!(usage.ops, 11);
        assert_eq!(usage.since, Some(at("2026-11-29T08:00:00Z")));
        let message = usage.message("legacy_1");
        assert!(
            message.contains(
                "11 times since 2026-11-29T08:00:00Z on shardA (a1.example:27018), shardB (b1.example:27018)"
            ),
            "{message}"
        );
    }

    #[test]
    fn an_index_no_query_used_or_one_gone_is_no_finding() {
        let unused = [member(Bson::Int64(0), "2026-11-30T08:00:00Z")];
        assert_eq!(judge("events", "legacy_1", &unused), None);
        let shards_unused = [
            shard("shardA", "a1.example:27018", 0, "2026-11-30T08:00:00Z"),
            shard("shardB", "b1.example:27018", 0, "2026-11-30T08:00:00Z"),
        ];
        assert_eq!(judge("events", "legacy_1", &shards_unused), None);
        assert_eq!(judge("events", "legacy_1", &[]), None);
    }

    #[test]
    fn a_count_of_either_width_is_read_and_one_used_once_says_time() {
        let stats = [member(Bson::Int32(1), "2026-11-30T08:00:00Z")];
        let usage = Usage::read(&stats).expect("read").expect("listed");
        assert_eq!(usage.ops, 1);
        assert!(usage.message("legacy_1").contains(" 1 time since "));
    }

    #[test]
    fn a_document_without_its_count_is_inconclusive_never_clean() {
        let mut no_ops = member(Bson::Int64(3), "2026-11-30T08:00:00Z");
        no_ops.insert("accesses", doc! { "since": at("2026-11-30T08:00:00Z") });
        let mut text_ops = member(Bson::Int64(3), "2026-11-30T08:00:00Z");
        text_ops.insert("accesses", doc! { "ops": "3" });
        let mut no_accesses = member(Bson::Int64(3), "2026-11-30T08:00:00Z");
        no_accesses.remove("accesses");
        let negative = member(Bson::Int64(-1), "2026-11-30T08:00:00Z");
        for odd in [no_ops, text_ops, no_accesses, negative] {
            let seen = judge("events", "legacy_1", std::slice::from_ref(&odd)).expect("not clean");
            assert!(
                matches!(&seen.seen, crate::assess::preflight::Seen::Inconclusive(reason)
                    if reason.starts_with("`$indexStats` could not say")),
                "{odd}: {seen:?}"
            );
        }
    }
}
