//! The console's templates and the rows they show. Every value from the
//! API is text or a number here; askama escapes everything it prints.

use askama::Template;
use serde_json::Value;

use crate::auth::Role;

/// What every signed-in page shows around its content.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Page title.
    pub title: String,
    /// Active navigation entry.
    pub active: &'static str,
    /// Token name.
    pub user: String,
    /// Role name.
    pub role: &'static str,
    /// CSRF token for the page's forms.
    pub csrf: String,
    /// Operator or above.
    pub can_operate: bool,
    /// Security admin.
    pub can_admin: bool,
}

impl Frame {
    /// A frame for `role`.
    pub fn new(title: &str, active: &'static str, user: &str, role: Role, csrf: &str) -> Self {
        Self {
            title: title.to_owned(),
            active,
            user: user.to_owned(),
            role: role.as_str(),
            csrf: csrf.to_owned(),
            can_operate: role >= Role::Operator,
            can_admin: role >= Role::SecurityAdmin,
        }
    }
}

/// Text of a JSON value (empty for null).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Integer of a JSON value (0 if none).
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The sign-in page.
#[derive(Debug, Template)]
#[template(path = "console/login.html")]
pub struct Login {
    /// Double-submit CSRF token.
    pub csrf: String,
    /// Why the last attempt failed.
    pub error: String,
}

/// An error page.
#[derive(Debug, Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    /// Frame.
    pub f: Frame,
    /// Status line.
    pub status: String,
    /// API error code.
    pub code: String,
    /// Message.
    pub message: String,
}

/// One cell of a table of counts.
#[derive(Debug, Clone)]
pub struct VersionRow {
    /// Model.
    pub model: String,
    /// Version.
    pub version: String,
    /// Locks.
    pub count: i64,
}

/// A lock in a list.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Model.
    pub model: String,
    /// Running version.
    pub version: String,
    /// Site.
    pub site: String,
    /// Status.
    pub status: String,
    /// Last seen.
    pub last_seen: String,
}

/// Progress of one wave.
#[derive(Debug, Clone)]
pub struct WaveRow {
    /// Index.
    pub index: i64,
    /// Share of eligible locks (percent).
    pub share: String,
    /// Counts by status.
    pub assigned: i64,
    /// Staged.
    pub staged: i64,
    /// Installed.
    pub installed: i64,
    /// Confirmed.
    pub confirmed: i64,
    /// Failed.
    pub failed: i64,
    /// Rolled back.
    pub rolled_back: i64,
    /// All of them.
    pub total: i64,
    /// Bar segment widths (percent of total): confirmed, installed+staged, failed+rolled back.
    pub bar_ok: i64,
    /// In flight.
    pub bar_busy: i64,
    /// Failed.
    pub bar_bad: i64,
}

/// A rollout in a list or on its page.
#[derive(Debug, Clone)]
pub struct RolloutRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Target.
    pub target: String,
    /// State.
    pub state: String,
    /// Why (pause reason).
    pub reason: String,
    /// Current wave.
    pub wave: String,
    /// Successes.
    pub successes: i64,
    /// Failures.
    pub failures: i64,
    /// Failure rate (percent, one decimal).
    pub failure_rate: String,
    /// Threshold (percent).
    pub threshold: String,
    /// Minimum sample.
    pub min_sample: i64,
    /// Created.
    pub created_at: String,
}

/// The fleet overview.
#[derive(Debug, Template)]
#[template(path = "console/fleet.html")]
pub struct FleetPage {
    /// Frame.
    pub f: Frame,
    /// Locks in all.
    pub total: i64,
    /// Model × version.
    pub versions: Vec<VersionRow>,
    /// Stale locks (not seen for `stale_days`): the first ones.
    pub stale: Vec<DeviceRow>,
    /// How many there are ("1000+" past the count limit).
    pub stale_count: String,
    /// Days.
    pub stale_days: i64,
    /// Below the minimum secure version: the first ones.
    pub below: Vec<DeviceRow>,
    /// How many there are.
    pub below_count: String,
    /// Rollouts in flight.
    pub rollouts: Vec<RolloutRow>,
    /// Repository roles.
    pub health: Vec<HealthRow>,
}

/// One TUF role's state.
#[derive(Debug, Clone)]
pub struct HealthRow {
    /// `image` or `director`.
    pub repository: String,
    /// Role.
    pub role: String,
    /// Version.
    pub version: String,
    /// Expires.
    pub expires: String,
    /// Expiring soon.
    pub warning: bool,
    /// Threshold.
    pub threshold: String,
    /// Keys (id prefix and type).
    pub keys: Vec<String>,
}

