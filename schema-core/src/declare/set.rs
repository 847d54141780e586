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

    /// Refuses the set when a crate of `expected` declares none of its
    /// migrations: most likely the crate is a dependency the binary never
    /// refers to, which Rust does not link, so its migrations are not
    /// registered. Names are crate names as `use` writes them (`-` read as
    /// `_`).
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] naming each such crate and what to write.
    pub(crate) fn check_expected_crates(&self, expected: &[String]) -> Result<(), Error> {
        if expected.is_empty() {
            return Ok(());
        }
        let reasons = missing_crates(&self.ordered, &registry::registered(), expected);
        if reasons.is_empty() {
            return Ok(());
        }
        Err(Error::Configuration {
            reason: reasons.join("; "),
        })
    }
}

/// The crate a migration is declared in: the first segment of its module
/// path.
fn crate_of(migration: &Migration) -> &'static str {
    let path = migration.location().module_path();
    path.split("::").next().unwrap_or(path)
}

/// Why each crate of `expected` that declares no migration of `set` is
/// missing from it, given `all` the binary registers: one sentence each.
fn missing_crates(
    set: &[&'static Migration],
    all: &[&'static Migration],
    expected: &[String],
) -> Vec<String> {
    let mut unlinked = Vec::new();
    let mut reasons = Vec::new();
    for name in expected {
        let wanted = name.trim().replace('-', "_");
        let is_a_crate_name = !wanted.is_empty()
            && !wanted.starts_with(|c: char| c.is_ascii_digit())
            && wanted.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_a_crate_name {
            reasons.push(format!(
                "`{name}` is given as an expected crate but is not a crate name; write the name \
                 `use` gives it, such as `billing_migrations`"
            ));
            continue;
        }
        if set.iter().any(|migration| crate_of(migration) == wanted) {
            continue;
        }
        let mut groups: Vec<&str> = all
            .iter()
            .filter(|migration| crate_of(migration) == wanted)
            .map(|migration| migration.group())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if groups.is_empty() {
            unlinked.push(wanted);
        } else {
            let groups: Vec<String> = groups.iter().map(|group| format!("`{group}`")).collect();
            reasons.push(format!(
                "crate `{wanted}` is expected to declare migrations of the set this manager applies, \
                 but declares migrations of group {} only: give the manager that group \
                 (`SchemaManager::migrations(Migrations::group(..))`), or expect the crate where \
                 that group is applied",
                groups.join(", ")
            ));
        }
    }
    if !unlinked.is_empty() {
        let quoted: Vec<String> = unlinked.iter().map(|name| format!("`{name}`")).collect();
        let uses: Vec<String> = unlinked
            .iter()
            .map(|name| format!("`use {name} as _;`"))
            .collect();
        let (crates, them) = if unlinked.len() == 1 {
            ("crate", "it")
        } else {
            ("crates", "each")
        };
        reasons.insert(
            0,
            format!(
                "no migration of the expected {crates} {} is registered in this binary: {them} is \
                 most likely a dependency the binary never refers to, which Rust does not link; \
                 refer to {them} once from the binary's own code ({})",
                quoted.join(", "),
                uses.join(", ")
            ),
        );
    }
    reasons
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

    const fn declared_in(id: &'static str, module_path: &'static str) -> Migration {
        Migration::__new(id, id, &[], "0", never_run, Location::__new("f", 1, module_path))
    }

    static APP: Migration = declared_in("0001_app", "app_service::schema");
    static EVENTS: Migration = declared_in("0002_events", "event_migrations");
    static BILLING: Migration = declared_in("0003_billing", "billing_migrations::v1").__in_group("billing");

    fn expected(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn an_expected_crate_with_migrations_in_the_set_passes() {
        let all = [&APP, &EVENTS, &BILLING];
        let set = [&APP, &EVENTS];
        let names = expected(&["app_service", "event-migrations"]);
        assert!(missing_crates(&set, &all, &names).is_empty());
        assert!(missing_crates(&set, &all, &[]).is_empty());
    }

    #[test]
    fn an_expected_crate_that_registers_nothing_is_named_with_the_use_that_links_it() {
        let all = [&APP, &BILLING];
        let set = [&APP];
        let reasons = missing_crates(&set, &all, &expected(&["app_service", "event-migrations"]));
        assert_eq!(
            reasons,
            [
                "no migration of the expected crate `event_migrations` is registered in this binary: \
                 it is most likely a dependency the binary never refers to, which Rust does not \
                 link; refer to it once from the binary's own code (`use event_migrations as _;`)"
            ]
        );
        let reasons = missing_crates(&[], &[], &expected(&["a_migrations", "b_migrations"]));
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("no migration of the expected crates `a_migrations`, `b_migrations`")
                && reasons[0].ends_with("(`use a_migrations as _;`, `use b_migrations as _;`)"),
            "{reasons:?}"
        );
    }

    #[test]
    fn an_expected_crate_of_another_group_and_a_name_that_is_no_crate_are_told_apart() {
        let all = [&APP, &BILLING];
        let set = [&APP];
        let reasons = missing_crates(&set, &all, &expected(&["billing_migrations", "app::schema", ""]));
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].starts_with("crate `billing_migrations` is expected to declare migrations of the set")
                && reasons[0].contains("declares migrations of group `billing` only"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("`app::schema` is given as an expected crate but is not a crate name"),
            "{reasons:?}"
        );
        assert!(reasons[2].starts_with("`` is given"), "{reasons:?}");
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
