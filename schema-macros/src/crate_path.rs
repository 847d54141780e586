//! Where the generated code finds schema-core: the path given with
//! `crate = "..."`, else the name the calling crate's `Cargo.toml` gives
//! the dependency, else `::schema_core`.

use proc_macro_crate::FoundCrate;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::Path;

/// The path of schema-core's root, as the calling crate can name it.
pub(crate) fn schema_core(explicit: Option<&Path>) -> TokenStream {
    match found(explicit) {
        Found::Explicit(path) => path.to_token_stream(),
        Found::Named(name) => {
            let name = Ident::new(&name, Span::call_site());
            quote!(::#name)
        }
    }
}

/// The same path as the user writes it in code, for messages: `schema_core`,
/// the dependency's own name, or the given path.
pub(crate) fn written(explicit: Option<&Path>) -> String {
    match found(explicit) {
        Found::Explicit(path) => path.to_token_stream().to_string().split_whitespace().collect(),
        Found::Named(name) => name,
    }
}

enum Found<'a> {
    Explicit(&'a Path),
    Named(String),
}

fn found(explicit: Option<&Path>) -> Found<'_> {
    if let Some(path) = explicit {
        return Found::Explicit(path);
    }
    match proc_macro_crate::crate_name("schema-core") {
        Ok(FoundCrate::Name(name)) => Found::Named(name),
        // schema-core's own library never uses the attribute; its doctests,
        // tests and examples, compiled with its manifest, are other crates
        // that depend on it as `schema_core`.
        Ok(FoundCrate::Itself) => Found::Named("schema_core".to_owned()),
        // Without a readable manifest (a build outside Cargo), the usual
        // name is the best guess; a wrong one is an error naming it.
        Err(_) => Found::Named("schema_core".to_owned()),
    }
}
