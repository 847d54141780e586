//! `SchemaManager::plan_commands` and `plan --commands`: the commands each
//! pending migration would send, heard on a client of its own while the
//! set is applied to a scratch database, with the bookkeeping and the
//! session's fields left out; the live database only read.
//!
//! The command line runs as `connect-cli` (its manager made by
//! `schema_core::connect(..).manager()`, so with client options) and as
//! `schema-cli` (made by `SchemaManager::new`, so without). The session's
//! and the cluster's fields a replica set's client adds are left out on a
//! real server only (the emulator answers as a standalone, and is sent
//! neither `txnNumber` nor `$clusterTime`); that test skips on it.

use schema_core::indexes::{IndexModelExt, ascending, ensure_indexes};
use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Bson, Document, doc};
use schema_core::mongodb::options::ClientOptions;
use schema_core::{CommandPlan, Error, Migrations, SchemaManager, Validator, migration, set_validator};
use schema_tests::live::Live;
use schema_tests::server::{is_replica_set, skip_unless_real};
use schema_tests::{
    fresh_database, monitored_database, run_on, scratch_databases, stdout, take_command_documents,
    take_commands,
};

const GROUP: &str = "plan_commands";

/// Applied before the plan is asked for: not shown.
#[migration(id = "pc_0001_orders", group = "plan_commands")]
async fn orders(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "orders", [ascending("order_id").unique()]).await
}

#[migration(id = "pc_0002_customers", group = "plan_commands", after = "pc_0001_orders")]
async fn customers(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "customers", [ascending("email").unique()]).await
}

#[migration(
    id = "pc_0003_customer_rules",
    group = "plan_commands",
    after = "pc_0002_customers"
)]
async fn customer_rules(db: &Database) -> Result<(), Error> {
    set_validator(db, "customers", Validator::new(doc! { "required": ["email"] })).await
}

/// A raw insert of defaults, after a read that finds nothing in the
/// scratch database.
#[migration(
    id = "pc_0004_defaults",
    group = "plan_commands",
    after = "pc_0003_customer_rules"
)]
async fn defaults(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    let settings = db.collection::<Document>("settings");
    if settings.find_one(doc! { "_id": "defaults" }).await?.is_none() {
        settings
            .insert_one(doc! { "_id": "defaults", "theme": "light", "page_size": 50 })
            .await?;
    }
    Ok(())
}

#[migration(id = "pcf_0001_index", group = "plan_commands_failing")]
async fn failing_index(db: &Database) -> Result<(), Error> {
    ensure_indexes(db, "things", [ascending("thing_id")]).await
}

#[migration(
    id = "pcf_0002_fails",
    group = "plan_commands_failing",
    after = "pcf_0001_index"
)]
async fn fails(_db: &Database) -> Result<(), Error> {
    Err(Error::Configuration {
        reason: "refused on purpose".into(),
    })
}

async fn options() -> ClientOptions {
    ClientOptions::parse(schema_tests::uri())
        .await
        .expect("MONGODB_URI is a valid URI")
}

async fn manager(db: &Database, group: &str) -> SchemaManager {
    SchemaManager::new(db.clone())
        .migrations(Migrations::group(group).expect("a valid set"))
        .lease_client(options().await)
}

/// Every field name of `document`, nested ones too.
fn field_names(document: &Document) -> Vec<String> {
    fn walk(value: &Bson, names: &mut Vec<String>) {
        match value {
            Bson::Document(document) => {
                for (name, value) in document {
                    names.push(name.clone());
                    walk(value, names);
                }
            }
            Bson::Array(values) => values.iter().for_each(|value| walk(value, names)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    walk(&Bson::Document(document.clone()), &mut names);
    names
}

/// The fields the driver adds to a command (the session, the cluster's
/// time, the database, a retryable write's number, where it may be read),
/// which a plan leaves out.
const DRIVERS_FIELDS: [&str; 6] = [
    "lsid",
    "$clusterTime",
    "$db",
    "txnNumber",
    "$readPreference",
    "signature",
];

/// Asserts that `command`, planned for the migration `id`, holds none of
/// [`DRIVERS_FIELDS`], nested ones included.
fn assert_no_drivers_fields(id: &str, command: &Document) {
    for field in field_names(command) {
        assert!(
            !DRIVERS_FIELDS.contains(&field.as_str()),
            "{field} in {id}: {command}"
        );
    }
}

/// The one command named `name` among `commands`, asserted to be the only
/// one and to target `target`.
fn the_one<'c>(commands: &[&'c Document], name: &str, target: &str) -> &'c Document {
    let named: Vec<&Document> = commands
        .iter()
        .copied()
        .filter(|command| command.contains_key(name))
        .collect();
    let [command] = named.as_slice() else {
        panic!("one {name} expected: {commands:?}");
    };
    assert_eq!(command.get_str(name), Ok(target), "{command}");
    command
}

