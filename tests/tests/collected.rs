//! Migrations are collected from every module of the binary and from every
//! linked crate that declares some.

// Linking the crate is what registers its migrations; nothing else of it is
// used here.
use linked_migrations as _;

use schema_core::{Migrations, SchemaManager};
use schema_tests::{fresh_database, ran, record_ids};

mod accounts {
    use schema_core::migration;
    use schema_core::mongodb::Database;
    use schema_tests::note_ran;

    #[migration(id = "modules_0001")]
    pub(crate) async fn accounts(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
        note_ran(db, "modules_0001").await
    }

    pub(crate) mod nested {
        use schema_core::migration;
        use schema_core::mongodb::Database;
        use schema_tests::note_ran;

        #[migration(id = "modules_0003", after = ["modules_0002", "linked_0001"])]
        async fn nested(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
            note_ran(db, "modules_0003").await
        }
    }
}

mod billing {
    use schema_core::migration;
    use schema_core::mongodb::Database;
    use schema_tests::note_ran;

    #[migration(id = "modules_0002", after = "modules_0001")]
    async fn billing(db: &Database) -> Result<(), schema_core::mongodb::error::Error> {
        note_ran(db, "modules_0002").await
    }
}

#[tokio::test]
async fn migrations_of_every_module_and_linked_crate_are_applied() {
    let mut ids: Vec<&str> = Migrations::registered()
        .expect("a valid set")
        .iter()
        .map(|m| m.id())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["linked_0001", "modules_0001", "modules_0002", "modules_0003"]
    );

    let db = fresh_database("collected").await;
    let report = SchemaManager::new(db.clone()).apply_all().await.expect("apply");
    let order = ["modules_0001", "linked_0001", "modules_0002", "modules_0003"];
    assert_eq!(report.applied, order);
    assert_eq!(ran(&db).await, ["modules_0001", "modules_0002", "modules_0003"]);
    assert_eq!(
        record_ids(&db, "schema_versions").await,
        ["linked_0001", "modules_0001", "modules_0002", "modules_0003"]
    );
    // The linked crate's migration notes itself in a collection of its own.
    assert_eq!(record_ids(&db, "linked_ran").await, ["linked_0001"]);
}

#[test]
fn the_registered_migrations_know_where_they_are_declared() {
    let nested = Migrations::registered()
        .expect("a valid set")
        .get("modules_0003")
        .expect("registered");
    assert_eq!(nested.location().module_path(), "collected::accounts::nested");
    assert!(nested.location().file().ends_with("collected.rs"));
    assert_eq!(nested.after(), ["modules_0002", "linked_0001"]);
    assert_eq!(nested.description(), "nested");
}
