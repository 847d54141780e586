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
    keys: "`id`, `after`, `description`, `group`, `background`, `transaction`, `accept` and `crate`",
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
             `after = \"0000_other\"`, `description = \"...\"`, `group = \"billing\"`, `background`, \
             `transaction`, `accept = \"validator_rejects\"` and `crate = \"schema\"`"
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
    assert!(args.background.is_none());
    assert!(args.transaction.is_none());

    let mut errors = Errors::default();
    let args = MigrationArgs::parse(quote::quote!(id = "0003_c", background), &mut errors);
    assert!(messages(errors).is_empty());
    assert!(args.background.is_some());
    assert!(args.transaction.is_none());

    let mut errors = Errors::default();
    let args = MigrationArgs::parse(
        quote::quote!(id = "0004_d", transaction, group = "g"),
        &mut errors,
    );
    assert!(messages(errors).is_empty());
    assert!(args.transaction.is_some());
    assert!(args.background.is_none());
    assert_eq!(args.group.map(|group| group.value()).as_deref(), Some("g"));
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
fn transaction_is_a_flag_given_once_and_only_to_migrations() {
    let mut errors = Errors::default();
    MigrationArgs::parse(
        quote::quote!(id = "0001_a", transaction, transaction),
        &mut errors,
    );
    assert_eq!(messages(errors), ["`transaction` is given twice; write it once"]);
    assert_eq!(
        TEST.mistakes("transaction"),
        ["unknown argument `transaction`; expected one of `group` and `crate`"]
    );
}

#[test]
fn a_flag_written_with_a_value_is_reported_and_read_as_the_flag() {
    let mut errors = Errors::default();
    let args = MigrationArgs::parse(quote::quote!(id = "0001_a", transaction = true), &mut errors);
    assert_eq!(
        messages(errors),
        ["`transaction` is a flag and takes no value: write `transaction` alone"]
    );
    assert!(args.transaction.is_some(), "the rules between arguments see it");
}

#[test]
fn transaction_and_background_exclude_each_other() {
    let said = "a migration declared with `transaction` runs at start, its writes committing with its \
                record, so it cannot be `background`; remove `background` or `transaction`";
    for arguments in [
        "transaction, background",
        "background, group = \"g\", transaction",
    ] {
        let tokens: TokenStream = format!("id = \"0001_a\", {arguments}")
            .parse()
            .expect("tokenizes");
        let mut errors = Errors::default();
        let args = MigrationArgs::parse(tokens, &mut errors);
        assert_eq!(messages(errors), [said], "{arguments}");
        assert!(args.transaction.is_some() && args.background.is_some());
    }
    assert_eq!(
        MIGRATION.mistakes("transaction"),
        Vec::<String>::new(),
        "alone, it is no mistake"
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
            "unknown argument `colour`; expected one of `id`, `after`, `description`, `group`, `background`, `transaction`, `accept` and `crate`",
            "migration `bad id` cannot run after itself; remove it from `after`",
        ]
    );
}

/// The codes of `accept` as written, parsed with a migration's id and
/// `arguments`, and the messages of the mistakes.
fn accepted(arguments: &str) -> (Vec<String>, Vec<String>) {
    let tokens = format!("id = \"0001_a\", {arguments}")
        .parse()
        .unwrap_or_else(|error| panic!("{arguments:?} does not tokenize: {error}"));
    let mut errors = Errors::default();
    let args = MigrationArgs::parse(tokens, &mut errors);
    (
        args.accept.iter().map(|code| code.value()).collect(),
        messages(errors),
    )
}

/// "expected one of `unique_duplicates`, ... and `collection_scan`".
const EXPECTED_CODES: &str = "expected one of `unique_duplicates`, `index_conflict`, `validator_rejects`, \
                              `ttl_deletes`, `ttl_not_dates`, `index_in_use` and `collection_scan`";

#[test]
fn accept_reads_one_code_or_a_list_of_them() {
    assert_eq!(
        accepted("accept = \"validator_rejects\""),
        (vec!["validator_rejects".to_owned()], vec![])
    );
    assert_eq!(
        accepted("accept = [\"validator_rejects\", \"ttl_deletes\",]"),
        (
            vec!["validator_rejects".to_owned(), "ttl_deletes".to_owned()],
            vec![]
        )
    );
    let all = super::accept::CODES.map(|code| format!("{code:?}")).join(", ");
    assert_eq!(
        accepted(&format!("background, accept = [{all}], group = \"g\"")),
        (super::accept::CODES.map(str::to_owned).to_vec(), vec![])
    );
    assert_eq!(accepted(""), (vec![], vec![]), "no `accept`, no code");
}

