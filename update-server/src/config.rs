//! Configuration: built-in defaults, then a TOML file (`--config`), then
//! environment variables, then command-line flags — each overriding the one
//! before. Nothing here panics: a bad value is an error naming the setting.
//!
//! With no configuration at all, everything lives under `--data-dir`:
//! `fleet.sqlite` (fleet state), `public/` (served files: the image
//! repository in `public/repo`, director roots in `public/director`),
//! `keys/` (unsafe dev keys, made on first start) and `admin-token` (the
//! first security-admin token).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// Flags of `nightlatch-server` (each also readable from the environment).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (every setting; see update-server/README.md).
    #[arg(long, env = "NIGHTLATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for everything the server keeps on its own disk.
    #[arg(long, env = "NIGHTLATCH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "NIGHTLATCH_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Fleet database: `sqlite://PATH` (default DIR/fleet.sqlite) or `postgres://…`.
    #[arg(long, env = "NIGHTLATCH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Blob store: `local` (default, DIR/repo) or `s3` (set the S3 variables).
    #[arg(long, env = "NIGHTLATCH_BLOB", value_name = "KIND")]
    pub blob: Option<String>,
    /// Log format: `text` (default) or `json`.
    #[arg(long, env = "NIGHTLATCH_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Clock: `system` (default) or `manual` (time moves only through
    /// `POST /admin/v1/clock`; for simulations and tests).
    #[arg(long, env = "NIGHTLATCH_CLOCK", value_name = "MODE")]
    pub clock: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// The operating system's clock.
    System,
    /// Moved only by the admin API (simulation).
    Manual,
}

/// S3-compatible object storage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL (`http://127.0.0.1:9000`); None: AWS.
    pub endpoint: Option<String>,
    /// Bucket (must exist).
    pub bucket: String,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket (e.g. `nightlatch/`).
    #[serde(default)]
    pub prefix: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Blob store choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobConfig {
    /// A directory on local disk.
    Local(PathBuf),
    /// S3.
    S3(S3Config),
}

/// Where the server's keys and trusted roots are. Unset (the default):
/// unsafe dev keys are generated under `DIR/keys` on first start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The image repository's trusted root (`1.root.json`), used to start an empty repository.
    pub image_root: Option<PathBuf>,
    /// The director repository's newest root.
    pub director_root: Option<PathBuf>,
    /// Image snapshot key (key spec: file or `pkcs11:` URI).
    pub image_snapshot: Option<String>,
    /// Image timestamp key (key spec).
    pub image_timestamp: Option<String>,
    /// Director targets key (a key file).
    pub director_targets: Option<String>,
    /// Director timestamp key, signs the time (a key file).
    pub director_timestamp: Option<String>,
}

impl KeysConfig {
    /// Whether any key or root is configured (then all must be).
    pub fn any_set(&self) -> bool {
        self.image_root.is_some()
            || self.director_root.is_some()
            || self.image_snapshot.is_some()
            || self.image_timestamp.is_some()
            || self.director_targets.is_some()
            || self.director_timestamp.is_some()
    }
}

/// Check-in pipeline settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckinConfig {
    /// Largest check-in body accepted (bytes).
    pub max_body_bytes: usize,
    /// Most check-ins handled in one batch (one transaction, one time signature).
    pub batch_max: usize,
    /// Batches processed concurrently.
    pub workers: usize,
}

/// Uploads of target files (`[uploads]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadsConfig {
    /// Target and metadata uploads handled at once (each streams its body to
    /// a temporary file); more get 503 `busy` with `Retry-After`.
    pub max_concurrent: usize,
    /// How long an uploaded target that no targets metadata references yet
    /// is kept (staged, not served) before it is deleted.
    pub staged_grace: Duration,
    /// How often staged uploads older than `staged_grace` are looked for.
    pub sweep_interval: Duration,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            staged_grace: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(300),
        }
    }
}

/// Repository settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoConfig {
    /// How often the timestamp (and snapshot) expiry is checked.
    pub refresh_interval: Duration,
    /// How often a replica looks for repository changes made by another.
    pub poll_interval: Duration,
    /// Snapshot lifetime.
    pub snapshot_expires: Duration,
    /// Timestamp lifetime.
    pub timestamp_expires: Duration,
    /// Largest uploaded target file.
    pub max_upload_bytes: u64,
}

