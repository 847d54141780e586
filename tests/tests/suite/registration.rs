//! What the manager checks of the registered set before it sends anything:
//! the crates the application expects migrations from, and a set with none
//! in it, said once; and what a start says of a migration edited after it
//! was applied.

use std::time::Duration;

use schema_core::mongodb::Database;
use schema_core::mongodb::bson::{Document, doc};
use schema_core::{Error, Migrations, SchemaManager, migration};
use schema_tests::logs::logged;
use schema_tests::{fresh_database, monitored_database, record_ids, take_commands};

/// The migration this binary's crate (`suite`) declares in this module's
/// group.
#[migration(id = "reg_0001_carts", group = "registration")]
async fn carts(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    schema_tests::note_ran(db, "reg_0001_carts").await
}

fn group() -> Migrations {
    Migrations::group("registration").expect("a valid group")
}

/// The crate `linked-migrations` is a dependency of this package, but no
/// code of this binary refers to it, so Rust does not link it: its
/// migration is not registered here, as in an application that forgot
/// `use linked_migrations as _;`.
#[test]
fn a_dependency_nothing_refers_to_registers_nothing() {
    let registered = Migrations::registered().expect("a valid set");
    assert!(
        registered.iter().all(|migration| !migration
            .location()
            .module_path()
            .starts_with("linked_migrations")),
        "{registered:?}"
    );
    assert!(registered.get("linked_0001").is_none());
}

#[tokio::test]
async fn an_expected_crate_that_registers_nothing_is_refused_before_any_command() {
    a_dependency_nothing_refers_to_registers_nothing();
    let (db, sent) = monitored_database("expected_unlinked").await;
    let manager = SchemaManager::new(db.clone())
        .migrations(group())
        .expect_crates(["suite", "linked-migrations"]);
    let error = manager.apply_all().await.expect_err("refused");
    let Error::Configuration { reason } = &error else {
        panic!("a configuration error: {error:?}");
    };
    assert!(
        reason.starts_with(
            "no migration of the expected crate `linked_migrations` is registered in this binary"
        ) && reason.contains("(`use linked_migrations as _;`)"),
        "{error}"
    );
    for refused in [
        manager.status().await.map(|_| ()),
        manager.plan().await.map(|_| ()),
        manager.mark_applied("reg_0001_carts").await.map(|_| ()),
    ] {
        assert!(matches!(refused, Err(Error::Configuration { .. })), "{refused:?}");
    }
    assert!(take_commands(&sent).is_empty(), "nothing was sent");
    assert!(record_ids(&db, "schema_versions").await.is_empty());
}

#[tokio::test]
async fn an_expected_crate_of_another_group_is_told_apart() {
    let (db, sent) = monitored_database("expected_other_group").await;
    // The example application's migrations are linked, in the default group.
    let error = SchemaManager::new(db.clone())
        .migrations(group())
        .expect_crates(["example_app"])
        .apply_all()
        .await
        .expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("crate `example_app` is expected to declare migrations of the set this manager applies, but declares migrations of group `default` only"),
        "{error}"
    );
    assert!(take_commands(&sent).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_expected_crates_present_apply_as_usual() {
    let db = fresh_database("expected_present").await;
    let report = SchemaManager::new(db.clone())
        .migrations(group())
        .expect_crates(["suite"])
        .apply_all()
        .await
        .expect("applied");
    assert_eq!(report.applied, ["reg_0001_carts"]);
    assert_eq!(record_ids(&db, "schema_versions").await, ["reg_0001_carts"]);
}

#[tokio::test]
async fn an_empty_set_is_said_once_per_manager_and_its_clones() {
    let db = fresh_database("empty_set_warning").await;
    let empty = || Migrations::group("registration_nobody_declares").expect("a valid group");
    let warning = "no migration to apply: none is registered in this set";
    let ((), log) = logged(async {
        let manager = SchemaManager::new(db.clone()).migrations(empty());
        let report = manager.apply_all().await.expect("nothing to apply");
        assert!(report.applied.is_empty());
        manager
            .wait_applied(Duration::from_secs(5))
            .await
            .expect("nothing to wait for");
        manager.clone().status().await.expect("a status");
    })
    .await;
    assert_eq!(log.matches(warning).count(), 1, "said once:\n{log}");

    // Another manager says it again, once.
    let ((), log) = logged(async {
        let other = SchemaManager::new(db.clone()).migrations(empty());
        other.apply_all().await.expect("nothing to apply");
        other.plan().await.expect("a plan");
    })
    .await;
    assert_eq!(log.matches(warning).count(), 1, "said once:\n{log}");
}

#[tokio::test]
async fn a_start_warns_of_a_drifted_migration_with_how_to_accept_the_edit() {
    let db = fresh_database("drift_warning").await;
    let manager = SchemaManager::new(db.clone()).migrations(group());
    manager.apply_all().await.expect("applied");
    // The record of a body as it was before an edit.
    db.collection::<Document>("schema_versions")
        .update_one(
            doc! { "_id": "reg_0001_carts" },
            doc! { "$set": { "checksum": "0123456789abcdef" } },
        )
        .await
        .expect("the record updated");
    let (report, log) = logged(manager.apply_all()).await;
    assert_eq!(report.expect("a start").drifted, ["reg_0001_carts"]);
    let warning = log
        .lines()
        .find(|line| line.contains("edited after it was applied"))
        .unwrap_or_else(|| panic!("a warning:\n{log}"));
    assert!(
        warning.contains("reg_0001_carts")
            && warning.contains("accept it without running it with `mark-applied <id>`"),
        "{warning}"
    );
}
