//! The order migrations run in. Pure logic, no I/O: validate the declared
//! set, then sort it topologically by `after`, breaking ties by id, with
//! the background migrations last.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::declare::registry::Migration;
use crate::support::error::Error;

/// Checks `migrations` and returns them in the order they must run.
///
/// A migration comes after everything its `after` names; among migrations
/// whose dependencies are all placed, the lowest id in byte order goes
/// first, so the order is the same on every machine and every run. The
/// background migrations then move after all the others.
///
/// # Errors
///
/// [`Error::DuplicateId`] when two migrations share an id,
/// [`Error::UnknownDependency`] when an `after` names no migration,
/// [`Error::Cycle`] when dependencies form a cycle, and
/// [`Error::BackgroundDependency`] when a migration run at start depends
/// on a background one. When several problems
/// exist, the one reported is chosen deterministically.
pub(crate) fn order<'m>(migrations: &[&'m Migration]) -> Result<Vec<&'m Migration>, Error> {
    let mut sorted = migrations.to_vec();
    // The key's first eight bytes, cached next to it, settle most
    // comparisons without reading the ids themselves; ids that share them
    // compare in full. The order is plain byte order either way.
    sorted.sort_by_cached_key(|migration| (prefix(migration.id()), migration.id()));
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].id() == pair[1].id()) {
        return Err(Error::DuplicateId {
            id: pair[0].id().to_owned(),
            first: pair[0].location(),
            second: pair[1].location(),
        });
    }

    // In `sorted`, index order is id order, so the heap below can hold
    // indexes and still pop the lowest id first.
    let positions: HashMap<&str, usize> = sorted
        .iter()
        .enumerate()
        .map(|(index, migration)| (migration.id(), index))
        .collect();
    let index_of = |id: &str| positions.get(id).copied();
    let mut waiting_on = vec![0usize; sorted.len()];
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (index, migration) in sorted.iter().enumerate() {
        for dependency in migration.after() {
            let Some(before) = index_of(dependency) else {
                return Err(Error::UnknownDependency {
                    id: migration.id().to_owned(),
                    dependency: (*dependency).to_owned(),
                });
            };
            waiting_on[index] += 1;
            edges.push((before, index));
        }
    }
    let dependents = Dependents::new(sorted.len(), &edges);

    let mut ready: BinaryHeap<Reverse<usize>> = (0..sorted.len())
        .filter(|&index| waiting_on[index] == 0)
        .map(Reverse)
        .collect();
    let mut ordered = Vec::with_capacity(sorted.len());
    while let Some(Reverse(index)) = ready.pop() {
        ordered.push(sorted[index]);
        for &dependent in dependents.of(index) {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if ordered.len() < sorted.len() {
        return Err(Error::Cycle {
            ids: find_cycle(&sorted, &waiting_on, index_of),
        });
    }
    background_last(ordered)
}

/// Moves the background migrations after all the others, each part in the
/// order it had: still an order that respects `after`, since no migration
/// that runs at start may depend on a background one (refused here, with
/// the first such pair in `ordered`).
fn background_last(ordered: Vec<&Migration>) -> Result<Vec<&Migration>, Error> {
    let background: HashSet<&str> = ordered
        .iter()
        .filter(|migration| migration.is_background())
        .map(|migration| migration.id())
        .collect();
    if background.is_empty() {
        return Ok(ordered);
    }
    for migration in ordered.iter().filter(|migration| !migration.is_background()) {
        if let Some(dependency) = migration.after().iter().find(|id| background.contains(**id)) {
            return Err(Error::BackgroundDependency {
                id: migration.id().to_owned(),
                background: (*dependency).to_owned(),
            });
        }
    }
    let (mut at_start, in_background): (Vec<_>, Vec<_>) = ordered
        .into_iter()
        .partition(|migration| !migration.is_background());
    at_start.extend(in_background);
    Ok(at_start)
}

/// Who runs after whom, as one flat array sliced per migration rather than
/// a vector per migration: one allocation instead of one per migration.
struct Dependents {
    /// `targets[starts[i]..starts[i + 1]]` are the dependents of `i`.
    starts: Vec<usize>,
    targets: Vec<usize>,
}

impl Dependents {
    /// From `(before, after)` pairs over `count` migrations.
    fn new(count: usize, edges: &[(usize, usize)]) -> Dependents {
        let mut starts = vec![0usize; count + 1];
        for &(before, _) in edges {
            starts[before + 1] += 1;
        }
        for index in 0..count {
            starts[index + 1] += starts[index];
        }
        let mut next = starts.clone();
        let mut targets = vec![0usize; edges.len()];
        for &(before, after) in edges {
            targets[next[before]] = after;
            next[before] += 1;
        }
        Dependents { starts, targets }
    }

    fn of(&self, index: usize) -> &[usize] {
        &self.targets[self.starts[index]..self.starts[index + 1]]
    }
}

/// The first eight bytes of `id`, zero-padded, as a big-endian number: it
/// orders like the bytes it holds.
fn prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let length = id.len().min(8);
    bytes[..length].copy_from_slice(&id.as_bytes()[..length]);
    u64::from_be_bytes(bytes)
}

