//! Migration sets: the whole registered set and its groups checked without
//! a server, and two groups applied to two databases from one binary.

use schema_core::mongodb::{Database, error::Error as DriverError};
use schema_core::{Error, Migration, Migrations, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran, ran, record_ids};

#[migration(id = "g_0001_app")]
async fn app(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "g_0001_app").await
}

#[migration(id = "g_0002_app", after = "g_0001_app")]
async fn app_more(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "g_0002_app").await
}

#[migration(id = "g_0001_billing", group = "billing")]
async fn billing(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "g_0001_billing").await
}

#[migration(id = "g_0002_billing", group = "billing", after = "g_0001_billing")]
async fn billing_more(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "g_0002_billing").await
}

/// Reports would run after an application migration, which another
/// database holds
#[migration(id = "g_0001_reports", group = "reports", after = "g_0001_app")]
async fn reports(db: &Database) -> Result<(), DriverError> {
    note_ran(db, "g_0001_reports").await
}

fn ids(set: &Migrations) -> Vec<&'static str> {
    set.iter().map(Migration::id).collect()
}

#[test]
fn the_declared_sets_are_checked_without_a_server() {
    let all = Migrations::registered().expect("the whole set is valid");
    assert_eq!(all.len(), 5);
    let default = Migrations::default_group().unwrap();
    assert_eq!(ids(&default), ["g_0001_app", "g_0002_app"]);
    let billing = Migrations::group("billing").unwrap();
    assert_eq!(ids(&billing), ["g_0001_billing", "g_0002_billing"]);
    assert_eq!(
        billing.get("g_0002_billing").map(Migration::group),
        Some("billing")
    );
    assert!(billing.get("g_0001_app").is_none());
    assert!(Migrations::group("nobody").unwrap().is_empty());

    let error = Migrations::group("reports").unwrap_err();
    assert!(
        matches!(&error, Error::CrossGroupDependency { id, dependency, .. }
            if id == "g_0001_reports" && dependency == "g_0001_app"),
        "{error:?}"
    );
    assert!(error.to_string().contains("group `default`"), "{error}");
}

#[tokio::test]
async fn two_groups_apply_to_two_databases_from_one_binary() {
    let app_db = fresh_database("groups_app").await;
    let billing_db = fresh_database("groups_billing").await;

    let report = SchemaManager::new(app_db.clone()).apply_all().await.unwrap();
    assert_eq!(report.applied, ["g_0001_app", "g_0002_app"]);
    let report = SchemaManager::new(billing_db.clone())
        .migrations(Migrations::group("billing").unwrap())
        .apply_all()
        .await
        .unwrap();
    assert_eq!(report.applied, ["g_0001_billing", "g_0002_billing"]);

    assert_eq!(
        record_ids(&app_db, "schema_versions").await,
        ["g_0001_app", "g_0002_app"]
    );
    assert_eq!(ran(&app_db).await, ["g_0001_app", "g_0002_app"]);
    assert_eq!(
        record_ids(&billing_db, "schema_versions").await,
        ["g_0001_billing", "g_0002_billing"]
    );
    assert_eq!(ran(&billing_db).await, ["g_0001_billing", "g_0002_billing"]);
}
