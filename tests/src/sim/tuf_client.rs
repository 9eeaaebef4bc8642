//! `nightlatch-sim tuf-client`: the lock's TUF client (`lock_app::tuf`)
//! alone, over a metadata directory and `file://` or `http://` URLs, for
//! interop checks with other TUF implementations.
//!
//! ```text
//! nightlatch-sim tuf-client --metadata-dir DIR init ROOT.json
//! nightlatch-sim tuf-client --metadata-dir DIR --metadata-url URL refresh
//! nightlatch-sim tuf-client --metadata-dir DIR --metadata-url URL \
//!     --target-name NAME --target-base-url URL --target-dir DIR download
//! ```
//!
//! Exit code 0 only on success.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use lock_app::tuf::{Limits, MetadataStore, Updater, bootstrap, parse_utc};
use serde_json::json;

use super::dir_store::DirStore;
use super::error::SimError;
use super::transport::UrlTransport;

/// Options of `tuf-client` (accepted before or after the action).
#[derive(Debug, Args)]
pub struct TufClientArgs {
    /// Directory holding the client's trusted metadata (`root.json`, …).
    #[arg(long, global = true, value_name = "DIR")]
    metadata_dir: Option<PathBuf>,
    /// Base URL of the repository's metadata (`file:///…/metadata/` or `http://…`).
    #[arg(long, global = true, value_name = "URL")]
    metadata_url: Option<String>,
    /// Target to download, e.g. `nl-lock-v2/1.4.2.nlfw`.
    #[arg(long, global = true, value_name = "NAME")]
    target_name: Option<String>,
    /// Base URL of the repository's targets.
    #[arg(long, global = true, value_name = "URL")]
    target_base_url: Option<String>,
    /// Where the verified target is written (as `DIR/NAME`).
    #[arg(long, global = true, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Trusted time floor for expiry checks (`YYYY-MM-DDTHH:MM:SSZ` or Unix
    /// seconds); default: this machine's clock.
    #[arg(long, global = true, value_name = "TIME")]
    now: Option<String>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Trust ROOT.json (it must be signed by its own root threshold).
    Init {
        /// The root to trust from now on.
        root: PathBuf,
    },
    /// Update root chain, timestamp, snapshot and top-level targets.
    Refresh,
    /// Refresh, find --target-name through the delegations, download it
    /// from --target-base-url, verify length and hashes, write it.
    Download,
}

impl TufClientArgs {
    /// Run the action.
    pub fn run(self) -> Result<(), SimError> {
        let dir = self.required(&self.metadata_dir, "metadata-dir")?.clone();
        let now = self.now()?;
        match &self.action {
            Action::Init { root } => self.init(&dir, root, now),
            Action::Refresh => {
                let updater = self.refreshed(&dir, now)?;
                self.report(&updater, None);
                Ok(())
            }
            Action::Download => self.download(&dir, now),
        }
    }

    fn action_name(&self) -> &'static str {
        match self.action {
            Action::Init { .. } => "init",
            Action::Refresh => "refresh",
            Action::Download => "download",
        }
    }

    fn required<'a, T>(
        &self,
        value: &'a Option<T>,
        option: &'static str,
    ) -> Result<&'a T, SimError> {
        value.as_ref().ok_or(SimError::MissingOption {
            action: self.action_name(),
            option,
        })
    }

    fn now(&self) -> Result<u64, SimError> {
        match &self.now {
            None => Ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .or_else(|| parse_utc(text))
                .ok_or_else(|| SimError::Time {
                    option: "--now",
                    text: text.clone(),
                }),
        }
    }

    fn init(&self, dir: &Path, root: &Path, now: u64) -> Result<(), SimError> {
        let bytes = fs::read(root).map_err(|source| SimError::Io {
            what: "cannot read root",
            path: root.to_owned(),
            source,
        })?;
        let mut store = DirStore::new(dir);
        bootstrap(&mut store, &bytes, now)?;
        let version = lock_app::tuf::TrustedSet::new(&bytes, now)?
            .root()
            .header
            .version;
        if self.json {
            println!("{}", json!({"root_version": version, "metadata_dir": dir}));
        } else {
            println!(
                "trusting root version {version} in {}",
                store.path("root").display()
            );
        }
        Ok(())
    }

    fn refreshed(&self, dir: &Path, now: u64) -> Result<Updater<UrlTransport, DirStore>, SimError> {
        let url = self.required(&self.metadata_url, "metadata-url")?;
        let transport = UrlTransport::parse(url)?;
        let store = DirStore::new(dir);
        if store.load("root").is_none() {
            return Err(SimError::NoTrustedRoot {
                dir: dir.to_owned(),
            });
        }
        let mut updater = Updater::new(transport, store, Limits::default(), now)?;
        updater.refresh()?;
        Ok(updater)
    }

    fn download(&self, dir: &Path, now: u64) -> Result<(), SimError> {
        let name = self.required(&self.target_name, "target-name")?;
        let base = self.required(&self.target_base_url, "target-base-url")?;
        let out_dir = self.required(&self.target_dir, "target-dir")?;
        let mut targets = UrlTransport::parse(base)?;
        let mut updater = self.refreshed(dir, now)?;
        let info = updater
            .target_info(name)?
            .ok_or_else(|| SimError::TargetNotFound { name: name.clone() })?;
        let bytes = updater.download_target(&mut targets, &info)?;
        // The name passed `check_target_name`: relative, no `..`.
        let out = out_dir.join(name);
        let io = |source| SimError::Io {
            what: "cannot write target",
            path: out.clone(),
            source,
        };
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = out.with_extension("partial");
        fs::write(&tmp, &bytes).map_err(io)?;
        fs::rename(&tmp, &out).map_err(io)?;
        self.report(&updater, Some((&info, &out)));
        Ok(())
    }

    fn report(
        &self,
        updater: &Updater<UrlTransport, DirStore>,
        target: Option<(&lock_app::tuf::TargetInfo, &Path)>,
    ) {
        let t = updater.trusted();
        let v = |h: Option<u64>| h.unwrap_or(0);
        let versions = json!({
            "root_version": t.root().header.version,
            "timestamp_version": v(t.timestamp().map(|x| x.header.version)),
            "snapshot_version": v(t.snapshot().map(|x| x.header.version)),
            "targets_version": v(t.targets("targets").map(|x| x.header.version)),
        });
        if self.json {
            let mut out = versions;
            if let Some((info, path)) = target {
                out["target"] = json!({
                    "name": info.name(), "role": info.role(), "length": info.length(),
                    "sha256": info.hashes().get("sha256").map(lock_app::tuf::hex_encode),
                    "custom": info.custom(), "path": path,
                });
            }
            println!("{out}");
            return;
        }
        println!(
            "root v{}, timestamp v{}, snapshot v{}, targets v{}",
            versions["root_version"],
            versions["timestamp_version"],
            versions["snapshot_version"],
            versions["targets_version"]
        );
        if let Some((info, path)) = target {
            println!(
                "verified {} ({} bytes, listed by {}) -> {}",
                info.name(),
                info.length(),
                info.role(),
                path.display()
            );
        }
    }
}