#[test]
fn accept_refuses_an_unknown_code_naming_the_nearest_and_every_code() {
    assert_eq!(
        accepted("accept = \"unique_duplicate\""),
        (
            vec![],
            vec![format!(
                "unknown preflight code `unique_duplicate`; did you mean `unique_duplicates`? {EXPECTED_CODES}"
            )]
        )
    );
    assert_eq!(
        accepted("accept = [\"ttl_deletes\", \"TTL-not-dates\", \"drop_everything\", \"\"]"),
        (
            vec!["ttl_deletes".to_owned()],
            vec![
                format!(
                    "unknown preflight code `TTL-not-dates`; did you mean `ttl_not_dates`? {EXPECTED_CODES}"
                ),
                format!("unknown preflight code `drop_everything`; {EXPECTED_CODES}"),
                format!("the preflight code is empty; {EXPECTED_CODES}"),
            ]
        )
    );
    let (_, said) = accepted("accept = \"a\\nb`\"");
    assert_eq!(
        said,
        [format!("unknown preflight code `a\\nb``; {EXPECTED_CODES}")]
    );
    assert!(!said[0].contains('\n'), "one line");
}

#[test]
fn accept_refuses_a_code_twice_an_empty_list_and_a_second_accept() {
    assert_eq!(
        accepted("accept = [\"ttl_deletes\", \"index_in_use\", \"ttl_deletes\"]"),
        (
            vec!["ttl_deletes".to_owned(), "index_in_use".to_owned()],
            vec!["`ttl_deletes` is listed twice in `accept`; list each code once".to_owned()]
        )
    );
    assert_eq!(
        accepted("accept = []"),
        (
            vec![],
            vec!["`accept = []` accepts nothing; list at least one code, or leave `accept` out".to_owned()]
        )
    );
    assert_eq!(
        accepted("accept = \"ttl_deletes\", accept = \"index_in_use\""),
        (
            vec!["ttl_deletes".to_owned()],
            vec![
                "`accept` is given twice; list every code once, in one list: \
                 `accept = [\"validator_rejects\", \"ttl_deletes\"]`"
                    .to_owned()
            ]
        )
    );
    assert_eq!(
        TEST.mistakes("accept = \"ttl_deletes\""),
        ["unknown argument `accept`; expected one of `group` and `crate`"]
    );
}

#[test]
fn accept_says_what_to_write_for_a_value_that_is_not_a_string() {
    let shape = "`accept` takes a preflight code or a list of them, as string literals: \
                 `accept = \"validator_rejects\"` or `accept = [\"validator_rejects\", \"ttl_deletes\"]`";
    for arguments in [
        "accept = validator_rejects",
        "accept = Code::ValidatorRejects",
        "accept = 1",
        "accept = (\"ttl_deletes\")",
    ] {
        assert_eq!(
            accepted(arguments),
            (vec![], vec![shape.to_owned()]),
            "{arguments}"
        );
    }
    assert_eq!(
        accepted("accept = [\"ttl_deletes\", index_in_use, 3]"),
        (
            vec!["ttl_deletes".to_owned()],
            vec![shape.to_owned(), shape.to_owned()]
        )
    );
    assert_eq!(
        accepted("accept"),
        (
            vec![],
            vec!["`accept` needs a value: write `accept = \"...\"`".to_owned()]
        )
    );
}

#[test]
fn a_misspelled_argument_is_answered_with_the_nearest() {
    assert_eq!(
        MIGRATION.mistakes("accepts = \"ttl_deletes\", groups = \"g\", backgruond, transactions, transation"),
        [
            format!(
                "unknown argument `accepts`; did you mean `accept`? expected one of {}",
                MIGRATION.keys
            ),
            format!(
                "unknown argument `groups`; did you mean `group`? expected one of {}",
                MIGRATION.keys
            ),
            format!(
                "unknown argument `backgruond`; did you mean `background`? expected one of {}",
                MIGRATION.keys
            ),
            format!(
                "unknown argument `transactions`; did you mean `transaction`? expected one of {}",
                MIGRATION.keys
            ),
            format!(
                "unknown argument `transation`; did you mean `transaction`? expected one of {}",
                MIGRATION.keys
            ),
        ]
    );
    assert_eq!(
        TEST.mistakes("grup = \"g\""),
        [format!(
            "unknown argument `grup`; did you mean `group`? expected one of {}",
            TEST.keys
        )]
    );
}
