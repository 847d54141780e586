//! Where in the source a migration is declared. On the ground floor
//! because errors name it (two migrations with one id).

use std::fmt;

/// The source location of a `#[migration]` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    file: &'static str,
    line: u32,
    module_path: &'static str,
}

impl Location {
    #[doc(hidden)]
    pub const fn __new(file: &'static str, line: u32, module_path: &'static str) -> Self {
        Location {
            file,
            line,
            module_path,
        }
    }

    /// The source file, as `file!()` gives it.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the function's name.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The module the function is declared in, as `module_path!()` gives it.
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (in `{}`)", self.file, self.line, self.module_path)
    }
}
