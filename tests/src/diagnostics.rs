//! The compiler's messages for the compile-fail cases, in the form their
//! `.stderr` files keep.
//!
//! A message is kept as rustc renders it, with one change: a span in a file
//! other than the case's (schema-core's `private.rs`, where the bound a
//! case breaks is declared) shows no line numbers, so that editing that
//! file does not change every expected output. The gutter is then as wide
//! as the line numbers left need.

/// `rendered`, one message as rustc renders it, with the line numbers of
/// files outside `case_directory` removed and the gutter narrowed to fit
/// the numbers left.
pub fn normalize(rendered: &str, case_directory: &str) -> String {
    let lines: Vec<&str> = rendered.lines().collect();
    // The gutter's width: the spaces before the first `-->`.
    let Some(width) = lines
        .iter()
        .find_map(|line| line.trim_start().starts_with("-->").then(|| indent(line)))
    else {
        return rendered.to_owned();
    };
    let mut in_case_file = true;
    let mut parsed = Vec::with_capacity(lines.len());
    for line in &lines {
        let piece = Gutter::parse(line, width);
        if let Gutter::Arrow(location) = &piece {
            in_case_file = location.starts_with(case_directory);
        }
        parsed.push(match piece {
            Gutter::Arrow(location) if !in_case_file => Gutter::Arrow(without_position(location)),
            Gutter::Numbered(_, rest) if !in_case_file => Gutter::Numbered("", rest),
            other => other,
        });
    }
    let narrowed = parsed
        .iter()
        .filter_map(|piece| match piece {
            Gutter::Numbered(number, _) => Some(number.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let mut normalized = String::with_capacity(rendered.len());
    for piece in parsed {
        match piece {
            Gutter::Arrow(location) => {
                normalized.push_str(&" ".repeat(narrowed));
                normalized.push_str("--> ");
                normalized.push_str(location);
            }
            Gutter::Numbered(number, rest) => {
                normalized.push_str(&format!("{number:>narrowed$}{rest}"));
            }
            Gutter::Other(line) => normalized.push_str(line),
        }
        normalized.push('\n');
    }
    normalized
}

/// A line of a rendered message, by what its gutter holds.
enum Gutter<'a> {
    /// `  --> file:line:column`: the location only.
    Arrow(&'a str),
    /// `12 | code`, `   |`, `   = note: ...`: the line number (empty when
    /// none) and everything after the gutter.
    Numbered(&'a str, &'a str),
    /// The message's own lines (`error: ...`, `note: ...`) and `...`.
    Other(&'a str),
}

impl<'a> Gutter<'a> {
    fn parse(line: &'a str, width: usize) -> Self {
        if indent(line) == width
            && let Some(location) = line[width..].strip_prefix("--> ")
        {
            return Gutter::Arrow(location);
        }
        match (line.get(..width), line.get(width..)) {
            (Some(gutter), Some(rest))
                if gutter.bytes().all(|byte| byte == b' ' || byte.is_ascii_digit())
                    && (rest.starts_with(" |") || rest.starts_with(" = ")) =>
            {
                Gutter::Numbered(gutter.trim_start(), rest)
            }
            _ => Gutter::Other(line),
        }
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `file:line:column` without `:line:column`.
fn without_position(location: &str) -> &str {
    let mut end = location;
    for _ in 0..2 {
        match end.rsplit_once(':') {
            Some((before, number)) if number.bytes().all(|byte| byte.is_ascii_digit()) => {
                end = before;
            }
            _ => break,
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn line_numbers_outside_the_cases_go_and_the_gutter_narrows() {
        let rendered = "\
error[E0277]: not a migration error
  --> tests/ui/fail/case.rs:5:36
   |
 5 | async fn events() -> Result<(), X> {
   |                      ^^^^^^^^^^^^^ here
   |
   = note: something
note: required by a bound in `boxed`
  --> schema-core/src/private.rs:45:8
   |
42 | pub fn boxed<F, E>(future: F)
   |        ----- required by a bound in this function
...
45 |     E: MigrationError,
   |        ^^^^^^^^^^^^^^ required by this bound in `boxed`
";
        let expected = "\
error[E0277]: not a migration error
 --> tests/ui/fail/case.rs:5:36
  |
5 | async fn events() -> Result<(), X> {
  |                      ^^^^^^^^^^^^^ here
  |
  = note: something
note: required by a bound in `boxed`
 --> schema-core/src/private.rs
  |
  | pub fn boxed<F, E>(future: F)
  |        ----- required by a bound in this function
...
  |     E: MigrationError,
  |        ^^^^^^^^^^^^^^ required by this bound in `boxed`
";
        assert_eq!(normalize(rendered, "tests/ui/fail/"), expected);
    }

    #[test]
    fn a_message_within_the_case_file_is_kept_as_rendered() {
        let rendered = "\
error: migration `0001` cannot run after itself
  --> tests/ui/fail/arguments.rs:18:45
   |
18 |     #[migration(id = \"0001\", after = \"0001\")]
   |                                  ^^^^^^
";
        assert_eq!(normalize(rendered, "tests/ui/fail/"), rendered);
        let spanless = "error: something without a place\n";
        assert_eq!(normalize(spanless, "tests/ui/fail/"), spanless);
    }
}
