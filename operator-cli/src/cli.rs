//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// nightlatch: operate a Nightlatch update server from the command line
/// (a client of its admin API).
///
/// Data goes to stdout (a table, or JSON with --json); progress, warnings
/// and errors to stderr. Exit codes: 0 ok, 1 failure, 2 usage, 3 not
/// logged in / token revoked or expired / role too low, 4 not found.
#[derive(Debug, Parser)]
#[command(name = "nightlatch", version)]
pub struct Cli {
    /// Print JSON (the API's own shapes) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Use this profile of the config file (overrides NIGHTLATCH_SERVER and
    /// NIGHTLATCH_TOKEN).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Answer yes to confirmations (needed for destructive verbs when not on
    /// a terminal).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Print each HTTP request and its status on stderr (never the token).
    #[arg(long, global = true)]
    pub debug: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save a server and token in a profile (the token is read from stdin,
    /// or asked for without echo on a terminal) after checking it with the
    /// server.
    Login(LoginArgs),
    /// Remove the profile's token from the config file (the token stays
    /// valid on the server: `token revoke` ends it).
    Logout,
    /// Show who the token is (name, role) on which server.
    Whoami,
    /// Published firmware releases.
    #[command(subcommand)]
    Release(ReleaseCmd),
    /// Staged rollouts.
    #[command(subcommand)]
    Rollout(RolloutCmd),
    /// Locks.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Sites' install policies (quiet hours, blackout dates, time zone).
    #[command(subcommand)]
    Site(SiteCmd),
    /// Fleet queries.
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// The audit log (security-admin).
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Admin tokens (security-admin).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Webhook subscriptions: signed event notifications to your own
    /// endpoints (changes need security-admin).
    #[command(subcommand)]
    Webhook(WebhookCmd),
}

/// `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server base URL, e.g. https://updates.example.com (default: the
    /// profile's server).
    #[arg(long)]
    pub server: Option<String>,
    /// Make this profile the default one.
    #[arg(long)]
    pub set_default: bool,
}

/// `release`.
#[derive(Debug, Subcommand)]
pub enum ReleaseCmd {
    /// List published releases.
    List {
        /// Only this hardware model.
        #[arg(long)]
        model: Option<String>,
    },
    /// One release and its patches, by target name (`model/version.nlfw`).
    Show {
        /// Target name.
        name: String,
    },
}

/// `rollout`.
#[derive(Debug, Subcommand)]
pub enum RolloutCmd {
    /// Create a rollout (a draft unless --start).
    Create(RolloutSpecArgs),
    /// Preview a rollout without creating it: eligible locks per wave, the
    /// nights they are expected to install, door openings at risk.
    Preview(RolloutSpecArgs),
    /// List rollouts, newest first.
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A rollout's state and progress per wave.
    Show(ShowArgs),
    /// The locks of a rollout with their status there.
    Devices {
        /// Rollout id.
        id: String,
        /// Only these statuses (assigned, installed, confirmed, rolled_back, failed).
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Start after this lock id.
        #[arg(long)]
        after: Option<String>,
        /// Follow every page.
        #[arg(long)]
        all: bool,
    },
    /// Start a draft rollout.
    Start(TransitionArgs),
    /// Pause: no new assignments; locks that have not installed hold.
    Pause(TransitionArgs),
    /// Resume a paused rollout.
    Resume(TransitionArgs),
    /// Abort for good (asks for confirmation; --yes off a terminal).
    Abort {
        /// Rollout id.
        id: String,
        /// Why (goes to the audit log).
        #[arg(long)]
        reason: String,
    },
}

/// `rollout show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Rollout id.
    pub id: String,
    /// Keep showing progress until the rollout stops running (paused,
    /// aborted, or every wave complete).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub interval: f64,
}

/// `rollout start|pause|resume`.
#[derive(Debug, Args)]
pub struct TransitionArgs {
    /// Rollout id.
    pub id: String,
    /// Why (goes to the audit log).
    #[arg(long)]
    pub reason: Option<String>,
}

