//! Two-stage TOML parsing with located errors (style rule 1): the document is
//! parsed into a spanned table, sub-tables whose type depends on a value (engine
//! `[params]`, `[sinks.<id>]`) are taken out, and each part is deserialized into a
//! `deny_unknown_fields` type. Every error names `path:line:column` and the key.

use std::fmt;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// An error located in a file: `path:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file (or `builtin:plugins/x.toml`).
    pub path: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for Located {}

impl Located {
    /// An error at a byte span of `source` (or with no position).
    pub fn at(
        path: &str,
        source: &str,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
    ) -> Located {
        let (line, column) = match span {
            Some(span) => line_col(source, span.start),
            None => (0, 0),
        };
        Located {
            path: path.to_owned(),
            line,
            column,
            message: one_line(&message.into()),
        }
    }

    fn from_toml(path: &str, source: &str, e: &toml::de::Error) -> Located {
        Located::at(path, source, e.span(), e.message())
    }
}

fn one_line(s: &str) -> String {
    s.trim().replace('\n', " ")
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Parses a whole document.
pub fn parse<'a>(path: &str, source: &'a str) -> Result<Spanned<DeTable<'a>>, Located> {
    DeTable::parse(source).map_err(|e| Located::from_toml(path, source, &e))
}

/// Removes `key` from a table and returns its value.
pub fn take<'a>(table: &mut Spanned<DeTable<'a>>, key: &str) -> Option<Spanned<DeValue<'a>>> {
    let found = table
        .get_ref()
        .keys()
        .find(|k| k.get_ref().as_ref() == key)
        .cloned()?;
    table.get_mut().remove(&found)
}

/// An empty table (for an absent optional section).
pub fn empty_table<'a>() -> Spanned<DeTable<'a>> {
    Spanned::new(0..0, DeTable::new())
}

/// Turns a value that must be a table into one.
pub fn as_table<'a>(
    path: &str,
    source: &str,
    key: &str,
    value: Spanned<DeValue<'a>>,
) -> Result<Spanned<DeTable<'a>>, Located> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => Ok(Spanned::new(span, t)),
        _ => Err(Located::at(
            path,
            source,
            Some(span),
            format!("`{key}` must be a table"),
        )),
    }
}

/// Deserializes a (part of a) document into `T`.
pub fn deserialize<T: DeserializeOwned>(
    path: &str,
    source: &str,
    table: Spanned<DeTable<'_>>,
) -> Result<T, Located> {
    T::deserialize(toml::de::Deserializer::from(table))
        .map_err(|e| Located::from_toml(path, source, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        zone: String,
    }

    #[test]
    fn two_stage_locates_unknown_key() {
        let src = "id = \"x\"\n[params]\nzone = \"z\"\nzoen = \"typo\"\n";
        let mut doc = parse("m.toml", src).expect("parses");
        let params = take(&mut doc, "params").expect("has params");
        let table = as_table("m.toml", src, "params", params).expect("table");
        let err = deserialize::<Params>("m.toml", src, table).expect_err("typo rejected");
        assert_eq!((err.line, err.column), (4, 1), "{err}");
        assert!(err.message.contains("zoen"), "{err}");
        assert!(err.to_string().starts_with("m.toml:4:1: "), "{err}");
    }
}
