//! Fleets: one set of migrations over many tenant databases. The library's
//! runs use the group `fleet` declared here; the command line's, the
//! `fleet-cli` binary, run as processes.
//!
//! `f_0001` fails while its tenant holds a document in `fail`, and counts,
//! per fleet (the tenants' common prefix), how many tenants run it at the
//! same moment, holding each for a while so that the tenants started
//! together overlap.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use schema_core::fleet::{Fleet, Outcome, Selection, Shard};
use schema_core::mongodb::bson::{DateTime, Document, doc};
use schema_core::mongodb::{Client, Database};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran, ran, record_ids};

const IDS: [&str; 2] = ["f_0001_accounts", "f_0002_emails"];
const CLI_IDS: [&str; 2] = ["fc_0001_accounts", "fc_0002_emails"];

/// Per fleet: the tenants running `f_0001` now, and the most at once.
static IN_FLIGHT: Mutex<Option<HashMap<String, (usize, usize)>>> = Mutex::new(None);

/// The fleet a tenant belongs to: its name up to its last `_`.
fn fleet_of(db: &Database) -> String {
    let name = db.name();
    name[..name.rfind('_').unwrap_or(name.len())].to_owned()
}

fn in_flight(fleet: &str, change: isize) {
    let mut counts = IN_FLIGHT.lock().unwrap();
    let (now, most) = counts
        .get_or_insert_with(HashMap::new)
        .entry(fleet.to_owned())
        .or_default();
    *now = now.checked_add_signed(change).unwrap();
    *most = (*most).max(*now);
}

fn most_in_flight(fleet: &str) -> usize {
    IN_FLIGHT
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|counts| counts.get(fleet))
        .map_or(0, |(_, most)| *most)
}

/// Accounts by tenant
#[migration(id = "f_0001_accounts", group = "fleet")]
async fn accounts(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    if db
        .collection::<Document>("fail")
        .find_one(doc! {})
        .await?
        .is_some()
    {
        return Err(schema_core::mongodb::error::Error::custom(
            "this tenant is marked to fail",
        ));
    }
    let fleet = fleet_of(db);
    in_flight(&fleet, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    in_flight(&fleet, -1);
    note_ran(db, "f_0001_accounts").await
}

/// Accounts by email
#[migration(id = "f_0002_emails", group = "fleet", after = "f_0001_accounts")]
async fn emails(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    note_ran(db, "f_0002_emails").await
}

/// A fleet prefix no other test uses, ending in `_`.
async fn prefix(test: &str) -> (Client, String) {
    let db = fresh_database(test).await;
    let mut name = db.name().to_owned();
    name.truncate(50);
    (db.client().clone(), format!("{name}_"))
}

/// `count` tenant names of the fleet `prefix`, in name order.
fn tenants(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{prefix}{n:02}")).collect()
}

/// A manager of the group `fleet` on `client` (its database is no tenant).
fn manager(client: &Client, prefix: &str) -> SchemaManager {
    SchemaManager::new(client.database(&format!("{prefix}manager")))
        .migrations(Migrations::group("fleet").expect("a valid group"))
}

async fn mark_failing(client: &Client, tenant: &str) {
    client
        .database(tenant)
        .collection::<Document>("fail")
        .insert_one(doc! { "why": "test" })
        .await
        .unwrap();
}

async fn collections(client: &Client, tenant: &str) -> Vec<String> {
    client.database(tenant).list_collection_names().await.unwrap()
}

fn outcomes(report: &schema_core::fleet::FleetReport) -> Vec<(String, Outcome)> {
    report
        .tenants
        .iter()
        .map(|tenant| (tenant.database.clone(), tenant.outcome))
        .collect()
}

#[tokio::test]
async fn apply_records_each_tenant_and_a_second_run_costs_one_read_per_tenant() {
    let (db, sent) = schema_tests::monitored_database("fleet_apply").await;
    let client = db.client().clone();
    let prefix = format!("{}_", &db.name()[..50.min(db.name().len())]);
    let names = tenants(&prefix, 4);
    let fleet = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone())).concurrency(2);

    let first = fleet.apply().await.unwrap();
    assert_eq!(first.summary.applied, 4, "{first:?}");
    for (tenant, name) in first.tenants.iter().zip(&names) {
        assert_eq!(&tenant.database, name);
        assert_eq!(tenant.applied, IDS);
        let tenant_db = client.database(name);
        assert_eq!(record_ids(&tenant_db, "schema_versions").await, IDS);
        assert_eq!(ran(&tenant_db).await, IDS);
    }

    schema_tests::take_commands(&sent);
    let second = fleet.apply().await.unwrap();
    assert_eq!(second.summary.up_to_date, 4, "{second:?}");
    assert!(second.is_success());
    let commands = schema_tests::take_command_documents(&sent);
    assert_eq!(commands.len(), 4, "{commands:?}");
    let mut read: Vec<String> = commands
        .iter()
        .map(|command| {
            let (name, _) = command.iter().next().unwrap();
            assert!(
                ["find", "aggregate"].contains(&name.as_str()),
                "a read: {command:?}"
            );
            command.get_str("$db").unwrap().to_owned()
        })
        .collect();
    read.sort();
    assert_eq!(read, names);

    let status = fleet.status().await.unwrap();
    assert_eq!(status.summary.up_to_date, 4, "{status:?}");
    assert_eq!(schema_tests::take_commands(&sent).len(), 4);
    for name in &names {
        assert_eq!(ran(&client.database(name)).await, IDS, "{name} ran once");
    }
}