/// The body of `rollout create` and `rollout preview`.
#[derive(Debug, Args)]
pub struct RolloutSpecArgs {
    /// The whole request body as a JSON file (`-`: stdin) instead of flags.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "target", "from_versions", "groups", "waves", "failure_rate", "min_sample", "start_at", "deadline", "start"])]
    pub file: Option<PathBuf>,
    /// Name.
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// Published firmware target, e.g. nl-lock-v2/2.0.0.nlfw.
    #[arg(long, required_unless_present = "file")]
    pub target: Option<String>,
    /// Only locks on these versions (repeat or comma-separate; default: any older).
    #[arg(long = "from-version", value_delimiter = ',', value_name = "VERSION")]
    pub from_versions: Vec<String>,
    /// Only locks in one of these groups (repeat or comma-separate).
    #[arg(long = "group", value_delimiter = ',', value_name = "GROUP")]
    pub groups: Vec<String>,
    /// A wave: cumulative share of eligible locks (`2%` or `0.02`) and
    /// optional soak before the next (`2%:1d`). Repeat in order; default
    /// one wave of 100%.
    #[arg(long = "wave", value_name = "SHARE[:SOAK]")]
    pub waves: Vec<String>,
    /// Auto-pause when failures / outcomes reach this rate (`5%` or `0.05`).
    #[arg(long, requires = "min_sample")]
    pub failure_rate: Option<String>,
    /// … once at least this many outcomes were reported.
    #[arg(long, requires = "failure_rate")]
    pub min_sample: Option<u64>,
    /// No assignment before this time (RFC 3339).
    #[arg(long)]
    pub start_at: Option<String>,
    /// Security deadline: install by this time (RFC 3339).
    #[arg(long)]
    pub deadline: Option<String>,
    /// Start at once (create only; default: stay a draft).
    #[arg(long)]
    pub start: bool,
}

/// `device`.
#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    /// List locks (paged by id).
    List(DeviceListArgs),
    /// One lock: registration, last report, assignment, director metadata.
    Show {
        /// Lock id.
        id: String,
    },
    /// A lock's history, newest first.
    History {
        /// Lock id.
        id: String,
        /// At most this many events.
        #[arg(long)]
        limit: Option<u32>,
        /// Only events before this event id (paging).
        #[arg(long)]
        before: Option<String>,
    },
    /// Revoke a lock: its check-ins are refused (asks for confirmation;
    /// --yes off a terminal).
    Revoke {
        /// Lock id.
        id: String,
        /// Why (goes to the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Register many locks at once, all or none, from a file of JSON lines or
    /// a JSON array of `{id, hardware_model, public_key, site?, groups?}`
    /// (`-`: stdin).
    Import {
        /// The file.
        file: PathBuf,
    },
}

/// `device list`.
#[derive(Debug, Args)]
pub struct DeviceListArgs {
    /// Only this hardware model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only locks that last reported this firmware version.
    #[arg(long)]
    pub version: Option<String>,
    /// Only locks in this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Only `active` or only `revoked` locks.
    #[arg(long, value_parser = ["active", "revoked"])]
    pub status: Option<String>,
    /// Only locks whose last check-in is more than DAYS days ago (locks
    /// never seen: `fleet stale`).
    #[arg(long, value_name = "DAYS")]
    pub stale: Option<f64>,
    /// Only ids starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Page size (server default 100, at most 1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this id (the previous page's `next_after`).
    #[arg(long)]
    pub after: Option<String>,
    /// Follow every page.
    #[arg(long)]
    pub all: bool,
}

/// `site`.
#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    /// Every site's install policy.
    List,
    /// A site's install policy.
    Show {
        /// Site name.
        site: String,
    },
    /// Change a site's install policy (fields not given are kept; `none`
    /// clears one).
    Set {
        /// Site name.
        site: String,
        /// Quiet-hours window in local time, `HH:MM-HH:MM` (may wrap
        /// midnight), or `none`.
        #[arg(long, value_name = "HH:MM-HH:MM")]
        window: Option<String>,
        /// IANA time zone, e.g. Europe/Berlin, or `none`.
        #[arg(long, value_name = "TZ")]
        tz: Option<String>,
        /// Dates with no installs, `YYYY-MM-DD,…` (replaces the list), or `none`.
        #[arg(long, value_name = "DATE,…")]
        blackout: Option<String>,
    },
}

