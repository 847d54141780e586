//! A stable checksum of a migration's body, computed from its tokens.
//!
//! Formatting and comments are not tokens, so they do not change it; any
//! edit to what the body does does. The hash is 64-bit FNV-1a over a
//! canonical rendering of each token (identifier, punctuation and literal
//! text, group delimiters), an algorithm fixed here rather than the
//! standard library's, whose output may change between releases.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// The checksum of `tokens`, as 16 lowercase hex digits.
pub(crate) fn checksum(tokens: TokenStream) -> String {
    let mut hash = OFFSET;
    feed(&mut hash, tokens);
    format!("{hash:016x}")
}

fn feed(hash: &mut u64, tokens: TokenStream) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => write(hash, b'i', ident.to_string().as_bytes()),
            // Spacing is left out: whether `=` touches the `-` after it
            // is formatting, and Rust programs differing only there mean
            // the same or do not compile.
            TokenTree::Punct(punct) => write(hash, b'p', punct.as_char().to_string().as_bytes()),
            TokenTree::Literal(literal) => write(hash, b'l', literal.to_string().as_bytes()),
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => (b'(', b')'),
                    Delimiter::Brace => (b'{', b'}'),
                    Delimiter::Bracket => (b'[', b']'),
                    Delimiter::None => (b'<', b'>'),
                };
                write(hash, open, b"");
                feed(hash, group.stream());
                write(hash, close, b"");
            }
        }
    }
}

/// Feeds a tag, the length and the bytes, so that token boundaries are
/// part of the hash.
fn write(hash: &mut u64, tag: u8, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
    *hash = fnv1a(*hash, &[tag]);
    *hash = fnv1a(*hash, &length);
    *hash = fnv1a(*hash, bytes);
}

/// FNV-1a: for each byte, xor it in, then multiply by the FNV prime.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::{OFFSET, checksum, fnv1a};
    use quote::quote;

    #[test]
    fn formatting_does_not_change_the_checksum() {
        let compact = quote! { { let x = a(1, "b"); x.await?; Ok(()) } };
        let spread: proc_macro2::TokenStream = "{\n    let x = a(\n        1,\n        \"b\"\n    );\n    // a comment\n    x.await ? ;\n    Ok(())\n}"
            .parse()
            .unwrap();
        assert_eq!(checksum(compact), checksum(spread));
    }

    #[test]
    fn edits_change_the_checksum() {
        let base = checksum(quote! { { ttl(3600) } });
        assert_ne!(base, checksum(quote! { { ttl(7200) } }));
        assert_ne!(base, checksum(quote! { { ttl((3600)) } }));
        assert_ne!(checksum(quote! { { a b } }), checksum(quote! { { ab } }));
        assert_ne!(checksum(quote! { { "a" } }), checksum(quote! { { a } }));
    }

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a(OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_checksum_is_fixed_across_builds() {
        // FNV-1a is specified; this value must never change, or every
        // deployed migration would look edited.
        assert_eq!(checksum(quote! { { Ok(()) } }), "2bd9f00f7ff3ed86");
    }
}
