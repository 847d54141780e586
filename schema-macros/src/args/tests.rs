//! `#[migration]` and `#[schema_core::test]` reject the same mistakes in
//! their arguments with the same messages, and accept the same forms.

use proc_macro2::TokenStream;

use super::{MigrationArgs, TestArgs};
use crate::errors::Errors;

/// One attribute, as the tests drive it.
struct Attribute {
    /// The arguments it needs, written before those a test adds.
    required: &'static str,
    /// Its keys, as its messages list them.
    keys: &'static str,
    /// Its advice for a repeated `group`.
    one_group: &'static str,
    /// Parses its arguments, recording mistakes.
    parse: fn(TokenStream, &mut Errors),
}

const MIGRATION: Attribute = Attribute {
    required: "id = \"0001_a\", ",
    keys: "`id`, `after`, `description`, `group`, `background` and `crate`",
    one_group: "a migration belongs to one group",
    parse: |tokens, errors| {
        MigrationArgs::parse(tokens, errors);
    },
};

const TEST: Attribute = Attribute {
    required: "",
    keys: "`group` and `crate`",
    one_group: "a test gets the migrations of one group",
    parse: |tokens, errors| {
        TestArgs::parse(tokens, errors);
    },
};

impl Attribute {
    /// The messages of every mistake in the attribute's required arguments
    /// followed by `arguments`.
    fn mistakes(&self, arguments: &str) -> Vec<String> {
        let tokens = format!("{}{arguments}", self.required)
            .parse()
            .unwrap_or_else(|error| panic!("{arguments:?} does not tokenize: {error}"));
        let mut errors = Errors::default();
        (self.parse)(tokens, &mut errors);
        messages(errors)
    }
}

fn messages(errors: Errors) -> Vec<String> {
    match errors.finish() {
        Ok(()) => Vec::new(),
        Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
    }
}

#[test]
fn both_reject_a_repeated_group() {
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("group = \"a\", group = \"b\""),
            [format!("`group` is given twice; {}", attribute.one_group)]
        );
    }
}

#[test]
fn both_reject_an_unknown_key_listing_theirs() {
    for attribute in [MIGRATION, TEST] {
        let expected = format!("unknown argument `colour`; expected one of {}", attribute.keys);
        for arguments in ["colour = \"blue\"", "colour"] {
            assert_eq!(attribute.mistakes(arguments), [expected.as_str()], "{arguments}");
        }
        assert_eq!(
            attribute.mistakes("a::b = \"c\""),
            [format!("unknown argument; expected one of {}", attribute.keys)]
        );
    }
}

#[test]
fn both_reject_an_empty_group() {
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("group = \"\""),
            [
                "the group is empty; write a name such as \"billing\", or leave `group` out for the default group"
            ]
        );
    }
}

#[test]
fn both_reject_a_group_with_a_space_or_a_dot() {
    for attribute in [MIGRATION, TEST] {
        for (group, bad) in [("a b", "' '"), ("billing.v2", "'.'")] {
            assert_eq!(
                attribute.mistakes(&format!("group = {group:?}")),
                [format!(
                    "the group contains {bad}; groups use only ASCII letters, digits, `_` and `-`"
                )]
            );
        }
    }
}

#[test]
fn both_reject_a_value_that_is_not_a_string() {
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("group = billing, crate = 1"),
            [
                "`group` takes a string literal: `group = \"...\"`",
                "`crate` takes a string literal: `crate = \"...\"`",
            ]
        );
        assert_eq!(
            attribute.mistakes("group(\"billing\")"),
            ["`group` needs a value: write `group = \"...\"`"]
        );
    }
}

#[test]
fn both_reject_a_crate_path_with_generic_arguments_or_no_path() {
    let wanted = "`crate` takes the path of schema-core as the calling crate names it, \
                  such as `crate = \"schema\"` or `crate = \"::my_reexports::schema_core\"`";
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("crate = \"schema<u8>\""),
            [format!("{wanted}, without generic arguments")]
        );
        assert_eq!(
            attribute.mistakes("crate = \"not a path\""),
            [format!("\"not a path\" is not a path; {wanted}")]
        );
    }
}

#[test]
fn both_report_a_repeat_even_after_a_wrong_first_value() {
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("crate = 1, crate = \"schema\""),
            [
                "`crate` takes a string literal: `crate = \"...\"`",
                "`crate` is given twice; keep one",
            ]
        );
    }
}

