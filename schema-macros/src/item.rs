//! Checks that `#[migration]` sits on a function of the accepted shape:
//! `async fn name(db: &mongodb::Database) -> Result<(), E>`, or with
//! `transaction`, `async fn name(db: &mongodb::Database, session: &mut
//! mongodb::ClientSession) -> Result<(), E>`.

use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, Meta, Path, PathArguments, ReturnType,
    Signature, Type,
};

use crate::crate_path;
use crate::errors::Errors;

/// The shape of a migration function, as the messages write it, with the
/// attribute's `transaction` or without.
pub(crate) fn shape(transaction: bool) -> &'static str {
    if transaction {
        "async fn name(db: &mongodb::Database, session: &mut mongodb::ClientSession) -> Result<(), E>"
    } else {
        "async fn name(db: &mongodb::Database) -> Result<(), E>"
    }
}

/// Where the session's type is found, said after a message about it.
const SESSION_TYPE: &str = "(`mongodb::ClientSession`, also `schema_core::mongodb::ClientSession`)";

/// Checks the function's signature, recording every mismatch in `errors`.
/// `transaction` tells whether the attribute has the flag, which makes the
/// function take a session after the database. `krate` is the attribute's
/// `crate` argument, by which a message names schema-core's error type as
/// the calling crate writes it.
pub(crate) fn check_signature(
    function: &ItemFn,
    transaction: bool,
    krate: Option<&Path>,
    errors: &mut Errors,
) {
    let signature = &function.sig;
    let shape = shape(transaction);
    if signature.asyncness.is_none() {
        errors.spanned(
            signature.fn_token,
            format!("a migration must be an `async fn`; write `{shape}`"),
        );
    }
    if let Some(constness) = &signature.constness {
        errors.spanned(constness, "a migration cannot be a `const fn`; remove `const`");
    }
    if let Some(unsafety) = &signature.unsafety {
        errors.spanned(unsafety, "a migration cannot be `unsafe`; remove `unsafe`");
    }
    if let Some(abi) = &signature.abi {
        errors.spanned(abi, "a migration cannot have an `extern` ABI; remove it");
    }
    let generic = if transaction {
        "a migration cannot be generic; it is called with `&mongodb::Database` and \
         `&mut mongodb::ClientSession` only"
    } else {
        "a migration cannot be generic; it is called with `&mongodb::Database` only"
    };
    if !signature.generics.params.is_empty() {
        errors.spanned(&signature.generics, generic);
    } else if let Some(where_clause) = &signature.generics.where_clause {
        errors.spanned(where_clause, generic);
    }
    if let Some(variadic) = &signature.variadic {
        errors.spanned(
            variadic,
            format!("a migration cannot be variadic; write `{shape}`"),
        );
    }
    check_parameters(function, transaction, errors);
    check_return(signature, krate, errors);
}

/// Checks the parameters: `db: &Database`, then with `transaction`
/// `session: &mut ClientSession`, and nothing else. The types themselves
/// are left to the type checker, which the generated call makes report a
/// wrong one at the parameter; only the session is told by its name, a path
/// ending in `ClientSession`, so that a session without the flag, or the
/// flag without a session, is said as such.
fn check_parameters(function: &ItemFn, transaction: bool, errors: &mut Errors) {
    let wanted = if transaction {
        "a migration declared with `transaction` takes exactly two parameters, \
         `db: &mongodb::Database` and `session: &mut mongodb::ClientSession`"
    } else {
        "a migration takes exactly one parameter, `db: &mongodb::Database`"
    };
    let mut typed = 0;
    // With `transaction`, a session written first (where the database goes)
    // is said as such, once.
    let mut session_first = false;
    for input in &function.sig.inputs {
        let parameter = match input {
            FnArg::Receiver(receiver) => {
                errors.spanned(
                    receiver,
                    "a migration is a free function and cannot take `self`; move it out of the `impl` block",
                );
                continue;
            }
            FnArg::Typed(parameter) => parameter,
        };
        typed += 1;
        match (typed, transaction) {
            (1, true) if names_a_session(&parameter.ty) => {
                session_first = true;
                errors.spanned(
                    input,
                    "the database comes first and the session second: \
                     write `db: &mongodb::Database, session: &mut ClientSession`",
                );
            }
            (1, _) => match &*parameter.ty {
                Type::Reference(reference) if reference.mutability.is_none() => {}
                other => {
                    let which = if transaction { "the first " } else { "" };
                    errors.spanned(other, format!("{wanted}: {which}a shared reference"));
                }
            },
            (2, false) if names_a_session(&parameter.ty) => errors.spanned(
                input,
                "a migration that takes a session makes its writes in a transaction: add `transaction` \
                 to the attribute: `#[migration(id = \"...\", transaction)]`",
            ),
            (2, true) => check_session(&parameter.ty, errors),
            _ => errors.spanned(input, format!("{wanted}; remove this one")),
        }
    }
    let parameters = function.sig.paren_token.span.join();
    match (typed, transaction) {
        (0, false) => errors.push(syn::Error::new(parameters, format!("{wanted}; add it"))),
        (0, true) => errors.push(syn::Error::new(parameters, format!("{wanted}; add them"))),
        (1, true) if !session_first => errors.push(syn::Error::new(
            parameters,
            format!(
                "a migration declared with `transaction` makes its writes with the session of its \
                 transaction: add `session: &mut ClientSession` after `db` {SESSION_TYPE}"
            ),
        )),
        _ => {}
    }
}