/// A published image.
#[derive(Debug, Clone)]
pub struct ReleaseRow {
    /// Model.
    pub model: String,
    /// Version.
    pub version: String,
    /// Security counter.
    pub counter: String,
    /// Size.
    pub size: String,
    /// Target name.
    pub name: String,
    /// Published.
    pub published_at: String,
    /// Patches: "from → size".
    pub patches: Vec<String>,
}

/// Releases.
#[derive(Debug, Template)]
#[template(path = "console/releases.html")]
pub struct ReleasesPage {
    /// Frame.
    pub f: Frame,
    /// Rows.
    pub releases: Vec<ReleaseRow>,
}

/// Rollouts.
#[derive(Debug, Template)]
#[template(path = "console/rollouts.html")]
pub struct RolloutsPage {
    /// Frame.
    pub f: Frame,
    /// Rows.
    pub rollouts: Vec<RolloutRow>,
}

/// The values of the rollout form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RolloutForm {
    /// CSRF.
    #[serde(default)]
    pub csrf: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Target.
    #[serde(default)]
    pub target: String,
    /// From versions (comma separated).
    #[serde(default)]
    pub from_versions: String,
    /// Groups (comma separated).
    #[serde(default)]
    pub groups: String,
    /// Waves: "share:soak, …" e.g. "2:24h, 20:24h, 100:0s".
    #[serde(default)]
    pub waves: String,
    /// Failure threshold (percent).
    #[serde(default)]
    pub failure_rate: String,
    /// Minimum sample.
    #[serde(default)]
    pub min_sample: String,
    /// Start (RFC 3339), empty: now.
    #[serde(default)]
    pub start_at: String,
    /// Security deadline (RFC 3339), empty: none.
    #[serde(default)]
    pub security_deadline: String,
    /// `preview`, `create` or `start`.
    #[serde(default)]
    pub submit: String,
}

/// One wave of a preview.
#[derive(Debug, Clone)]
pub struct PreviewWave {
    /// Index.
    pub index: i64,
    /// Share.
    pub share: String,
    /// Eligible locks in it.
    pub eligible: i64,
    /// Expected nights: "date: locks".
    pub nights: Vec<(String, i64)>,
    /// Not placed within the horizon.
    pub unscheduled: i64,
    /// Expected door openings during installs.
    pub door_openings: String,
}

/// New rollout form (with a preview once asked).
#[derive(Debug, Template)]
#[template(path = "console/rollout_new.html")]
pub struct RolloutNewPage {
    /// Frame.
    pub f: Frame,
    /// Form values.
    pub form: RolloutForm,
    /// Targets to choose from.
    pub targets: Vec<String>,
    /// Error of the last submit.
    pub error: String,
    /// Preview, once asked.
    pub preview: Option<Vec<PreviewWave>>,
    /// Eligible in all.
    pub eligible: i64,
}

/// A failed lock on the rollout page.
#[derive(Debug, Clone)]
pub struct FailedRow {
    /// Lock.
    pub id: String,
    /// Status.
    pub status: String,
    /// Reason.
    pub reason: String,
}

/// One rollout.
#[derive(Debug, Template)]
#[template(path = "console/rollout.html")]
pub struct RolloutPage {
    /// Frame.
    pub f: Frame,
    /// The rollout.
    pub r: RolloutRow,
    /// Waves.
    pub waves: Vec<WaveRow>,
    /// Failed and rolled-back locks.
    pub failed: Vec<FailedRow>,
    /// Actions allowed now (`start`, `pause`, `resume`, `abort`).
    pub actions: Vec<&'static str>,
    /// Whether the page should keep refreshing.
    pub live: bool,
}

/// The live part of a rollout page.
#[derive(Debug, Template)]
#[template(path = "console/rollout_progress.html")]
pub struct RolloutProgress {
    /// The rollout.
    pub r: RolloutRow,
    /// Waves.
    pub waves: Vec<WaveRow>,
}

/// Confirm a rollout action.
#[derive(Debug, Template)]
#[template(path = "console/confirm.html")]
pub struct ConfirmPage {
    /// Frame.
    pub f: Frame,
    /// Rollout id.
    pub id: String,
    /// Rollout name.
    pub name: String,
    /// Action.
    pub action: String,
}

/// Device search.
#[derive(Debug, Template)]
#[template(path = "console/devices.html")]
pub struct DevicesPage {
    /// Frame.
    pub f: Frame,
    /// Filters as given.
    pub q: DeviceFilter,
    /// Rows.
    pub devices: Vec<DeviceRow>,
    /// Matches in all.
    pub total: String,
    /// Link to the next page (query string), if any.
    pub next: String,
}

