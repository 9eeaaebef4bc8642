//! A real `nightlatch-server` (the `update-server` library: same router,
//! pipeline, SQLite and local blob store as the binary) serving HTTP on a
//! loopback port, with a manual clock the simulations advance, plus the
//! operator's actions (publish, register, rollouts) over its admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use nightlatch_repo::FixedClock;
use nightlatch_repo::keysource::{KeySpec, open_all};
use nightlatch_repo::repo::Expiries;
use nightlatch_repo::repo::remote::{Http, RemoteReport, publish_remote};
use serde_json::{Value, json};
use update_server::AppState;
use update_server::clock::{Clock, ManualClock};
use update_server::config::{Config, KeysConfig};

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The bootstrap security-admin token.
    pub admin: String,
    /// Its clock (milliseconds since the epoch).
    pub clock: Arc<ManualClock>,
    state: AppState,
    runtime: tokio::runtime::Runtime,
    last_refresh: std::sync::atomic::AtomicU64,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// Errors of the harness, as text (it drives tests and the simulator).
pub type Result<T> = std::result::Result<T, String>;

impl Server {
    /// Start on a fresh temporary directory at virtual time `t0` (Unix seconds).
    pub fn start(t0: u64) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_owned();
        let mut s = Self::start_in(&path, t0)?;
        s._dir = Some(dir);
        Ok(s)
    }

    /// Start on `data_dir` at virtual time `t0`.
    pub fn start_in(data_dir: &Path, t0: u64) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // What the server signs and checks expires in this virtual time
        // (its repository reads this clock); what the harness signs as the
        // release engineer uses the same date (see `publish`).
        let clock = Arc::new(ManualClock::new((t0 as i64) * 1000));
        let config = Self::config(data_dir, KeysConfig::default());
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let (state, addr, stop, task) = runtime.block_on(serve(config, &clock, addr))?;
        let admin = std::fs::read_to_string(data_dir.join("admin-token"))
            .map_err(|e| format!("admin token: {e}"))?
            .trim()
            .to_owned();
        Ok(Self {
            base: format!("http://{addr}"),
            data_dir: data_dir.to_owned(),
            admin,
            clock,
            state,
            runtime,
            last_refresh: std::sync::atomic::AtomicU64::new(t0),
            addr,
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        })
    }

    fn config(data_dir: &Path, keys: KeysConfig) -> Config {
        let mut config = Config::for_data_dir(data_dir);
        // A simulation: survive kill -9, not power loss (no fsync per batch).
        config.sqlite_full_sync = false;
        // Every simulated lock connects from 127.0.0.1, thousands of them at
        // once in virtual time: per-client budgets sized for a whole fleet
        // (the connection loop and its timeouts are the production ones).
        config.http.max_connections_per_client = config.http.max_connections;
        config.http.public_rate = 1_000_000;
        config.http.public_burst = 1_000_000;
        config.http.refusal_rate = 1_000_000;
        config.http.refusal_burst = 1_000_000;
        config.http.header_read_timeout = std::time::Duration::from_secs(300);
        config.keys = keys;
        config
    }

    /// Stop serving (in-flight requests finish, idle connections close) and
    /// start again on the same data directory, address and clock with
    /// `keys` (e.g. after a key rotation).
    pub fn restart_with_keys(&mut self, keys: KeysConfig) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), task).await
            });
        }
        let config = Self::config(&self.data_dir, keys);
        let mut last = String::new();
        for _ in 0..50 {
            match self
                .runtime
                .block_on(serve(config.clone(), &self.clock, self.addr))
            {
                Ok((state, _, stop, task)) => {
                    self.state = state;
                    self.stop = Some(stop);
                    self.task = Some(task);
                    return Ok(());
                }
                Err(e) => {
                    last = e;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
        Err(format!("restart: {last}"))
    }

    /// Virtual now (Unix seconds).
    pub fn now(&self) -> u64 {
        u64::try_from(Clock::now_ms(&*self.clock) / 1000).unwrap_or(0)
    }

    /// Set virtual now. Every virtual ten minutes the repository's
    /// timestamp is re-signed if due, as the binary's refresh timer does in
    /// real time.
    pub fn set_now(&self, t: u64) {
        self.clock.set_ms((t as i64) * 1000);
        let last = self.last_refresh.load(std::sync::atomic::Ordering::Relaxed);
        if t >= last + 600 {
            self.last_refresh
                .store(t, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.runtime.block_on(self.state.repo.refresh_if_due()) {
                eprintln!("repository refresh failed: {e:#}");
            }
        }
    }

    /// The server's state (in-process checks).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The dev image targets (release) key (offline in production).
    pub fn release_key(&self) -> PathBuf {
        self.data_dir.join("keys/image/keys/targets.key")
    }

    /// An admin API call with the bootstrap token: status and JSON.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.admin);
        let resp = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
            ("POST", b) => agent
                .post(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(b.unwrap_or(json!({})).to_string().as_bytes()),
            ("PUT", b) => agent
                .put(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(b.unwrap_or(json!({})).to_string().as_bytes()),
            (m, _) => return Err(format!("method {m}")),
        };
        let mut resp = resp.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Like [`Self::admin`], but any status outside 2xx is an error.
    pub fn admin_ok(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let (s, v) = self.admin(method, path, body)?;
        if (200..300).contains(&s) {
            Ok(v)
        } else {
            Err(format!("{method} {path}: HTTP {s}: {v}"))
        }
    }

    /// Publish envelopes and patches with the dev release key, as
    /// `nightlatch-sign publish --server` does (over HTTP), signing on the
    /// virtual date.
    pub fn publish(&self, files: &[PathBuf]) -> Result<RemoteReport> {
        let token = self.admin_ok(
            "POST",
            "/admin/v1/tokens",
            Some(json!({"name": format!("release-{}", files.len()), "role": "release"})),
        )?["token"]
            .as_str()
            .ok_or("no token")?
            .to_owned();
        let keys = open_all(&[KeySpec::File(self.release_key())]).map_err(|e| e.to_string())?;
        let t = Http::new(&self.base, &token);
        let root = self.data_dir.join("keys/image/1.root.json");
        publish_remote(
            &t,
            &self.base,
            &keys,
            files,
            &Expiries::default(),
            Some(&root),
            &FixedClock::at_unix(self.now()),
        )
        .map_err(|e| format!("publish: {e}"))
    }

    /// Advance the virtual clock.
    pub fn advance(&self, secs: u64) {
        self.set_now(self.now() + secs);
    }

    /// Run `f` on the server's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

/// A firmware envelope for `model` `version` with `payload`, signed by `key`.
pub fn envelope(
    key: &SigningKey,
    model: &str,
    version: &str,
    counter: u32,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let release = nightlatch_repo::envelope::Release {
        model: nightlatch_repo::params::parse_model(model).map_err(|e| e.to_string())?,
        version: nightlatch_repo::params::parse_version(version).map_err(|e| e.to_string())?,
        security_counter: counter,
    };
    nightlatch_repo::envelope::sign_payload(&release, payload, std::slice::from_ref(key))
        .map_err(|e| e.to_string())
}

/// A patch from one envelope to another, checked by applying it with the
/// device's applier on simulated flash (as `nightlatch-sign delta` does).
pub fn patch(old: &[u8], new: &[u8]) -> Result<Vec<u8>> {
    let made = nightlatch_repo::delta::make_patch(old, new, &nightlatch_repo::delta::NoProgress)
        .map_err(|e| e.to_string())?;
    let rebuilt =
        bootloader::delta::encode::apply_on_sim(old, &made.patch).map_err(|e| e.to_string())?;
    if rebuilt != new {
        return Err("the patch does not rebuild the target envelope".into());
    }
    Ok(made.patch)
}

/// Deterministic firmware-like bytes (a "code" region that changes a little
/// between versions).
pub fn payload(len: usize, seed: u64, edits: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    let mut y = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
    for _ in 0..edits {
        y ^= y << 13;
        y ^= y >> 7;
        y ^= y << 17;
        if len > 0 {
            let at = (y as usize) % len;
            out[at] = out[at].wrapping_add(1);
        }
    }
    out
}

/// Build the state and serve it on `addr` until the returned sender fires.
async fn serve(
    config: Config,
    clock: &Arc<ManualClock>,
    addr: SocketAddr,
) -> Result<(
    AppState,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let state = AppState::build_with_clock(
        config,
        Arc::clone(clock) as Arc<dyn Clock>,
        Some(Arc::clone(clock)),
    )
    .await
    .map_err(|e| format!("server: {e:#}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // The binary's own connection loop (limits, timeouts, TCP_NODELAY).
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = state.clone();
    let task = tokio::spawn(async move {
        let _ = update_server::server::run(served, listener, async move {
            let _ = rx.await;
        })
        .await;
    });
    Ok((state, addr, tx, task))
}
