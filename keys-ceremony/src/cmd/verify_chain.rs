//! `nightlatch-keys verify-chain 1.root.json … N.root.json`.

use std::path::PathBuf;

use clap::Args;
use nightlatch_repo::chain::verify_chain;
use nightlatch_repo::{Clock, Result, fsio};

/// Arguments of `verify-chain`.
#[derive(Debug, Clone, Args)]
pub struct VerifyChainArgs {
    /// Root files in version order; the first is the trusted root.
    #[arg(value_name = "ROOT", required = true)]
    pub roots: Vec<PathBuf>,
    /// Print the links as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `verify-chain`.
pub fn run(args: &VerifyChainArgs, clock: &dyn Clock) -> Result<()> {
    let links = verify_chain(&args.roots)?;
    if args.json {
        return fsio::print_json(&links);
    }
    let mut out = String::new();
    for l in &links {
        let by_prev = l
            .previous_valid
            .map(|(v, t)| format!(", {v}/{t} by the previous root's keys"))
            .unwrap_or_default();
        out.push_str(&format!(
            "OK {} root version {}: {}/{} by its own root keys{by_prev}\n",
            l.path.display(),
            l.version,
            l.own_valid.0,
            l.own_valid.1
        ));
    }
    if let Some(last) = links.last() {
        let warn = if clock.has_passed(last.expires) {
            " — EXPIRED: rotate to a new root"
        } else {
            ""
        };
        out.push_str(&format!(
            "chain of {} root(s) is valid; newest expires {}{warn}",
            links.len(),
            last.expires
        ));
    }
    fsio::print(&out)
}
