//! The engine command line: how an operator's `engine` string becomes a program and its
//! arguments, without a shell.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why an engine command line cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandLineError {
    /// Nothing but white space.
    #[error("the engine command line is empty")]
    Empty,
    /// A quote was opened and never closed.
    #[error("unterminated {quote} quote in the engine command line {line:?}")]
    UnterminatedQuote {
        /// `'` or `"`.
        quote: char,
        /// The command line as given.
        line: String,
    },
    /// The line ends with a lone backslash.
    #[error("the engine command line {0:?} ends with a lone backslash")]
    TrailingBackslash(String),
    /// A NUL byte, which no program argument can carry.
    #[error("the engine command line {0:?} contains a NUL byte")]
    Nul(String),
}

/// A parsed engine command line: the program and its arguments.
///
/// The format is the familiar subset of POSIX shell words, with no shell involved (no
/// variables, globs, pipes or redirections):
/// - words are separated by spaces, tabs or newlines;
/// - `'...'` quotes literally (a single quote cannot appear inside);
/// - `"..."` quotes with `\"` and `\\` as the only escapes;
/// - outside quotes, `\` makes the next character literal;
/// - quoted and unquoted parts join into one word (`--name="Red Dwarf"`), and `''` is an
///   empty argument.
///
/// The first word is the program: a path (anything with a `/`; a relative one is taken
/// from the server's working directory, not the engine's data directory it runs in) or a
/// name looked up in `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The program, as written.
    program: String,
    /// Its arguments, unquoted.
    args: Vec<String>,
}

impl CommandLine {
    /// Splits `line` into program and arguments.
    pub fn parse(line: &str) -> Result<Self, CommandLineError> {
        if line.contains('\0') {
            return Err(CommandLineError::Nul(line.to_owned()));
        }
        let mut words = split_words(line)?.into_iter();
        let program = words.next().ok_or(CommandLineError::Empty)?;
        Ok(Self {
            program,
            args: words.collect(),
        })
    }

    /// The program, as written.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The program's file: itself when it names a path (a relative path joined to `cwd`,
    /// the server's working directory, since the engine runs in another directory where
    /// the path as written would not resolve), else the first executable of that name in
    /// `path_var` (the value of `PATH`). `None` when it is nowhere.
    pub fn resolve_program(&self, path_var: Option<&str>, cwd: &Path) -> Option<PathBuf> {
        if self.program.contains('/') {
            // `join` keeps an absolute program as it is.
            return Some(cwd.join(&self.program));
        }
        path_var?
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(&self.program))
            .find(|candidate| candidate.is_file())
    }
}

impl fmt::Display for CommandLine {
    /// Shows the words separated by spaces, each quoted when it needs to be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = std::iter::once(&self.program).chain(&self.args);
        for (i, word) in words.enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
            if plain {
                f.write_str(word)?;
            } else {
                write!(f, "'{}'", word.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// The word splitter behind [`CommandLine::parse`].
fn split_words(line: &str) -> Result<Vec<String>, CommandLineError> {
    let mut words = Vec::new();
    // `None` between words; `Some` once a word has started (possibly empty, from `''`).
    let mut current: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => words.extend(current.take()),
            '\\' => {
                let next = chars
                    .next()
                    .ok_or_else(|| CommandLineError::TrailingBackslash(line.to_owned()))?;
                current.get_or_insert_with(String::new).push(next);
            }
            '\'' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(unterminated('\'', line)),
                    }
                }
            }
            '"' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(unterminated('"', line)),
                        },
                        Some(c) => word.push(c),
                        None => return Err(unterminated('"', line)),
                    }
                }
            }
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(current);
    Ok(words)
}

fn unterminated(quote: char, line: &str) -> CommandLineError {
    CommandLineError::UnterminatedQuote {
        quote,
        line: line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn words(line: &str) -> Vec<String> {
        let parsed = CommandLine::parse(line).unwrap();
        std::iter::once(parsed.program().to_owned())
            .chain(parsed.args().iter().cloned())
            .collect()
    }

    #[test]
    fn splits_on_white_space_and_honours_quotes_and_escapes() {
        assert_eq!(words("  /bin/engine   --x 1 "), ["/bin/engine", "--x", "1"]);
        assert_eq!(words("e 'a b' \"c d\""), ["e", "a b", "c d"]);
        assert_eq!(
            words(r#"e --name="Red Dwarf" it\'s"#),
            ["e", "--name=Red Dwarf", "it's"]
        );
        assert_eq!(words(r#"e "say \"hi\" \\ \n""#), ["e", r#"say "hi" \ \n"#]);
        assert_eq!(words("e '' x"), ["e", "", "x"]);
        assert_eq!(words(r"e a\ b"), ["e", "a b"]);
        assert_eq!(
            words("e 'no $HOME * expansion'"),
            ["e", "no $HOME * expansion"]
        );
    }

    #[test]
    fn rejects_what_cannot_be_a_command() {
        assert_eq!(CommandLine::parse(" \t"), Err(CommandLineError::Empty));
        assert!(matches!(
            CommandLine::parse("e 'open"),
            Err(CommandLineError::UnterminatedQuote { quote: '\'', .. })
        ));
        assert!(matches!(
            CommandLine::parse("e \"open"),
            Err(CommandLineError::UnterminatedQuote { quote: '"', .. })
        ));
        assert!(matches!(
            CommandLine::parse("e x\\"),
            Err(CommandLineError::TrailingBackslash(_))
        ));
        assert!(matches!(
            CommandLine::parse("e \0"),
            Err(CommandLineError::Nul(_))
        ));
    }

    #[test]
    fn display_round_trips_through_parse() {
        for line in ["/bin/e --x 1", "e 'a b' \"it's\" '' \\\\", "e 'x\"y' é"] {
            let parsed = CommandLine::parse(line).unwrap();
            assert_eq!(
                CommandLine::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{line}"
            );
        }
    }

    #[test]
    fn resolves_paths_from_the_working_directory_and_names_through_path() {
        let cwd = Path::new("/srv/galaxy");
        let path = CommandLine::parse("./target/engine").unwrap();
        assert_eq!(
            path.resolve_program(None, cwd),
            Some(PathBuf::from("/srv/galaxy/./target/engine"))
        );
        let up = CommandLine::parse("../bin/engine").unwrap();
        assert_eq!(
            up.resolve_program(Some("/bin"), cwd),
            Some(PathBuf::from("/srv/galaxy/../bin/engine"))
        );
        let absolute = CommandLine::parse("/opt/engine --x").unwrap();
        assert_eq!(
            absolute.resolve_program(None, cwd),
            Some(PathBuf::from("/opt/engine"))
        );
        let name = CommandLine::parse("sh -c true").unwrap();
        let found = name
            .resolve_program(Some("/nonexistent::/bin:/usr/bin"), cwd)
            .unwrap();
        assert!(found.ends_with("sh"), "{found:?}");
        assert!(found.is_absolute(), "{found:?}");
        assert_eq!(name.resolve_program(Some("/nonexistent"), cwd), None);
        assert_eq!(name.resolve_program(None, cwd), None);
    }
}
