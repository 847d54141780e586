//! A declared set of migrations: every one linked into the binary, or one
//! group of them, checked and in apply order. Pure: no I/O.

use std::fmt;

use crate::declare::order;
use crate::declare::registry::{self, DEFAULT_GROUP, Migration};
use crate::support::error::Error;

/// Migrations checked and in the order they apply: duplicates, unknown
/// dependencies and cycles are errors when the set is made, before anything
/// touches a database.
///
/// A binary that applies different migrations to different databases puts
/// them in groups (`#[migration(id = "...", group = "billing")]`) and gives
/// each [`SchemaManager`](crate::SchemaManager) its group. Without `group`,
/// a migration is in [`DEFAULT_GROUP`], which is what a manager applies
/// unless told otherwise.
///
/// ```
/// // In a plain `#[test]`, without a server: the declared set is valid.
/// let migrations = schema_core::Migrations::registered().expect("a valid set");
/// for migration in &migrations {
///     println!("{} after {:?}", migration.id(), migration.after());
/// }
/// ```
#[derive(Clone)]
pub struct Migrations {
    ordered: Vec<&'static Migration>,
}

impl Migrations {
    /// Every migration linked into this binary, of every group, in apply
    /// order.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`], [`Error::UnknownDependency`],
    /// [`Error::Cycle`] and [`Error::BackgroundDependency`].
    pub fn registered() -> Result<Migrations, Error> {
        Migrations::new(registry::registered())
    }

    /// The migrations of group `name`, in apply order. The whole registered
    /// set is checked first, so a mistake anywhere is found whichever
    /// group is asked for. A group nobody declares is empty.
    ///
    /// # Errors
    ///
    /// Those of [`registered`](Migrations::registered), and
    /// [`Error::CrossGroupDependency`] when a migration of the group runs
    /// after one of another group: groups apply to their databases
    /// independently, so no order between them is kept.
    pub fn group(name: &str) -> Result<Migrations, Error> {
        let all = Migrations::registered()?;
        for migration in all.iter().filter(|migration| migration.group() == name) {
            for dependency in migration.after() {
                if let Some(other) = all.get(dependency).filter(|other| other.group() != name) {
                    return Err(Error::CrossGroupDependency {
                        id: migration.id().to_owned(),
                        group: name.to_owned(),
                        dependency: other.id().to_owned(),
                        dependency_group: other.group().to_owned(),
                    });
                }
            }
        }
        Ok(Migrations {
            ordered: all
                .ordered
                .into_iter()
                .filter(|migration| migration.group() == name)
                .collect(),
        })
    }

    /// The migrations of [`DEFAULT_GROUP`]: those declared without `group`.
    ///
    /// # Errors
    ///
    /// As [`group`](Migrations::group).
    pub fn default_group() -> Result<Migrations, Error> {
        Migrations::group(DEFAULT_GROUP)
    }

    /// `migrations`, checked and ordered: for sets made by hand, such as a
    /// benchmark's.
    ///
    /// # Errors
    ///
    /// As [`registered`](Migrations::registered).
    pub fn new(migrations: impl IntoIterator<Item = &'static Migration>) -> Result<Migrations, Error> {
        let migrations: Vec<&'static Migration> = migrations.into_iter().collect();
        Ok(Migrations {
            ordered: order::order(&migrations)?,
        })
    }

    /// How many migrations the set holds.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Whether the set holds none.
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    /// The migration with id `id`, if the set holds it.
    pub fn get(&self, id: &str) -> Option<&'static Migration> {
        self.ordered
            .iter()
            .copied()
            .find(|migration| migration.id() == id)
    }

    /// The migrations in apply order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'static Migration> + '_ {
        self.ordered.iter().copied()
    }

    pub(crate) fn ordered(&self) -> &[&'static Migration] {
        &self.ordered
    }
}

impl<'s> IntoIterator for &'s Migrations {
    type Item = &'static Migration;
    type IntoIter = std::iter::Copied<std::slice::Iter<'s, &'static Migration>>;

    fn into_iter(self) -> Self::IntoIter {
        self.ordered.iter().copied()
    }
}

impl fmt::Debug for Migrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ordered.iter().map(|migration| migration.id()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::registry::MigrationFuture;
    use crate::support::location::Location;

    fn never_run(_: &mongodb::Database) -> MigrationFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    const fn migration(id: &'static str, after: &'static [&'static str]) -> Migration {
        Migration::__new(id, id, after, "0", never_run, Location::__new("f", 1, "m"))
    }

    static B: Migration = migration("b", &["a"]);
    static A: Migration = migration("a", &[]);

    #[test]
    fn a_set_is_ordered_and_answers_by_id() {
        let set = Migrations::new([&B, &A]).unwrap();
        let ids: Vec<&str> = set.iter().map(Migration::id).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert_eq!(set.get("b").map(Migration::id), Some("b"));
        assert!(set.get("c").is_none());
        assert_eq!(format!("{set:?}"), r#"["a", "b"]"#);
    }

    #[test]
    fn an_invalid_set_is_an_error_when_made() {
        static LOOSE: Migration = migration("c", &["nowhere"]);
        assert!(matches!(
            Migrations::new([&LOOSE]),
            Err(Error::UnknownDependency { .. })
        ));
    }
}