#[test]
fn both_report_every_mistake_in_the_order_written() {
    for attribute in [MIGRATION, TEST] {
        assert_eq!(
            attribute.mistakes("group = \"\", colour = 1, group = \"b\""),
            [
                "the group is empty; write a name such as \"billing\", or leave `group` out for the default group"
                    .to_owned(),
                format!("unknown argument `colour`; expected one of {}", attribute.keys),
                format!("`group` is given twice; {}", attribute.one_group),
            ]
        );
    }
}

#[test]
fn both_say_how_to_write_arguments_that_do_not_parse() {
    assert_eq!(
        MIGRATION.mistakes("group = \"billing\" crate = \"schema\""),
        [
            "expected `,`; write the arguments as `id = \"0001_name\"`, optionally followed by any of \
             `after = \"0000_other\"`, `description = \"...\"`, `group = \"billing\"`, `background` and `crate = \"schema\"`"
        ]
    );
    assert_eq!(
        TEST.mistakes("group = \"billing\" crate = \"schema\""),
        ["expected `,`; write the arguments as any of `group = \"billing\"` and `crate = \"schema\"`"]
    );
}

#[test]
fn both_accept_a_group_and_a_crate_path() {
    for attribute in [MIGRATION, TEST] {
        for arguments in [
            "",
            "group = \"billing-v2_EU\"",
            "crate = \"schema\"",
            "crate = \"::my_reexports::schema_core\", group = \"audit\",",
        ] {
            assert_eq!(attribute.mistakes(arguments), Vec::<String>::new(), "{arguments}");
        }
    }
}

#[test]
fn the_test_attribute_reads_its_arguments() {
    let mut errors = Errors::default();
    let args = TestArgs::parse(quote::quote!(group = "billing", crate = "::schema"), &mut errors);
    assert!(messages(errors).is_empty());
    assert_eq!(args.group.map(|group| group.value()).as_deref(), Some("billing"));
    let krate = args
        .krate
        .map(|path| quote::ToTokens::to_token_stream(&path).to_string());
    assert_eq!(krate.as_deref(), Some(":: schema"));

    let mut errors = Errors::default();
    let args = TestArgs::parse(TokenStream::new(), &mut errors);
    assert!(messages(errors).is_empty());
    assert!(args.group.is_none() && args.krate.is_none());
}

#[test]
fn the_migration_attribute_reads_its_arguments() {
    let mut errors = Errors::default();
    let args = MigrationArgs::parse(
        quote::quote!(
            id = "0002_b",
            after = ["0001_a"],
            description = "d",
            group = "g",
            crate = "s"
        ),
        &mut errors,
    );
    assert!(messages(errors).is_empty());
    assert_eq!(args.id.map(|id| id.value()).as_deref(), Some("0002_b"));
    let after: Vec<String> = args.after.iter().map(|id| id.value()).collect();
    assert_eq!(after, ["0001_a"]);
    assert_eq!(args.description.map(|text| text.value()).as_deref(), Some("d"));
    assert_eq!(args.group.map(|group| group.value()).as_deref(), Some("g"));
    assert!(args.krate.is_some());
    assert!(!args.background);

    let mut errors = Errors::default();
    let args = MigrationArgs::parse(quote::quote!(id = "0003_c", background), &mut errors);
    assert!(messages(errors).is_empty());
    assert!(args.background);
}

#[test]
fn background_is_a_flag_given_once_and_only_to_migrations() {
    let mut errors = Errors::default();
    MigrationArgs::parse(
        quote::quote!(id = "0001_a", background = true, background),
        &mut errors,
    );
    assert_eq!(
        messages(errors),
        [
            "`background` is a flag and takes no value: write `background` alone",
            "`background` is given twice; write it once",
        ]
    );
    assert_eq!(
        TEST.mistakes("background"),
        ["unknown argument `background`; expected one of `group` and `crate`"]
    );
}

#[test]
fn the_migration_attribute_needs_an_id_and_checks_it_against_after() {
    let mut errors = Errors::default();
    MigrationArgs::parse(quote::quote!(after = "0001_a"), &mut errors);
    assert_eq!(
        messages(errors),
        [
            "missing `id`: write `#[migration(id = \"0001_name\")]` with an id that never changes once deployed"
        ]
    );
    let mut errors = Errors::default();
    MigrationArgs::parse(
        quote::quote!(id = "bad id", after = ["bad id"], colour = "blue"),
        &mut errors,
    );
    assert_eq!(
        messages(errors),
        [
            "the migration id contains ' '; ids use only ASCII letters, digits, `_`, `.` and `-`",
            "unknown argument `colour`; expected one of `id`, `after`, `description`, `group`, `background` and `crate`",
            "migration `bad id` cannot run after itself; remove it from `after`",
        ]
    );
}
