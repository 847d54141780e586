//! The return type may be any name for `Result<(), E>`: the attribute
//! leaves the rule to the trait bounds, not to the spelling.

use schema_core::migration;
use schema_core::mongodb::{self, Database};

type Outcome = Result<(), mongodb::error::Error>;

/// An alias whose one parameter is the error type, not the value.
type Unit<E> = Result<(), E>;

#[migration(id = "0001_own_alias")]
async fn own_alias(_db: &Database) -> Outcome {
    Ok(())
}

#[migration(id = "0002_anyhow")]
async fn anyhow_result(_db: &Database) -> anyhow::Result<()> {
    Ok(())
}

#[migration(id = "0003_io")]
async fn io_result(_db: &Database) -> std::io::Result<()> {
    Ok(())
}

#[migration(id = "0004_generic_alias")]
async fn generic_alias(_db: &Database) -> Unit<String> {
    Ok(())
}

/// A type passed through `macro_rules!` reaches the attribute as an
/// invisible group.
macro_rules! migration_returning {
    ($ty:ty) => {
        #[migration(id = "0005_from_a_macro")]
        async fn from_a_macro(_db: &Database) -> $ty {
            Ok(())
        }
    };
}

migration_returning!(Result<(), std::fmt::Error>);

fn main() {
    let ids: Vec<_> = schema_core::Migrations::registered()
        .unwrap()
        .iter()
        .map(|m| m.id())
        .collect();
    assert_eq!(
        ids,
        [
            "0001_own_alias",
            "0002_anyhow",
            "0003_io",
            "0004_generic_alias",
            "0005_from_a_macro"
        ]
    );
    let _ = (own_alias, anyhow_result, io_result, generic_alias, from_a_macro);
}
