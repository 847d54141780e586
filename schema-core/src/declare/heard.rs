//! The commands a migration sent, as a listening client heard them during a
//! scratch run, made into what it would send to the live database: the
//! library's own bookkeeping left out, the fields of the session and the
//! cluster removed, the scratch database named as the live one. No I/O.

use mongodb::bson::{Bson, Document};

use super::capture::Declared;

/// What each pending migration would send, in apply order
/// ([`SchemaManager::plan_commands`](crate::SchemaManager::plan_commands)).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CommandPlan {
    /// Each pending migration and its commands, in the order they would
    /// run.
    pub migrations: Vec<MigrationCommands>,
}

impl CommandPlan {
    /// What a reader of the commands must know: they were heard while the
    /// set was applied to an empty database.
    pub const NOTE: &str = "data commands were captured against an empty scratch database: a data \
                            migration's reads found nothing there, and its writes are those it sends \
                            when there is nothing";
}

/// One pending migration's commands.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationCommands {
    /// The migration's id.
    pub id: String,
    /// Each command as it would be sent, in order, with its `$db` only
    /// when it goes to another database than the migration's (`admin`).
    pub commands: Vec<Document>,
}

/// What is left out of what was heard, and the names to swap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heard<'a> {
    /// The scratch database the set was applied to.
    pub(crate) scratch: &'a str,
    /// The live database, named in its place.
    pub(crate) live: &'a str,
    /// The collections of the library's bookkeeping: the records, the
    /// lock.
    pub(crate) bookkeeping: [&'a str; 2],
}

/// Commands the driver or the library sends for its own sake, whoever
/// runs them: the handshake and monitoring, authentication, sessions,
/// cursors closed.
const NOT_THE_MIGRATIONS: [&str; 9] = [
    "hello",
    "ismaster",
    "endsessions",
    "killcursors",
    "saslstart",
    "saslcontinue",
    "authenticate",
    "getnonce",
    "logout",
];

/// Fields the driver adds for the session, the cluster's clock and the
/// server's selection, which say nothing of what the command does.
const SESSION_FIELDS: [&str; 5] = [
    "lsid",
    "txnNumber",
    "$clusterTime",
    "$readPreference",
    "signature",
];

impl Heard<'_> {
    /// The commands in `declared` that the migration itself sent, cleaned,
    /// in order; every other declaration is left out.
    pub(crate) fn commands(&self, declared: Vec<Declared>) -> Vec<Document> {
        declared
            .into_iter()
            .filter_map(|declared| match declared {
                Declared::Command { command } => self.clean(command),
                _ => None,
            })
            .collect()
    }

    /// `command` as it would be sent to the live database, or `None` when
    /// it is bookkeeping.
    fn clean(&self, mut command: Document) -> Option<Document> {
        let name = command.keys().next()?.to_ascii_lowercase();
        if NOT_THE_MIGRATIONS.contains(&name.as_str()) {
            return None;
        }
        let database = command.get_str("$db").unwrap_or(self.scratch).to_owned();
        if database == self.scratch && self.is_bookkeeping(&command) {
            return None;
        }
        for field in SESSION_FIELDS {
            command.remove(field);
        }
        if database == self.scratch {
            command.remove("$db");
        }
        // A causally consistent session's read waits for a cluster time.
        if let Some(Bson::Document(concern)) = command.get_mut("readConcern") {
            concern.remove("afterClusterTime");
            if concern.is_empty() {
                command.remove("readConcern");
            }
        }
        Some(self.renamed(command))
    }

    /// Whether `command` (sent to the scratch database) names a
    /// bookkeeping collection as its target (`getMore` names it in
    /// `collection`).
    fn is_bookkeeping(&self, command: &Document) -> bool {
        let target = match command.iter().next() {
            Some((name, _)) if name == "getMore" => command.get_str("collection").ok(),
            Some((_, Bson::String(collection))) => Some(collection.as_str()),
            _ => None,
        };
        target.is_some_and(|target| self.bookkeeping.contains(&target))
    }

    /// `document` with the scratch database named as the live one wherever
    /// it is a namespace: a string that is the database's name (`$out`'s
    /// and `$merge`'s `db`, `enableSharding`) or starts with it and a dot
    /// (`renameCollection`, `shardCollection`).
    fn renamed(&self, document: Document) -> Document {
        document
            .into_iter()
            .map(|(key, value)| (key, self.renamed_value(value)))
            .collect()
    }

    fn renamed_value(&self, value: Bson) -> Bson {
        match value {
            Bson::String(text) => Bson::String(self.renamed_namespace(text)),
            Bson::Document(document) => Bson::Document(self.renamed(document)),
            Bson::Array(values) => Bson::Array(
                values
                    .into_iter()
                    .map(|value| self.renamed_value(value))
                    .collect(),
            ),
            other => other,
        }
    }

    fn renamed_namespace(&self, text: String) -> String {
        if text == self.scratch {
            return self.live.to_owned();
        }
        match text.strip_prefix(self.scratch) {
            Some(rest) if rest.starts_with('.') => format!("{}{rest}", self.live),
            _ => text,
        }
    }
}

