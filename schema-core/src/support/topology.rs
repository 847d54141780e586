//! What a server's `hello` says of the deployment behind it: a `mongos`, a
//! replica set member, or a standalone server. Transactions and commit
//! quorums exist on the first two only.

use mongodb::bson::Document;

/// The deployment a `hello` reply describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Topology {
    /// A `mongos` in front of a sharded cluster.
    pub(crate) mongos: bool,
    /// A replica set member (its `hello` names the set).
    pub(crate) replica_set: bool,
}

impl Topology {
    /// What `hello` says.
    pub(crate) fn of(hello: &Document) -> Topology {
        Topology {
            mongos: hello.get_str("msg") == Ok("isdbgrid"),
            replica_set: hello.get_str("setName").is_ok(),
        }
    }

    /// Not a standalone server: transactions and commit quorums are
    /// taken.
    pub(crate) fn replicated(self) -> bool {
        self.mongos || self.replica_set
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    use super::*;

    #[test]
    fn hello_tells_a_mongos_a_replica_set_member_and_a_standalone_apart() {
        let mongos = Topology::of(&doc! { "msg": "isdbgrid", "ok": 1 });
        assert!(mongos.mongos && !mongos.replica_set && mongos.replicated());
        let member = Topology::of(&doc! { "setName": "rs0", "ok": 1 });
        assert!(!member.mongos && member.replica_set && member.replicated());
        assert!(!Topology::of(&doc! { "isWritablePrimary": true, "ok": 1 }).replicated());
    }
}
