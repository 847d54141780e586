//! Planning cost: validating and ordering synthetic sets of 1k, 10k and
//! 100k migrations with random dependencies.
//!
//! `cargo bench -p schema-benches --bench planning`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use schema_benches::synthetic;
use schema_core::Migrations;

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    for n in [1_000, 10_000, 100_000] {
        let set = synthetic(n, 0x5eed);
        // Sanity: the set is valid and fully ordered.
        let ordered = Migrations::new(set.iter().copied()).expect("a valid synthetic set");
        assert_eq!(ordered.len(), n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter(|| Migrations::new(black_box(set).iter().copied()))
        });
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