/// One cycle among the migrations that could not be placed, as ids where
/// each runs after the next and the last runs after the first, starting at
/// the lowest id.
///
/// Every unplaced migration waits on at least one unplaced dependency, so
/// following such dependencies from any of them must revisit one.
fn find_cycle(
    sorted: &[&Migration],
    waiting_on: &[usize],
    index_of: impl Fn(&str) -> Option<usize>,
) -> Vec<String> {
    let unplaced = |index: usize| waiting_on[index] > 0;
    let Some(start) = (0..sorted.len()).find(|&index| unplaced(index)) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut position_in_path = vec![None; sorted.len()];
    position_in_path[start] = Some(0);
    let mut current = start;
    loop {
        let next = sorted[current]
            .after()
            .iter()
            .filter_map(|dependency| index_of(dependency))
            .filter(|&index| unplaced(index))
            .min();
        let Some(next) = next else {
            // Unreachable by the argument above; an empty answer is still
            // an honest one.
            return Vec::new();
        };
        if let Some(position) = position_in_path[next] {
            let mut cycle: Vec<String> = path[position..]
                .iter()
                .map(|&index| sorted[index].id().to_owned())
                .collect();
            let lowest = (0..cycle.len())
                .min_by(|&a, &b| cycle[a].cmp(&cycle[b]))
                .unwrap_or(0);
            cycle.rotate_left(lowest);
            return cycle;
        }
        position_in_path[next] = Some(path.len());
        path.push(next);
        current = next;
    }
}

