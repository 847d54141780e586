//! Where the generated code finds schema-core: the path given with
//! `crate = "..."`, else the name the calling crate's `Cargo.toml` gives
//! the dependency, else `::schema_core`.

use proc_macro_crate::FoundCrate;
use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote};
use syn::Path;

/// The path of schema-core's root, as the calling crate can name it.
pub(crate) fn schema_core(explicit: Option<&Path>) -> TokenStream {
    if let Some(path) = explicit {
        return path.to_token_stream();
    }
    match proc_macro_crate::crate_name("schema-core") {
        Ok(FoundCrate::Name(name)) => {
            let name = Ident::new(&name, Span::call_site());
            quote!(::#name)
        }
        // schema-core's own library never uses the attribute; its doctests,
        // tests and examples, compiled with its manifest, are other crates
        // that depend on it as `schema_core`.
        Ok(FoundCrate::Itself) => quote!(::schema_core),
        // Without a readable manifest (a build outside Cargo), the usual
        // name is the best guess; a wrong one is an error naming it.
        Err(_) => quote!(::schema_core),
    }
}