/// A command as the driver reported it sent to `database`: with its `$db`,
/// and, when the driver redacted it (`createUser`, `updateUser`, a `hello`
/// that authenticates), its name alone, so that it is not lost.
pub(crate) fn as_sent(name: &str, mut command: Document, database: String) -> Document {
    if command.is_empty() {
        command.insert(name, "(redacted by the driver)");
    }
    if !command.contains_key("$db") {
        command.insert("$db", database);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    const HEARD: Heard<'static> = Heard {
        scratch: "app_snapshot_00ff",
        live: "app",
        bookkeeping: ["schema_versions", "schema_lock"],
    };

    fn heard(command: Document) -> Declared {
        Declared::Command { command }
    }

    #[test]
    fn bookkeeping_and_the_drivers_own_commands_are_left_out() {
        let declared = vec![
            heard(doc! { "hello": 1, "$db": "app_snapshot_00ff" }),
            heard(doc! { "isMaster": 1, "$db": "admin" }),
            heard(doc! { "endSessions": [], "$db": "admin" }),
            heard(doc! { "saslStart": 1, "$db": "admin" }),
            heard(doc! { "killCursors": "orders", "cursors": [1_i64], "$db": "app_snapshot_00ff" }),
            heard(doc! { "insert": "schema_versions", "documents": [], "$db": "app_snapshot_00ff" }),
            heard(doc! { "findAndModify": "schema_lock", "$db": "app_snapshot_00ff" }),
            heard(doc! { "getMore": 7_i64, "collection": "schema_versions", "$db": "app_snapshot_00ff" }),
            // What the driver redacts is heard empty.
            heard(Document::new()),
            Declared::Began { id: "other" },
            // Another database's collection of that name is the migration's.
            heard(doc! { "insert": "schema_lock", "documents": [], "$db": "elsewhere" }),
            heard(doc! { "getMore": 7_i64, "collection": "orders", "$db": "app_snapshot_00ff" }),
        ];
        assert_eq!(
            HEARD.commands(declared),
            [
                doc! { "insert": "schema_lock", "documents": [], "$db": "elsewhere" },
                doc! { "getMore": 7_i64, "collection": "orders" },
            ]
        );
    }

    #[test]
    fn session_fields_go_and_the_scratch_database_is_named_as_the_live_one() {
        let declared = vec![
            heard(doc! {
                "aggregate": "orders",
                "pipeline": [
                    { "$match": { "note": "app_snapshot_00ffx" } },
                    { "$out": { "db": "app_snapshot_00ff", "coll": "totals" } },
                ],
                "cursor": {},
                "readConcern": { "level": "majority", "afterClusterTime": mongodb::bson::Timestamp { time: 1, increment: 1 } },
                "lsid": { "id": 1 },
                "txnNumber": 3_i64,
                "$clusterTime": { "clusterTime": 1, "signature": { "keyId": 0_i64 } },
                "$readPreference": { "mode": "primary" },
                "$db": "app_snapshot_00ff",
            }),
            heard(doc! {
                "renameCollection": "app_snapshot_00ff.old",
                "to": "app_snapshot_00ff.new",
                "readConcern": { "afterClusterTime": 1 },
                "$db": "admin",
            }),
        ];
        assert_eq!(
            HEARD.commands(declared),
            [
                doc! {
                    "aggregate": "orders",
                    "pipeline": [
                        { "$match": { "note": "app_snapshot_00ffx" } },
                        { "$out": { "db": "app", "coll": "totals" } },
                    ],
                    "cursor": {},
                    "readConcern": { "level": "majority" },
                },
                doc! { "renameCollection": "app.old", "to": "app.new", "$db": "admin" },
            ]
        );
    }

    #[test]
    fn a_command_the_driver_redacted_keeps_its_name() {
        let redacted = as_sent("createUser", Document::new(), "app".into());
        assert_eq!(
            redacted,
            mongodb::bson::doc! { "createUser": "(redacted by the driver)", "$db": "app" }
        );
        let sent = as_sent("insert", mongodb::bson::doc! { "insert": "c" }, "app".into());
        assert_eq!(sent, mongodb::bson::doc! { "insert": "c", "$db": "app" });
    }
}