/// Checks the second parameter of a migration declared with `transaction`:
/// `&mut ClientSession`.
fn check_session(ty: &Type, errors: &mut Errors) {
    match peel(ty) {
        Type::Reference(reference) if is_session_path(&reference.elem) => {
            if reference.mutability.is_none() {
                errors.spanned(
                    ty,
                    "the session is borrowed mutably, as the driver's writes take it: \
                     write `session: &mut ClientSession`",
                );
            }
        }
        other if is_session_path(other) => errors.spanned(
            ty,
            "the session is borrowed mutably, as the driver's writes take it: \
             write `session: &mut ClientSession`",
        ),
        _ => errors.spanned(
            ty,
            format!(
                "the second parameter of a migration declared with `transaction` is its session: \
                 write `session: &mut ClientSession` {SESSION_TYPE}"
            ),
        ),
    }
}

/// Whether `ty` names a session: a path ending in `ClientSession`, or a
/// reference to one.
fn names_a_session(ty: &Type) -> bool {
    match peel(ty) {
        Type::Reference(reference) => is_session_path(&reference.elem),
        other => is_session_path(other),
    }
}

/// Whether `ty` is a path ending in `ClientSession`.
fn is_session_path(ty: &Type) -> bool {
    match peel(ty) {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "ClientSession" && last.arguments.is_none()),
        _ => false,
    }
}

/// `ty` without the parentheses or invisible groups around it.
fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => peel(&inner.elem),
        Type::Group(inner) => peel(&inner.elem),
        other => other,
    }
}

/// Rejects what is plainly not `Result<(), E>`. Anything else, such as an
/// alias (`anyhow::Result<()>`, `std::io::Result<()>`, a `type` of the
/// crate's own), is left to the bounds of `__private::boxed`, which the
/// generated call reports at the return type.
fn check_return(signature: &Signature, krate: Option<&Path>, errors: &mut Errors) {
    let wanted = "a migration returns `Result<(), E>` where `E` converts into \
                  `Box<dyn std::error::Error + Send + Sync>`";
    let ty = match &signature.output {
        ReturnType::Default => {
            let schema_core = crate_path::written(krate);
            errors.push(syn::Error::new(
                signature.paren_token.span.close(),
                format!("{wanted}; add `-> Result<(), {schema_core}::Error>` or your own error type"),
            ));
            return;
        }
        ReturnType::Type(_, ty) => ty,
    };
    if !may_be_a_result(ty) {
        errors.spanned(ty, wanted);
    }
}

