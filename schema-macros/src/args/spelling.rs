//! The known name a misspelled one was probably meant to be: an argument
//! (`groups` for `group`), a preflight code (`unique_duplicate` for
//! `unique_duplicates`).

/// The name of `known` nearest to `written`, when it is near enough to be
/// a slip of the keyboard: at most one edit (an insertion, a deletion or a
/// substitution) per three characters of `written`, and at least one
/// allowed, once capitals are lowered and `-` read as `_` (the names are
/// lower case, their words joined by `_`). Between names as near, the
/// first in `known` wins.
pub(super) fn nearest<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = written.chars().count().max(3) / 3;
    let folded: String = written
        .chars()
        .map(|c| if c == '-' { '_' } else { c.to_ascii_lowercase() })
        .collect();
    known
        .into_iter()
        .map(|name| (edits(&folded, name), name))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// How many single-character insertions, deletions and substitutions turn
/// `a` into `b` (the Levenshtein distance), over characters.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `row[j]`: the edits from the part of `a` read so far to `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, from) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, to) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(from != *to);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{edits, nearest};

    #[test]
    fn edits_count_insertions_deletions_and_substitutions() {
        assert_eq!(edits("", ""), 0);
        assert_eq!(edits("abc", ""), 3);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(edits("unique_duplicate", "unique_duplicates"), 1);
        assert_eq!(edits("ttl_deltes", "ttl_deletes"), 1);
        assert_eq!(edits("index-in-use", "index_in_use"), 2);
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("é", "e"), 1);
    }

    #[test]
    fn only_a_near_name_is_suggested_the_first_among_equals() {
        let known = ["ttl_deletes", "ttl_not_dates", "index_in_use"];
        assert_eq!(nearest("ttl_delete", known), Some("ttl_deletes"));
        assert_eq!(nearest("TTL_Deletes", known), Some("ttl_deletes"));
        assert_eq!(nearest("TTL-not-dates", known), Some("ttl_not_dates"));
        assert_eq!(nearest("index-in-use", known), Some("index_in_use"));
        assert_eq!(nearest("ttl", known), None);
        assert_eq!(nearest("validator_rejects", known), None);
        assert_eq!(nearest("", known), None);
        assert_eq!(nearest("ab", ["ax", "ay"]), Some("ax"));
    }
}