#[tokio::test]
async fn each_tenant_is_migrated_within_a_span_naming_its_database() {
    let (client, prefix) = prefix("fleet_span").await;
    let names = tenants(&prefix, 2);
    let fleet = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone())).concurrency(2);
    let (report, log) = schema_tests::logs::logged(fleet.apply()).await;
    assert_eq!(report.unwrap().summary.applied, 2);
    for name in &names {
        let span = format!("fleet_tenant{{database={name}}}");
        assert!(
            log.lines()
                .any(|line| line.contains(&span) && line.contains("f_0001_accounts")),
            "{span} in {log}"
        );
    }
}

#[tokio::test]
async fn status_names_each_tenants_pending_and_unknown_ids_and_writes_nothing() {
    let (client, prefix) = prefix("fleet_status").await;
    let names = tenants(&prefix, 3);
    let manager = manager(&client, &prefix);
    Fleet::new(manager.clone(), Selection::databases([names[0].clone()]))
        .apply()
        .await
        .unwrap();
    client
        .database(&names[1])
        .collection::<Document>("schema_versions")
        .insert_one(doc! { "_id": "z_9999_newer" })
        .await
        .unwrap();

    let status = Fleet::new(manager, Selection::databases(names.clone()))
        .concurrency(3)
        .status()
        .await
        .unwrap();
    assert_eq!(
        outcomes(&status),
        [
            (names[0].clone(), Outcome::UpToDate),
            (names[1].clone(), Outcome::Behind),
            (names[2].clone(), Outcome::Behind)
        ]
    );
    assert!(status.tenants[0].pending.is_empty());
    assert_eq!(status.tenants[1].pending, IDS);
    assert_eq!(status.tenants[1].unknown, ["z_9999_newer"]);
    assert_eq!(status.tenants[2].pending, IDS);
    assert_eq!(status.summary.behind, 2);
    assert!(
        collections(&client, &names[2]).await.is_empty(),
        "status wrote nothing"
    );
    assert_eq!(
        record_ids(&client.database(&names[1]), "schema_versions").await,
        ["z_9999_newer"]
    );
}

#[tokio::test]
async fn concurrency_is_never_above_its_cap_and_reached() {
    let (client, prefix) = prefix("fleet_concurrency").await;
    let names = tenants(&prefix, 8);
    let report = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone()))
        .concurrency(3)
        .apply()
        .await
        .unwrap();
    assert_eq!(report.summary.applied, 8, "{report:?}");
    // The tenants' common prefix, as the migration counts them.
    let fleet = prefix.trim_end_matches('_');
    assert_eq!(most_in_flight(fleet), 3);

    let (client, prefix) = self::prefix("fleet_one_at_a_time").await;
    let names = tenants(&prefix, 4);
    Fleet::new(manager(&client, &prefix), Selection::databases(names))
        .apply()
        .await
        .unwrap();
    assert_eq!(most_in_flight(prefix.trim_end_matches('_')), 1);
}

