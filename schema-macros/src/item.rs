//! Checks that `#[migration]` sits on a function of the accepted shape:
//! `async fn name(db: &mongodb::Database) -> Result<(), E>`.

use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, ItemFn, Lit, Meta, PathArguments, ReturnType,
    Signature, Type,
};

use crate::errors::Errors;

const SHAPE: &str = "async fn name(db: &mongodb::Database) -> Result<(), E>";

/// Checks the function's signature, recording every mismatch in `errors`.
pub(crate) fn check_signature(function: &ItemFn, errors: &mut Errors) {
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
    check_return(signature, errors);
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

fn check_return(signature: &Signature, errors: &mut Errors) {
    let wanted = "a migration returns `Result<(), E>` where `E` converts into \
                  `Box<dyn std::error::Error + Send + Sync>`";
    let ty = match &signature.output {
        ReturnType::Default => {
            errors.push(syn::Error::new(
                signature.paren_token.span.close(),
                format!("{wanted}; add `-> Result<(), mongodb::error::Error>` or your own error type"),
            ));
            return;
        }
        ReturnType::Type(_, ty) => ty,
    };
    let unit_ok = match &**ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|last| {
            last.ident == "Result"
                && match &last.arguments {
                    PathArguments::AngleBracketed(arguments) => matches!(
                        arguments.args.first(),
                        Some(GenericArgument::Type(Type::Tuple(unit))) if unit.elems.is_empty()
                    ),
                    _ => false,
                }
        }),
        _ => false,
    };
    if !unit_ok {
        errors.spanned(ty, wanted);
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
