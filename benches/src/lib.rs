//! Support for the benchmarks in `benches/`: synthetic migration sets for
//! the planning benchmark. See `BENCHMARKS.md` at the repository root.

use schema_core::__private::{Location, Migration, MigrationFuture};
use schema_core::mongodb::Database;

fn never_run(_: &Database) -> MigrationFuture<'_> {
    Box::pin(async { Ok(()) })
}

/// `n` migrations with random ids, each after up to three random earlier
/// ones (so the set has no cycle), in a shuffled registration order. The
/// same `seed` gives the same set.
pub fn synthetic(n: usize, seed: u64) -> Vec<&'static Migration> {
    let mut random = XorShift(seed.max(1));
    let ids: Vec<&'static str> = (0..n)
        .map(|_| &*Box::leak(format!("{:016x}", random.next()).into_boxed_str()))
        .collect();
    let mut set: Vec<&'static Migration> = (0..n)
        .map(|index| {
            let count = if index == 0 {
                0
            } else {
                (random.next() % 4) as usize
            };
            let mut after: Vec<&'static str> = (0..count)
                .map(|_| ids[(random.next() % index as u64) as usize])
                .collect();
            after.sort_unstable();
            after.dedup();
            let migration = Migration::__new(
                ids[index],
                "synthetic",
                Box::leak(after.into_boxed_slice()),
                "0000000000000000",
                never_run,
                Location::__new(file!(), line!(), module_path!()),
            );
            &*Box::leak(Box::new(migration))
        })
        .collect();
    for index in (1..set.len()).rev() {
        set.swap(index, (random.next() % (index as u64 + 1)) as usize);
    }
    set
}

/// Marsaglia's xorshift64: enough randomness for a benchmark's shape,
/// reproducible without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
