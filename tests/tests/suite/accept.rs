//! `#[migration(accept = ...)]`: the preflight codes a declaration accepts
//! reach the registry as written, each one a code schema-core knows, and
//! the attribute knows the same codes as schema-core. A misspelled code,
//! and every other wrong shape, are compile errors (`ui/fail/accept_*.rs`,
//! run by `compile`).

use std::path::Path;

use schema_core::mongodb::Database;
use schema_core::preflight::Code;
use schema_core::{Migration, Migrations, SchemaManager, migration};
use schema_tests::{fresh_database, note_ran, ran, record_ids};

const GROUP: &str = "accept";
const ALL: &str = "acc_0001_all";
const ONE: &str = "acc_0002_one";
const NONE: &str = "acc_0003_none";

/// Accepts every code, in the order `Code::ALL` lists them.
#[migration(
    id = "acc_0001_all",
    group = "accept",
    accept = [
        "unique_duplicates",
        "index_conflict",
        "validator_rejects",
        "ttl_deletes",
        "ttl_not_dates",
        "index_in_use",
        "collection_scan",
    ]
)]
async fn all_codes(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    note_ran(db, ALL).await
}

/// Accepts one code, written alone.
#[migration(
    id = "acc_0002_one",
    group = "accept",
    after = "acc_0001_all",
    accept = "validator_rejects"
)]
async fn one_code(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    note_ran(db, ONE).await
}

/// Accepts nothing.
#[migration(id = "acc_0003_none", group = "accept", after = "acc_0002_one")]
async fn no_code(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
    note_ran(db, NONE).await
}

fn declared(id: &str) -> &'static Migration {
    Migrations::group(GROUP)
        .expect("a valid group")
        .get(id)
        .unwrap_or_else(|| panic!("{id} is registered"))
}

/// The codes `migration` accepts, each read back through `Code::from_name`.
fn codes(migration: &Migration) -> Vec<Code> {
    migration
        .accepts()
        .iter()
        .map(|name| {
            Code::from_name(name).unwrap_or_else(|| {
                panic!("`{name}` passed the attribute's check but schema-core knows no such code")
            })
        })
        .collect()
}

#[test]
fn a_migration_accepting_every_code_registers_exactly_code_all() {
    let all = declared(ALL);
    assert_eq!(
        all.accepts().len(),
        Code::ALL.len(),
        "the migration names every code schema-core knows: {:?}",
        all.accepts()
    );
    assert_eq!(codes(all), Code::ALL);
}

#[test]
fn one_code_is_registered_alone_and_none_without_accept() {
    assert_eq!(declared(ONE).accepts(), ["validator_rejects"]);
    assert_eq!(codes(declared(ONE)), [Code::ValidatorRejects]);
    assert!(declared(NONE).accepts().is_empty());
}

/// The codes the attribute knows, as its error for an unknown code lists
/// them: `compile` holds that error to `accept_unknown_code.stderr`, so
/// these are the attribute's own list. A code the attribute has and
/// schema-core lacks (or the other way) fails here.
#[test]
fn the_attribute_knows_the_codes_schema_core_knows() {
    let stderr = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/fail/accept_unknown_code.stderr");
    let stderr = std::fs::read_to_string(&stderr).expect("read accept_unknown_code.stderr");
    let listed = stderr
        .lines()
        .find_map(|line| line.split_once("expected one of ").map(|(_, codes)| codes))
        .expect("the error lists the codes");
    let listed: Vec<&str> = listed
        .split(['`', ',', ' '])
        .filter(|word| !word.is_empty() && *word != "and")
        .collect();
    let known: Vec<&str> = Code::ALL.iter().map(|code| code.name()).collect();
    assert_eq!(listed, known);
}

/// What a migration accepts changes nothing of how it is applied: each
/// runs once and is recorded.
#[tokio::test]
async fn migrations_that_accept_codes_apply_and_are_recorded() {
    let db = fresh_database("accept_apply").await;
    let manager = SchemaManager::new(db.clone()).migrations(Migrations::group(GROUP).expect("a valid group"));
    let report = manager.apply_all().await.expect("apply");
    assert_eq!(report.applied, [ALL, ONE, NONE]);
    assert_eq!(ran(&db).await, [ALL, ONE, NONE]);
    assert_eq!(record_ids(&db, "schema_versions").await, [ALL, ONE, NONE]);
}
