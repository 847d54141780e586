//! Whether an index build waits for its commit quorum: pure, from the
//! member's own record of its builds (`config.system.indexBuilds`), its
//! collection's identity and the names `hello` gives the members.

use mongodb::bson::{Bson, Document, spec::BinarySubtype};

use crate::support::convert;

/// Whether an index build waits for its commit quorum (on a replica set,
/// by default every voting data-bearing member; see
/// [`EnsureIndexes::commit_quorum`](crate::indexes::EnsureIndexes::commit_quorum)).
///
/// Known only from the member's own record of the build
/// (`config.system.indexBuilds`: the quorum and the members that have built
/// the indexes and voted to commit them), never guessed from the build's
/// phase: the phase in which a build waits for its quorum is also the one
/// in which every build, on a standalone too, drains the writes that
/// arrived while it ran.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommitQuorumWait {
    /// Not known: read through a `mongos` (which does not show the shards'
    /// records), by a user without the privilege to read the record, or
    /// the record could not be read.
    #[default]
    Unknown,
    /// It does not wait for one: on a standalone server (which has no
    /// quorum), or the member has not built the indexes yet, or the build
    /// commits without a quorum (`commitQuorum: 0`), or it is not a build
    /// the member records (one that commits on its own).
    NotWaiting,
    /// The member has built the indexes and voted to commit them, and the
    /// build is not committed: it waits for the rest of its quorum (or,
    /// for a moment once the quorum is reached, for its commit). A build
    /// that stays so waits for members that are behind or down.
    Waiting {
        /// The quorum, as the record names it: `votingMembers`,
        /// `majority`, a number of members or a replica set tag.
        quorum: String,
        /// The members that have voted, `host:port` as the replica set's
        /// configuration names them.
        ready: Vec<String>,
    },
}

impl CommitQuorumWait {
    /// Whether it is known that the build waits for its commit quorum.
    pub fn is_waiting(&self) -> bool {
        matches!(self, CommitQuorumWait::Waiting { .. })
    }
}

