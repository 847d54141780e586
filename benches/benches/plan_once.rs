//! Orders one synthetic set of `PLAN_SIZE` migrations (10,000 by default)
//! once, for instruction counts under callgrind, which do not depend on
//! caches or on what else the machine is doing:
//!
//! ```sh
//! cargo bench -p schema-benches --bench plan_once --no-run
//! PLAN_SIZE=100000 valgrind --tool=callgrind --toggle-collect='*plan*order*' \
//!     target/release/deps/plan_once-*[^.d]
//! ```

use std::hint::black_box;

fn main() {
    let size = std::env::var("PLAN_SIZE")
        .ok()
        .and_then(|size| size.parse().ok())
        .unwrap_or(10_000);
    let set = schema_benches::synthetic(size, 0x5eed);
    let ordered =
        schema_core::Migrations::new(black_box(&set).iter().copied()).expect("a valid synthetic set");
    assert_eq!(ordered.len(), size);
}
