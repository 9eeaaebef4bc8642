//! `nightlatch` against a real `nightlatch-server` (the binary built from
//! this workspace, on a fresh data directory and a loopback port): every
//! verb with its table and `--json` outputs, the exit codes, the config file
//! and where the token may (not) appear, confirmations, and a rollout
//! driven from create to completion with `nightlatch` only, while locks
//! check in with signed check-ins built here; webhooks delivered to a
//! receiver on loopback, their signatures checked as a receiver would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

const MODEL: &str = "nl-cli-test";

// ---------------------------------------------------------------------------
// The binaries: nightlatch (this crate), nightlatch-server and nightlatch-sign
// (other packages of the workspace, built once per test run).

struct Bins {
    server: PathBuf,
    sign: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let out = StdCommand::new(env!("CARGO"))
            .current_dir(workspace())
            .args([
                "build",
                "--message-format=json-render-diagnostics",
                "-p",
                "update-server",
                "--bin",
                "nightlatch-server",
                "-p",
                "signing-tools",
                "--bin",
                "nightlatch-sign",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build of the server failed");
        let mut server = None;
        let mut sign = None;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(exe) = v["executable"].as_str() {
                match v["target"]["name"].as_str() {
                    Some("nightlatch-server") => server = Some(PathBuf::from(exe)),
                    Some("nightlatch-sign") => sign = Some(PathBuf::from(exe)),
                    _ => {}
                }
            }
        }
        Bins {
            server: server.expect("nightlatch-server built"),
            sign: sign.expect("nightlatch-sign built"),
        }
    })
}

// ---------------------------------------------------------------------------
// A server on a fresh data directory, and `nightlatch` pointed at it.

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    base: String,
    admin: String,
    /// Where the CLI keeps its config (NIGHTLATCH_CONFIG) and HOME.
    home: tempfile::TempDir,
    /// Tokens used to log in: they must never show in any output.
    secrets: Mutex<Vec<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What one `nightlatch` run left.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

impl Server {
    fn start() -> Self {
        Self::start_with("")
    }

    /// A server whose config file also holds `extra` (TOML sections).
    fn start_with(extra: &str) -> Self {
        let bins = bins();
        // A port picked free can be taken before the server binds it: retry.
        for attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("server.toml");
            // Bad-token tests: lift the per-client budgets meant for real clients.
            std::fs::write(
                &config,
                format!("[http]\nrefusal_rate = 1000000\nrefusal_burst = 1000000\npublic_rate = 1000000\npublic_burst = 1000000\n{extra}"),
            )
            .unwrap();
            let data = dir.path().join("data");
            let port = free_port();
            let child = StdCommand::new(&bins.server)
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(&config)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("NIGHTLATCH_LOG", "warn")
                .env_remove("NIGHTLATCH_ADMIN_TOKEN")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nightlatch-server");
            let mut s = Self {
                child,
                dir,
                base: format!("http://127.0.0.1:{port}"),
                admin: String::new(),
                home: tempfile::tempdir().unwrap(),
                secrets: Mutex::new(Vec::new()),
            };
            if s.wait_ready() {
                s.admin = std::fs::read_to_string(data.join("admin-token"))
                    .unwrap()
                    .trim()
                    .to_owned();
                return s;
            }
            eprintln!("nightlatch-server on port {port} did not start (attempt {attempt})");
        }
        panic!("nightlatch-server did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let client = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send()
                && r.status().is_success()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join("nightlatch").join("config.toml")
    }

    /// `nightlatch ARGS` with the config file of this test, no inherited
    /// server or token.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("nightlatch").unwrap();
        c.args(args)
            .env("NIGHTLATCH_CONFIG", self.config_path())
            .env("HOME", self.home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NIGHTLATCH_SERVER")
            .env_remove("NIGHTLATCH_TOKEN")
            .timeout(Duration::from_secs(120));
        c
    }

    /// Check an output for every login token.
    fn check_secrets(&self, what: &str, stdout: &str, stderr: &str) {
        for s in self.secrets.lock().unwrap().iter() {
            assert!(
                !stdout.contains(s.as_str()) && !stderr.contains(s.as_str()),
                "a login token appears in the output of `{what}`:\nstdout: {stdout}\nstderr: {stderr}"
            );
        }
    }