/// Device search filters (the query string).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct DeviceFilter {
    /// Id prefix.
    #[serde(default)]
    pub prefix: String,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Group.
    #[serde(default)]
    pub group: String,
    /// Site.
    #[serde(default)]
    pub site: String,
    /// Status.
    #[serde(default)]
    pub status: String,
    /// Seen after (RFC 3339).
    #[serde(default)]
    pub seen_after: String,
    /// Page cursor.
    #[serde(default)]
    pub after: String,
}

/// One history entry.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// When.
    pub at: String,
    /// Kind.
    pub kind: String,
    /// Details.
    pub detail: String,
}

/// One hour of a lock's week in its heatmap.
#[derive(Debug, Clone)]
pub struct HeatCell {
    /// Local hour of the day (0–23).
    pub hour: u8,
    /// Heat level as the lock reported it: 0 never, 1 rare, 2 some, 3 busy.
    pub level: u8,
    /// The level's name (its CSS class is `heat-{name}`).
    pub name: &'static str,
    /// Whether the hour overlaps the day's quiet slot (the slot of the day
    /// before, when that runs past midnight).
    pub in_quiet: bool,
}

/// One heatmap row (a local weekday).
#[derive(Debug, Clone)]
pub struct HeatRow {
    /// Weekday name.
    pub day: &'static str,
    /// Its 24 hours.
    pub cells: Vec<HeatCell>,
    /// Quiet slot, as text (`none`: no install start allowed that day).
    pub quiet: String,
}

/// One lock.
#[derive(Debug, Template)]
#[template(path = "console/device.html")]
pub struct DevicePage {
    /// Frame.
    pub f: Frame,
    /// Id.
    pub id: String,
    /// Fields (label, value).
    pub fields: Vec<(&'static str, String)>,
    /// Status.
    pub status: String,
    /// History, newest first.
    pub events: Vec<EventRow>,
    /// Usage heatmap, when the lock has reported one.
    pub heat: Vec<HeatRow>,
    /// When the usage summary was reported.
    pub heat_reported: String,
    /// Busiest hour's expected door uses, and weeks learned (as text).
    pub heat_peak: String,
    /// Weeks the lock has learned over.
    pub heat_weeks: String,
}

/// A site's policy.
#[derive(Debug, Clone)]
pub struct SiteRow {
    /// Site.
    pub site: String,
    /// Window start.
    pub window_start: String,
    /// Window end.
    pub window_end: String,
    /// Time zone.
    pub time_zone: String,
    /// Blackout dates, comma separated.
    pub blackout: String,
}

/// Sites.
#[derive(Debug, Template)]
#[template(path = "console/sites.html")]
pub struct SitesPage {
    /// Frame.
    pub f: Frame,
    /// Rows.
    pub sites: Vec<SiteRow>,
    /// Error of the last change.
    pub error: String,
}

/// A token.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Created.
    pub created_at: String,
    /// Revoked.
    pub revoked_at: String,
}

/// Security.
#[derive(Debug, Template)]
#[template(path = "console/security.html")]
pub struct SecurityPage {
    /// Frame.
    pub f: Frame,
    /// Below the minimum: the first ones.
    pub below: Vec<DeviceRow>,
    /// How many there are.
    pub below_count: String,
    /// Revoked locks: the first ones.
    pub revoked: Vec<DeviceRow>,
    /// How many there are.
    pub revoked_count: String,
    /// Roots' keys and thresholds.
    pub roots: Vec<HealthRow>,
    /// Tokens (security admins only).
    pub tokens: Vec<TokenRow>,
    /// A token just created (shown once).
    pub new_token: String,
    /// Error of the last change.
    pub error: String,
}

/// An audit entry.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// When.
    pub at: String,
    /// Token id.
    pub token_id: String,
    /// Who.
    pub actor: String,
    /// Role.
    pub role: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// Details.
    pub detail: String,
}

/// Audit filters.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuditFilter {
    /// Actor.
    #[serde(default)]
    pub actor: String,
    /// Action (prefix with `*`).
    #[serde(default)]
    pub action: String,
    /// Since (RFC 3339).
    #[serde(default)]
    pub since: String,
    /// Cursor.
    #[serde(default)]
    pub after: String,
}

/// The audit log.
#[derive(Debug, Template)]
#[template(path = "console/audit.html")]
pub struct AuditPage {
    /// Frame.
    pub f: Frame,
    /// Filters.
    pub q: AuditFilter,
    /// Entries.
    pub entries: Vec<AuditRow>,
    /// Query string of the CSV export.
    pub export: String,
    /// Next page (query string).
    pub next: String,
}