#[tokio::test]
async fn the_server_sees_at_most_the_concurrency_of_tenants_at_once() {
    use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};

    let (client, prefix) = prefix("fleet_on_the_server").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let through = proxy
        .database(&client.database(&format!("{prefix}manager")))
        .await;
    let names = tenants(&prefix, 6);
    let fleet = Fleet::new(manager(through.client(), &prefix), Selection::databases(names)).concurrency(3);
    let ours = prefix.clone();
    let held = proxy.add(Rule::new(
        Match::command("find")
            .on("schema_versions")
            .when(move |body| body.get_str("$db").is_ok_and(|db| db.starts_with(&ours))),
        Fault::Hold,
    ));
    let status = tokio::spawn(async move { fleet.status().await });
    assert!(
        held.wait_for_hits(3, Duration::from_secs(30)).await,
        "three reads reach the server"
    );
    // With three held, no fourth tenant starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((held.hits(), held.held()), (3, 3));
    held.release();
    let report = status.await.unwrap().unwrap();
    assert_eq!(report.summary.behind, 6, "{report:?}");
}

#[tokio::test]
async fn a_failing_canary_touches_no_other_tenant() {
    let (client, prefix) = prefix("fleet_canary").await;
    let names = tenants(&prefix, 5);
    mark_failing(&client, &names[1]).await;
    let report = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone()))
        .canary(2)
        .concurrency(4)
        .apply()
        .await
        .unwrap();
    assert_eq!(
        outcomes(&report),
        [
            (names[0].clone(), Outcome::Applied),
            (names[1].clone(), Outcome::Failed),
            (names[2].clone(), Outcome::Skipped),
            (names[3].clone(), Outcome::Skipped),
            (names[4].clone(), Outcome::Skipped),
        ]
    );
    let error = report.tenants[1].error.as_ref().unwrap();
    assert_eq!(error.kind, "migration_failed");
    assert!(error.message.contains("f_0001_accounts"), "{}", error.message);
    assert!(!report.is_success());
    assert_eq!(
        record_ids(&client.database(&names[0]), "schema_versions").await,
        IDS
    );
    assert!(
        record_ids(&client.database(&names[1]), "schema_versions")
            .await
            .is_empty()
    );
    for name in &names[2..] {
        assert!(collections(&client, name).await.is_empty(), "{name} was touched");
    }
}

#[tokio::test]
async fn once_the_failure_budget_is_spent_no_new_tenant_starts() {
    let (client, prefix) = prefix("fleet_budget").await;
    let names = tenants(&prefix, 6);
    mark_failing(&client, &names[0]).await;
    mark_failing(&client, &names[2]).await;
    let report = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone()))
        .max_failures(1)
        .apply()
        .await
        .unwrap();
    assert_eq!(
        outcomes(&report),
        [
            (names[0].clone(), Outcome::Failed),
            (names[1].clone(), Outcome::Applied),
            (names[2].clone(), Outcome::Failed),
            (names[3].clone(), Outcome::Skipped),
            (names[4].clone(), Outcome::Skipped),
            (names[5].clone(), Outcome::Skipped),
        ]
    );
    assert_eq!((report.summary.failed, report.summary.skipped), (2, 3));
    assert_eq!(
        record_ids(&client.database(&names[1]), "schema_versions").await,
        IDS
    );
    for name in &names[3..] {
        assert!(collections(&client, name).await.is_empty(), "{name} was touched");
    }
}