    fn finish(&self, args: &[&str], out: Output) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.check_secrets(&args.join(" "), &run.stdout, &run.stderr);
        run
    }

    /// Run `nightlatch ARGS`.
    fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().unwrap();
        self.finish(args, out)
    }

    /// Run `nightlatch ARGS` with `stdin`.
    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let out = self.cmd(args).write_stdin(stdin).output().unwrap();
        self.finish(args, out)
    }

    /// `nightlatch login` with `token` on stdin (remembered as a secret).
    fn login(&self, token: &str, extra: &[&str]) -> Run {
        self.secrets.lock().unwrap().push(token.to_owned());
        let mut args = vec!["login", "--server", &self.base];
        args.extend_from_slice(extra);
        self.run_stdin(&args, &format!("{token}\n"))
    }

    /// A new token with `role` (through the CLI).
    fn token(&self, name: &str, role: &str) -> (String, String) {
        let v = self
            .run(&["token", "create", "--name", name, "--role", role, "--json"])
            .ok()
            .json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Sign and publish firmware `versions` of [`MODEL`] with
    /// `nightlatch-sign` (keygen, sign, delta, publish --server).
    fn publish(&self, versions: &[(&str, u32)]) {
        let bins = bins();
        let work = self.dir.path().join("release");
        std::fs::create_dir_all(&work).unwrap();
        let key = work.join("release");
        if !key.with_extension("key").exists() {
            let out = StdCommand::new(&bins.sign)
                .args(["keygen", "--unencrypted"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(out.status.success(), "keygen: {out:?}");
        }
        let mut files = Vec::new();
        for (i, (version, counter)) in versions.iter().enumerate() {
            let image = work.join(format!("{version}.bin"));
            // Pseudo-random bytes (xorshift), a few hundred changed per version.
            let mut x: u32 = 0x9e37_79b9;
            let mut payload: Vec<u8> = (0..20_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for b in payload.iter_mut().skip(1000 * i).take(300) {
                *b = b.wrapping_add(*counter as u8);
            }
            std::fs::write(&image, payload).unwrap();
            let env = work.join(format!("{version}.nlfw"));
            let out = StdCommand::new(&bins.sign)
                .arg("sign")
                .arg("--key")
                .arg(key.with_extension("key"))
                .args(["--model", MODEL, "--version", version])
                .args(["--counter", &counter.to_string()])
                .arg(&image)
                .arg("-o")
                .arg(&env)
                .output()
                .unwrap();
            assert!(out.status.success(), "sign: {out:?}");
            files.push(env);
        }
        if files.len() == 2 {
            let patch = work.join("patch.nldp");
            let out = StdCommand::new(&bins.sign)
                .arg("delta")
                .arg("--from")
                .arg(&files[0])
                .arg("--to")
                .arg(&files[1])
                .arg("-o")
                .arg(&patch)
                .output()
                .unwrap();
            assert!(out.status.success(), "delta: {out:?}");
            files.push(patch);
        }
        let (_, release) = self.token("release-engineer", "release");
        let out = StdCommand::new(&bins.sign)
            .args(["publish", "--server", &self.base, "--key"])
            .arg(self.data().join("keys/image/keys/targets.key"))
            .arg("--trusted-root")
            .arg(self.data().join("keys/image/1.root.json"))
            .args(&files)
            .env("NIGHTLATCH_TOKEN", &release)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nightlatch-sign publish --server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A server with the CLI logged in as its bootstrap security-admin.
fn logged_in() -> Server {
    let s = Server::start();
    s.login(&s.admin.clone(), &[]).ok();
    s
}

// ---------------------------------------------------------------------------
// Locks: signed check-ins as `update-server`'s wire format defines them
// (`wire::checkin_message`: the context line, then the exact body; the
// signature in the `nightlatch-signature` header as unpadded base64url).

struct Lock {
    id: String,
    key: SigningKey,
    counter: u64,
    version: String,
    security_counter: u32,
    boot_state: &'static str,
    last_update: Option<Value>,
    director_version: u64,
}

impl Lock {
    fn new(id: &str, seed: u8) -> Self {
        Self {
            id: id.to_owned(),
            key: SigningKey::from_bytes(&[seed; 32]),
            counter: 0,
            version: "1.0.0".into(),
            security_counter: 1,
            boot_state: "confirmed",
            last_update: None,
            director_version: 0,
        }
    }

    fn public_key_hex(&self) -> String {
        self.key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// One check-in; the image target the director assigns, if any
    /// (name, version).
    fn check_in(
        &mut self,
        http: &reqwest::blocking::Client,
        base: &str,
    ) -> Option<(String, String)> {
        self.counter += 1;
        let nonce = format!("{}-{:016}-nonce", self.id, self.counter);
        let mut report = json!({
            "hardware_model": MODEL,
            "firmware": {"version": self.version, "security_counter": self.security_counter},
            "boot_state": self.boot_state,
            "battery_percent": 80,
            "time_zone": "Europe/Berlin",
        });
        if let Some(u) = &self.last_update {
            report["last_update"] = u.clone();
        }
        let body = serde_json::to_vec(&json!({
            "device_id": self.id,
            "counter": self.counter,
            "nonce": URL_SAFE_NO_PAD.encode(nonce.as_bytes()),
            "director_targets_version": self.director_version,
            "report": report,
        }))
        .unwrap();
        let mut message = b"nightlatch/check-in/v1\n".to_vec();
        message.extend_from_slice(&body);
        let sig = self.key.sign(&message);
        let r = http
            .post(format!("{base}/v1/devices/{}/check-in", self.id))
            .header(
                "nightlatch-signature",
                format!("ed25519={}", URL_SAFE_NO_PAD.encode(sig.to_bytes())),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status();
        let v: Value = r.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "check-in of {}: {status} {v}", self.id);
        self.director_version = v["director_targets_version"].as_u64().unwrap_or(0);
        let targets = v["director_targets"]["signed"]["targets"].as_object()?;
        targets.iter().find_map(|(name, t)| {
            (t["custom"]["director"]["role"] == "image").then(|| {
                (
                    name.clone(),
                    t["custom"]["nightlatch"]["version"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
        })
    }

    /// Install `target` (on trial), then confirm it, reporting each step.
    fn install(
        &mut self,
        http: &reqwest::blocking::Client,
        base: &str,
        target: &str,
        version: &str,
    ) {
        self.version = version.to_owned();
        self.security_counter += 1;
        self.boot_state = "trial";
        self.last_update = Some(json!({"target": target, "outcome": "installed"}));
        self.check_in(http, base);
        self.boot_state = "confirmed";
        self.last_update = Some(json!({"target": target, "outcome": "confirmed"}));
        self.check_in(http, base);
    }
}

fn locks(prefix: &str, n: u8) -> Vec<Lock> {
    (0..n)
        .map(|i| {
            Lock::new(
                &format!("{prefix}-{i:02}"),
                i.wrapping_mul(7).wrapping_add(11),
            )
        })
        .collect()
}

fn import_lines(locks: &[Lock], site: &str, group: &str) -> String {
    locks
        .iter()
        .map(|l| {
            json!({"id": l.id, "hardware_model": MODEL, "public_key": l.public_key_hex(),
                   "site": site, "groups": [group]})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn login_profiles_whoami_logout_and_the_config_file() {
    let s = Server::start();
    let cfg = s.config_path();

    // Not logged in yet: exit 3 and the way out.
    let r = s.run(&["whoami"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not logged in"), "{r:?}");

    // A bad token is refused by the server and nothing is saved.
    let r = s.login(
        "nlt_0000000000000000000000000000000000000000000000000000000000000000",
        &[],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("token revoked") || r.stderr.contains("not logged in"),
        "{r:?}"
    );
    assert!(!cfg.exists());

    // Login: token on stdin, checked with whoami, saved 0600.
    let r = s.login(&s.admin.clone(), &[]).ok();
    assert!(r.stdout.contains("security-admin"), "{r:?}");
    assert!(r.stderr.contains("Logged in"), "{r:?}");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains(&s.admin), "the config file holds the token");
    assert!(text.contains(&s.base));
    assert!(
        text.contains("default_profile = \"default\""),
        "{}",
        cfg.display()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "config file mode {mode:o}");
        let dir_mode = std::fs::metadata(cfg.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "config dir mode {dir_mode:o}");
    }

    // --json: whoami passes the API's answer through; login adds where.
    let v = s.login(&s.admin.clone(), &["--json"]).ok().json();
    assert_eq!(v["role"], "security-admin");
    assert_eq!(v["profile"], "default");
    assert_eq!(v["server"], s.base);
    let r = s.run(&["whoami"]).ok();
    assert!(
        r.stdout.contains("bootstrap") && r.stdout.contains("security-admin"),
        "{r:?}"
    );
    assert!(r.stdout.contains(&s.base), "{r:?}");
    let v = s.run(&["whoami", "--json"]).ok().json();
    assert_eq!(v["name"], "bootstrap");
    assert_eq!(v["role"], "security-admin");
    assert!(v["id"].as_str().unwrap().starts_with("tok-"));

    // A second, named profile with a viewer token; the default stays.
    let (_, viewer) = s.token("alice", "viewer");
    let v = s.login(&viewer, &["--profile", "ro", "--json"]).ok().json();
    assert_eq!(v["role"], "viewer");
    assert_eq!(v["default"], false);
    let v = s.run(&["--profile", "ro", "whoami", "--json"]).ok().json();
    assert_eq!(v["name"], "alice");
    let v = s.run(&["whoami", "--json"]).ok().json();
    assert_eq!(v["name"], "bootstrap");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("[profiles.ro]") && text.contains(&viewer));

    // Environment over the default profile; an explicit --profile over both.
    let (_, op) = s.token("bob", "operator");
    s.secrets.lock().unwrap().push(op.clone());
    let out = s
        .cmd(&["whoami", "--json"])
        .env("NIGHTLATCH_TOKEN", &op)
        .output()
        .unwrap();
    let r = s.finish(&["whoami"], out).ok();
    assert_eq!(r.json()["name"], "bob");
    let out = s
        .cmd(&["--profile", "ro", "whoami", "--json"])
        .env("NIGHTLATCH_TOKEN", &op)
        .output()
        .unwrap();
    assert_eq!(s.finish(&["whoami"], out).ok().json()["name"], "alice");
    // Env only, no config file needed.
    let out = s
        .cmd(&["whoami", "--json"])
        .env("NIGHTLATCH_CONFIG", s.home.path().join("absent.toml"))
        .env("NIGHTLATCH_SERVER", &s.base)
        .env("NIGHTLATCH_TOKEN", &op)
        .output()
        .unwrap();
    assert_eq!(s.finish(&["whoami"], out).ok().json()["role"], "operator");
    // An unknown profile: not logged in there.
    let r = s.run(&["--profile", "nope", "whoami"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("--profile nope"), "{r:?}");

    // --set-default moves the default; --debug never shows the token.
    s.login(&viewer, &["--profile", "ro", "--set-default"]).ok();
    let r = s.run(&["whoami", "--json", "--debug"]).ok();
    assert_eq!(r.json()["name"], "alice");
    assert!(r.stderr.contains("debug: > GET"), "{r:?}");
    assert!(r.stderr.contains("profile ro"), "{r:?}");

    // Logout removes the token (the server URL stays), then whoami is refused.
    let v = s.run(&["logout", "--json"]).ok().json();
    assert_eq!(v, json!({"profile": "ro", "logged_out": true}));
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains(&viewer), "the token is gone: {text}");
    assert!(text.contains(&s.admin), "other profiles stay");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let r = s.run(&["whoami"]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = s.run(&["logout"]).ok();
    assert!(r.stdout.contains("false"), "{r:?}");
    // Logging in again reuses the profile's server.
    let out = s
        .cmd(&["login"])
        .write_stdin(format!("{viewer}\n"))
        .output()
        .unwrap();
    s.finish(&["login"], out).ok();
    // Without a server anywhere, login is a usage error.
    let r = s.run_stdin(&["--profile", "fresh", "login"], "x\n");
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn exit_codes_usage_forbidden_not_found_revoked() {
    let s = logged_in();

    // 2: usage (clap), a bad value, a missing required flag.
    assert_eq!(s.run(&["device", "list", "--bogus"]).code, 2);
    assert_eq!(s.run(&["device", "list", "--status", "sleeping"]).code, 2);
    assert_eq!(
        s.run(&["rollout", "abort", "ro-x"]).code,
        2,
        "--reason is required"
    );
    assert_eq!(
        s.run(&["fleet", "set-minimum", "m"]).code,
        2,
        "nothing to set"
    );
    assert_eq!(
        s.run(&[
            "rollout", "create", "--name", "x", "--target", "y", "--wave", "150%"
        ])
        .code,
        2
    );
    assert_eq!(s.run(&["site", "set", "hq", "--window", "1-5"]).code, 2);
    assert_eq!(s.run(&[]).code, 2);
    assert_eq!(s.run(&["--help"]).code, 0);
    assert_eq!(s.run(&["--version"]).code, 0);

    // 4: not found, with the API's code and message on stderr.
    let r = s.run(&["device", "show", "no-such-lock"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("not_found") && r.stderr.contains("no lock no-such-lock"),
        "{r:?}"
    );
    assert!(r.stdout.is_empty());
    let r = s.run(&["rollout", "show", "ro-none", "--json"]);
    assert_eq!(r.code, 4);
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"], "not_found");
    assert_eq!(e["status"], 404);
    assert_eq!(e["exit_code"], 4);
    assert_eq!(s.run(&["release", "show", "nl-x/9.9.9.nlfw"]).code, 4);
    assert_eq!(s.run(&["token", "revoke", "tok-none", "--yes"]).code, 4);

    // 3: refused by role (403) with a viewer token.
    let (viewer_id, viewer) = s.token("vera", "viewer");
    s.login(&viewer, &["--profile", "viewer"]).ok();
    let r = s.run(&["--profile", "viewer", "token", "list"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("forbidden") && r.stderr.contains("refused by role"),
        "{r:?}"
    );
    let r = s.run(&["--profile", "viewer", "audit", "list", "--json"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        serde_json::from_str::<Value>(r.stderr.trim()).unwrap()["error"],
        "forbidden"
    );
    assert_eq!(
        s.run_stdin(
            &["--profile", "viewer", "device", "import", "-"],
            "[{\"id\":\"a\",\"hardware_model\":\"m\",\"public_key\":\"00\"}]"
        )
        .code,
        3
    );
    // Reading is fine for a viewer.
    s.run(&["--profile", "viewer", "device", "list"]).ok();

    // 401 with a revoked token: exit 3 and a clear message.
    s.run(&["token", "revoke", &viewer_id, "--yes"]).ok();
    let r = s.run(&["--profile", "viewer", "device", "list"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("not logged in or token revoked"), "{r:?}");
    assert!(r.stderr.contains("bad_token"), "{r:?}");

    // 401 with an expired token: it works until its `expires_at`, then is
    // refused like a revoked one (exit 3). The server trusts a looked-up
    // token for a few seconds (its token cache): poll.
    let v = s
        .run(&[
            "token",
            "create",
            "--name",
            "brief",
            "--role",
            "viewer",
            "--expires-in",
            "2s",
            "--json",
        ])
        .ok()
        .json();
    let expires = secs(v["expires_at"].as_str().unwrap());
    assert_eq!(expires - secs(v["created_at"].as_str().unwrap()), 2, "{v}");
    s.login(v["token"].as_str().unwrap(), &["--profile", "brief"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = s.run(&["--profile", "brief", "whoami", "--json"]);
        if r.code != 0 {
            break r;
        }
        assert_eq!(r.json()["name"], "brief");
        assert!(Instant::now() < deadline, "an expired token still works");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(r.code, 3, "{r:?}");
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"], "bad_token", "{e}");
    assert_eq!(e["status"], 401, "{e}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        now >= expires,
        "refused only once expired ({now} < {expires})"
    );
    let r = s.run(&["--profile", "brief", "whoami"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("not logged in or token revoked or expired"),
        "{r:?}"
    );
    let r = s.run(&["token", "list"]).ok();
    let row = r.stdout.lines().find(|l| l.contains("brief")).unwrap();
    assert!(row.contains("(expired)"), "{r:?}");

    // `nightlatch-server recover-admin --expires-in`: a zero or negative
    // lifetime (a token expired at once) is a usage error and mints
    // nothing; a real one reaches the token.
    for bad in ["0s", "-1h"] {
        let out = StdCommand::new(&bins().server)
            .arg("--data-dir")
            .arg(s.data())
            .args(["recover-admin", "--name", "zero", "--expires-in", bad])
            .env("NIGHTLATCH_LOG", "warn")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--expires-in") && out.stdout.is_empty(),
            "{bad}: {stderr}"
        );
    }
    let out = StdCommand::new(&bins().server)
        .arg("--data-dir")
        .arg(s.data())
        .args(["recover-admin", "--name", "day-pass", "--expires-in", "1d"])
        .env("NIGHTLATCH_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = s.run(&["token", "list", "--json"]).ok().json();
    let tokens = v["tokens"].as_array().unwrap();
    assert!(!tokens.iter().any(|t| t["name"] == "zero"), "{v}");
    let t = tokens.iter().find(|t| t["name"] == "day-pass").unwrap();
    assert_eq!(
        secs(t["expires_at"].as_str().unwrap()) - secs(t["created_at"].as_str().unwrap()),
        86_400,
        "{t}"
    );

    // 1: refused for another reason (409: abort an aborted rollout; 422: bad body).
    s.publish(&[("1.0.0", 1)]);
    let id = s
        .run(&[
            "rollout",
            "create",
            "--name",
            "x",
            "--target",
            &format!("{MODEL}/1.0.0.nlfw"),
            "--json",
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.run(&["rollout", "abort", &id, "--reason", "test", "--yes"])
        .ok();
    let r = s.run(&["rollout", "abort", &id, "--reason", "again", "--yes"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("invalid_state"), "{r:?}");
    let r = s.run(&[
        "rollout",
        "create",
        "--name",
        "y",
        "--target",
        "nl-none/1.0.0.nlfw",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("invalid") && r.stderr.contains("HTTP 422"),
        "{r:?}"
    );
    // 1: the server is not there.
    let out = s
        .cmd(&["whoami"])
        .env(
            "NIGHTLATCH_SERVER",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    let r = s.finish(&["whoami"], out);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot reach"), "{r:?}");
}

#[test]
fn destructive_verbs_need_yes_off_a_terminal() {
    let s = logged_in();
    let ls = locks("conf", 2);
    let file = write(s.home.path(), "locks.jsonl", &import_lines(&ls, "hq", "g"));
    s.run(&["device", "import", file.to_str().unwrap()]).ok();
    s.publish(&[("1.0.0", 1)]);
    let id = s
        .run(&[
            "rollout",
            "create",
            "--name",
            "c",
            "--target",
            &format!("{MODEL}/1.0.0.nlfw"),
            "--start",
            "--json",
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tok_id, _) = s.token("temp", "viewer");

    for args in [
        vec!["rollout", "abort", id.as_str(), "--reason", "r"],
        vec!["device", "revoke", "conf-00", "--reason", "stolen"],
        vec!["token", "revoke", tok_id.as_str()],
    ] {
        let r = s.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains("--yes"), "{r:?}");
        assert!(r.stdout.is_empty());
    }
    // Nothing changed.
    assert_eq!(
        s.run(&["rollout", "show", &id, "--json"]).ok().json()["state"],
        "running"
    );
    assert_eq!(
        s.run(&["device", "show", "conf-00", "--json"]).ok().json()["status"],
        "active"
    );
    let tokens = s.run(&["token", "list", "--json"]).ok().json();
    let t = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tok_id.as_str())
        .unwrap()
        .clone();
    assert!(t["revoked_at"].is_null());

    // With --yes (or -y) they go through.
    let r = s
        .run(&["rollout", "abort", &id, "--reason", "r", "--yes"])
        .ok();
    let row = r.stdout.lines().find(|l| l.starts_with(&id));
    assert!(row.is_some_and(|l| l.contains("aborted")), "{r:?}");
    assert!(r.stderr.contains("abort done, now aborted"), "{r:?}");
    // … and with --json: the API's rollout.
    let draft = s
        .run(&[
            "rollout",
            "create",
            "--name",
            "superseded",
            "--target",
            &format!("{MODEL}/1.0.0.nlfw"),
            "--json",
        ])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .run(&[
            "rollout",
            "abort",
            &draft,
            "--reason",
            "replaced by a newer build",
            "--yes",
            "--json",
        ])
        .ok();
    let v = r.json();
    assert_eq!(v["id"], draft.as_str(), "{v}");
    assert_eq!(v["name"], "superseded", "{v}");
    assert_eq!(v["state"], "aborted", "{v}");
    assert_eq!(v["state_reason"], "replaced by a newer build", "{v}");
    assert_eq!(v["target"], format!("{MODEL}/1.0.0.nlfw"), "{v}");
    let v = s
        .run(&[
            "device", "revoke", "conf-00", "--reason", "stolen", "-y", "--json",
        ])
        .ok()
        .json();
    assert_eq!(v, json!({"id": "conf-00", "status": "revoked"}));
    let r = s.run(&["token", "revoke", &tok_id, "--yes"]).ok();
    assert!(
        r.stdout.contains("revoked") && r.stdout.contains("true"),
        "{r:?}"
    );
    // The reason reached the audit log.
    let v = s
        .run(&["audit", "list", "--action", "device.revoke", "--json"])
        .ok()
        .json();
    assert_eq!(v["entries"][0]["detail"]["reason"], "stolen");
}

#[test]
fn devices_sites_fleet_audit_tokens_and_releases() {
    let s = logged_in();
    let dir = s.home.path().to_owned();

    // Releases.
    s.publish(&[("1.0.0", 1), ("1.1.0", 2)]);
    let r = s.run(&["release", "list"]).ok();
    assert!(r.stdout.starts_with("NAME"), "{r:?}");
    assert!(
        r.stdout.contains(&format!("{MODEL}/1.1.0.nlfw")) && r.stdout.contains("from 1.0.0"),
        "{r:?}"
    );
    let v = s
        .run(&["release", "list", "--model", MODEL, "--json"])
        .ok()
        .json();
    let rel = v["releases"].as_array().unwrap();
    assert_eq!(rel.len(), 2);
    for k in [
        "name",
        "hardware_model",
        "version",
        "security_counter",
        "length",
        "sha256",
        "published_at",
        "patches",
    ] {
        assert!(rel[0].get(k).is_some(), "releases[].{k}: {v}");
    }
    assert_eq!(
        s.run(&["release", "list", "--model", "other", "--json"])
            .ok()
            .json()["releases"],
        json!([])
    );
    let name = format!("{MODEL}/1.1.0.nlfw");
    let r = s.run(&["release", "show", &name]).ok();
    assert!(
        r.stdout.contains("security_counter") && r.stdout.contains("Patches (1)"),
        "{r:?}"
    );
    let v = s.run(&["release", "show", &name, "--json"]).ok().json();
    assert_eq!(v["version"], "1.1.0");
    assert_eq!(v["patches"][0]["from_version"], "1.0.0");

    // Import: JSON lines, and a JSON array from stdin.
    let a = locks("dev-a", 3);
    let b = locks("dev-b", 2);
    let file = write(&dir, "a.jsonl", &import_lines(&a, "hq", "pilot"));
    let r = s.run(&["device", "import", file.to_str().unwrap()]).ok();
    assert!(
        r.stdout.contains("imported") && r.stdout.contains('3'),
        "{r:?}"
    );
    let arr: Vec<Value> = import_lines(&b, "depot", "rest")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let v = s
        .run_stdin(
            &["device", "import", "-", "--json"],
            &Value::Array(arr).to_string(),
        )
        .ok()
        .json();
    assert_eq!(v, json!({"imported": 2}));
    // All or none: a duplicate refuses the whole file.
    let r = s.run(&["device", "import", file.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("exists"), "{r:?}");

    // A check-in so the locks have versions and last_seen.
    let http = reqwest::blocking::Client::new();
    let mut a = a;
    for l in &mut a {
        l.check_in(&http, &s.base);
    }

    // List: table, JSON, filters, paging.
    let r = s.run(&["device", "list"]).ok();
    assert!(r.stdout.starts_with("ID"), "{r:?}");
    assert_eq!(r.stdout.lines().count(), 6, "{r:?}");
    let v = s.run(&["device", "list", "--json"]).ok().json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 5);
    assert_eq!(v["total"], 5);
    let v = s
        .run(&["device", "list", "--site", "depot", "--json"])
        .ok()
        .json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 2);
    let v = s
        .run(&[
            "device",
            "list",
            "--group",
            "pilot",
            "--version",
            "1.0.0",
            "--model",
            MODEL,
            "--status",
            "active",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 3);
    let v = s
        .run(&["device", "list", "--prefix", "dev-b", "--json"])
        .ok()
        .json();
    assert_eq!(v["devices"][0]["id"], "dev-b-00");
    let v = s
        .run(&["device", "list", "--stale", "1", "--json"])
        .ok()
        .json();
    assert_eq!(v["devices"], json!([]), "seen just now: not stale");
    let v = s
        .run(&["device", "list", "--stale", "0", "--json"])
        .ok()
        .json();
    assert_eq!(
        v["devices"].as_array().unwrap().len(),
        3,
        "seen before now: the three that checked in"
    );
    let r = s.run(&["device", "list", "--limit", "2"]).ok();
    assert_eq!(r.stdout.lines().count(), 3);
    assert!(r.stderr.contains("--after dev-a-01"), "{r:?}");
    let v = s
        .run(&[
            "device", "list", "--limit", "2", "--after", "dev-a-01", "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["devices"][0]["id"], "dev-a-02");
    let v = s
        .run(&["device", "list", "--limit", "2", "--all", "--json"])
        .ok()
        .json();
    let ids: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["dev-a-00", "dev-a-01", "dev-a-02", "dev-b-00", "dev-b-01"]
    );
    assert!(v["next_after"].is_null());

    // Show and history.
    let r = s.run(&["device", "show", "dev-a-00"]).ok();
    assert!(
        r.stdout.contains("firmware.version") && r.stdout.contains("1.0.0"),
        "{r:?}"
    );
    let v = s.run(&["device", "show", "dev-a-00", "--json"]).ok().json();
    assert_eq!(v["site"], "hq");
    assert_eq!(v["groups"], json!(["pilot"]));
    let r = s.run(&["device", "history", "dev-a-00"]).ok();
    assert!(
        r.stdout.starts_with("AT") && r.stdout.contains("registered"),
        "{r:?}"
    );
    let v = s
        .run(&["device", "history", "dev-a-00", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(v["events"].as_array().unwrap().len(), 1);

    // Revoke.
    let r = s
        .run(&["device", "revoke", "dev-b-01", "--reason", "lost", "--yes"])
        .ok();
    assert!(r.stdout.contains("revoked"), "{r:?}");
    let v = s
        .run(&["device", "list", "--status", "revoked", "--json"])
        .ok()
        .json();
    assert_eq!(v["devices"][0]["id"], "dev-b-01");

    // Sites: set (merging), show, list.
    let r = s
        .run(&[
            "site",
            "set",
            "hq",
            "--window",
            "01:00-05:00",
            "--tz",
            "Europe/Berlin",
            "--blackout",
            "2030-12-24,2030-12-25",
        ])
        .ok();
    assert!(
        r.stdout.contains("01:00-05:00") && r.stdout.contains("Europe/Berlin"),
        "{r:?}"
    );
    let v = s
        .run(&["site", "set", "hq", "--tz", "Europe/Paris", "--json"])
        .ok()
        .json();
    assert_eq!(
        v,
        json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "time_zone": "Europe/Paris",
               "blackout_dates": ["2030-12-24", "2030-12-25"]})
    );
    let v = s
        .run(&["site", "set", "hq", "--blackout", "none", "--json"])
        .ok()
        .json();
    assert_eq!(v["blackout_dates"], json!([]));
    let v = s.run(&["site", "show", "hq", "--json"]).ok().json();
    assert_eq!(v["time_zone"], "Europe/Paris");
    let r = s.run(&["site", "show", "hq"]).ok();
    assert!(
        r.stdout.contains("quiet_hours") && r.stdout.contains("01:00-05:00"),
        "{r:?}"
    );
    let r = s.run(&["site", "list"]).ok();
    assert!(
        r.stdout.starts_with("SITE")
            && r.stdout.contains("hq")
            && r.stdout.contains("Europe/Paris"),
        "{r:?}"
    );
    let v = s.run(&["site", "list", "--json"]).ok().json();
    assert_eq!(v["sites"][0]["site"], "hq");
    assert_eq!(s.run(&["site", "set", "hq"]).code, 2);

    // Fleet.
    let r = s.run(&["fleet", "versions"]).ok();
    assert!(
        r.stdout.starts_with("MODEL") && r.stdout.contains("1.0.0"),
        "{r:?}"
    );
    let v = s
        .run(&["fleet", "versions", "--model", MODEL, "--json"])
        .ok()
        .json();
    let c = v["counts"].as_array().unwrap();
    assert!(
        c.iter()
            .any(|c| c["firmware_version"] == "1.0.0" && c["count"] == 3),
        "{v}"
    );
    let r = s
        .run(&["fleet", "below-minimum", "--min-version", "1.1.0"])
        .ok();
    assert!(r.stdout.contains("dev-a-00"), "{r:?}");
    let v = s
        .run(&[
            "fleet",
            "below-minimum",
            "--min-security-counter",
            "2",
            "--model",
            MODEL,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 3);
    // A stored minimum: below-minimum without flags uses it.
    let v = s
        .run(&[
            "fleet",
            "set-minimum",
            MODEL,
            "--min-version",
            "1.1.0",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["min_version"], "1.1.0", "{v}");
    // set-minimum as a table: FIELD VALUE rows of what is stored now.
    let r = s
        .run(&[
            "fleet",
            "set-minimum",
            MODEL,
            "--min-version",
            "1.1.0",
            "--min-security-counter",
            "2",
        ])
        .ok();
    assert_eq!(field(&r.stdout, "hardware_model").as_deref(), Some(MODEL));
    assert_eq!(field(&r.stdout, "min_version").as_deref(), Some("1.1.0"));
    assert_eq!(
        field(&r.stdout, "min_security_counter").as_deref(),
        Some("2"),
        "{r:?}"
    );
    assert_eq!(
        field(&r.stdout, "set_by").as_deref(),
        Some("bootstrap"),
        "{r:?}"
    );
    let r = s.run(&["fleet", "minimums"]).ok();
    assert!(r.stdout.starts_with("MODEL"), "{r:?}");
    let row = r.stdout.lines().find(|l| l.starts_with(MODEL)).unwrap();
    assert!(
        row.contains("1.1.0") && row.contains(" 2 ") && row.contains("bootstrap"),
        "{r:?}"
    );
    let v = s.run(&["fleet", "minimums", "--json"]).ok().json();
    let m = v["minimums"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["hardware_model"] == MODEL)
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(m["min_version"], "1.1.0", "{v}");
    assert_eq!(m["min_security_counter"], 2, "{v}");
    assert_eq!(m["set_by"], "bootstrap", "{v}");
    assert!(m["set_at"].is_string(), "{v}");
    let r = s.run(&["fleet", "below-minimum"]).ok();
    assert!(r.stdout.contains("dev-a-00"), "{r:?}");
    let v = s
        .run(&["fleet", "set-minimum", MODEL, "--clear", "--json"])
        .ok()
        .json();
    assert_eq!(v["cleared"], true, "{v}");
    let v = s.run(&["fleet", "below-minimum", "--json"]).ok().json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 0, "{v}");
    let r = s.run(&["fleet", "stale", "--days", "0"]).ok();
    assert!(r.stdout.contains("dev-b-00"), "never seen: {r:?}");
    let v = s
        .run(&["fleet", "stale", "--days", "1", "--json"])
        .ok()
        .json();
    let stale: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(
        stale.contains(&"dev-b-00") && !stale.contains(&"dev-a-00"),
        "{v}"
    );

    // Tokens.
    let (id, secret) = s.token("carol", "operator");
    let r = s
        .run(&["token", "create", "--name", "dave", "--role", "viewer"])
        .ok();
    assert!(
        r.stdout.contains("nlt_") && r.stderr.contains("shown this once"),
        "{r:?}"
    );
    assert_eq!(
        field(&r.stdout, "expires_at").as_deref(),
        Some("never"),
        "{r:?}"
    );
    assert!(r.stderr.contains("lives until revoked"), "{r:?}");
    // --expires-in: the lifetime goes to the server (`expires_in`), which
    // answers with `expires_at`; shown by create (table and JSON) and list.
    let r = s
        .run(&[
            "token",
            "create",
            "--name",
            "erin",
            "--role",
            "viewer",
            "--expires-in",
            "1h",
        ])
        .ok();
    let erin = field(&r.stdout, "id").unwrap_or_else(|| panic!("{r:?}"));
    let erin_expires = field(&r.stdout, "expires_at").unwrap_or_else(|| panic!("{r:?}"));
    let created = field(&r.stdout, "created_at").unwrap();
    assert_eq!(
        secs(&erin_expires) - secs(&created),
        3600,
        "an hour after creation: {r:?}"
    );
    assert!(
        r.stderr.contains(&format!("it expires at {erin_expires}")),
        "{r:?}"
    );
    let v = s
        .run(&[
            "token",
            "create",
            "--name",
            "fred",
            "--role",
            "operator",
            "--expires-in",
            "30d",
            "--json",
        ])
        .ok()
        .json();
    assert!(v["token"].as_str().unwrap().starts_with("nlt_"), "{v}");
    assert_eq!(
        secs(v["expires_at"].as_str().unwrap()) - secs(v["created_at"].as_str().unwrap()),
        30 * 86_400,
        "{v}"
    );
    let fred = v["id"].as_str().unwrap().to_owned();
    // Bad lifetimes: not a duration or zero (exit 2, checked here), more
    // than the server allows (422, exit 1); no token is made.
    for bad in ["soon", "0s", "-1h"] {
        let r = s.run(&[
            "token",
            "create",
            "--name",
            "gus",
            "--role",
            "viewer",
            "--expires-in",
            bad,
        ]);
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(r.stderr.contains("--expires-in"), "{r:?}");
    }
    let r = s.run(&[
        "token",
        "create",
        "--name",
        "gus",
        "--role",
        "viewer",
        "--expires-in",
        "11years",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("at most 10 years"), "{r:?}");
    let r = s.run(&["token", "list"]).ok();
    let header: Vec<&str> = r.stdout.lines().next().unwrap().split("  ").collect();
    assert!(
        r.stdout.starts_with("ID") && r.stdout.contains("carol") && r.stdout.contains("dave"),
        "{r:?}"
    );
    assert!(
        header.iter().any(|h| h.trim() == "EXPIRES"),
        "an EXPIRES column: {r:?}"
    );
    let row = |id: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {r:?}"))
            .to_owned()
    };
    assert!(row(&erin).contains(&erin_expires), "{r:?}");
    assert!(row(&id).contains("never"), "{r:?}");
    assert!(!r.stdout.contains(&secret), "secrets are never listed");
    assert!(!r.stdout.contains("nlt_"), "secrets are never listed");
    let v = s.run(&["token", "list", "--json"]).ok().json();
    let tokens = v["tokens"].as_array().unwrap();
    assert!(
        tokens.iter().any(|t| t["id"] == id.as_str()
            && t["role"] == "operator"
            && t["expires_at"].is_null()),
        "{v}"
    );
    let e = tokens.iter().find(|t| t["id"] == erin.as_str()).unwrap();
    assert_eq!(e["expires_at"], erin_expires.as_str(), "{v}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ahead = secs(&erin_expires) - now;
    assert!(
        (3300..=3600).contains(&ahead),
        "about an hour ahead: {ahead} s"
    );
    assert!(tokens.iter().any(|t| t["id"] == fred.as_str()), "{v}");
    assert!(
        !tokens.iter().any(|t| t["name"] == "gus"),
        "refused lifetimes make no token: {v}"
    );
    let v = s
        .run(&["token", "revoke", &id, "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(v, json!({"id": id, "revoked": true}));

    // Audit: list with filters and paging, export as CSV and JSON.
    let r = s.run(&["audit", "list"]).ok();
    assert!(
        r.stdout.starts_with("ID") && r.stdout.contains("device.import"),
        "{r:?}"
    );
    let v = s
        .run(&["audit", "list", "--action", "site.*", "--json"])
        .ok()
        .json();
    let e = v["entries"].as_array().unwrap();
    assert_eq!(e.len(), 3, "{v}");
    assert!(
        e.iter()
            .all(|e| e["action"] == "site.policy" && e["actor"] == "bootstrap")
    );
    let v = s
        .run(&[
            "audit",
            "list",
            "--actor",
            "bootstrap",
            "--limit",
            "2",
            "--all",
            "--json",
        ])
        .ok()
        .json();
    let all = v["entries"].as_array().unwrap().len();
    assert!(all > 5, "{v}");
    let r = s.run(&["audit", "list", "--limit", "1"]).ok();
    assert!(r.stderr.contains("--after"), "{r:?}");
    let r = s.run(&["audit", "export", "--action", "token.*"]).ok();
    assert!(
        r.stdout
            .starts_with("id,at,token_id,actor,role,action,subject,detail"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("token.create") && r.stdout.contains("token.revoke"),
        "{r:?}"
    );
    let csv = dir.join("audit.csv");
    let r = s
        .run(&[
            "audit",
            "export",
            "--since",
            "2000-01-01T00:00:00Z",
            "-o",
            csv.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stdout.is_empty() && r.stderr.contains("written"), "{r:?}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().count() > all, "{text}");
    let v = s
        .run(&["audit", "export", "--action", "token.*", "--json"])
        .ok()
        .json();
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("token."))
    );
}

/// Start `nightlatch rollout show ID --watch` in the background.
fn spawn_watch(s: &Server, id: &str, extra: &[&str]) -> Child {
    let mut c = StdCommand::new(env!("CARGO_BIN_EXE_nightlatch"));
    c.args(["rollout", "show", id, "--watch", "--interval", "0.2"])
        .args(extra)
        .env("NIGHTLATCH_CONFIG", s.config_path())
        .env("HOME", s.home.path())
        .env_remove("NIGHTLATCH_SERVER")
        .env_remove("NIGHTLATCH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Wait for a watch to end (bounded); its run.
fn wait_watch(s: &Server, mut child: Child, within: Duration) -> Run {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            s.check_secrets("rollout show --watch", &stdout, &stderr);
            return Run {
                code: status.code().unwrap_or(-1),
                stdout,
                stderr,
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the watch did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_rollout_driven_from_create_to_completion() {
    let s = logged_in();
    let http = reqwest::blocking::Client::new();
    s.publish(&[("1.0.0", 1), ("2.0.0", 2)]);
    let target = format!("{MODEL}/2.0.0.nlfw");

    // Eight locks, registered with the CLI, report 1.0.0 once.
    let mut fleet = locks("lock", 8);
    let file = write(
        s.home.path(),
        "fleet.jsonl",
        &import_lines(&fleet, "hq", "pilot"),
    );
    s.run(&["device", "import", file.to_str().unwrap()]).ok();
    s.run(&[
        "site",
        "set",
        "hq",
        "--window",
        "01:00-05:00",
        "--tz",
        "Europe/Berlin",
    ])
    .ok();
    for l in &mut fleet {
        assert_eq!(l.check_in(&http, &s.base), None, "nothing assigned yet");
    }

    let spec = [
        "--name",
        "2.0.0 staged",
        "--target",
        target.as_str(),
        "--from-version",
        "1.0.0",
        "--wave",
        "25%:1s",
        "--wave",
        "100%",
        "--failure-rate",
        "50%",
        "--min-sample",
        "4",
    ];
    // Preview: nothing created; eligible locks per wave, nights, risk.
    let mut preview = vec!["rollout", "preview"];
    preview.extend_from_slice(&spec);
    let r = s.run(&preview).ok();
    assert!(
        r.stdout.contains("ELIGIBLE") && r.stdout.contains("DOOR OPENINGS"),
        "{r:?}"
    );
    assert!(r.stderr.contains("8 eligible"), "{r:?}");
    preview.push("--json");
    let v = s.run(&preview).ok().json();
    assert_eq!(v["eligible"], 8, "{v}");
    let waves = v["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2);
    for k in [
        "index",
        "share",
        "eligible",
        "nights",
        "unscheduled",
        "expected_door_openings",
    ] {
        assert!(waves[0].get(k).is_some(), "waves[].{k}: {v}");
    }
    let per_wave: i64 = waves.iter().map(|w| w["eligible"].as_i64().unwrap()).sum();
    assert_eq!(per_wave, 8, "{v}");
    assert_eq!(
        s.run(&["rollout", "list", "--json"]).ok().json()["rollouts"],
        json!([])
    );
    let mut with_start = preview.clone();
    with_start.push("--start");
    assert_eq!(s.run(&with_start).code, 2, "--start is for create");

    // Create a draft, look at it, start it.
    let mut create = vec!["rollout", "create"];
    create.extend_from_slice(&spec);
    let r = s.run(&create).ok();
    assert!(
        r.stdout.contains("draft") && r.stderr.contains("rollout start"),
        "{r:?}"
    );
    let v = s.run(&["rollout", "list", "--json"]).ok().json();
    let id = v["rollouts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["rollouts"][0]["state"], "draft");
    let r = s.run(&["rollout", "list"]).ok();
    assert!(
        r.stdout.starts_with("ID") && r.stdout.contains(&id),
        "{r:?}"
    );
    let r = s.run(&["rollout", "show", &id]).ok();
    assert!(
        r.stdout.contains("Waves") && r.stdout.contains("25%") && r.stdout.contains("100%"),
        "{r:?}"
    );
    let v = s.run(&["rollout", "show", &id, "--json"]).ok().json();
    assert_eq!(v["state"], "draft");
    assert_eq!(v["waves"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["failure_threshold"],
        json!({"rate": 0.5, "min_sample": 4})
    );
    // A draft is not running: a watch ends at once, exit 1.
    let r = s.run(&["rollout", "show", &id, "--watch", "--interval", "0.2"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("draft"), "{r:?}");

    let r = s
        .run(&["rollout", "start", &id, "--reason", "canary approved"])
        .ok();
    assert!(r.stdout.contains("running"), "{r:?}");

    // Pause and resume on the way (the watch of a paused rollout exits 1).
    let v = s
        .run(&["rollout", "pause", &id, "--reason", "hold on", "--json"])
        .ok()
        .json();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["state_reason"], "hold on");
    let r = wait_watch(&s, spawn_watch(&s, &id, &[]), Duration::from_secs(30));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("paused: hold on"), "{r:?}");
    let v = s.run(&["rollout", "resume", &id, "--json"]).ok().json();
    assert_eq!(v["state"], "running");
    // The same as tables: the rollout's row (its new STATE), the verb on
    // stderr; no --reason: the server names who did it.
    let r = s.run(&["rollout", "pause", &id]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{r:?}"
    );
    assert!(
        lines[1].starts_with(&id)
            && lines[1].contains("2.0.0 staged")
            && lines[1].contains("paused"),
        "{r:?}"
    );
    assert!(r.stderr.contains("pause done, now paused"), "{r:?}");
    let v = s.run(&["rollout", "show", &id, "--json"]).ok().json();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["state_reason"], "pause by bootstrap", "{v}");
    let r = s
        .run(&["rollout", "resume", &id, "--reason", "looked again"])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{r:?}"
    );
    assert!(
        lines[1].starts_with(&id) && lines[1].contains("running") && lines[1].contains(&target),
        "{r:?}"
    );
    assert!(r.stderr.contains("resume done, now running"), "{r:?}");

    // Watch (one line per change off a terminal) while the fleet updates.
    let watch = spawn_watch(&s, &id, &[]);
    let json_watch = spawn_watch(&s, &id, &["--json"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while fleet.iter().any(|l| l.version != "2.0.0") {
        assert!(
            Instant::now() < deadline,
            "the fleet did not update in time"
        );
        for l in &mut fleet {
            if l.version == "2.0.0" {
                continue;
            }
            if let Some((name, version)) = l.check_in(&http, &s.base) {
                assert_eq!(name, target);
                l.install(&http, &s.base, &name, &version);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = wait_watch(&s, watch, Duration::from_secs(60));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("complete: 8 confirmed, 0 failed"),
        "{r:?}"
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines.len() >= 2, "one line per change: {r:?}");
    let last = lines.last().unwrap();
    assert!(last.contains(&format!("{id} running wave 1/1")), "{last}");
    let confirmed: i64 = last
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("confirmed="))
        .map(|n| n.parse::<i64>().unwrap())
        .sum();
    assert_eq!(confirmed, 8, "{last}");
    for w in lines.windows(2) {
        assert_ne!(
            w[0].split_once(' ').unwrap().1,
            w[1].split_once(' ').unwrap().1,
            "a line per change only"
        );
    }
    let r = wait_watch(&s, json_watch, Duration::from_secs(60));
    assert_eq!(r.code, 0, "{r:?}");
    let docs: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!docs.is_empty());
    assert_eq!(docs.last().unwrap()["successes"], 8);

    // The end state, through the CLI.
    let v = s.run(&["rollout", "show", &id, "--json"]).ok().json();
    assert_eq!(v["successes"], 8);
    assert_eq!(v["state"], "running");
    let confirmed: i64 = v["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["devices"]["confirmed"].as_i64().unwrap())
        .sum();
    assert_eq!(confirmed, 8);
    let r = s.run(&["rollout", "show", &id]).ok();
    assert!(
        r.stdout.contains("CONFIRMED") && r.stdout.contains("2.0.0"),
        "{r:?}"
    );
    let r = s.run(&["rollout", "devices", &id]).ok();
    assert!(
        r.stdout.starts_with("LOCK")
            && r.stdout.contains("lock-07")
            && r.stdout.contains("confirmed"),
        "{r:?}"
    );
    let v = s
        .run(&[
            "rollout",
            "devices",
            &id,
            "--status",
            "confirmed",
            "--limit",
            "3",
            "--all",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["devices"].as_array().unwrap().len(), 8);
    let v = s
        .run(&[
            "rollout",
            "devices",
            &id,
            "--status",
            "failed,rolled_back",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["devices"], json!([]));
    let v = s
        .run(&["fleet", "versions", "--model", MODEL, "--json"])
        .ok()
        .json();
    assert_eq!(
        v["counts"],
        json!([{"hardware_model": MODEL, "firmware_version": "2.0.0", "count": 8}])
    );
    let v = s.run(&["device", "show", "lock-03", "--json"]).ok().json();
    assert_eq!(v["firmware"]["version"], "2.0.0");
    assert_eq!(v["last_update"]["outcome"], "confirmed");
    let r = s.run(&["device", "history", "lock-03"]).ok();
    assert!(r.stdout.contains("confirmed"), "{r:?}");

    // Another rollout, a draft started with --json, then aborted: the
    // watch exits 1 and says why.
    let v = s
        .run(&[
            "rollout", "create", "--name", "again", "--target", &target, "--json",
        ])
        .ok()
        .json();
    assert_eq!(v["state"], "draft", "{v}");
    let id2 = v["id"].as_str().unwrap().to_owned();
    let r = s
        .run(&["rollout", "start", &id2, "--reason", "second run", "--json"])
        .ok();
    assert!(r.stderr.is_empty(), "--json: no progress line: {r:?}");
    let v = r.json();
    assert_eq!(v["id"], id2.as_str(), "{v}");
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["name"], "again", "{v}");
    assert_eq!(v["target"], target.as_str(), "{v}");
    assert_eq!(v["target_version"], "2.0.0", "{v}");
    assert_eq!(v["hardware_model"], MODEL, "{v}");
    assert_eq!(v["current_wave"], 0, "{v}");
    assert!(v["current_wave_started_at"].is_string(), "{v}");
    assert_eq!(v["created_by"], "bootstrap", "{v}");
    let watch = spawn_watch(&s, &id2, &[]);
    std::thread::sleep(Duration::from_millis(500));
    s.run(&["rollout", "abort", &id2, "--reason", "not needed", "--yes"])
        .ok();
    let r = wait_watch(&s, watch, Duration::from_secs(30));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("aborted: not needed"), "{r:?}");

    // Every change is in the audit log, by the CLI's token.
    let v = s
        .run(&["audit", "list", "--action", "rollout.*", "--all", "--json"])
        .ok()
        .json();
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "rollout.create",
        "rollout.start",
        "rollout.pause",
        "rollout.resume",
        "rollout.abort",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rollout.start"
                && e["subject"] == id2.as_str()
                && e["detail"]["reason"] == "second run"),
        "{v}"
    );
}

// ---------------------------------------------------------------------------
// Webhooks: a receiver on loopback (std only) that answers 200 and keeps
// every request, and the signature check a receiver makes.

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    /// Names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A test.ping of event `id` (the body's `id`).
    fn is_ping(&self, id: &str) -> bool {
        let v = self.json();
        v["type"] == "test.ping" && v["id"] == id
    }
}

/// An HTTP/1.1 endpoint on 127.0.0.1 answering every request with
/// `status` (200 unless changed) and keeping each request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/nightlatch", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (keep, answer) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (keep, answer) = (keep.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = serve_http(stream, &keep, &answer);
                });
            }
        });
        Self { url, got, status }
    }

    /// Answer `status` from now on.
    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The first request matching `f`, waiting up to `within`.
    fn wait_for(&self, within: Duration, f: impl Fn(&Received) -> bool) -> Received {
        self.wait_for_after(0, within, f)
    }

    /// How many requests it got so far.
    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// The first request after the first `skip` matching `f`, waiting up
    /// to `within`.
    fn wait_for_after(
        &self,
        skip: usize,
        within: Duration,
        f: impl Fn(&Received) -> bool,
    ) -> Received {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self.got.lock().unwrap().iter().skip(skip).find(|r| f(r)) {
                return r.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no matching request within {within:?}; got {:?}",
                self.got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Serve one connection (keep-alive: request after request).
fn serve_http(
    stream: std::net::TcpStream,
    got: &Mutex<Vec<Received>>,
    status: &AtomicU16,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if r.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v): &(String, String)| v.clone())
        };
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                r.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if n == 0 {
                    // Trailers, then the blank line.
                    loop {
                        let mut t = String::new();
                        if r.read_line(&mut t)? == 0 || t.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                r.read_exact(&mut chunk)?;
                body.extend_from_slice(&chunk[..n]);
            }
        } else if let Some(n) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body = vec![0; n];
            r.read_exact(&mut body)?;
        }
        let close = find("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        got.lock().unwrap().push(Received {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body,
        });
        let code = status.load(Ordering::SeqCst);
        let reason = if code == 200 { "OK" } else { "Error" };
        out.write_all(
            format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
            )
            .as_bytes(),
        )?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// The `t` and the `v1` signatures of an `X-Nightlatch-Signature` header
/// (`t=…,v1=…[,v1=…]`).
fn signature_parts(header: &str) -> (String, Vec<String>) {
    let mut t = String::new();
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.to_owned(),
            Some(("v1", v)) => v1.push(v.to_owned()),
            _ => {}
        }
    }
    (t, v1)
}

/// HMAC-SHA256(secret, t + "." + body), lower-case hex.
fn webhook_signature(secret: &str, t: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `v1` signatures of `req`, after checking its timestamp is now-ish.
fn signatures(req: &Received) -> (String, Vec<String>) {
    let header = req
        .header("x-nightlatch-signature")
        .unwrap_or_else(|| panic!("no X-Nightlatch-Signature: {req:?}"));
    let (t, v1) = signature_parts(header);
    let ts: u64 = t.parse().unwrap_or_else(|_| panic!("t={t:?} in {header}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 300, "t={ts} is not now ({now})");
    (t, v1)
}

/// A `FIELD VALUE` row of a plain `show`-style table.
fn field(stdout: &str, name: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(char::is_whitespace)?;
        (k == name).then(|| v.trim().to_owned())
    })
}

/// Unix seconds of an RFC 3339 time the server printed.
fn secs(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn webhooks_created_tested_signed_rotated_and_deleted() {
    // Loopback receivers allowed; a failing subscription is disabled after
    // two failed attempts, retried quickly.
    let s = Server::start_with(
        "[webhooks]\nallow_private_addresses = true\ndisable_after_failures = 2\n\
         retry_backoff = \"200ms\"\nretry_backoff_cap = \"400ms\"\n",
    );
    s.login(&s.admin.clone(), &[]).ok();
    let rx = Receiver::start();

    // Usage: not an http(s) URL, a bad --overlap (checked here, exit 2).
    assert_eq!(
        s.run(&["webhook", "create", "--url", "ftp://example.com/x"])
            .code,
        2
    );
    assert_eq!(
        s.run(&["webhook", "create", "--event", "test.ping"]).code,
        2,
        "--url is required"
    );
    // An event type the server does not know: 422 invalid, exit 1.
    let r = s.run(&[
        "webhook",
        "create",
        "--url",
        &rx.url,
        "--event",
        "no.such.event",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("invalid"), "{r:?}");

    // Create (table): the secret once on stdout, the note on stderr.
    let r = s
        .run(&[
            "webhook",
            "create",
            "--url",
            &rx.url,
            "--description",
            "security alerts",
        ])
        .ok();
    assert!(r.stderr.contains("shown this once"), "{r:?}");
    let secret = field(&r.stdout, "secret").unwrap_or_else(|| panic!("{r:?}"));
    assert!(secret.starts_with("whsec_"), "{r:?}");
    assert!(
        !r.stderr.contains(&secret),
        "the secret goes to stdout only"
    );
    let id = field(&r.stdout, "id").unwrap();
    assert!(id.starts_with("wh-"), "{r:?}");
    assert_eq!(field(&r.stdout, "enabled").as_deref(), Some("true"));

    // Create (--json): the API's answer, events given as a list.
    let v = s
        .run(&[
            "webhook",
            "create",
            "--url",
            &format!("{}/second", rx.url),
            "--event",
            "rollout.paused,rollout.aborted",
            "--json",
        ])
        .ok()
        .json();
    let id2 = v["id"].as_str().unwrap().to_owned();
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_ne!(v["secret"].as_str().unwrap(), secret);
    assert_eq!(v["events"], json!(["rollout.paused", "rollout.aborted"]));
    assert_eq!(v["enabled"], true);
    assert!(v["disabled_reason"].is_null());
    assert_eq!(v["consecutive_failures"], 0);

    // List: a table and JSON, never a secret.
    let r = s.run(&["webhook", "list"]).ok();
    assert!(
        r.stdout.lines().next().unwrap().contains("ENABLED"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&id) && r.stdout.contains(&id2) && r.stdout.contains("security"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("whsec_"), "{r:?}");
    let r = s.run(&["webhook", "list", "--json"]).ok();
    assert!(!r.stdout.contains("whsec_"), "{r:?}");
    let v = r.json();
    let hooks = v["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{v}");
    let h = hooks.iter().find(|h| h["id"] == id.as_str()).unwrap();
    assert_eq!(h["url"], rx.url.as_str());
    assert_eq!(h["events"], json!(["*"]));
    assert_eq!(h["description"], "security alerts");
    assert_eq!(h["created_by"], "bootstrap");

    // Show: fields and delivery counts.
    let r = s.run(&["webhook", "show", &id]).ok();
    assert!(
        r.stdout.contains(&rx.url) && r.stdout.contains("stats.delivered"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("whsec_"), "{r:?}");
    let v = s.run(&["webhook", "show", &id, "--json"]).ok().json();
    assert_eq!(v["id"], id.as_str());
    assert!(v["stats"]["pending"].is_u64(), "{v}");
    assert!(
        v["secret"].is_null() && v["secret_rotated_at"].is_null(),
        "{v}"
    );

    // Test: a signed test.ping reaches the receiver.
    let r = s.run(&["webhook", "test", &id, "--json"]).ok();
    assert!(r.stderr.contains("deliveries"), "{r:?}");
    let v = r.json();
    assert_eq!(v["type"], "test.ping");
    let ev = v["event_id"].as_str().unwrap().to_owned();
    let req = rx.wait_for(Duration::from_secs(60), |q| q.is_ping(&ev));
    assert!(
        req.request_line.starts_with("POST /hooks/nightlatch "),
        "{req:?}"
    );
    assert_eq!(
        req.header("x-nightlatch-delivery"),
        Some(ev.as_str()),
        "{req:?}"
    );
    let (t, v1) = signatures(&req);
    assert_eq!(
        v1,
        vec![webhook_signature(&secret, &t, &req.body)],
        "one v1 signature, HMAC-SHA256(secret, t.body): {req:?}"
    );

    // Deliveries: the attempt with status 200 (the log is written after
    // the answer: wait for it).
    let deadline = Instant::now() + Duration::from_secs(30);
    let d = loop {
        let v = s.run(&["webhook", "deliveries", &id, "--json"]).ok().json();
        if let Some(d) = v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["event_id"] == ev.as_str())
        {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "no delivery of {ev}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(d["status_code"], 200, "{d}");
    assert_eq!(d["outcome"], "delivered", "{d}");
    assert_eq!(d["event_type"], "test.ping", "{d}");
    assert_eq!(d["attempt"], 1, "{d}");
    assert!(d["latency_ms"].is_u64() && d["error"].is_null(), "{d}");
    let r = s.run(&["webhook", "deliveries", &id]).ok();
    let row = r
        .stdout
        .lines()
        .find(|l| l.contains(&ev))
        .unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        row.contains("test.ping") && row.contains("200") && row.contains("delivered"),
        "{row}"
    );
    let v = s
        .run(&["webhook", "deliveries", &id, "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 1, "{v}");
    let v = s.run(&["webhook", "show", &id, "--json"]).ok().json();
    assert!(v["stats"]["delivered"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["stats"]["last_status"], 200, "{v}");

    // A receiver that fails: the server disables the subscription after
    // two failed attempts (the others get `webhook.disabled`); `test` is
    // refused then; `enable` takes it back and the pending ping arrives,
    // same event id.
    let bad = Receiver::start();
    bad.answer(500);
    let v = s
        .run(&[
            "webhook",
            "create",
            "--url",
            &bad.url,
            "--event",
            "test.ping",
            "--json",
        ])
        .ok()
        .json();
    let id3 = v["id"].as_str().unwrap().to_owned();
    let secret3 = v["secret"].as_str().unwrap().to_owned();
    let ev3 = s.run(&["webhook", "test", &id3, "--json"]).ok().json()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = s.run(&["webhook", "show", &id3, "--json"]).ok().json();
        if v["enabled"] == false {
            break v;
        }
        assert!(Instant::now() < deadline, "not disabled: {v}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(v["disabled_reason"].is_string(), "{v}");
    assert!(v["consecutive_failures"].as_u64().unwrap() >= 2, "{v}");
    let r = s.run(&["webhook", "list"]).ok();
    let row = r.stdout.lines().find(|l| l.contains(&id3)).unwrap();
    assert!(row.contains("no: "), "{row}");
    let v = s
        .run(&["webhook", "deliveries", &id3, "--json"])
        .ok()
        .json();
    let attempts = v["deliveries"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{v}");
    assert!(
        attempts.iter().all(|d| d["event_id"] == ev3.as_str()
            && d["status_code"] == 500
            && d["outcome"] == "failed"),
        "{v}"
    );
    let disabled = rx.wait_for(Duration::from_secs(60), |q| {
        q.json()["type"] == "webhook.disabled"
    });
    let (t, v1) = signatures(&disabled);
    assert_eq!(v1, vec![webhook_signature(&secret, &t, &disabled.body)]);
    let r = s.run(&["webhook", "test", &id3]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("disabled"), "{r:?}");
    bad.answer(200);
    let failed = bad.count();
    assert!(failed >= 2, "two failed attempts: {:?}", bad.got);
    let v = s.run(&["webhook", "enable", &id3, "--json"]).ok().json();
    assert_eq!(v["enabled"], true, "{v}");
    assert!(v["disabled_reason"].is_null(), "{v}");
    assert_eq!(v["consecutive_failures"], 0, "{v}");
    let got = bad.wait_for_after(failed, Duration::from_secs(60), |q| q.is_ping(&ev3));
    assert_eq!(got.header("x-nightlatch-delivery"), Some(ev3.as_str()));
    let (t, v1) = signatures(&got);
    assert_eq!(v1, vec![webhook_signature(&secret3, &t, &got.body)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = s
            .run(&["webhook", "deliveries", &id3, "--json"])
            .ok()
            .json();
        let d = &v["deliveries"][0];
        if d["outcome"] == "delivered" {
            assert_eq!(d["event_id"], ev3.as_str(), "{v}");
            assert_eq!(d["status_code"], 200, "{v}");
            assert!(d["attempt"].as_u64().unwrap() > 2, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "not delivered after enable: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Rotate the secret: asks (refused off a terminal without --yes), then
    // the new secret once; both sign until the overlap ends.
    let r = s.run(&["webhook", "rotate-secret", &id, "--overlap", "1h"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes") && r.stdout.is_empty(), "{r:?}");
    assert_eq!(
        s.run(&[
            "webhook",
            "rotate-secret",
            &id,
            "--overlap",
            "soon",
            "--yes"
        ])
        .code,
        2
    );
    let r = s
        .run(&[
            "webhook",
            "rotate-secret",
            &id,
            "--overlap",
            "1h",
            "--yes",
            "--json",
        ])
        .ok();
    assert!(r.stderr.contains("shown this once"), "{r:?}");
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    let secret2 = v["secret"].as_str().unwrap().to_owned();
    assert!(secret2.starts_with("whsec_") && secret2 != secret, "{v}");
    assert!(v["previous_secret_expires_at"].is_string(), "{v}");
    let v = s.run(&["webhook", "show", &id, "--json"]).ok().json();
    assert!(v["secret_rotated_at"].is_string(), "{v}");
    assert!(v["previous_secret_expires_at"].is_string(), "{v}");
    let ev2 = s.run(&["webhook", "test", &id, "--json"]).ok().json()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = rx.wait_for(Duration::from_secs(60), |q| q.is_ping(&ev2));
    let (t, mut v1) = signatures(&req);
    v1.sort();
    let mut want = vec![
        webhook_signature(&secret, &t, &req.body),
        webhook_signature(&secret2, &t, &req.body),
    ];
    want.sort();
    assert_eq!(v1, want, "one v1 signature per secret: {req:?}");

    // Rotate again as a table, with no overlap: the new secret is the
    // `secret` row on stdout (shown once), the note on stderr; from now on
    // it alone signs.
    let r = s
        .run(&["webhook", "rotate-secret", &id, "--overlap", "0s", "--yes"])
        .ok();
    assert!(r.stderr.contains("shown this once"), "{r:?}");
    let secret4 = field(&r.stdout, "secret").unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        secret4.starts_with("whsec_") && secret4 != secret && secret4 != secret2,
        "{r:?}"
    );
    assert!(
        !r.stderr.contains(&secret4),
        "the secret goes to stdout only"
    );
    assert_eq!(
        field(&r.stdout, "id").as_deref(),
        Some(id.as_str()),
        "{r:?}"
    );
    let until = field(&r.stdout, "previous_secret_expires_at").unwrap();
    assert!(until.ends_with('Z'), "{r:?}");
    assert!(r.stderr.contains(&until), "{r:?}");

    // Test as a table: the queued event's `type` and `event_id` rows; the
    // ping arrives signed with the new secret only, and the deliveries
    // table shows it delivered with status 200.
    let r = s.run(&["webhook", "test", &id]).ok();
    assert_eq!(
        field(&r.stdout, "type").as_deref(),
        Some("test.ping"),
        "{r:?}"
    );
    let ev4 = field(&r.stdout, "event_id").unwrap_or_else(|| panic!("{r:?}"));
    assert!(
        r.stderr.contains(&ev4) && r.stderr.contains("deliveries"),
        "{r:?}"
    );
    let req = rx.wait_for(Duration::from_secs(60), |q| q.is_ping(&ev4));
    let (t, v1) = signatures(&req);
    assert_eq!(
        v1,
        vec![webhook_signature(&secret4, &t, &req.body)],
        "the old secrets no longer sign: {req:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = s.run(&["webhook", "deliveries", &id]).ok();
        if let Some(row) = r.stdout.lines().find(|l| l.contains(&ev4)) {
            assert!(
                row.contains("test.ping") && row.contains("200") && row.contains("delivered"),
                "{row}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no delivery of {ev4}: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Enable (already enabled: stays so), with --json and as a table.
    let v = s.run(&["webhook", "enable", &id, "--json"]).ok().json();
    assert_eq!(v["enabled"], true, "{v}");
    assert_eq!(v["id"], id.as_str(), "{v}");
    let r = s.run(&["webhook", "enable", &id]).ok();
    assert_eq!(
        field(&r.stdout, "id").as_deref(),
        Some(id.as_str()),
        "{r:?}"
    );
    assert_eq!(
        field(&r.stdout, "enabled").as_deref(),
        Some("true"),
        "{r:?}"
    );
    assert_eq!(
        field(&r.stdout, "consecutive_failures").as_deref(),
        Some("0"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("whsec_"), "{r:?}");

    // Roles: an operator reads, but cannot create, test, rotate or delete.
    let (_, op) = s.token("olga", "operator");
    s.login(&op, &["--profile", "op"]).ok();
    let r = s.run(&[
        "--profile",
        "op",
        "webhook",
        "create",
        "--url",
        &rx.url,
        "--json",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        serde_json::from_str::<Value>(r.stderr.trim()).unwrap()["error"],
        "forbidden"
    );
    assert!(r.stdout.is_empty());
    assert_eq!(s.run(&["--profile", "op", "webhook", "test", &id]).code, 3);
    assert_eq!(
        s.run(&["--profile", "op", "webhook", "delete", &id, "--yes"])
            .code,
        3
    );
    let v = s
        .run(&["--profile", "op", "webhook", "list", "--json"])
        .ok()
        .json();
    assert_eq!(v["webhooks"].as_array().unwrap().len(), 3);

    // Unknown ids: exit 4.
    let r = s.run(&["webhook", "show", "wh-none"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("not_found"), "{r:?}");
    assert_eq!(s.run(&["webhook", "deliveries", "wh-none"]).code, 4);
    assert_eq!(s.run(&["webhook", "delete", "wh-none", "--yes"]).code, 4);

    // Delete: refused off a terminal without --yes (nothing changes), then
    // deleted.
    let r = s.run(&["webhook", "delete", &id2]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--yes") && r.stdout.is_empty(), "{r:?}");
    s.run(&["webhook", "show", &id2]).ok();
    let v = s
        .run(&["webhook", "delete", &id2, "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(v, json!({"id": id2, "deleted": true}));
    assert_eq!(s.run(&["webhook", "show", &id2]).code, 4);
    let r = s.run(&["webhook", "delete", &id, "-y"]).ok();
    assert!(
        r.stdout.contains("deleted") && r.stdout.contains("true"),
        "{r:?}"
    );
    let v = s.run(&["webhook", "list", "--json"]).ok().json();
    let left = v["webhooks"].as_array().unwrap();
    assert!(left.len() == 1 && left[0]["id"] == id3.as_str(), "{v}");

    // Every webhook change is in the audit log.
    let v = s
        .run(&["audit", "list", "--action", "webhook.*", "--all", "--json"])
        .ok()
        .json();
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "webhook.create",
        "webhook.rotate_secret",
        "webhook.enable",
        "webhook.delete",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

#[test]
fn webhooks_to_private_addresses_are_refused_by_default() {
    let s = logged_in();
    let r = s.run(&[
        "webhook",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--json",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"], "private_address", "{e}");
    assert_eq!(e["status"], 422);
    assert!(r.stdout.is_empty());
    assert_eq!(
        s.run(&["webhook", "list", "--json"]).ok().json()["webhooks"],
        json!([])
    );
}
