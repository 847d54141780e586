//! Checks that `#[migration]` sits on a function of the accepted shape:
//! `async fn name(db: &mongodb::Database) -> Result<(), E>`.

use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, Meta, Path, PathArguments, ReturnType,
    Signature, Type,
};

use crate::crate_path;
use crate::errors::Errors;

const SHAPE: &str = "async fn name(db: &mongodb::Database) -> Result<(), E>";

/// Checks the function's signature, recording every mismatch in `errors`.
/// `krate` is the attribute's `crate` argument, by which a message names
/// schema-core's error type as the calling crate writes it.
pub(crate) fn check_signature(function: &ItemFn, krate: Option<&Path>, errors: &mut Errors) {
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        errors.spanned(
            signature.fn_token,
            format!("a migration must be an `async fn`; write `{SHAPE}`"),
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
    let generic = "a migration cannot be generic; it is called with `&mongodb::Database` only";
    if !signature.generics.params.is_empty() {
        errors.spanned(&signature.generics, generic);
    } else if let Some(where_clause) = &signature.generics.where_clause {
        errors.spanned(where_clause, generic);
    }
    if let Some(variadic) = &signature.variadic {
        errors.spanned(
            variadic,
            format!("a migration cannot be variadic; write `{SHAPE}`"),
        );
    }
    check_parameters(function, errors);
    check_return(signature, krate, errors);
}

fn check_parameters(function: &ItemFn, errors: &mut Errors) {
    let wanted = "a migration takes exactly one parameter, `db: &mongodb::Database`";
    let mut typed = 0;
    for input in &function.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "a migration is a free function and cannot take `self`; move it out of the `impl` block",
            ),
            FnArg::Typed(_) if typed > 0 => errors.spanned(input, format!("{wanted}; remove this one")),
            FnArg::Typed(parameter) => {
                typed += 1;
                match &*parameter.ty {
                    Type::Reference(reference) if reference.mutability.is_none() => {}
                    other => errors.spanned(other, format!("{wanted}: a shared reference")),
                }
            }
        }
    }
    if function.sig.inputs.is_empty() {
        errors.push(syn::Error::new(
            function.sig.paren_token.span.join(),
            format!("{wanted}; add it"),
        ));
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
    use super::may_be_a_result;

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
