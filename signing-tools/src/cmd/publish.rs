//! `nightlatch-sign publish`: add envelopes (and delta patches) to a TUF
//! repository, signed by the release key(s) — a directory (`--repo`) or a
//! running `nightlatch-server` (`--server`, see [`nightlatch_repo::repo::remote`]).

use std::path::PathBuf;

use clap::Args;
use nightlatch_repo::keys::open_key_sources;
use nightlatch_repo::keysource::KeySpec;
use nightlatch_repo::repo::Expiries;
use nightlatch_repo::repo::expiries::lifetime;
use nightlatch_repo::repo::publish::publish;
use nightlatch_repo::repo::remote::{Http, publish_remote};
use nightlatch_repo::{Clock, Error, Result, fsio};

/// Arguments of `publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The repository directory (made by `repo init`).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "server",
        conflicts_with = "server"
    )]
    pub repo: Option<PathBuf>,
    /// A nightlatch-server to publish to, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Admin token with the release role (for --server).
    #[arg(
        long,
        env = "NIGHTLATCH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Release key: a .key file (plain or passphrase-encrypted: the passphrase comes from
    /// $NIGHTLATCH_KEY_PASSPHRASE or is asked at the terminal) or a pkcs11: URI. Repeatable.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<KeySpec>,
    /// With --server: a root the release engineer trusts (from the key
    /// ceremony, e.g. image/1.root.json). The server's root of that version
    /// must be this one, and the chain from it is verified before signing.
    /// Without it the server's root chain is trusted on first use.
    #[arg(
        long,
        value_name = "ROOT.json",
        env = "NIGHTLATCH_TRUSTED_ROOT",
        requires = "server"
    )]
    pub trusted_root: Option<PathBuf>,
    /// Lifetime of the targets metadata written.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub targets_expires: String,
    /// Envelopes and patches to publish. None: re-sign top-level targets (fresh expiry, new keys).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `publish`.
pub fn run(args: &PublishArgs, clock: &dyn Clock) -> Result<()> {
    let expiries = Expiries {
        targets: lifetime(&args.targets_expires, "targets-expires")?,
        ..Expiries::default()
    };
    let keys = open_key_sources(&args.keys)?;
    if let Some(server) = &args.server {
        let token = args.token.as_deref().ok_or_else(|| Error::RepoState {
            path: PathBuf::from(server),
            reason: "no admin token".into(),
            help: "pass --token TOKEN or set NIGHTLATCH_TOKEN (a token with the release role)"
                .into(),
        })?;
        if args.trusted_root.is_none() {
            eprintln!(
                "warning: no --trusted-root: the root chain {server} serves is trusted as it is; pass the key ceremony's root to check it"
            );
        }
        let report = publish_remote(
            &Http::new(server, token),
            server,
            &keys,
            &args.files,
            &expiries,
            args.trusted_root.as_deref(),
            clock,
        )?;
        if args.json {
            return fsio::print_json(&report);
        }
        let mut out = String::new();
        for t in &report.added {
            out.push_str(&format!("added      {t}\n"));
        }
        for t in &report.unchanged {
            out.push_str(&format!("unchanged  {t} (already published)\n"));
        }
        for m in &report.uploaded_metadata {
            out.push_str(&format!("uploaded   {m}\n"));
        }
        out.push_str(&format!(
            "{server} accepted the upload and re-signed snapshot and timestamp"
        ));
        return fsio::print(&out);
    }
    let Some(repo) = &args.repo else {
        return Err(Error::RepoState {
            path: PathBuf::from("."),
            reason: "no repository".into(),
            help: "pass --repo DIR or --server URL".into(),
        });
    };
    let report = publish(repo, &keys, &args.files, &expiries, clock)?;
    if args.json {
        return fsio::print_json(&report);
    }
    let mut out = String::new();
    for t in &report.added {
        out.push_str(&format!("added      {t}\n"));
    }
    for t in &report.unchanged {
        out.push_str(&format!("unchanged  {t} (already published)\n"));
    }
    for t in &report.signed_targets {
        out.push_str(&format!("signed     {t}\n"));
    }
    for m in &report.metadata {
        out.push_str(&format!("wrote      {m}\n"));
    }
    out.push_str("clients see this after `nightlatch-sign repo refresh` (snapshot and timestamp)");
    fsio::print(&out)
}