fn the_plan(plan: &CommandPlan) -> Vec<(&str, Vec<&Document>)> {
    plan.migrations
        .iter()
        .map(|migration| (migration.id.as_str(), migration.commands.iter().collect()))
        .collect()
}

#[tokio::test]
async fn each_pending_migration_shows_its_commands_without_bookkeeping_and_the_live_database_is_only_read() {
    // It creates and drops a scratch database, and lists them.
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("plan_commands").await;
    let manager = manager(&db, GROUP).await;
    manager
        .mark_applied("pc_0001_orders")
        .await
        .expect("mark the first applied");
    let before = Live::read(&db).await;
    assert_eq!(before.records().len(), 1, "one record: {before:?}");

    let plan = manager.plan_commands().await.expect("plan the commands");

    let shown = the_plan(&plan);
    let ids: Vec<&str> = shown.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids,
        ["pc_0002_customers", "pc_0003_customer_rules", "pc_0004_defaults"],
        "the pending ones, in apply order"
    );
    let [customers, rules, defaults] = [&shown[0].1, &shown[1].1, &shown[2].1];
    let created = the_one(customers, "createIndexes", "customers");
    assert_eq!(
        created.get_array("indexes").expect("indexes"),
        &vec![Bson::Document(
            doc! { "key": { "email": 1 }, "name": "email_1", "unique": true }
        )],
        "the declared spec"
    );
    let changed = the_one(rules, "collMod", "customers");
    assert_eq!(
        changed.get_document("validator").expect("a validator"),
        &doc! { "$jsonSchema": { "required": ["email"] } }
    );
    let inserted = the_one(defaults, "insert", "settings");
    assert_eq!(
        inserted.get_array("documents").expect("documents"),
        &vec![Bson::Document(
            doc! { "_id": "defaults", "theme": "light", "page_size": 50 }
        )]
    );
    assert!(
        defaults
            .iter()
            .any(|command| command.get_str("find") == Ok("settings")),
        "the read, which found nothing: {defaults:?}"
    );

    for (id, commands) in &shown {
        for command in commands {
            let name = command.keys().next().expect("a command name");
            assert!(
                !["hello", "isMaster", "endSessions", "killCursors", "saslStart"].contains(&name.as_str()),
                "{id}: {command}"
            );
            let target = command.get_str(name).unwrap_or_default();
            assert!(
                !["schema_versions", "schema_lock"].contains(&target)
                    && command.get_str("collection").is_err(),
                "no bookkeeping: {id}: {command}"
            );
            assert_no_drivers_fields(id, command);
            assert!(
                !command.to_string().contains("_snapshot_"),
                "the scratch database is not named: {command}"
            );
        }
    }

    before.assert_unchanged(&db).await;
    // Applied now, nothing is pending and no scratch database is made.
    manager.apply_all().await.expect("apply");
    assert_eq!(
        manager.plan_commands().await.expect("plan again"),
        CommandPlan::default()
    );
}

#[tokio::test]
async fn without_client_options_the_manager_says_how_to_build_it_and_sends_nothing() {
    let (db, sent) = monitored_database("plan_commands_no_options").await;
    let manager = SchemaManager::new(db.clone()).migrations(Migrations::group(GROUP).expect("a valid set"));
    let error = manager.plan_commands().await.expect_err("no client options");
    assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
    let message = error.to_string();
    for words in ["schema_core::connect(..).manager()", "lease_client"] {
        assert!(message.contains(words), "{message}");
    }
    assert!(!message.ends_with('.'), "{message}");
    assert_eq!(
        take_commands(&sent),
        Vec::<(String, String)>::new(),
        "nothing sent"
    );
}

#[tokio::test]
async fn a_failing_migration_is_the_error_and_the_scratch_database_is_dropped() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("plan_commands_failing").await;
    let error = manager(&db, "plan_commands_failing")
        .await
        .plan_commands()
        .await
        .expect_err("the second migration fails");
    assert!(
        matches!(&error, Error::MigrationFailed { id, .. } if id == "pcf_0002_fails"),
        "{error:?}"
    );
    assert_eq!(
        scratch_databases(&db).await,
        Vec::<String>::new(),
        "dropped also on failure"
    );
    assert_eq!(Live::read(&db).await, Live::default(), "nothing written");
}

