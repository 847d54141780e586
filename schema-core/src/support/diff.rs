//! A line diff of two texts, for a person to read: the changed lines with
//! `-` (only in the first) and `+` (only in the second), three lines of
//! context around each change, and `@@ -line +line @@` where each part
//! starts.

/// Lines of unchanged context shown around a change.
const CONTEXT: usize = 3;

/// Above this many cells the middle of the two texts is shown as replaced
/// whole instead of matched line by line: the table would be too large.
const MAX_CELLS: usize = 4_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Line<'a> {
    Same(&'a str),
    Removed(&'a str),
    Added(&'a str),
}

/// The lines of `old` and `new` that differ, with context; empty when the
/// texts have the same lines.
pub(crate) fn lines(old: &str, new: &str) -> String {
    let script = edit_script(&old.lines().collect::<Vec<_>>(), &new.lines().collect::<Vec<_>>());
    let changed: Vec<usize> = (0..script.len())
        .filter(|&at| !matches!(script[at], Line::Same(_)))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    while at < changed.len() {
        // A hunk: changes closer than twice the context are shown together.
        let start = changed[at].saturating_sub(CONTEXT);
        let mut last = changed[at];
        while at + 1 < changed.len() && changed[at + 1] <= last + 2 * CONTEXT {
            at += 1;
            last = changed[at];
        }
        at += 1;
        let end = (last + CONTEXT + 1).min(script.len());
        let (old_line, new_line) = positions(&script[..start]);
        out.push_str(&format!("@@ -{} +{} @@\n", old_line + 1, new_line + 1));
        for line in &script[start..end] {
            let (mark, text) = match line {
                Line::Same(text) => (' ', text),
                Line::Removed(text) => ('-', text),
                Line::Added(text) => ('+', text),
            };
            out.push(mark);
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

/// How many lines of the old and of the new text `script` covers.
fn positions(script: &[Line<'_>]) -> (usize, usize) {
    script.iter().fold((0, 0), |(old, new), line| match line {
        Line::Same(_) => (old + 1, new + 1),
        Line::Removed(_) => (old + 1, new),
        Line::Added(_) => (old, new + 1),
    })
}

/// The shortest way from `old` to `new` keeping their longest common
/// subsequence of lines.
fn edit_script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<Line<'a>> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_middle, new_middle) = (&old[prefix..old.len() - suffix], &new[prefix..new.len() - suffix]);
    let mut script: Vec<Line<'a>> = old[..prefix].iter().map(|line| Line::Same(line)).collect();
    let (rows, columns) = (old_middle.len(), new_middle.len());
    if (rows + 1).saturating_mul(columns + 1) > MAX_CELLS {
        script.extend(old_middle.iter().map(|line| Line::Removed(line)));
        script.extend(new_middle.iter().map(|line| Line::Added(line)));
    } else {
        // common[i][j]: the longest common subsequence of old_middle[i..]
        // and new_middle[j..].
        let mut common = vec![0_u32; (rows + 1) * (columns + 1)];
        let cell = |i: usize, j: usize| i * (columns + 1) + j;
        for i in (0..rows).rev() {
            for j in (0..columns).rev() {
                common[cell(i, j)] = if old_middle[i] == new_middle[j] {
                    common[cell(i + 1, j + 1)] + 1
                } else {
                    common[cell(i + 1, j)].max(common[cell(i, j + 1)])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < rows || j < columns {
            if i < rows && j < columns && old_middle[i] == new_middle[j] {
                script.push(Line::Same(old_middle[i]));
                (i, j) = (i + 1, j + 1);
            } else if j == columns || i < rows && common[cell(i + 1, j)] >= common[cell(i, j + 1)] {
                script.push(Line::Removed(old_middle[i]));
                i += 1;
            } else {
                script.push(Line::Added(new_middle[j]));
                j += 1;
            }
        }
    }
    script.extend(old[old.len() - suffix..].iter().map(|line| Line::Same(line)));
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(lines("a\nb\n", "a\nb\n"), "");
    }

    #[test]
    fn a_changed_line_shows_with_its_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            lines(old, new),
            "@@ -2 +2 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
        );
    }

    #[test]
    fn distant_changes_are_separate_parts_and_insertions_keep_their_place() {
        let old = (1..=20).map(|n| format!("line {n}\n")).collect::<String>();
        let new = old.replace("line 2\n", "line 2\nnew\n").replace("line 19\n", "");
        let diff = lines(&old, &new);
        assert_eq!(diff.matches("@@").count(), 4, "{diff}");
        assert!(
            diff.starts_with("@@ -1 +1 @@\n line 1\n line 2\n+new\n line 3\n"),
            "{diff}"
        );
        assert!(
            diff.ends_with("@@ -16 +17 @@\n line 16\n line 17\n line 18\n-line 19\n line 20\n"),
            "{diff}"
        );
    }

    #[test]
    fn the_line_numbers_count_from_one() {
        assert_eq!(lines("a\n", "b\n"), "@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!(lines("", "b\n"), "@@ -1 +1 @@\n+b\n");
    }
}