/// Whether two lists name the same indexes, in any order.
pub(crate) fn same_names(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// What a member that answered `hello` with `member` (its `host:port`,
/// `hello.me`) records of `build`: `records` are the documents of its
/// `config.system.indexBuilds`, and `collection_uuid` the `info.uuid` that
/// `listCollections` gives the build's collection.
///
/// A record is the build's when it is on that collection and names the
/// same indexes. The member waits for its quorum once it is among the
/// members that voted (`commitReadyMembers`) and the record, removed when
/// the build commits or aborts, is still there; a quorum of 0 has no vote.
/// A build without a record is not one that waits for a quorum.
pub(crate) fn commit_quorum_wait(
    indexes: &[String],
    collection_uuid: Option<&[u8]>,
    records: &[Document],
    member: &str,
) -> CommitQuorumWait {
    let Some(collection_uuid) = collection_uuid else {
        // The collection's identity is unknown, so is its record.
        return CommitQuorumWait::Unknown;
    };
    let names = |record: &Document| -> Vec<String> {
        record
            .get_array("indexNames")
            .map(|names| {
                names
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let record = records.iter().find(|record| {
        uuid(record.get("collectionUUID")) == Some(collection_uuid) && same_names(&names(record), indexes)
    });
    let Some(record) = record else {
        return CommitQuorumWait::NotWaiting;
    };
    let quorum = match record.get("commitQuorum") {
        Some(Bson::String(name)) => name.clone(),
        Some(number) => match convert::integer(number) {
            Some(0) => return CommitQuorumWait::NotWaiting,
            Some(members) => members.to_string(),
            None => return CommitQuorumWait::Unknown,
        },
        None => return CommitQuorumWait::Unknown,
    };
    let ready: Vec<String> = record
        .get_array("commitReadyMembers")
        .map(|members| {
            members
                .iter()
                .filter_map(|member| member.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ready.iter().any(|ready| ready == member) {
        CommitQuorumWait::Waiting { quorum, ready }
    } else {
        CommitQuorumWait::NotWaiting
    }
}

/// Whether the members named in the build records are named as `hello`
/// names them (`members`: its `hosts` and `passives`). With split
/// horizons, `hello` answers in the names of the client's horizon while
/// the records keep the replica set's configured names: a record whose
/// voters are none of `members` says nothing this member can match, so
/// every wait is then unknown rather than "not waiting".
pub(crate) fn names_match(records: &[Document], members: &[&str]) -> bool {
    records.iter().all(|record| {
        let voters: Vec<&str> = record
            .get_array("commitReadyMembers")
            .map(|voters| voters.iter().filter_map(Bson::as_str).collect())
            .unwrap_or_default();
        voters.is_empty() || voters.iter().any(|voter| members.contains(voter))
    })
}

/// The bytes of a UUID (binary subtype 4), if `value` is one.
pub(crate) fn uuid(value: Option<&Bson>) -> Option<&[u8]> {
    match value? {
        Bson::Binary(binary) if binary.subtype == BinarySubtype::Uuid => Some(&binary.bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn records_in_another_horizon_s_names_are_not_matched() {
        let record = doc! { "commitReadyMembers": ["db-0.internal:27017"] };
        let none = doc! { "commitQuorum": "votingMembers" };
        assert!(names_match(
            &[record.clone(), none.clone()],
            &["db-0.internal:27017", "db-1.internal:27017"]
        ));
        assert!(!names_match(&[record], &["db-0.example.com:27017"]));
        assert!(names_match(&[none], &["db-0.example.com:27017"]));
    }

    fn binary_uuid(byte: u8) -> Bson {
        Bson::Binary(mongodb::bson::Binary {
            subtype: BinarySubtype::Uuid,
            bytes: vec![byte; 16],
        })
    }

    /// A member's record of a build of `at_1` on the collection `byte`
    /// names, as `config.system.indexBuilds` holds it (7.0's fields).
    fn record(collection: u8, quorum: Bson, ready: &[&str]) -> Document {
        let mut record = doc! {
            "_id": binary_uuid(9),
            "collectionUUID": binary_uuid(collection),
            "commitQuorum": quorum,
            "indexNames": ["at_1"],
        };
        if !ready.is_empty() {
            record.insert("commitReadyMembers", ready.to_vec());
        }
        record
    }

    #[test]
    fn a_build_waits_for_its_quorum_once_the_member_has_voted_and_it_is_not_committed() {
        let events = [1_u8; 16];
        let build = ["at_1".to_owned()];
        let wait = |records: &[Document]| commit_quorum_wait(&build, Some(&events), records, "a:27017");

        let voted = [record(1, "votingMembers".into(), &["a:27017"])];
        assert_eq!(
            wait(&voted),
            CommitQuorumWait::Waiting {
                quorum: "votingMembers".into(),
                ready: vec!["a:27017".into()],
            }
        );
        assert!(wait(&voted).is_waiting());
        let majority = [record(1, Bson::Int32(2), &["b:27017", "a:27017"])];
        assert_eq!(
            wait(&majority),
            CommitQuorumWait::Waiting {
                quorum: "2".into(),
                ready: vec!["b:27017".into(), "a:27017".into()],
            }
        );

        // Another member voted first: this one is still building.
        let others = [record(1, "votingMembers".into(), &["b:27017"])];
        assert_eq!(wait(&others), CommitQuorumWait::NotWaiting);
        // Nobody voted yet.
        assert_eq!(
            wait(&[record(1, "majority".into(), &[])]),
            CommitQuorumWait::NotWaiting
        );
        // No quorum: the build commits without votes.
        assert_eq!(
            wait(&[record(1, Bson::Int32(0), &["a:27017"])]),
            CommitQuorumWait::NotWaiting
        );
        // A build of the same index on another collection is not this one.
        assert_eq!(
            wait(&[record(2, "votingMembers".into(), &["a:27017"])]),
            CommitQuorumWait::NotWaiting
        );
        // No record: committed, aborted, or one that commits on its own.
        assert_eq!(wait(&[]), CommitQuorumWait::NotWaiting);
        // A quorum of a shape this does not know is not read as a wait.
        assert_eq!(
            wait(&[record(1, Bson::Boolean(true), &["a:27017"])]),
            CommitQuorumWait::Unknown
        );
        // The collection's identity unknown: so is the build's record.
        assert_eq!(
            commit_quorum_wait(&build, None, &voted, "a:27017"),
            CommitQuorumWait::Unknown
        );
    }
}