#[tokio::test]
async fn the_command_line_prints_the_commands_as_text_and_json() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let db = fresh_database("plan_commands_cli").await;
    let cli = env!("CARGO_BIN_EXE_connect-cli");

    let text = run_on(cli, &db, &["plan", "--commands"]);
    assert_eq!(
        text.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let printed = stdout(&text);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], format!("note: {}", CommandPlan::NOTE), "{printed}");
    assert!(
        lines[0].contains("captured against an empty scratch database"),
        "{printed}"
    );
    assert_eq!(
        &lines[1..3],
        ["c_0001_nothing:", "  (sends no command)"],
        "{printed}"
    );
    assert_eq!(lines[3], "c_0002_sessions:", "{printed}");
    let created: Vec<serde_json::Value> = lines[4..]
        .iter()
        .map(|line| {
            let command = line
                .strip_prefix("  ")
                .unwrap_or_else(|| panic!("indented: {printed}"));
            serde_json::from_str(command).unwrap_or_else(|error| panic!("{error}: {command}"))
        })
        .filter(|command: &serde_json::Value| command.get("createIndexes").is_some())
        .collect();
    assert_eq!(
        created,
        [serde_json::json!({
            "createIndexes": "sessions",
            "indexes": [{ "key": { "user_id": 1 }, "name": "user_id_1" }],
        })],
        "{printed}"
    );

    let json = run_on(cli, &db, &["plan", "--commands", "--json"]);
    assert_eq!(
        json.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(&json)));
    assert_eq!(value["note"], CommandPlan::NOTE);
    assert_eq!(
        value["migrations"][0],
        serde_json::json!({ "id": "c_0001_nothing", "commands": [] })
    );
    assert_eq!(value["migrations"][1]["id"], "c_0002_sessions");
    let commands = value["migrations"][1]["commands"].as_array().expect("commands");
    assert!(
        commands
            .iter()
            .any(|command| command["createIndexes"] == "sessions"),
        "{value}"
    );

    // Without --commands, the plan is the table it was.
    let plain = stdout(&run_on(cli, &db, &["plan"]));
    assert!(
        plain.starts_with('#') && plain.contains("c_0002_sessions"),
        "{plain}"
    );
    assert!(!plain.contains("createIndexes"), "{plain}");

    assert_eq!(
        db.list_collection_names().await.expect("listCollections"),
        Vec::<String>::new(),
        "the live database untouched"
    );
    assert_eq!(
        scratch_databases(&db).await,
        Vec::<String>::new(),
        "no scratch database left"
    );
}

#[tokio::test]
async fn the_command_line_without_client_options_fails_with_the_clear_error() {
    let db = fresh_database("plan_commands_cli_no_options").await;
    let cli = env!("CARGO_BIN_EXE_schema-cli");

    let text = run_on(cli, &db, &["plan", "--commands"]);
    assert_eq!(text.status.code(), Some(1));
    assert_eq!(stdout(&text), "");
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("lease_client") && stderr.lines().count() == 1,
        "{stderr}"
    );

    let json = run_on(cli, &db, &["plan", "--commands", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|error| panic!("{error}: {}", stdout(&json)));
    assert_eq!(value["error"]["kind"], "configuration", "{value}");
    assert_eq!(
        db.list_collection_names().await.expect("listCollections"),
        Vec::<String>::new()
    );
}

/// The scratch run goes over a client of its own: the live database's
/// client sends only the read of the records.
#[tokio::test]
async fn the_live_client_sends_only_the_read_of_the_records() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database("plan_commands_live_client").await;
    let plan = manager(&db, GROUP)
        .await
        .plan_commands()
        .await
        .expect("plan the commands");
    assert_eq!(plan.migrations.len(), 4, "all pending");
    let names: Vec<String> = take_commands(&sent).into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, ["find"], "one read of the records on the live client");
}

/// On a real server the driver sends a write with its session (`lsid`),
/// and on a replica set with a retryable write's `txnNumber` and the
/// cluster's time: none of them is shown. The emulator answers `hello` as
/// a standalone, so the driver sends it neither of the last two.
#[tokio::test]
async fn on_a_real_server_the_session_and_cluster_fields_the_driver_adds_are_left_out() {
    let _alone = schema_tests::DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database("plan_commands_real").await;
    if skip_unless_real(
        &db,
        "the driver adds a replica set's txnNumber and $clusterTime only to a server that says it is one",
    )
    .await
    {
        return;
    }
    // The fields are there to leave out: this server's client sends them.
    db.collection::<Document>("probe")
        .insert_one(doc! { "seen": true })
        .await
        .expect("insert");
    let probe = take_command_documents(&sent)
        .into_iter()
        .find(|command| command.contains_key("insert"))
        .expect("the insert was heard");
    assert!(probe.contains_key("lsid"), "{probe}");
    if is_replica_set(&db).await {
        assert!(
            probe.contains_key("txnNumber") && probe.contains_key("$clusterTime"),
            "{probe}"
        );
    }
    let before = Live::read(&db).await;

    let plan = manager(&db, GROUP)
        .await
        .plan_commands()
        .await
        .expect("plan the commands");

    assert_eq!(plan.migrations.len(), 4, "all pending: {plan:?}");
    let inserted = plan.migrations[3]
        .commands
        .iter()
        .find(|command| command.get_str("insert") == Ok("settings"))
        .expect("the insert of the defaults");
    assert_eq!(
        inserted.get_array("documents").expect("documents"),
        &vec![Bson::Document(
            doc! { "_id": "defaults", "theme": "light", "page_size": 50 }
        )]
    );
    for migration in &plan.migrations {
        for command in &migration.commands {
            assert_no_drivers_fields(&migration.id, command);
        }
    }
    before.assert_unchanged(&db).await;
}
