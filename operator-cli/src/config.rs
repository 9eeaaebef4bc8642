//! The config file: named profiles, each a server URL and a token, and a
//! default profile.
//!
//! Where: `$NIGHTLATCH_CONFIG`, else `$XDG_CONFIG_HOME/nightlatch/config.toml`,
//! else `~/.config/nightlatch/config.toml`. It is written owner-only: a new
//! file is created with mode 0600 (never widened, then narrowed) and renamed
//! over the old one; a directory made for it is 0700.
//!
//! ```toml
//! default_profile = "prod"
//!
//! [profiles.prod]
//! server = "https://updates.example.com"
//! token = "nlt_…"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

/// Name of the profile used when none is given and the file names no default.
pub const DEFAULT_PROFILE: &str = "default";

/// A token. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a token.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token itself, for the `Authorization` header and the config file only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Server base URL.
    pub server: String,
    /// Admin token (absent after `logout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used without `--profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Where the config file is, from the environment.
pub fn config_path() -> CliResult<PathBuf> {
    if let Some(p) = std::env::var_os("NIGHTLATCH_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(x).join("nightlatch").join("config.toml"));
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)
            .join(".config")
            .join("nightlatch")
            .join("config.toml")),
        None => Err(CliError::other(
            "cannot find the config file: set NIGHTLATCH_CONFIG, XDG_CONFIG_HOME or HOME",
        )),
    }
}

/// Check a profile name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_profile_name(name: &str) -> CliResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CliError::usage(format!(
            "profile name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ -"
        )));
    }
    Ok(())
}

impl ConfigFile {
    /// Read `path`; an absent file is an empty config. Warns on stderr when
    /// the file can be read by others.
    pub fn load(path: &Path) -> CliResult<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(CliError::other(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                )));
            }
        };
        warn_if_readable_by_others(path);
        // toml's error text quotes the offending line, which may hold the
        // token: say where, not what.
        toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            CliError::other(format!(
                "the config file {} is not valid{at}: expected `default_profile = \"NAME\"` and \
                 [profiles.NAME] tables with `server` and `token`",
                path.display()
            ))
        })
    }

    /// Write to `path` atomically, owner-only (see the module doc).
    pub fn save(&self, path: &Path) -> CliResult<()> {
        let text = toml::to_string(self)
            .map_err(|e| CliError::other(format!("cannot encode the config: {e}")))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.exists()
        {
            create_private_dir(dir)
                .map_err(|e| CliError::other(format!("cannot create {}: {e}", dir.display())))?;
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.toml".into());
        let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = create_private_file(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            CliError::other(format!(
                "cannot write the config file {}: {e}",
                path.display()
            ))
        })
    }

    /// The name of the profile to use: `explicit`, else the file's default,
    /// else [`DEFAULT_PROFILE`].
    pub fn profile_name(&self, explicit: Option<&str>) -> String {
        explicit
            .map(str::to_owned)
            .or_else(|| self.default_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: {} holds tokens and is readable by others (mode {:o}); run `chmod 600` on it",
            path.display(),
            m.permissions().mode() & 0o777
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("nlt_0123".into());
        assert!(!format!("{s:?} {s}").contains("nlt_0123"));
        let p = Profile {
            server: "http://x".into(),
            token: Some(s),
        };
        assert!(!format!("{p:?}").contains("nlt_0123"));
    }

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let mut c = ConfigFile {
            default_profile: Some("prod".into()),
            ..ConfigFile::default()
        };
        c.profiles.insert(
            "prod".into(),
            Profile {
                server: "http://127.0.0.1:1".into(),
                token: Some(Secret::new("nlt_abc".into())),
            },
        );
        c.save(&path).unwrap();
        assert_eq!(ConfigFile::load(&path).unwrap(), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        assert_eq!(c.profile_name(None), "prod");
        assert_eq!(c.profile_name(Some("x")), "x");
    }

    #[test]
    fn bad_files_do_not_echo_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[profiles.a]\nserver = 1\ntoken = \"nlt_secret\" x\n",
        )
        .unwrap();
        let e = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(!e.contains("nlt_secret"), "{e}");
    }

    #[test]
    fn profile_names() {
        assert!(check_profile_name("prod-eu_1").is_ok());
        assert!(check_profile_name("").is_err());
        assert!(check_profile_name("a b").is_err());
    }
}