#[tokio::test]
async fn a_tenant_whose_lock_another_process_holds_is_locked_not_failed() {
    let (client, prefix) = prefix("fleet_locked").await;
    let names = tenants(&prefix, 3);
    let in_an_hour = DateTime::from_millis(DateTime::now().timestamp_millis() + 3_600_000);
    client
        .database(&names[1])
        .collection::<Document>("schema_lock")
        .insert_one(schema_tests::held_lock(doc! {
            "_id": "schema_versions", "owner": "api-7:4242:abc", "host": "api-7", "pid": 4242_i64,
            "acquired_at": DateTime::now(), "renewed_at": in_an_hour, "lease_ms": 30_000_i64,
        }))
        .await
        .unwrap();
    let started = Instant::now();
    let report = Fleet::new(manager(&client, &prefix), Selection::databases(names.clone()))
        .lock_wait(Duration::from_secs(3))
        .apply()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(
        outcomes(&report),
        [
            (names[0].clone(), Outcome::Applied),
            (names[1].clone(), Outcome::Locked),
            (names[2].clone(), Outcome::Applied),
        ],
        "{report:?}"
    );
    assert!(report.is_success(), "a locked tenant is no failure");
    assert!(
        record_ids(&client.database(&names[1]), "schema_versions")
            .await
            .is_empty()
    );
    assert_eq!(
        record_ids(&client.database(&names[2]), "schema_versions").await,
        IDS
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_written() {
    let (client, prefix) = prefix("fleet_bad_input").await;
    let valid = format!("{prefix}00");
    let too_long = format!("{prefix}{}", "x".repeat(64));
    let refused: Vec<(Fleet, &str)> = vec![
        (
            Fleet::new(
                manager(&client, &prefix),
                Selection::databases(Vec::<String>::new()),
            ),
            "no database",
        ),
        (
            Fleet::new(manager(&client, &prefix), Selection::prefix("")),
            "empty prefix",
        ),
        (
            Fleet::new(
                manager(&client, &prefix),
                Selection::databases([valid.clone(), format!("{prefix}a.b")]),
            ),
            "`.`",
        ),
        (
            Fleet::new(
                manager(&client, &prefix),
                Selection::databases([valid.clone(), too_long]),
            ),
            "at most 63",
        ),
        (
            Fleet::new(
                manager(&client, &prefix),
                Selection::databases([valid.clone(), "admin".to_owned()]),
            ),
            "server's own",
        ),
        (
            Fleet::new(manager(&client, &prefix), Selection::databases([valid.clone()])).concurrency(0),
            "concurrency of 0",
        ),
    ];
    for (fleet, expected) in refused {
        for error in [
            fleet.apply().await.unwrap_err(),
            fleet.status().await.unwrap_err(),
        ] {
            assert!(matches!(error, Error::Configuration { .. }), "{error}");
            assert!(error.to_string().contains(expected), "{error} lacks {expected}");
        }
    }
    for shard in ["2/2", "0/0", "1", "x/2"] {
        let error = shard.parse::<Shard>().unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error}");
    }
    assert!(
        collections(&client, &valid).await.is_empty(),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_prefix_is_matched_literally_and_one_matching_nothing_is_an_error() {
    let _listing = schema_tests::DATABASE_LISTINGS.lock().await;
    let (client, prefix) = prefix("fleet_prefix").await;
    for name in ["a1", "aa1", "b1"] {
        client
            .database(&format!("{prefix}{name}"))
            .collection::<Document>("seed")
            .insert_one(doc! {})
            .await
            .unwrap();
    }
    let all = Fleet::new(manager(&client, &prefix), Selection::prefix(prefix.clone()));
    assert_eq!(
        all.tenants().await.unwrap(),
        [
            format!("{prefix}a1"),
            format!("{prefix}aa1"),
            format!("{prefix}b1")
        ]
    );
    let a = Fleet::new(manager(&client, &prefix), Selection::prefix(format!("{prefix}a")));
    assert_eq!(
        a.tenants().await.unwrap(),
        [format!("{prefix}a1"), format!("{prefix}aa1")]
    );
    // As a regular expression, `a+` and `.` would match `a1` and `aa1`;
    // `.` is in no database name at all, so it is refused before the
    // listing.
    for (literal, said) in [
        ("a+", "no database of the server starts with"),
        (".", "no database name holds '.'"),
    ] {
        let fleet = Fleet::new(
            manager(&client, &prefix),
            Selection::prefix(format!("{prefix}{literal}")),
        );
        let error = fleet.tenants().await.unwrap_err();
        assert!(error.to_string().contains(said), "{error}");
    }
    let none = Fleet::new(
        manager(&client, &prefix),
        Selection::prefix(format!("{prefix}zz")),
    );
    let error = none.apply().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no database of the server starts with"),
        "{error}"
    );
    let admin = Fleet::new(manager(&client, &prefix), Selection::prefix("admin"));
    assert!(admin.tenants().await.is_err(), "admin is never a tenant");
}

// The command line, as processes of `fleet-cli`.

fn cli(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleet-cli"));
    command
        .args(args)
        .env("MONGODB_URI", schema_tests::uri())
        .env("WORKER_DB", "fleet_cli_manager");
    command
}

fn run(args: &[&str]) -> Output {
    cli(args).output().expect("run fleet-cli")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[tokio::test]
async fn the_command_line_reports_each_tenant_as_json_and_text_with_its_exit_status() {
    let _listing = schema_tests::DATABASE_LISTINGS.lock().await;
    let (client, prefix) = prefix("fleet_cli").await;
    let names = tenants(&prefix, 3);
    for name in &names {
        // Listed by the server once they hold something.
        client
            .database(name)
            .collection::<Document>("seed")
            .insert_one(doc! {})
            .await
            .unwrap();
    }

    let status = run(&["fleet", "status", "--prefix", &prefix, "--json"]);
    assert_eq!(code(&status), 3, "{status:?}");
    let shown = json(&status);
    assert_eq!(shown["summary"]["behind"], 3);
    assert_eq!(shown["tenants"][0]["database"], names[0].as_str());
    assert_eq!(shown["tenants"][0]["outcome"], "behind");
    assert_eq!(shown["tenants"][0]["pending"], serde_json::json!(CLI_IDS));

    mark_failing(&client, &names[2]).await;
    let apply = run(&[
        "fleet",
        "apply",
        "--prefix",
        &prefix,
        "--concurrency",
        "2",
        "--json",
    ]);
    assert_eq!(code(&apply), 1, "{apply:?}");
    let shown = json(&apply);
    assert_eq!(shown["tenants"][0]["outcome"], "applied");
    assert_eq!(shown["tenants"][0]["applied"], serde_json::json!(CLI_IDS));
    assert_eq!(shown["tenants"][2]["outcome"], "failed");
    assert_eq!(shown["tenants"][2]["error"]["kind"], "migration_failed");
    assert_eq!(shown["summary"]["applied"], 2);
    assert_eq!(shown["summary"]["failed"], 1);
    assert_eq!(
        record_ids(&client.database(&names[1]), "schema_versions").await,
        CLI_IDS
    );

    client
        .database(&names[2])
        .collection::<Document>("fail")
        .drop()
        .await
        .unwrap();
    let apply = run(&["fleet", "apply", "--prefix", &prefix]);
    assert_eq!(code(&apply), 0, "{apply:?}");
    assert_eq!(
        String::from_utf8_lossy(&apply.stdout),
        "1 applied\n2 up to date\n"
    );
    let progress = String::from_utf8_lossy(&apply.stderr);
    assert!(
        progress.ends_with("tenants: 3 of 3 done, 0 failed\n"),
        "{progress}"
    );
    let status = run(&["fleet", "status", "--prefix", &prefix]);
    assert_eq!(code(&status), 0, "{status:?}");
    assert_eq!(String::from_utf8_lossy(&status.stdout), "3 up to date\n");

    let shard = run(&["fleet", "status", "--prefix", &prefix, "--shard", "2/2", "--json"]);
    assert_eq!(code(&shard), 1);
    assert_eq!(json(&shard)["error"]["kind"], "configuration");
    let none = run(&["fleet", "apply", "--prefix", &format!("{prefix}zz")]);
    assert_eq!(code(&none), 1);
    assert!(String::from_utf8_lossy(&none.stderr).contains("no database of the server starts with"));
    let empty = run(&[
        "fleet",
        "apply",
        "--prefix",
        &format!("{prefix}zz"),
        "--allow-empty",
        "--json",
    ]);
    assert_eq!(code(&empty), 0, "{empty:?}");
    assert_eq!(json(&empty)["summary"]["total"], 0);
}

#[tokio::test]
async fn two_runners_with_shards_0_of_2_and_1_of_2_cover_the_fleet_once() {
    let (client, prefix) = prefix("fleet_shards").await;
    let names = tenants(&prefix, 12);
    let list = names.join(",");
    let runners: Vec<Child> = ["0/2", "1/2"]
        .iter()
        .map(|shard| {
            cli(&[
                "fleet",
                "apply",
                "--databases",
                &list,
                "--shard",
                shard,
                "--concurrency",
                "3",
                "--json",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fleet-cli")
        })
        .collect();
    let mut shares = Vec::new();
    for runner in runners {
        let output = runner.wait_with_output().unwrap();
        assert_eq!(code(&output), 0, "{output:?}");
        let shown = json(&output);
        let share: BTreeSet<String> = shown["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|tenant| {
                assert_eq!(tenant["outcome"], "applied");
                tenant["database"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(!share.is_empty(), "12 tenants leave each shard some");
        shares.push(share);
    }
    assert!(shares[0].is_disjoint(&shares[1]), "{shares:?}");
    let covered: BTreeSet<String> = shares[0].union(&shares[1]).cloned().collect();
    assert_eq!(covered, names.iter().cloned().collect());
    for name in &names {
        assert_eq!(ran(&client.database(name)).await, CLI_IDS, "{name} applied once");
    }
}

#[tokio::test]
async fn a_fleet_run_killed_half_way_is_run_again_and_each_tenant_applied_once() {
    let (client, prefix) = prefix("fleet_killed").await;
    let names = tenants(&prefix, 6);
    let list = names.join(",");
    let mut runner = cli(&["fleet", "apply", "--databases", &list, "--json"])
        .env("FLEET_PAUSE_MS", "400")
        .stdout(Stdio::null())
        .spawn()
        .expect("start fleet-cli");
    // Killed once two tenants are recorded, while later ones are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = record_ids(&client.database(&names[1]), "schema_versions").await;
        if done.len() == CLI_IDS.len() {
            break;
        }
        assert!(Instant::now() < deadline, "two tenants applied within a minute");
        assert!(runner.try_wait().unwrap().is_none(), "the run ended too soon");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    let last = client.database(&names[5]);
    assert!(
        record_ids(&last, "schema_versions").await.is_empty(),
        "the run was killed half way"
    );

    let again = run(&["fleet", "apply", "--databases", &list, "--json"]);
    assert_eq!(code(&again), 0, "{again:?}");
    let shown = json(&again);
    for (tenant, name) in shown["tenants"].as_array().unwrap().iter().zip(&names) {
        assert_eq!(tenant["database"], name.as_str());
        let db = client.database(name);
        assert_eq!(record_ids(&db, "schema_versions").await, CLI_IDS, "{name}");
        let ran = ran(&db).await;
        if name <= &names[1] {
            assert_eq!(tenant["outcome"], "up_to_date", "{name}");
            assert_eq!(ran, CLI_IDS, "{name} ran once");
        } else {
            // A migration cut off by the kill runs again under the next
            // holder; every other ran once.
            assert!(
                ran.iter().filter(|id| *id == CLI_IDS[1]).count() == 1,
                "{name}: {ran:?}"
            );
        }
    }
}

/// A failure that would meet every tenant alike ends the run: the first
/// tenant's lock finds a `mongos` (its `hello` answered as one by the
/// fault proxy) with a lease shorter than a sharded cluster allows, a
/// configuration error; no other tenant is started, though theirs would
/// have worked.
#[tokio::test(flavor = "multi_thread")]
async fn a_failure_that_would_meet_every_tenant_starts_no_other() {
    use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};

    let (client, prefix) = prefix("fleet_halt").await;
    let names = tenants(&prefix, 3);
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let first = names[0].clone();
    let mongos = proxy.add(Rule::new(
        Match::command("hello").when(move |body| body.get_str("$db") == Ok(first.as_str())),
        Fault::Reply(doc! {
            "ok": 1.0, "isWritablePrimary": true, "msg": "isdbgrid",
            "localTime": DateTime::now(), "maxWireVersion": 21,
        }),
    ));
    let proxied = proxy
        .database(&client.database(&format!("{prefix}manager")))
        .await;
    let manager = manager(proxied.client(), &prefix).lock_lease(Duration::from_secs(2));
    let report = Fleet::new(manager, Selection::databases(names.clone()))
        .apply()
        .await
        .unwrap();
    assert!(
        mongos.hits() >= 1,
        "the first tenant's lock asked a mongos for its clock"
    );
    assert_eq!(
        outcomes(&report),
        [
            (names[0].clone(), Outcome::Failed),
            (names[1].clone(), Outcome::Skipped),
            (names[2].clone(), Outcome::Skipped),
        ],
        "{report:?}"
    );
    let error = report.tenants[0].error.as_ref().expect("the failure");
    assert_eq!(error.kind, "configuration", "{error:?}");
    for name in &names[1..] {
        assert!(collections(&client, name).await.is_empty(), "{name} untouched");
    }
}
