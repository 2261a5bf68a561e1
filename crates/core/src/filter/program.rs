//! One jq program, compiled once with jaq and run on one value at a time; it must yield
//! exactly one value.

use std::fmt;
use std::sync::OnceLock;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;

use crate::error::{Error, Result};

type Data = data::JustLut<Val>;

/// How much of a program a message quotes.
const QUOTE_LEN: usize = 60;

/// A compiled jq program and where it came from.
pub struct Program {
    origin: String,
    code: String,
    /// Compiled at once, or at the first run for a program known to compile
    /// ([`Program::lazy_path`]): loading jaq's standard library takes about a
    /// millisecond and a half, a cost a path-only read filter usually never needs.
    filter: OnceLock<std::result::Result<jaq_core::Filter<Data>, String>>,
    vars: &'static [&'static str],
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("origin", &self.origin)
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

impl Program {
    /// Compiles `code`; `origin` names it in messages (a config key, or a file and its
    /// key); `vars` are the global variables it may use (`$live`).
    ///
    /// # Errors
    /// `Config` naming the origin, the line and column and what was expected.
    pub fn compile(origin: &str, code: &str, vars: &'static [&'static str]) -> Result<Self> {
        let filter = compile(code, vars).map_err(|e| Error::config(describe(origin, code, e)))?;
        Ok(Self {
            origin: origin.to_string(),
            code: code.to_string(),
            filter: OnceLock::from(Ok(filter)),
            vars,
        })
    }

    /// A program compiled by jaq only if it ever runs on jaq's values: a read filter
    /// that is a path (`.data`), or the ignore paths when each is plain, which the fast
    /// paths serve without jaq. [`Program::force`] compiles it (`config check`).
    #[must_use]
    pub fn lazy(origin: &str, code: &str) -> Self {
        Self {
            origin: origin.to_string(),
            code: code.to_string(),
            filter: OnceLock::new(),
            vars: &[],
        }
    }

    /// Compiles the program now if it was not yet.
    ///
    /// # Errors
    /// As [`Program::compile`].
    pub fn force(&self) -> Result<()> {
        self.filter().map(|_| ())
    }

    fn filter(&self) -> Result<&jaq_core::Filter<Data>> {
        self.filter
            .get_or_init(|| {
                compile(&self.code, self.vars).map_err(|e| describe(&self.origin, &self.code, e))
            })
            .as_ref()
            .map_err(|e| Error::config(e.clone()))
    }

    /// Where the program came from (a config key, or a file and its key).
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The program's text.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Runs the program on `input` with the global variables `vars` (in the order they
    /// were compiled with); it must yield exactly one value.
    ///
    /// # Errors
    /// `Config` naming the filter when it fails, yields nothing or yields more than one
    /// value.
    pub fn run(&self, input: Val, vars: Vec<Val>) -> Result<Val> {
        debug_assert_eq!(vars.len(), self.vars.len());
        let filter = self.filter()?;
        let ctx = Ctx::<Data>::new(&filter.lut, Vars::new(vars));
        let mut out = filter.id.run((ctx, input)).map(unwrap_valr);
        let first = out.next();
        let second = out.next();
        match (first, second) {
            (Some(Ok(v)), None) => Ok(v),
            (Some(Err(e)), _) | (Some(Ok(_)), Some(Err(e))) => {
                Err(self.error(&format!("fails: {}", truncate(&e.to_string(), 200))))
            }
            (None, _) => Err(self.error("yields no value; it must yield exactly one")),
            (Some(Ok(_)), Some(Ok(_))) => Err(self.error(
                "yields more than one value; it must yield exactly one (wrap it in [...] \
                 to collect them in an array)",
            )),
        }
    }

    fn error(&self, what: &str) -> Error {
        Error::config(format!(
            "the jq filter {} (`{}`) {what}",
            self.origin,
            truncate(self.code.trim(), QUOTE_LEN)
        ))
    }
}

/// The message for a program that does not compile: where, and what was expected.
fn describe(origin: &str, code: &str, (offset, what): (usize, String)) -> String {
    let (line, column) = line_column(code, offset);
    format!(
        "{origin}: jq error at line {line}, column {column}: {what}{}",
        near(code, offset)
    )
}

/// Compiles `code`, or gives the byte offset of the first problem and its description.
fn compile(
    code: &str,
    vars: &[&'static str],
) -> std::result::Result<jaq_core::Filter<Data>, (usize, String)> {
    use jaq_core::load::Error as LoadError;

    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let at = |part: &str| offset_in(code, part);
    let modules = Loader::new(defs)
        .load(&arena, File { code, path: () })
        .map_err(|errs| {
            let Some((_, e)) = errs.into_iter().next() else {
                return (0, "cannot load the program".to_string());
            };
            match e {
                LoadError::Io(v) => match v.into_iter().next() {
                    Some((part, msg)) => (at(part), msg),
                    None => (0, "cannot load the program".into()),
                },
                LoadError::Lex(v) => match v.into_iter().next() {
                    Some((expect, part)) => (at(part), format!("expected {}", lex_expect(&expect))),
                    None => (0, "cannot read the program".into()),
                },
                LoadError::Parse(v) => match v.into_iter().next() {
                    Some((expect, part)) => {
                        let found = if part.is_empty() {
                            "the end of the program".to_string()
                        } else {
                            format!("`{}`", truncate(part, 20))
                        };
                        (
                            at(part),
                            format!("expected {}, found {found}", expect.as_str()),
                        )
                    }
                    None => (0, "cannot parse the program".into()),
                },
            }
        })?;
    Compiler::default()
        .with_funs(funs)
        .with_global_vars(vars.iter().copied())
        .compile(modules)
        .map_err(|errs| {
            let first = errs.into_iter().flat_map(|(_, e)| e).next();
            match first {
                Some((part, undefined)) => (
                    at(part),
                    format!("undefined {} `{part}`", undefined.as_str()),
                ),
                None => (0, "cannot compile the program".into()),
            }
        })
}

fn lex_expect(e: &jaq_core::load::lex::Expect<&str>) -> &'static str {
    use jaq_core::load::lex::Expect;
    match e {
        Expect::Delim("(") => "a closing parenthesis",
        Expect::Delim("[") => "a closing bracket",
        Expect::Delim("{") => "a closing brace",
        Expect::Delim("\"") => "a closing quote",
        Expect::Delim(_) => "a closing delimiter",
        Expect::Digit => "a digit",
        Expect::Ident => "an identifier",
        Expect::Escape => "a string escape sequence",
        Expect::Unicode => "a 4-digit hexadecimal code point",
        _ => "a token",
    }
}

/// Where `part`, a slice of `code`, starts in it (0 if it is not a slice of it).
fn offset_in(code: &str, part: &str) -> usize {
    let (start, at) = (code.as_ptr() as usize, part.as_ptr() as usize);
    if (start..=start + code.len()).contains(&at) {
        at - start
    } else {
        0
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(code: &str, offset: usize) -> (usize, usize) {
    let before = &code[..offset.min(code.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The rest of the line at `offset`, quoted, for context.
fn near(code: &str, offset: usize) -> String {
    let rest = &code[offset.min(code.len())..];
    let rest = rest.lines().next().unwrap_or("").trim();
    if rest.is_empty() {
        String::new()
    } else {
        format!(" (near `{}`)", truncate(rest, 20))
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}