/// Whether `ty` may name `Result<(), E>`: a path (or a macro), but not
/// `Option<...>` nor `Result<T, E>` with a `T` other than `()`. A `Result`
/// with one argument may be an alias taking the error type
/// (`type Result<E> = std::result::Result<(), E>`), so it is left alone.
fn may_be_a_result(ty: &Type) -> bool {
    match ty {
        Type::Paren(inner) => may_be_a_result(&inner.elem),
        Type::Group(inner) => may_be_a_result(&inner.elem),
        Type::Macro(_) => true,
        Type::Path(path) if path.qself.is_some() => true,
        Type::Path(path) => path.path.segments.last().is_none_or(|last| {
            let types: Vec<&Type> = match &last.arguments {
                PathArguments::AngleBracketed(arguments) => arguments
                    .args
                    .iter()
                    .filter_map(|argument| match argument {
                        GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let is_unit = |ty: &Type| matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty());
            match last.ident.to_string().as_str() {
                "Option" => false,
                "Result" => !matches!(types.as_slice(), [ok, _] if !is_unit(ok)),
                _ => true,
            }
        }),
        _ => false,
    }
}

/// The first non-empty line of the function's doc comment, if it has one.
pub(crate) fn doc_summary(attrs: &[Attribute]) -> Option<String> {
    attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(pair) => match &pair.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(text), ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .map(|line| line.trim().to_owned())
        .find(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::{check_signature, may_be_a_result, names_a_session};
    use crate::errors::Errors;

    fn a_session(ty: &str) -> bool {
        names_a_session(&syn::parse_str(ty).unwrap())
    }

    #[test]
    fn a_session_is_a_path_ending_in_client_session_or_a_reference_to_one() {
        for ty in [
            "&mut ClientSession",
            "&mut mongodb::ClientSession",
            "&'a mut ::schema_core::mongodb::ClientSession",
            "&ClientSession",
            "ClientSession",
            "(&mut ClientSession)",
        ] {
            assert!(a_session(ty), "{ty}");
        }
        for ty in [
            "&Database",
            "&mut Session",
            "&mut ClientSession<u8>",
            "&mut ClientSessions",
            "&mut [ClientSession]",
            "Box<ClientSession>",
        ] {
            assert!(!a_session(ty), "{ty}");
        }
    }

    /// The messages about `function`'s signature, with `transaction` or not.
    fn mistakes(function: &str, transaction: bool) -> Vec<String> {
        let mut errors = Errors::default();
        check_signature(&syn::parse_str(function).unwrap(), transaction, None, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }

    #[test]
    fn the_session_parameter_goes_with_the_transaction_flag() {
        let plain = "async fn f(db: &Database) -> Result<(), E> { Ok(()) }";
        let with_session =
            "async fn f(db: &Database, session: &mut mongodb::ClientSession) -> Result<(), E> { Ok(()) }";
        assert_eq!(mistakes(plain, false), Vec::<String>::new());
        assert_eq!(mistakes(with_session, true), Vec::<String>::new());
        assert_eq!(
            mistakes(plain, true),
            [
                "a migration declared with `transaction` makes its writes with the session of its \
                 transaction: add `session: &mut ClientSession` after `db` \
                 (`mongodb::ClientSession`, also `schema_core::mongodb::ClientSession`)"
            ]
        );
        assert_eq!(
            mistakes(with_session, false),
            [
                "a migration that takes a session makes its writes in a transaction: add `transaction` \
                 to the attribute: `#[migration(id = \"...\", transaction)]`"
            ]
        );
        assert_eq!(
            mistakes(
                "async fn f(db: &Database, session: &ClientSession) -> Result<(), E> { Ok(()) }",
                true
            ),
            [
                "the session is borrowed mutably, as the driver's writes take it: \
                 write `session: &mut ClientSession`"
            ]
        );
        assert_eq!(
            mistakes(
                "async fn f(db: &Database, retries: u32) -> Result<(), E> { Ok(()) }",
                false
            ),
            ["a migration takes exactly one parameter, `db: &mongodb::Database`; remove this one"]
        );
    }

    #[test]
    fn the_shape_said_follows_the_flag() {
        assert_eq!(
            mistakes(
                "fn f(db: &Database, session: &mut ClientSession) -> Result<(), E> { Ok(()) }",
                true
            ),
            [
                "a migration must be an `async fn`; write `async fn name(db: &mongodb::Database, \
                 session: &mut mongodb::ClientSession) -> Result<(), E>`"
            ]
        );
        assert_eq!(
            mistakes(
                "async fn f<T>(db: &Database, session: &mut ClientSession) -> Result<(), E> { Ok(()) }",
                true
            ),
            [
                "a migration cannot be generic; it is called with `&mongodb::Database` and \
                 `&mut mongodb::ClientSession` only"
            ]
        );
    }

    fn accepted(ty: &str) -> bool {
        may_be_a_result(&syn::parse_str(ty).unwrap())
    }

    #[test]
    fn names_that_may_be_a_result_are_left_to_the_trait_bounds() {
        for ty in [
            "Result<(), Error>",
            "std::result::Result<(), E>",
            "anyhow::Result<()>",
            "std::io::Result<()>",
            "Outcome",
            "Unit<MyError>",
            "(Result<(), E>)",
            "result!()",
        ] {
            assert!(accepted(ty), "{ty}");
        }
    }

    #[test]
    fn what_is_plainly_not_a_unit_result_is_rejected() {
        for ty in [
            "()",
            "Result<u64, Error>",
            "Option<()>",
            "&str",
            "impl Future",
            "[u8; 2]",
            "!",
        ] {
            assert!(!accepted(ty), "{ty}");
        }
    }
}
