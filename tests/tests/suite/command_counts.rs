//! Exact command counts of the startup path with the example's eleven
//! migrations, as the driver's command monitoring sees them (the connection
//! handshake and server monitoring are not commands). `BENCHMARKS.md`
//! quotes these numbers. The example's background migration is applied
//! before `apply_all` returns here (`wait_for_background`), so that every
//! command is counted in one sequence: under the start lock, then under
//! the background lock. A fleet up to date costs its listing and one read
//! per tenant.

use schema_core::SchemaManager;
use schema_tests::{monitored_database, take_commands};

use example_app as _;

fn command(name: &str, target: &str) -> (String, String) {
    (name.to_owned(), target.to_owned())
}

#[tokio::test]
async fn a_full_apply_sends_the_migrations_commands_plus_two_per_migration_and_a_constant_per_lock() {
    let (db, sent) = monitored_database("full_apply_commands").await;
    SchemaManager::new(db.clone())
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("apply");
    let commands = take_commands(&sent);

    let mut expected = vec![
        command("find", "schema_versions"), // what is pending
        command("hello", ""),               // the server's clock
        command("insert", "schema_lock"),   // take the lock
        command("find", "schema_versions"), // pending again, under the lock
    ];
    let own: [(&str, &[(&str, &str)]); 11] = [
        ("0001_events", &[("createIndexes", "events")]),
        (
            "0002_events_validator",
            &[("listCollections", ""), ("collMod", "events")],
        ),
        (
            "0003_user_settings_snapshots",
            &[("createIndexes", "user_settings_snapshots")],
        ),
        ("0004_replay_sessions", &[("createIndexes", "replay_sessions")]),
        (
            "0005_notifications",
            &[
                ("createIndexes", "notifications"),
                ("createIndexes", "notification_rules"),
            ],
        ),
        ("0006_idempotency_keys", &[("createIndexes", "idempotency_keys")]),
        ("0007_sagas", &[("createIndexes", "sagas")]),
        (
            "0008_execution_results",
            &[("createIndexes", "execution_results")],
        ),
        ("0009_dlq_messages", &[("createIndexes", "dlq_messages")]),
        (
            // The backfill on an empty collection: the expected total, the
            // checkpoint before the first batch, and a first batch of none.
            "0010_events_status",
            &[
                ("aggregate", "events"),
                ("findAndModify", "schema_lock"),
                ("find", "events"),
            ],
        ),
        // The background migration, last, under the other lock.
        ("0011_events_by_correlation", &[("createIndexes", "events")]),
    ];
    for (id, commands) in own {
        if id == "0011_events_by_correlation" {
            // Release the start lock: a findAndModify that removes it at
            // its version. Then take the background lock.
            expected.push(command("findAndModify", "schema_lock"));
            expected.push(command("hello", ""));
            expected.push(command("insert", "schema_lock"));
            expected.push(command("find", "schema_versions"));
        }
        expected.extend(commands.iter().map(|(name, target)| command(name, target)));
        // Fence the completion (and note the next migration as running)...
        expected.push(command("findAndModify", "schema_lock"));
        expected.push(command("insert", "schema_versions")); // ...then record it
    }
    // Release the background lock; remove a failure noted for what it
    // recorded, if any.
    expected.push(command("findAndModify", "schema_lock"));
    expected.push(command("delete", "schema_lock"));

    assert_eq!(commands, expected);
    assert_eq!(commands.len(), (4 + 1) + (3 + 1 + 1) + 15 + 2 * 11);
    assert_eq!(commands.len(), 47);
}

#[tokio::test]
async fn a_start_with_nothing_to_do_sends_one_command() {
    let (db, sent) = monitored_database("noop_commands").await;
    SchemaManager::new(db.clone())
        .wait_for_background(true)
        .apply_all()
        .await
        .expect("first start");
    take_commands(&sent);
    let report = SchemaManager::new(db.clone())
        .apply_all()
        .await
        .expect("second start");
    assert_eq!(report.already_applied.len(), 11);
    assert!(report.background.is_empty());
    assert_eq!(take_commands(&sent), [command("find", "schema_versions")]);
}

#[tokio::test]
async fn a_fleet_up_to_date_costs_the_listing_and_one_read_per_tenant() {
    use schema_core::fleet::{Fleet, Selection};

    let _listing = schema_tests::DATABASE_LISTINGS.lock().await;
    let (db, sent) = monitored_database("fleet_commands").await;
    let client = db.client().clone();
    let prefix = format!("{}_", &db.name()[..50.min(db.name().len())]);
    let names: Vec<String> = (0..3).map(|n| format!("{prefix}{n}")).collect();
    let manager = SchemaManager::new(client.database(&format!("{prefix}manager")));
    let applied = Fleet::new(manager.clone(), Selection::databases(names.clone()))
        .apply()
        .await
        .expect("the fleet's first apply");
    assert_eq!(applied.summary.applied, 3, "{applied:?}");

    let fleet = Fleet::new(manager, Selection::prefix(prefix.clone())).concurrency(2);
    for run in ["status", "no-op apply"] {
        take_commands(&sent);
        let report = match run {
            "status" => fleet.status().await,
            _ => fleet.apply().await,
        }
        .expect("the fleet's run");
        assert_eq!(report.summary.up_to_date, 3, "{run}: {report:?}");
        let mut sent_to: Vec<(String, String, String)> = schema_tests::take_command_documents(&sent)
            .into_iter()
            .map(|command| {
                let (name, target) = command.iter().next().expect("a command");
                (
                    name.clone(),
                    target.as_str().unwrap_or_default().to_owned(),
                    command.get_str("$db").unwrap_or_default().to_owned(),
                )
            })
            .collect();
        sent_to.sort();
        let mut expected = vec![("listDatabases".to_owned(), String::new(), "admin".to_owned())];
        expected.extend(
            names
                .iter()
                .map(|name| ("find".to_owned(), "schema_versions".to_owned(), name.clone())),
        );
        expected.sort();
        assert_eq!(sent_to, expected, "{run}");
    }
}