/// `id` and everything it depends on in `ordered`, directly or not.
pub(crate) fn with_dependencies<'m>(ordered: &[&'m Migration], id: &'m str) -> HashSet<&'m str> {
    let by_id: HashMap<&str, &Migration> = ordered
        .iter()
        .map(|migration| (migration.id(), *migration))
        .collect();
    let mut wanted = HashSet::new();
    let mut stack = vec![id];
    while let Some(next) = stack.pop() {
        if wanted.insert(next)
            && let Some(migration) = by_id.get(next)
        {
            stack.extend(migration.after().iter().copied());
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::location::Location;

    fn never_run(_: &mongodb::Database) -> crate::__private::MigrationFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    fn migration(id: &str, after: &[&str]) -> &'static Migration {
        let id: &'static str = Box::leak(id.to_owned().into_boxed_str());
        let after: Vec<&'static str> = after
            .iter()
            .map(|dependency| &*Box::leak(dependency.to_string().into_boxed_str()))
            .collect();
        Box::leak(Box::new(Migration::__new(
            id,
            "test",
            Box::leak(after.into_boxed_slice()),
            "0000000000000000",
            never_run,
            Location::__new("order.rs", 1, "tests"),
        )))
    }

    fn in_background(migration: &'static Migration) -> &'static Migration {
        // `Migration` is not `Copy`; the attribute builds a fresh one.
        let background = Migration::__new(
            migration.id(),
            migration.description(),
            migration.after(),
            migration.checksum(),
            never_run,
            migration.location(),
        )
        .__in_background();
        Box::leak(Box::new(background))
    }

    #[test]
    fn background_migrations_go_last_each_part_in_its_order() {
        let set = [
            migration("0001", &[]),
            in_background(migration("0002_slow", &["0001"])),
            migration("0003", &["0001"]),
            in_background(migration("0004_slower", &["0002_slow", "0003"])),
            migration("0005", &[]),
        ];
        assert_eq!(
            ids(order(&set)),
            ["0001", "0003", "0005", "0002_slow", "0004_slower"]
        );
    }

    #[test]
    fn a_migration_at_start_after_a_background_one_is_refused() {
        let set = [
            in_background(migration("0001_slow", &[])),
            migration("0002", &["0001_slow"]),
        ];
        match order(&set) {
            Err(Error::BackgroundDependency { id, background }) => {
                assert_eq!((id.as_str(), background.as_str()), ("0002", "0001_slow"));
            }
            other => panic!("expected BackgroundDependency, got {other:?}"),
        }
    }

    fn ids(result: Result<Vec<&Migration>, Error>) -> Vec<&'static str> {
        result.expect("valid set").iter().map(|m| m.id()).collect()
    }

    #[test]
    fn independent_migrations_run_in_id_byte_order() {
        let set = [
            migration("b", &[]),
            migration("B", &[]),
            migration("a", &[]),
            migration("10", &[]),
            migration("9", &[]),
        ];
        assert_eq!(ids(order(&set)), ["10", "9", "B", "a", "b"]);
    }

    #[test]
    fn a_chain_runs_in_dependency_order_whatever_the_ids() {
        let set = [
            migration("a", &["b"]),
            migration("b", &["c"]),
            migration("c", &[]),
        ];
        assert_eq!(ids(order(&set)), ["c", "b", "a"]);
    }

    #[test]
    fn a_diamond_waits_for_both_sides_and_breaks_ties_by_id() {
        let set = [
            migration("top", &[]),
            migration("right", &["top"]),
            migration("left", &["top"]),
            migration("bottom", &["left", "right"]),
        ];
        assert_eq!(ids(order(&set)), ["top", "left", "right", "bottom"]);
    }

    #[test]
    fn a_ready_lower_id_overtakes_a_waiting_chain() {
        // `z` becomes ready only after `y`; `m` is ready from the start but
        // sorts after `a`, and before `y`.
        let set = [
            migration("a", &[]),
            migration("y", &["a"]),
            migration("z", &["y"]),
            migration("m", &[]),
        ];
        assert_eq!(ids(order(&set)), ["a", "m", "y", "z"]);
    }

    #[test]
    fn the_order_does_not_depend_on_registration_order() {
        let forward = [
            migration("0001", &[]),
            migration("0002", &["0001"]),
            migration("0003", &["0001"]),
        ];
        let backward = [forward[2], forward[1], forward[0]];
        assert_eq!(ids(order(&forward)), ids(order(&backward)));
    }

    #[test]
    fn a_duplicate_id_is_an_error_naming_it() {
        let set = [
            migration("a", &[]),
            migration("dup", &[]),
            migration("dup", &["a"]),
        ];
        let error = order(&set).unwrap_err();
        assert!(
            matches!(&error, Error::DuplicateId { id, .. } if id == "dup"),
            "{error:?}"
        );
        assert!(error.to_string().contains("`dup`"), "{error}");
    }

    #[test]
    fn an_unknown_dependency_is_an_error_naming_both_ids() {
        let set = [migration("a", &[]), migration("b", &["a", "missing"])];
        let error = order(&set).unwrap_err();
        assert!(
            matches!(&error, Error::UnknownDependency { id, dependency } if id == "b" && dependency == "missing"),
            "{error:?}"
        );
    }

    #[test]
    fn a_cycle_lists_exactly_the_ids_on_it() {
        // `entry` depends on the cycle but is not part of it.
        let set = [
            migration("entry", &["c"]),
            migration("c", &["b"]),
            migration("b", &["a"]),
            migration("a", &["c"]),
            migration("free", &[]),
        ];
        let error = order(&set).unwrap_err();
        let Error::Cycle { ids } = &error else {
            panic!("expected a cycle, got {error:?}")
        };
        assert_eq!(ids, &["a", "c", "b"]);
        assert_eq!(
            error.to_string(),
            "migrations `a`, `c` and `b` depend on each other in a cycle (`a` runs after `c`, \
             `c` after `b`, `b` after `a`); remove one of these `after` entries"
        );
    }

    #[test]
    fn two_migrations_after_each_other_are_a_cycle() {
        let set = [migration("x", &["y"]), migration("y", &["x"])];
        let Error::Cycle { ids } = order(&set).unwrap_err() else {
            panic!("expected a cycle")
        };
        assert_eq!(ids, ["x", "y"]);
    }

    #[test]
    fn ids_sharing_their_first_bytes_still_sort_in_byte_order() {
        let set = [
            migration("0001_events_b", &[]),
            migration("0001_events", &[]),
            migration("0001_events_a", &[]),
            migration("0001_eventr", &[]),
            migration("0001", &[]),
        ];
        assert_eq!(
            ids(order(&set)),
            [
                "0001",
                "0001_eventr",
                "0001_events",
                "0001_events_a",
                "0001_events_b"
            ]
        );
    }

    #[test]
    fn an_empty_set_is_a_valid_plan() {
        assert!(order(&[]).unwrap().is_empty());
    }

    #[test]
    fn dependencies_are_followed_through_every_level_and_no_further() {
        let a = migration("a", &[]);
        let b = migration("b", &["a"]);
        let c = migration("c", &["b"]);
        let d = migration("d", &["a"]);
        let set = [a, b, c, d];
        let mut wanted: Vec<&str> = with_dependencies(&set, "c").into_iter().collect();
        wanted.sort_unstable();
        assert_eq!(wanted, ["a", "b", "c"]);
        assert_eq!(with_dependencies(&set, "a").len(), 1);
    }
}