/// Connection and request limits: what keeps a client without a token from
/// exhausting the server (see update-server/README.md, "Limits").
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// A connection that has not sent a whole request header within this
    /// time is closed (also how long an idle keep-alive connection lives).
    pub header_read_timeout: Duration,
    /// Longest time a request to a public route (repository, director,
    /// check-in, health, metrics) may take, body included: then 408.
    pub request_timeout: Duration,
    /// The same for admin routes (uploads of large targets take longer).
    pub admin_request_timeout: Duration,
    /// Most open connections; past it a new connection is answered 503 and
    /// closed. Lowered at start to what the open-files limit allows.
    pub max_connections: usize,
    /// Most open connections from one client address.
    pub max_connections_per_client: usize,
    /// Requests served on one keep-alive connection before it is closed.
    pub max_requests_per_connection: u32,
    /// A connection older than this is closed after its current request.
    pub max_connection_age: Duration,
    /// Requests per second to public routes from one client address
    /// (sustained; `public_burst` at once).
    pub public_rate: u32,
    /// Burst allowed above `public_rate`.
    pub public_burst: u32,
    /// Refused requests per second from one client address (unknown lock,
    /// bad signature, malformed check-in, bad admin token): past it the
    /// client's check-ins and admin requests get 429 before any work.
    pub refusal_rate: u32,
    /// Burst allowed above `refusal_rate`.
    pub refusal_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client (the last address
    /// before them); from any other peer the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            admin_request_timeout: Duration::from_secs(900),
            max_connections: 4096,
            max_connections_per_client: 256,
            max_requests_per_connection: 10_000,
            max_connection_age: Duration::from_secs(3600),
            public_rate: 500,
            public_burst: 1000,
            refusal_rate: 10,
            refusal_burst: 100,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The operator console at `/console/` (`[console]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Serve it (default true).
    pub enabled: bool,
    /// How long a sign-in lasts.
    pub session_lifetime: Duration,
    /// Mark the session cookie `Secure`: `Some(true)` always (the server
    /// is reached over HTTPS through a proxy), `Some(false)` never, `None`
    /// when the request came over HTTPS (`X-Forwarded-Proto: https` from a
    /// trusted proxy).
    pub secure_cookies: Option<bool>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_lifetime: Duration::from_secs(8 * 3600),
            secure_cookies: None,
        }
    }
}

/// Webhook delivery (`[webhooks]`).
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// Deliver at all on this replica (default true). Events are written
    /// either way; another replica may deliver them.
    pub deliver: bool,
    /// Allow URLs that resolve to loopback, private, link-local or other
    /// non-public addresses (default false: a webhook must not become a
    /// way into the server's own network).
    pub allow_private_addresses: bool,
    /// How long a replica holds the deliveries it claimed.
    pub claim_lease: Duration,
    /// Look for due deliveries this often when idle.
    pub poll_interval: Duration,
    /// First retry after this; doubled each attempt.
    pub retry_backoff: Duration,
    /// No retry waits longer than this.
    pub retry_backoff_cap: Duration,
    /// Attempts per event and subscription before giving up.
    pub max_attempts: i64,
    /// Failed attempts in a row that disable a subscription.
    pub disable_after_failures: i64,
    /// Timeout of one POST.
    pub request_timeout: Duration,
    /// Deliveries in flight at once per replica.
    pub concurrency: usize,
    /// Check for events that come from time passing (a wave starting,
    /// metadata about to expire, a minute of failed updates) this often.
    pub watch_interval: Duration,
    /// Warn of repository metadata expiring within this many days.
    pub expiry_warning_days: u32,
    /// Failed updates are reported in one event per window this long.
    pub failure_batch_window: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            deliver: true,
            allow_private_addresses: false,
            claim_lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            retry_backoff: Duration::from_secs(5),
            retry_backoff_cap: Duration::from_secs(3600),
            max_attempts: 20,
            disable_after_failures: 50,
            request_timeout: Duration::from_secs(10),
            concurrency: 16,
            watch_interval: Duration::from_secs(15),
            expiry_warning_days: 7,
            failure_batch_window: Duration::from_secs(60),
        }
    }
}

/// The whole resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The operator console.
    pub console: ConsoleConfig,
    /// Webhook delivery.
    pub webhooks: WebhooksConfig,
    /// Connection and request limits.
    pub http: HttpConfig,
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Fleet database URL.
    pub database_url: String,
    /// Blob store.
    pub blob: BlobConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Clock.
    pub clock: ClockMode,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Keys and roots.
    pub keys: KeysConfig,
    /// Check-in pipeline.
    pub checkin: CheckinConfig,
    /// Repository.
    pub repo: RepoConfig,
    /// Uploads of target files.
    pub uploads: UploadsConfig,
    /// Lifetime of each lock's director targets metadata.
    pub director_targets_expires: Duration,
    /// SQLite: fsync every commit (`full`, default) or not (`normal`).
    pub sqlite_full_sync: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    blob: Option<String>,
    s3: Option<S3Config>,
    log_format: Option<LogFormat>,
    clock: Option<ClockMode>,
    shutdown_timeout: Option<String>,
    keys: Option<KeysConfig>,
    checkin: Option<CheckinFile>,
    repo: Option<RepoFile>,
    uploads: Option<UploadsFile>,
    director: Option<DirectorFile>,
    database: Option<DatabaseFile>,
    http: Option<HttpFile>,
    console: Option<ConsoleFile>,
    webhooks: Option<WebhooksFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksFile {
    deliver: Option<bool>,
    allow_private_addresses: Option<bool>,
    claim_lease: Option<String>,
    poll_interval: Option<String>,
    retry_backoff: Option<String>,
    retry_backoff_cap: Option<String>,
    max_attempts: Option<i64>,
    disable_after_failures: Option<i64>,
    request_timeout: Option<String>,
    concurrency: Option<usize>,
    watch_interval: Option<String>,
    expiry_warning_days: Option<u32>,
    failure_batch_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleFile {
    enabled: Option<bool>,
    session_lifetime: Option<String>,
    secure_cookies: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    header_read_timeout: Option<String>,
    request_timeout: Option<String>,
    admin_request_timeout: Option<String>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    max_requests_per_connection: Option<u32>,
    max_connection_age: Option<String>,
    public_rate: Option<u32>,
    public_burst: Option<u32>,
    refusal_rate: Option<u32>,
    refusal_burst: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseFile {
    sqlite_synchronous: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckinFile {
    max_body_bytes: Option<usize>,
    batch_max: Option<usize>,
    workers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepoFile {
    refresh_interval: Option<String>,
    poll_interval: Option<String>,
    snapshot_expires: Option<String>,
    timestamp_expires: Option<String>,
    max_upload_bytes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadsFile {
    max_concurrent: Option<usize>,
    staged_grace: Option<String>,
    sweep_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectorFile {
    targets_expires: Option<String>,
}

fn duration(setting: &str, text: Option<&str>, default: Duration) -> anyhow::Result<Duration> {
    match text {
        None => Ok(default),
        Some(t) => {
            let d = humantime::parse_duration(t)
                .with_context(|| format!("{setting}: {t:?} is not a duration (e.g. 10m, 1d)"))?;
            if d.is_zero() {
                bail!("{setting} must be longer than zero");
            }
            Ok(d)
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Defaults for a data directory (what tests start from).
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self {
            console: ConsoleConfig::default(),
            webhooks: WebhooksConfig::default(),
            http: HttpConfig::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.to_owned(),
            database_url: sqlite_url(&data_dir.join("fleet.sqlite")),
            blob: BlobConfig::Local(data_dir.join("public")),
            log_format: LogFormat::Text,
            clock: ClockMode::System,
            shutdown_timeout: Duration::from_secs(10),
            keys: KeysConfig::default(),
            checkin: CheckinConfig {
                max_body_bytes: 16 * 1024,
                batch_max: 64,
                workers: 2,
            },
            repo: RepoConfig {
                refresh_interval: Duration::from_secs(600),
                poll_interval: Duration::from_secs(2),
                snapshot_expires: nightlatch_repo::metadata::expiry::SNAPSHOT_LIFETIME,
                timestamp_expires: nightlatch_repo::metadata::expiry::TIMESTAMP_LIFETIME,
                max_upload_bytes: 64 * 1024 * 1024,
            },
            uploads: UploadsConfig::default(),
            director_targets_expires: Duration::from_secs(7 * 86_400),
            sqlite_full_sync: true,
        }
    }

    /// Resolve flags, environment, file and defaults.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("config file {} is invalid", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .context("no data directory: pass --data-dir DIR (or set NIGHTLATCH_DATA_DIR, or data_dir in the config file)")?;
        let mut c = Self::for_data_dir(&data_dir);
        if let Some(listen) = args.listen.as_ref().or(file.listen.as_ref()) {
            c.listen = listen.parse().with_context(|| {
                format!("listen: {listen:?} is not an address like 127.0.0.1:8080")
            })?;
        }
        if let Some(url) = args.database_url.clone().or(file.database_url.clone()) {
            c.database_url = url;
        }
        if !(c.database_url.starts_with("sqlite:") || c.database_url.starts_with("postgres")) {
            bail!("database_url must start with sqlite:// or postgres://");
        }
        let blob = args
            .blob
            .clone()
            .or(file.blob.clone())
            .unwrap_or_else(|| "local".into());
        c.blob = match blob.as_str() {
            "local" => BlobConfig::Local(data_dir.join("public")),
            "s3" => BlobConfig::S3(s3_config(file.s3.clone())?),
            other => bail!("blob: {other:?} is neither local nor s3"),
        };
        if let Some(f) = args.log_format.as_deref() {
            c.log_format = match f {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("log format {other:?} is neither text nor json"),
            };
        } else if let Some(f) = file.log_format {
            c.log_format = f;
        }
        if let Some(m) = args.clock.as_deref() {
            c.clock = match m {
                "system" => ClockMode::System,
                "manual" => ClockMode::Manual,
                other => bail!("clock {other:?} is neither system nor manual"),
            };
        } else if let Some(m) = file.clock {
            c.clock = m;
        }
        c.shutdown_timeout = duration(
            "shutdown_timeout",
            file.shutdown_timeout.as_deref(),
            c.shutdown_timeout,
        )?;
        c.keys = file.keys.unwrap_or_default();
        for (field, var) in [
            (&mut c.keys.image_snapshot, "NIGHTLATCH_IMAGE_SNAPSHOT_KEY"),
            (
                &mut c.keys.image_timestamp,
                "NIGHTLATCH_IMAGE_TIMESTAMP_KEY",
            ),
            (
                &mut c.keys.director_targets,
                "NIGHTLATCH_DIRECTOR_TARGETS_KEY",
            ),
            (
                &mut c.keys.director_timestamp,
                "NIGHTLATCH_DIRECTOR_TIMESTAMP_KEY",
            ),
        ] {
            if let Some(v) = env(var) {
                *field = Some(v);
            }
        }
        if let Some(v) = env("NIGHTLATCH_IMAGE_ROOT") {
            c.keys.image_root = Some(v.into());
        }
        if let Some(v) = env("NIGHTLATCH_DIRECTOR_ROOT") {
            c.keys.director_root = Some(v.into());
        }
        if let Some(ck) = file.checkin {
            c.checkin.max_body_bytes = ck.max_body_bytes.unwrap_or(c.checkin.max_body_bytes);
            c.checkin.batch_max = ck.batch_max.unwrap_or(c.checkin.batch_max);
            c.checkin.workers = ck.workers.unwrap_or(c.checkin.workers);
        }
        if c.checkin.batch_max == 0 || c.checkin.batch_max > 1024 {
            bail!("checkin.batch_max must be between 1 and 1024");
        }
        if c.checkin.workers == 0 || c.checkin.workers > 64 {
            bail!("checkin.workers must be between 1 and 64");
        }
        if c.checkin.max_body_bytes < 512 {
            bail!("checkin.max_body_bytes must be at least 512");
        }
        if let Some(r) = file.repo {
            c.repo.refresh_interval = duration(
                "repo.refresh_interval",
                r.refresh_interval.as_deref(),
                c.repo.refresh_interval,
            )?;
            c.repo.poll_interval = duration(
                "repo.poll_interval",
                r.poll_interval.as_deref(),
                c.repo.poll_interval,
            )?;
            c.repo.snapshot_expires = duration(
                "repo.snapshot_expires",
                r.snapshot_expires.as_deref(),
                c.repo.snapshot_expires,
            )?;
            c.repo.timestamp_expires = duration(
                "repo.timestamp_expires",
                r.timestamp_expires.as_deref(),
                c.repo.timestamp_expires,
            )?;
            c.repo.max_upload_bytes = r.max_upload_bytes.unwrap_or(c.repo.max_upload_bytes);
        }
        if let Some(u) = file.uploads {
            c.uploads.max_concurrent = u.max_concurrent.unwrap_or(c.uploads.max_concurrent);
            c.uploads.staged_grace = duration(
                "uploads.staged_grace",
                u.staged_grace.as_deref(),
                c.uploads.staged_grace,
            )?;
            c.uploads.sweep_interval = duration(
                "uploads.sweep_interval",
                u.sweep_interval.as_deref(),
                c.uploads.sweep_interval,
            )?;
        }
        if c.uploads.max_concurrent == 0 || c.uploads.max_concurrent > 64 {
            bail!("uploads.max_concurrent must be between 1 and 64");
        }
        if let Some(db) = file.database {
            c.sqlite_full_sync = match db.sqlite_synchronous.as_deref() {
                None | Some("full") => true,
                Some("normal") => false,
                Some(other) => {
                    bail!("database.sqlite_synchronous {other:?} is neither full nor normal")
                }
            };
        }
        if let Some(h) = file.http {
            c.http = http_config(h)?;
        }
        if let Some(k) = file.console {
            c.console.enabled = k.enabled.unwrap_or(c.console.enabled);
            c.console.session_lifetime = duration(
                "console.session_lifetime",
                k.session_lifetime.as_deref(),
                c.console.session_lifetime,
            )?;
            c.console.secure_cookies = k.secure_cookies;
        }
        if let Some(w) = file.webhooks {
            c.webhooks = webhooks_config(w)?;
        }
        if let Some(d) = file.director {
            c.director_targets_expires = duration(
                "director.targets_expires",
                d.targets_expires.as_deref(),
                c.director_targets_expires,
            )?;
        }
        Ok(c)
    }
}

fn webhooks_config(w: WebhooksFile) -> anyhow::Result<WebhooksConfig> {
    let d = WebhooksConfig::default();
    let c = WebhooksConfig {
        deliver: w.deliver.unwrap_or(d.deliver),
        allow_private_addresses: w
            .allow_private_addresses
            .unwrap_or(d.allow_private_addresses),
        claim_lease: duration(
            "webhooks.claim_lease",
            w.claim_lease.as_deref(),
            d.claim_lease,
        )?,
        poll_interval: duration(
            "webhooks.poll_interval",
            w.poll_interval.as_deref(),
            d.poll_interval,
        )?,
        retry_backoff: duration(
            "webhooks.retry_backoff",
            w.retry_backoff.as_deref(),
            d.retry_backoff,
        )?,
        retry_backoff_cap: duration(
            "webhooks.retry_backoff_cap",
            w.retry_backoff_cap.as_deref(),
            d.retry_backoff_cap,
        )?,
        max_attempts: w.max_attempts.unwrap_or(d.max_attempts),
        disable_after_failures: w.disable_after_failures.unwrap_or(d.disable_after_failures),
        request_timeout: duration(
            "webhooks.request_timeout",
            w.request_timeout.as_deref(),
            d.request_timeout,
        )?,
        concurrency: w.concurrency.unwrap_or(d.concurrency),
        watch_interval: duration(
            "webhooks.watch_interval",
            w.watch_interval.as_deref(),
            d.watch_interval,
        )?,
        expiry_warning_days: w.expiry_warning_days.unwrap_or(d.expiry_warning_days),
        failure_batch_window: duration(
            "webhooks.failure_batch_window",
            w.failure_batch_window.as_deref(),
            d.failure_batch_window,
        )?,
    };
    if !(1..=1000).contains(&c.max_attempts) {
        bail!("webhooks.max_attempts must be between 1 and 1000");
    }
    if c.disable_after_failures < 1 {
        bail!("webhooks.disable_after_failures must be at least 1");
    }
    if !(1..=256).contains(&c.concurrency) {
        bail!("webhooks.concurrency must be between 1 and 256");
    }
    if c.retry_backoff_cap < c.retry_backoff {
        bail!("webhooks.retry_backoff_cap must not be shorter than webhooks.retry_backoff");
    }
    // A claim must outlive a request that runs to its timeout, or another
    // replica would send the delivery again while this one waits.
    if c.claim_lease < c.request_timeout.saturating_mul(2) {
        bail!("webhooks.claim_lease must be at least twice webhooks.request_timeout");
    }
    Ok(c)
}

fn http_config(h: HttpFile) -> anyhow::Result<HttpConfig> {
    let d = HttpConfig::default();
    let positive = |name: &str, v: Option<u32>, default: u32| -> anyhow::Result<u32> {
        match v {
            Some(0) => bail!("http.{name} must be at least 1"),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let mut trusted_proxies = Vec::new();
    for p in h.trusted_proxies.unwrap_or_default() {
        trusted_proxies.push(
            p.parse()
                .with_context(|| format!("http.trusted_proxies: {p:?} is not an IP address"))?,
        );
    }
    let c = HttpConfig {
        header_read_timeout: duration(
            "http.header_read_timeout",
            h.header_read_timeout.as_deref(),
            d.header_read_timeout,
        )?,
        request_timeout: duration(
            "http.request_timeout",
            h.request_timeout.as_deref(),
            d.request_timeout,
        )?,
        admin_request_timeout: duration(
            "http.admin_request_timeout",
            h.admin_request_timeout.as_deref(),
            d.admin_request_timeout,
        )?,
        max_connections: h.max_connections.unwrap_or(d.max_connections),
        max_connections_per_client: h
            .max_connections_per_client
            .unwrap_or(d.max_connections_per_client),
        max_requests_per_connection: positive(
            "max_requests_per_connection",
            h.max_requests_per_connection,
            d.max_requests_per_connection,
        )?,
        max_connection_age: duration(
            "http.max_connection_age",
            h.max_connection_age.as_deref(),
            d.max_connection_age,
        )?,
        public_rate: positive("public_rate", h.public_rate, d.public_rate)?,
        public_burst: positive("public_burst", h.public_burst, d.public_burst)?,
        refusal_rate: positive("refusal_rate", h.refusal_rate, d.refusal_rate)?,
        refusal_burst: positive("refusal_burst", h.refusal_burst, d.refusal_burst)?,
        trusted_proxies,
    };
    if c.max_connections < 16 {
        bail!("http.max_connections must be at least 16");
    }
    if c.max_connections_per_client == 0 || c.max_connections_per_client > c.max_connections {
        bail!("http.max_connections_per_client must be between 1 and http.max_connections");
    }
    Ok(c)
}

/// S3 settings from the file, overridden by `NIGHTLATCH_S3_*` (and the
/// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION`).
fn s3_config(file: Option<S3Config>) -> anyhow::Result<S3Config> {
    let pick = |ours: &str, aws: Option<&str>, file: Option<String>| {
        env(ours).or_else(|| aws.and_then(env)).or(file)
    };
    let f = file.as_ref();
    let bucket = pick("NIGHTLATCH_S3_BUCKET", None, f.map(|s| s.bucket.clone()))
        .context("blob is s3 but no bucket: set NIGHTLATCH_S3_BUCKET or [s3] bucket")?;
    let access_key_id = pick(
        "NIGHTLATCH_S3_ACCESS_KEY_ID",
        Some("AWS_ACCESS_KEY_ID"),
        f.map(|s| s.access_key_id.clone()),
    )
    .context("blob is s3 but no access key: set NIGHTLATCH_S3_ACCESS_KEY_ID")?;
    let secret_access_key = pick(
        "NIGHTLATCH_S3_SECRET_ACCESS_KEY",
        Some("AWS_SECRET_ACCESS_KEY"),
        f.map(|s| s.secret_access_key.clone()),
    )
    .context("blob is s3 but no secret key: set NIGHTLATCH_S3_SECRET_ACCESS_KEY")?;
    Ok(S3Config {
        endpoint: pick(
            "NIGHTLATCH_S3_ENDPOINT",
            None,
            f.and_then(|s| s.endpoint.clone()),
        ),
        bucket,
        region: pick(
            "NIGHTLATCH_S3_REGION",
            Some("AWS_REGION"),
            f.map(|s| s.region.clone()),
        )
        .unwrap_or_else(default_region),
        prefix: pick("NIGHTLATCH_S3_PREFIX", None, f.map(|s| s.prefix.clone())).unwrap_or_default(),
        access_key_id,
        secret_access_key,
    })
}

/// `sqlite://` URL of a database file (created if missing).
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_a_data_dir() {
        let args = ServeArgs {
            data_dir: Some("/tmp/x".into()),
            listen: Some("127.0.0.1:9999".into()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.database_url, "sqlite:///tmp/x/fleet.sqlite?mode=rwc");
        assert_eq!(c.blob, BlobConfig::Local("/tmp/x/public".into()));
    }

    /// The configuration of a config file holding `text` (in `dir`).
    fn load_file(dir: &std::path::Path, text: &str) -> anyhow::Result<Config> {
        let path = dir.join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&ServeArgs {
            config: Some(path),
            data_dir: Some("/x".into()),
            ..ServeArgs::default()
        })
    }

    #[test]
    fn uploads_section() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| load_file(dir.path(), text);
        let c = load("").unwrap();
        assert_eq!(c.uploads, UploadsConfig::default());
        assert_eq!(c.uploads.max_concurrent, 2);
        assert_eq!(c.uploads.staged_grace, Duration::from_secs(86_400));
        let c = load(
            "[uploads]\nmax_concurrent = 4\nstaged_grace = \"1h\"\nsweep_interval = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(c.uploads.max_concurrent, 4);
        assert_eq!(c.uploads.staged_grace, Duration::from_secs(3600));
        assert_eq!(c.uploads.sweep_interval, Duration::from_secs(30));
        for bad in [
            "[uploads]\nmax_concurrent = 0\n",
            "[uploads]\nmax_concurrent = 65\n",
            "[uploads]\nstaged_grace = \"soon\"\n",
            "[uploads]\nsweep_interval = \"0s\"\n",
            "[uploads]\nbogus = 1\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn console_section() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| load_file(dir.path(), text);
        let c = load("").unwrap();
        assert!(c.console.enabled, "on by default");
        assert_eq!(c.console.session_lifetime, Duration::from_secs(8 * 3600));
        assert_eq!(c.console.secure_cookies, None);
        let c =
            load("[console]\nenabled = false\nsession_lifetime = \"30m\"\nsecure_cookies = true\n")
                .unwrap();
        assert!(!c.console.enabled);
        assert_eq!(c.console.session_lifetime, Duration::from_secs(1800));
        assert_eq!(c.console.secure_cookies, Some(true));
        for bad in [
            "[console]\nenabled = \"no\"\n",
            "[console]\nsession_lifetime = \"a while\"\n",
            "[console]\nbogus = 1\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_settings_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/nl\"\nlisten = \"0.0.0.0:80\"\n[checkin]\nbatch_max = 8\n[repo]\nrefresh_interval = \"5m\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/nl"));
        assert_eq!(c.checkin.batch_max, 8);
        assert_eq!(c.repo.refresh_interval, Duration::from_secs(300));
        // flags win over the file
        let args = ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:1".into()),
            ..ServeArgs::default()
        };
        assert_eq!(Config::load(&args).unwrap().listen.port(), 1);

        std::fs::write(&path, "data_dir = \"/x\"\nbogus = 1\n").unwrap();
        let err = Config::load(&ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
        assert!(Config::load(&ServeArgs::default()).is_err());
        let bad = ServeArgs {
            data_dir: Some("/x".into()),
            listen: Some("nowhere".into()),
            ..ServeArgs::default()
        };
        assert!(Config::load(&bad).is_err());
    }
}
