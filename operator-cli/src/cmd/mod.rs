//! One module per noun; each turns a subcommand into admin API calls and
//! prints the answer.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::client::{Client, Query};
use crate::error::{CliError, CliResult};

pub mod audit;
pub mod auth;
pub mod device;
pub mod fleet;
pub mod release;
pub mod rollout;
pub mod site;
pub mod token;
pub mod webhook;

/// Add `key=value` to a query when there is a value.
pub fn opt(q: &mut Query, key: &'static str, value: Option<impl ToString>) {
    if let Some(v) = value {
        q.push((key, v.to_string()));
    }
}

/// The text of `path`, or of stdin for `-`.
pub fn read_input(path: &Path) -> CliResult<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::other(format!("cannot read stdin: {e}")))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?;
    }
    Ok(text)
}

/// Follow `next_after` pages of `path` from `first` (the answer to the
/// first request, made with `query`), gathering the arrays under `key`.
/// Stops at an empty page or a null / repeated `next_after`. Returns the
/// first answer with `key` holding every item and `next_after` null.
pub fn all_pages(
    client: &Client,
    path: &str,
    query: &Query,
    key: &str,
    mut first: Value,
) -> CliResult<Value> {
    let mut items: Vec<Value> = first[key].as_array().cloned().unwrap_or_default();
    let mut next = first["next_after"].as_str().map(str::to_owned);
    let mut page = first[key].as_array().map_or(0, Vec::len);
    while let Some(after) = next.take() {
        if page == 0 {
            break;
        }
        let mut q: Query = query
            .iter()
            .filter(|(k, _)| *k != "after")
            .cloned()
            .collect();
        q.push(("after", after.clone()));
        let v = client.get(path, &q)?;
        let got = v[key].as_array().cloned().unwrap_or_default();
        page = got.len();
        items.extend(got);
        next = v["next_after"]
            .as_str()
            .filter(|n| *n != after)
            .map(str::to_owned);
    }
    first[key] = Value::Array(items);
    first["next_after"] = Value::Null;
    Ok(first)
}