/// `fleet`.
#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// Active locks per hardware model and firmware version.
    Versions {
        /// Only this hardware model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Locks below a minimum secure version or security counter; without
    /// `--min-version`/`--min-security-counter`, below each model's stored
    /// minimum (`fleet set-minimum`).
    BelowMinimum {
        /// Minimum version (MAJOR.MINOR.PATCH).
        #[arg(long)]
        min_version: Option<String>,
        /// Minimum security counter.
        #[arg(long)]
        min_security_counter: Option<u64>,
        /// Only this hardware model.
        #[arg(long)]
        model: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// The stored minimum secure version per hardware model.
    Minimums,
    /// Set (or with `--clear` remove) a model's minimum secure version
    /// and/or security counter (security-admin).
    SetMinimum {
        /// Hardware model.
        model: String,
        /// Minimum version (MAJOR.MINOR.PATCH).
        #[arg(long)]
        min_version: Option<String>,
        /// Minimum security counter.
        #[arg(long)]
        min_security_counter: Option<u64>,
        /// Remove the model's minimum.
        #[arg(long, conflicts_with_all = ["min_version", "min_security_counter"])]
        clear: bool,
    },
    /// Locks not seen for DAYS days (or never).
    Stale {
        /// Days.
        #[arg(long, default_value_t = 7.0)]
        days: f64,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// Filters of the audit log.
#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Only entries by this actor (token name, or `system`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries made with this token id.
    #[arg(long)]
    pub token_id: Option<String>,
    /// Only this action (`rollout.pause`) or prefix (`rollout.*`).
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Start after this entry id.
    #[arg(long)]
    pub after: Option<String>,
    /// At most this many entries (a page for `list`, rows for `export`).
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Audit entries, oldest first.
    List {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilter,
        /// Follow every page.
        #[arg(long)]
        all: bool,
    },
    /// The audit log as CSV (at most 100,000 rows per export); with --json,
    /// every matching entry as JSON.
    Export {
        /// Filters.
        #[command(flatten)]
        filter: AuditFilter,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// `token`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token; its secret is shown this once.
    Create {
        /// Name (shown in the audit log), e.g. a person.
        #[arg(long)]
        name: String,
        /// Role.
        #[arg(long, value_parser = ["viewer", "operator", "release", "security-admin"])]
        role: String,
        /// Lifetime, e.g. 30d or 12h (the server allows at most 10 years);
        /// default: until revoked.
        #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
        expires_in: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token (asks for confirmation; --yes off a terminal).
    Revoke {
        /// Token id.
        id: String,
    },
}

/// `webhook`.
#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    /// Subscribe a URL to events; the signing secret is shown this once.
    Create {
        /// Where to POST events (`https://…`; private and loopback addresses
        /// only when the server's config allows them).
        #[arg(long)]
        url: String,
        /// Only these event types, e.g. rollout.paused (repeat or
        /// comma-separate; default: every event).
        #[arg(long = "event", value_delimiter = ',', value_name = "TYPE")]
        events: Vec<String>,
        /// What the subscription is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List subscriptions.
    List,
    /// One subscription and its delivery counts.
    Show {
        /// Webhook id.
        id: String,
    },
    /// Send a `test.ping` event to the subscription.
    Test {
        /// Webhook id.
        id: String,
    },
    /// A subscription's delivery attempts, newest first.
    Deliveries {
        /// Webhook id.
        id: String,
        /// At most this many attempts (server default 50).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Replace the signing secret; the new one is shown this once and the
    /// old one stays valid for the overlap (asks for confirmation; --yes off
    /// a terminal).
    RotateSecret {
        /// Webhook id.
        id: String,
        /// How long the old secret stays valid, e.g. 24h or 0s (the
        /// server's default is 24h, at most 30 days).
        #[arg(long, value_name = "DURATION")]
        overlap: Option<String>,
    },
    /// Re-enable a subscription the server disabled after repeated failures.
    Enable {
        /// Webhook id.
        id: String,
    },
    /// Delete a subscription (asks for confirmation; --yes off a terminal).
    Delete {
        /// Webhook id.
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
