//! `nightlatch-keys status`: who has signed a root file and whether each
//! threshold is met.

use std::path::{Path, PathBuf};

use clap::Args;
use nightlatch_repo::metadata::Tally;
use nightlatch_repo::status::{RootStatus, load_with_previous, root_status};
use nightlatch_repo::{Clock, Result, fsio};

/// Arguments of `status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The previous root, for a rotated root (default: N-1.root.json beside FILE).
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// The root file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

fn tally_line(label: &str, t: &Tally) -> String {
    let mut line = format!(
        "{label}: {} valid, {} required{}",
        t.valid.len(),
        t.threshold,
        if t.met() { " (met)" } else { " (NOT met)" }
    );
    for k in &t.valid {
        line.push_str(&format!("\n    signed   {k}"));
    }
    for k in &t.invalid {
        line.push_str(&format!("\n    INVALID  {k}"));
    }
    line
}

/// Print a status as text or JSON.
pub fn print_status(file: &Path, s: &RootStatus, json: bool) -> Result<()> {
    if json {
        return fsio::print_json(s);
    }
    let mut out = format!(
        "{}: root version {}, expires {}{}",
        file.display(),
        s.version,
        s.expires,
        if s.expired { " (EXPIRED)" } else { "" }
    );
    for r in &s.roles {
        out.push_str(&format!(
            "\n  {:<9} threshold {} of {}",
            r.role,
            r.threshold,
            r.keys.len()
        ));
        for k in &r.keys {
            out.push_str(&format!("\n    key {k}"));
        }
    }
    out.push_str(&format!(
        "\n{}",
        tally_line(&format!("signatures by root {} keys", s.version), &s.own)
    ));
    if let Some(p) = &s.previous {
        out.push_str(&format!(
            "\n{}",
            tally_line(&format!("signatures by root {} keys", p.version), &p.tally)
        ));
    }
    for k in &s.strangers {
        out.push_str(&format!(
            "\n  signature by a key outside the root role: {k}"
        ));
    }
    if s.previous_unknown {
        out.push_str(&format!(
            "\nprevious root unknown: pass --previous {}.root.json to count the signatures root version {} needs from it",
            s.version.saturating_sub(1),
            s.version
        ));
    }
    out.push_str(if s.complete {
        "\ncomplete: every threshold is met"
    } else if s.previous_unknown && s.own.met() {
        "\nincomplete: its own threshold is met, the previous root's is unknown"
    } else {
        "\nincomplete: more signatures are needed"
    });
    fsio::print(&out)
}

/// Run `status`.
pub fn run(args: &StatusArgs, clock: &dyn Clock) -> Result<()> {
    let (root, prev) = load_with_previous(&args.file, args.previous.as_deref())?;
    let status = root_status(&root, prev.as_ref().map(|(_, p)| p), clock)?;
    print_status(&args.file, &status, args.json)
}
