//! Output: data on stdout (a table, or JSON with `--json`), everything else
//! on stderr.
//!
//! Tables are drawn with borders and fitted to the width on a terminal, and
//! as plain space-separated columns otherwise (for `grep`, `awk`, logs).

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use crate::error::{CliError, CliResult};

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// `--json`.
    pub json: bool,
    /// stdout is a terminal.
    pub tty: bool,
}

impl Out {
    /// From the flags and the terminal.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            tty: std::io::stdout().is_terminal(),
        }
    }

    /// Print a JSON value (pretty, one document).
    pub fn json(&self, v: &Value) -> CliResult<()> {
        let text = serde_json::to_string_pretty(v)
            .map_err(|e| CliError::other(format!("cannot encode JSON: {e}")))?;
        write_stdout(&format!("{text}\n"))
    }

    /// A new table with `headers`, styled for where stdout goes.
    pub fn table(&self, headers: &[&str]) -> Table {
        let mut t = Table::new();
        if self.tty {
            t.load_preset(presets::UTF8_FULL_CONDENSED);
            // Fit the terminal's width; a terminal that reports none (or an
            // absurd one, as a pty without a size does: 0 columns) would
            // squeeze every column to one character, so then use $COLUMNS
            // or let the table be as wide as its cells.
            let sensible = |w: u16| w >= 40;
            let width = t.width().filter(|w| sensible(*w)).or_else(|| {
                std::env::var("COLUMNS")
                    .ok()?
                    .parse()
                    .ok()
                    .filter(|w| sensible(*w))
            });
            match width {
                Some(w) => {
                    t.set_width(w)
                        .set_content_arrangement(ContentArrangement::Dynamic);
                }
                None => {
                    t.set_content_arrangement(ContentArrangement::Disabled);
                }
            }
        } else {
            t.load_preset(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Disabled);
        }
        t.set_header(headers.iter().copied());
        t
    }

    /// Print a table.
    pub fn print_table(&self, t: &Table) -> CliResult<()> {
        let text = t.to_string();
        // NOTHING pads every cell: drop the blank before the first column
        // and the trailing blanks of each line.
        let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        if !self.tty && lines.iter().all(|l| l.is_empty() || l.starts_with(' ')) {
            lines = lines
                .iter()
                .map(|l| l.get(1..).unwrap_or_default())
                .collect();
        }
        write_stdout(&format!("{}\n", lines.join("\n")))
    }

    /// Print `v` as a two-column table (field, value), nested objects
    /// flattened to `a.b` names.
    pub fn print_fields(&self, v: &Value) -> CliResult<()> {
        let mut t = self.table(&["FIELD", "VALUE"]);
        for (k, val) in flatten(v) {
            t.add_row(vec![k, val]);
        }
        self.print_table(&t)
    }

    /// Print a section title before a further table (blank line first).
    pub fn section(&self, title: &str) -> CliResult<()> {
        write_stdout(&format!("\n{title}\n"))
    }
}

/// Write to stdout; a closed pipe (`| head`) ends the process quietly.
pub fn write_stdout(text: &str) -> CliResult<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::other(format!("cannot write to stdout: {e}"))),
    }
}

/// The value at a dotted path (`firmware.version`), Null if absent.
pub fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for part in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part).unwrap_or(&Value::Null),
            Value::Array(a) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    cur
}

/// A value as table text: strings bare, null as `-`, arrays of scalars
/// comma-separated, other structures as compact JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// The text at a dotted path.
pub fn cell(v: &Value, path: &str) -> String {
    text(at(v, path))
}

/// Flatten an object into `(dotted.name, text)` pairs, in key order.
pub fn flatten(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, val) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, val, out);
                }
            }
            other => out.push((prefix.to_owned(), text(other))),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_and_flattening() {
        let v = json!({"id": "a", "firmware": {"version": "1.0.0", "security_counter": 2},
                       "groups": ["x", "y"], "last_seen": null, "rollout": {"id": "r"}});
        assert_eq!(cell(&v, "firmware.version"), "1.0.0");
        assert_eq!(cell(&v, "groups"), "x, y");
        assert_eq!(cell(&v, "last_seen"), "-");
        assert_eq!(cell(&v, "missing.path"), "-");
        let f = flatten(&v);
        assert!(f.contains(&("firmware.security_counter".into(), "2".into())));
        assert!(f.contains(&("rollout.id".into(), "r".into())));
    }

    #[test]
    fn plain_tables_have_no_borders() {
        let out = Out {
            json: false,
            tty: false,
        };
        let mut t = out.table(&["A", "B"]);
        t.add_row(vec!["1", "2"]);
        let s = t.to_string();
        assert!(!s.contains('│') && !s.contains('|'), "{s}");
        assert!(s.contains('A') && s.contains('2'));
    }
}
