//! Support for the benchmarks in `benches/`: synthetic migration sets for
//! the planning benchmark, and what the benchmarks against a server share
//! (the server they need, their number of runs, a line of timings). See
//! `BENCHMARKS.md` at the repository root.

use std::time::Duration;

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

/// Ends the process with a message unless `MONGODB_URI` names a server:
/// the benchmark `name` runs against one that `scripts/with-mongodb`
/// starts.
pub fn require_server(name: &str) {
    if std::env::var_os("MONGODB_URI").is_none() {
        eprintln!("{name} benchmark: MONGODB_URI is not set; run it through scripts/with-mongodb");
        std::process::exit(1);
    }
}

/// The number of runs `BENCH_RUNS` asks for, or `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(default)
}

/// Prints one line of `times`: how many, their median, least and most,
/// under `name` padded to `width`. Prints nothing of no time.
pub fn print_times(name: &str, width: usize, mut times: Vec<Duration>) {
    if times.is_empty() {
        return;
    }
    times.sort_unstable();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "{name:<width$} runs {:>4}  median {:>8.2} ms  min {:>8.2} ms  max {:>8.2} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
}
