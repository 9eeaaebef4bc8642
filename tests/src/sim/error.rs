//! Errors of `nightlatch-sim`, each with a `help` saying what to do next.

use std::path::PathBuf;

use lock_app::tuf::TufError;
use miette::Diagnostic;
use thiserror::Error;

/// Everything `nightlatch-sim` can fail with.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum SimError {
    /// The TUF client refused the repository.
    #[error("the TUF client refused the repository: {0}")]
    #[diagnostic(
        code(nightlatch_sim::tuf),
        help(
            "the repository (or the connection to it) is not trustworthy: check that it was published and refreshed with the right keys, and that the trusted root in --metadata-dir is the one it chains from"
        )
    )]
    Tuf(#[from] TufError),

    /// No trusted root in the metadata directory.
    #[error("no trusted root in {}", dir.display())]
    #[diagnostic(
        code(nightlatch_sim::no_root),
        help("run `nightlatch-sim tuf-client --metadata-dir DIR init ROOT.json` first")
    )]
    NoTrustedRoot { dir: PathBuf },

    /// The target is not listed by any role trusted for it.
    #[error("target {name:?} is not in the repository (no trusted role lists it)")]
    #[diagnostic(
        code(nightlatch_sim::target_not_found),
        help(
            "check the name (e.g. `nl-lock-v2/1.4.2.nlfw`) and that the repository was refreshed after publishing"
        )
    )]
    TargetNotFound { name: String },

    /// A required option is missing for the action.
    #[error("{action} needs --{option}")]
    #[diagnostic(
        code(nightlatch_sim::usage),
        help("see `nightlatch-sim tuf-client --help`")
    )]
    MissingOption {
        action: &'static str,
        option: &'static str,
    },

    /// A URL this tool cannot fetch from.
    #[error("unsupported URL {url:?}")]
    #[diagnostic(
        code(nightlatch_sim::url),
        help("use file:///absolute/dir/ or http://host:port/path/ (https is not built in)")
    )]
    Url { url: String },

    /// The time given with --now or --start.
    #[error("cannot read time {text:?}")]
    #[diagnostic(
        code(nightlatch_sim::time),
        help("give {option} as YYYY-MM-DDTHH:MM:SSZ or as Unix seconds")
    )]
    Time {
        /// The option (`--now`, `--start`).
        option: &'static str,
        /// What was given.
        text: String,
    },

    /// A local file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    #[diagnostic(
        code(nightlatch_sim::io),
        help("check the path exists and is readable/writable")
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// The lock's update agent refused or failed.
    #[error("the lock's update agent: {0}")]
    #[diagnostic(
        code(nightlatch_sim::agent),
        help(
            "refusals name the check that failed (signature, rollback, replay, disagreement); network errors are retried at the next check-in"
        )
    )]
    Agent(lock_app::agent::AgentError),

    /// Setting up or driving the simulated lock failed.
    #[error("{message}")]
    #[diagnostic(code(nightlatch_sim::lock), help("see `nightlatch-sim lock --help`"))]
    Lock { message: String },

    /// An HTTP call to the server failed.
    #[error("{what}: {detail}")]
    #[diagnostic(
        code(nightlatch_sim::http),
        help("is the server running at --server, and is the token right?")
    )]
    Http { what: String, detail: String },
}

impl From<lock_app::agent::AgentError> for SimError {
    fn from(e: lock_app::agent::AgentError) -> Self {
        Self::Agent(e)
    }
}
