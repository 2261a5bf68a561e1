//! Output of the commands that go over many environments (`backup-all`, `verify`,
//! `prune`): each environment's row is printed when it is done, not collected first, so
//! that memory stays flat at 10,000 environments. In `--json` mode the rows form one
//! JSON array, printed element by element, the same text `print_json` gives for the
//! whole vector.

use std::io::Write;

use anyhow::Context;

/// Prints rows one at a time: a text line per row, or the elements of a JSON array.
#[derive(Debug)]
pub struct RowPrinter<W: Write = std::io::Stdout> {
    out: W,
    json: bool,
    rows: usize,
}

impl RowPrinter {
    /// A printer to stdout, for `--json` output when `json`, text otherwise.
    #[must_use]
    pub fn new(json: bool) -> Self {
        Self::to(std::io::stdout(), json)
    }
}

impl<W: Write> RowPrinter<W> {
    /// A printer to `out`.
    pub fn to(out: W, json: bool) -> Self {
        Self { out, json, rows: 0 }
    }

    /// Prints `row`: `text(row)` in text mode (nothing when it gives an empty string),
    /// the JSON element otherwise.
    ///
    /// # Errors
    /// The row can't be encoded, or stdout is closed.
    pub fn row<T: serde::Serialize>(
        &mut self,
        row: &T,
        text: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        let out = &mut self.out;
        if self.json {
            let element =
                serde_json::to_string_pretty(row).context("cannot encode the output as JSON")?;
            let open = if self.rows == 0 { "[\n" } else { ",\n" };
            write!(out, "{open}")?;
            for (i, line) in element.lines().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                write!(out, "  {line}")?;
            }
        } else {
            let line = text(row);
            if !line.is_empty() {
                writeln!(out, "{line}")?;
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// How many rows were printed.
    #[must_use]
    pub fn count(&self) -> usize {
        self.rows
    }

    /// Closes the JSON array (`[]` when there was no row); nothing in text mode.
    ///
    /// # Errors
    /// stdout is closed.
    pub fn finish(mut self) -> anyhow::Result<W> {
        if self.json {
            if self.rows == 0 {
                writeln!(self.out, "[]")?;
            } else {
                writeln!(self.out, "\n]")?;
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::RowPrinter;

    fn printed(rows: &[serde_json::Value], json: bool) -> String {
        let mut p = RowPrinter::to(Vec::new(), json);
        for row in rows {
            p.row(row, |r| r["env"].as_str().unwrap_or_default().to_string())
                .unwrap();
        }
        String::from_utf8(p.finish().unwrap()).unwrap()
    }

    /// The streamed array is exactly what `print_json` prints for the whole vector.
    #[test]
    fn streamed_json_is_the_pretty_array() {
        let rows = vec![
            serde_json::json!({"env": "a/prod", "result": "created", "nested": {"v": [1, 2]}}),
            serde_json::json!({"env": "b/prod", "result": "failed", "error": "two\nlines"}),
        ];
        let whole = serde_json::to_string_pretty(&rows).unwrap() + "\n";
        assert_eq!(printed(&rows, true), whole);
        assert_eq!(printed(&[], true), "[]\n");
    }

    #[test]
    fn text_mode_prints_one_line_per_row_and_skips_empty_ones() {
        let rows = vec![
            serde_json::json!({"env": "a/prod"}),
            serde_json::json!({"other": 1}),
            serde_json::json!({"env": "b/prod"}),
        ];
        assert_eq!(printed(&rows, false), "a/prod\nb/prod\n");
    }
}
