//! The operator's side of a simulation: a real server, firmware releases
//! signed and published (with patches), rollouts created over the admin API.

use std::path::PathBuf;

use bootloader::TrustAnchors;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::harness::{self, Server};

/// Payload size of the simulated firmware (fits the small layout's ACTIVE).
pub const PAYLOAD: usize = 24 * 1024;

/// A release: one envelope per hardware model.
#[derive(Debug, Clone)]
pub struct Release {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Security counter.
    pub counter: u32,
    /// (model, envelope bytes).
    pub images: Vec<(String, Vec<u8>)>,
}

impl Release {
    /// The envelope for `model`.
    pub fn image(&self, model: &str) -> Option<&[u8]> {
        self.images
            .iter()
            .find(|(m, _)| m == model)
            .map(|(_, b)| b.as_slice())
    }

    /// Target name of `model`'s image.
    pub fn target(&self, model: &str) -> String {
        format!("{model}/{}.nlfw", self.version)
    }
}

/// Server, firmware signing key, models, and the factory release.
#[derive(Debug)]
pub struct Scenario {
    /// The server.
    pub server: Server,
    /// Where release files are written.
    pub dir: tempfile::TempDir,
    /// Firmware signing key (the bootloaders' anchor).
    pub firmware_key: SigningKey,
    /// Hardware models of the fleet.
    pub models: Vec<String>,
    /// What the locks left the factory with.
    pub factory: Release,
    /// A different build carrying the factory version number (locks whose
    /// patch base will not match).
    pub factory_alt: Release,
}

/// Payload of `model` at release `seed` (each release edits a few hundred
/// bytes of the previous, as real point releases do).
pub fn payload(model: &str, seed: u64) -> Vec<u8> {
    let model_seed: u64 = model.bytes().map(u64::from).sum();
    harness::payload(PAYLOAD, model_seed * 1000 + seed, (seed as usize) * 60)
}

impl Scenario {
    /// Start a server at virtual time `t0`, make and publish the factory
    /// release `1.0.0`.
    pub fn new(models: &[&str], t0: u64) -> Result<Self, String> {
        Self::with_factory(models, t0, None)
    }

    /// [`Scenario::new`], the factory release carrying `factory` (a raw
    /// image) instead of a generated payload when given; its other build of
    /// 1.0.0 differs in one byte.
    pub fn with_factory(models: &[&str], t0: u64, factory: Option<&[u8]>) -> Result<Self, String> {
        let server = Server::start(t0)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let firmware_key = SigningKey::from_bytes(&[0x5a; 32]);
        let models: Vec<String> = models.iter().map(|m| (*m).to_owned()).collect();
        let mut s = Self {
            server,
            dir,
            firmware_key,
            factory: Release {
                version: String::new(),
                counter: 0,
                images: Vec::new(),
            },
            factory_alt: Release {
                version: String::new(),
                counter: 0,
                images: Vec::new(),
            },
            models,
        };
        match factory {
            Some(p) => {
                s.factory = s.build_from("1.0.0", 1, p)?;
                let mut alt = p.to_vec();
                if let Some(b) = alt.last_mut() {
                    *b ^= 0xFF;
                }
                s.factory_alt = s.build_from("1.0.0", 1, &alt)?;
            }
            None => {
                s.factory = s.build("1.0.0", 1, 0, &[])?;
                s.factory_alt = s.build("1.0.0", 1, 999, &[])?;
            }
        }
        s.publish(&s.factory.clone(), None)?;
        Ok(s)
    }

    /// The bootloader anchors every lock trusts.
    pub fn anchors(&self) -> TrustAnchors {
        TrustAnchors::new(1, 1, &[self.firmware_key.verifying_key().to_bytes()])
            .unwrap_or_else(|_| unreachable!("one key, threshold 1"))
    }

    /// Build (not publish) a release; `broken` models get an image whose
    /// self-test will fail (the simulator fails self-tests of versions it is
    /// told are broken, see `Fleet::break_version`).
    pub fn build(
        &self,
        version: &str,
        counter: u32,
        seed: u64,
        _broken: &[&str],
    ) -> Result<Release, String> {
        let mut images = Vec::new();
        for m in &self.models {
            let env =
                harness::envelope(&self.firmware_key, m, version, counter, &payload(m, seed))?;
            images.push((m.clone(), env));
        }
        Ok(Release {
            version: version.to_owned(),
            counter,
            images,
        })
    }

    /// Build (not publish) a release whose every model carries `payload`.
    pub fn build_from(
        &self,
        version: &str,
        counter: u32,
        payload: &[u8],
    ) -> Result<Release, String> {
        let mut images = Vec::new();
        for m in &self.models {
            let env = harness::envelope(&self.firmware_key, m, version, counter, payload)?;
            images.push((m.clone(), env));
        }
        Ok(Release {
            version: version.to_owned(),
            counter,
            images,
        })
    }

    /// Publish `release`, with patches from `from` (a release the locks run).
    pub fn publish(&self, release: &Release, from: Option<&Release>) -> Result<(), String> {
        let mut files: Vec<PathBuf> = Vec::new();
        for (m, env) in &release.images {
            let p = self
                .dir
                .path()
                .join(format!("{m}-{}.nlfw", release.version));
            std::fs::write(&p, env).map_err(|e| e.to_string())?;
            files.push(p);
            if let Some(base) = from.and_then(|f| f.image(m)) {
                let patch = harness::patch(base, env)?;
                let p = self.dir.path().join(format!(
                    "{m}-{}-from-{}.nldp",
                    release.version,
                    from.map_or("", |f| f.version.as_str())
                ));
                std::fs::write(&p, patch).map_err(|e| e.to_string())?;
                files.push(p);
            }
        }
        self.server.publish(&files).map(|_| ())
    }

    /// Create and start a rollout of `release` on `model`: a canary, then
    /// waves (`shares` cumulative, each soaking `soak`). Its id.
    pub fn rollout(
        &self,
        release: &Release,
        model: &str,
        shares: &[f64],
        soak: &str,
        failure_rate: f64,
        min_sample: u32,
    ) -> Result<String, String> {
        let waves: Vec<Value> = shares
            .iter()
            .map(|s| json!({"share": s, "min_soak": soak}))
            .collect();
        let v = self.server.admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(json!({
                "name": format!("{} {model}", release.version),
                "target": release.target(model),
                "waves": waves,
                "failure_threshold": {"rate": failure_rate, "min_sample": min_sample},
                "start": true
            })),
        )?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("rollout: {v}"))
    }

    /// A rollout's status document.
    pub fn rollout_status(&self, id: &str) -> Result<Value, String> {
        self.server
            .admin_ok("GET", &format!("/admin/v1/rollouts/{id}"), None)
    }
}
