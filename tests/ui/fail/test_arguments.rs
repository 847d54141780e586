//! Every mistake in `#[schema_core::test]`'s arguments is an error at the
//! argument, one case per module.

mod test_bad_group {
    #[schema_core::test(group = "")]
    async fn empty(_db: schema_core::mongodb::Database) {}

    #[schema_core::test(group = "big billing")]
    async fn spaced(_db: schema_core::mongodb::Database) {}

    #[schema_core::test(group = billing)]
    async fn not_a_string(_db: schema_core::mongodb::Database) {}
}

mod test_repeated_group {
    #[schema_core::test(group = "billing", group = "audit")]
    async fn twice(_db: schema_core::mongodb::Database) {}
}

mod test_unknown_argument {
    #[schema_core::test(flavor = "multi_thread")]
    async fn tokio_argument(_db: schema_core::mongodb::Database) {}

    #[schema_core::test(group = "billing", ignore)]
    async fn flag(_db: schema_core::mongodb::Database) {}
}

fn main() {}
