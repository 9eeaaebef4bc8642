//! The `custom` object of a Nightlatch target, typed, for both ends.
//!
//! * `custom.nightlatch` ([`NightlatchCustom`]): what the release key signs
//!   about a file in the image repository — firmware image or patch,
//!   hardware model, version and security counter of the image it installs
//!   (a patch: the envelopes it applies to and rebuilds).
//! * `custom.director` ([`DirectorCustom`]): what the director's online key
//!   adds to each target of a lock's director targets metadata — the lock
//!   and model it is for, the rollout, whether it is the image or a patch
//!   for it, and (on the image) the [`InstallPolicy`].
//!
//! A director target copies the image repository's `custom.nightlatch` and
//! adds `custom.director`:
//!
//! ```json
//! "nl-lock-v2/1.4.2.nlfw": { "length": 6024, "hashes": {"sha256": "…"}, "custom": {
//!     "nightlatch": { "kind": "firmware", "hardware_model": "nl-lock-v2", "version": "1.4.2", … },
//!     "director": { "device_id": "lock-0001", "hardware_model": "nl-lock-v2",
//!                   "rollout": "ro-…", "role": "image",
//!                   "policy": { "quiet_hours": {"start": "01:00", "end": "05:00"},
//!                               "blackout_dates": [], "security_deadline": 1767225600 } } } }
//! ```
//!
//! The bytes signed are canonical JSON of the whole metadata, so member
//! order does not matter; absent optional members are left out, never
//! `null` (the golden texts in `src/wire/golden/` pin both objects).

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Member of `custom` that holds [`NightlatchCustom`].
pub const NIGHTLATCH: &str = "nightlatch";
/// Member of `custom` that holds [`DirectorCustom`].
pub const DIRECTOR: &str = "director";

/// What kind of file a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A complete signed envelope.
    Firmware,
    /// A delta patch between two envelopes.
    Patch,
}

/// One envelope's identity, as a patch's `base` or `target` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeRef {
    /// Firmware version.
    pub version: String,
    /// SHA-256 of the whole envelope, hex.
    pub sha256: String,
    /// Envelope length.
    pub length: u64,
}

/// `custom.nightlatch` of a target of the image repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NightlatchCustom {
    /// Firmware or patch.
    pub kind: TargetKind,
    /// Hardware model.
    pub hardware_model: String,
    /// Firmware version (of the image the file installs).
    pub version: String,
    /// Anti-rollback counter of that image.
    pub security_counter: u32,
    /// Payload length (firmware).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_length: Option<u32>,
    /// Payload SHA-256, hex (firmware).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_sha256: Option<String>,
    /// The envelope a patch applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<EnvelopeRef>,
    /// The envelope a patch rebuilds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<EnvelopeRef>,
}

impl NightlatchCustom {
    /// Read it from a target's `custom` value; `None` when it is absent or
    /// not of this shape.
    pub fn from_custom(custom: &Value) -> Option<Self> {
        Self::deserialize(custom.get(NIGHTLATCH)?).ok()
    }

    /// Read it from a target file's `custom`; `None` when it is absent or
    /// not of this shape.
    pub fn from_target(file: &crate::tuf::TargetFile) -> Option<Self> {
        Self::from_custom(file.custom.as_ref()?)
    }
}

/// Which of the assignment's files a director target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectorRole {
    /// The image to end up with (carries the install policy).
    Image,
    /// A patch that rebuilds the image from the version the lock runs.
    Patch,
}

/// `custom.director` of a director target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectorCustom {
    /// The lock the metadata is for.
    pub device_id: String,
    /// Its hardware model.
    pub hardware_model: String,
    /// The rollout that assigned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Image or patch.
    pub role: DirectorRole,
    /// A patch: the name of the image target it rebuilds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_for: Option<String>,
    /// The image: when the lock may install it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<InstallPolicy>,
}

impl DirectorCustom {
    /// The image target's object.
    pub fn image(
        device_id: &str,
        hardware_model: &str,
        rollout: &str,
        policy: InstallPolicy,
    ) -> Self {
        Self {
            device_id: device_id.into(),
            hardware_model: hardware_model.into(),
            rollout: Some(rollout.into()),
            role: DirectorRole::Image,
            patch_for: None,
            policy: Some(policy),
        }
    }

    /// The object of a patch target that rebuilds image target `image`.
    pub fn patch(device_id: &str, hardware_model: &str, rollout: &str, image: &str) -> Self {
        Self {
            device_id: device_id.into(),
            hardware_model: hardware_model.into(),
            rollout: Some(rollout.into()),
            role: DirectorRole::Patch,
            patch_for: Some(image.into()),
            policy: None,
        }
    }

    /// Read it from a target's `custom` value; `None` when it is absent or
    /// not of this shape.
    pub fn from_custom(custom: &Value) -> Option<Self> {
        Self::deserialize(custom.get(DIRECTOR)?).ok()
    }

    /// A copy of a target's `custom` (an object, or absent) with this as its
    /// `director` member.
    pub fn add_to(&self, custom: Option<&Value>) -> Result<Value, serde_json::Error> {
        let mut map = match custom {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        map.insert(DIRECTOR.into(), serde_json::to_value(self)?);
        Ok(Value::Object(map))
    }
}

/// When a lock may install: the site's policy plus the rollout's security
/// deadline, signed inside the image target's `custom.director.policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPolicy {
    /// Daily window in the lock's local time (`start` may be after `end`:
    /// it wraps midnight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietWindow>,
    /// Local dates (`YYYY-MM-DD`) with no installs.
    #[serde(default)]
    pub blackout_dates: Vec<String>,
    /// Site time zone (IANA), used when the lock reports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Install no later than this (Unix seconds), still never while the
    /// door is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_deadline: Option<u64>,
}

/// A daily window, `HH:MM` local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    /// Start, `HH:MM`.
    pub start: String,
    /// End, `HH:MM`.
    pub end: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const IMAGE: &str = include_str!("wire/golden/director_image.json");
    const PATCH: &str = include_str!("wire/golden/director_patch.json");
    const FIRMWARE: &str = include_str!("wire/golden/nightlatch_firmware.json");
    const PATCH_FILE: &str = include_str!("wire/golden/nightlatch_patch.json");

    fn policy() -> InstallPolicy {
        InstallPolicy {
            quiet_hours: Some(QuietWindow {
                start: "01:00".into(),
                end: "05:00".into(),
            }),
            blackout_dates: vec!["2030-01-05".into()],
            time_zone: Some("Europe/Berlin".into()),
            security_deadline: Some(1_893_456_000),
        }
    }

    /// As stored and sent: through a `Value` (members sorted), compact.
    fn text<T: Serialize>(v: &T) -> String {
        serde_json::to_string(&serde_json::to_value(v).unwrap()).unwrap()
    }

    #[test]
    fn director_custom_is_the_json_locks_read() {
        let image = DirectorCustom::image("lock-0001", "nl-lock-v2", "ro-1", policy());
        assert_eq!(text(&image), IMAGE.trim_end());
        let patch =
            DirectorCustom::patch("lock-0001", "nl-lock-v2", "ro-1", "nl-lock-v2/1.4.2.nlfw");
        assert_eq!(text(&patch), PATCH.trim_end());
        for (v, golden) in [(&image, IMAGE), (&patch, PATCH)] {
            let back: DirectorCustom = serde_json::from_str(golden).unwrap();
            assert_eq!(&back, v);
        }
        // Unknown members are ignored; an unknown role is not an assignment.
        let newer = IMAGE.replace(r#""role""#, r#""future":1,"role""#);
        assert_eq!(
            serde_json::from_str::<DirectorCustom>(&newer).unwrap(),
            image
        );
        let odd = PATCH.replace(r#""role":"patch""#, r#""role":"delta""#);
        assert!(serde_json::from_str::<DirectorCustom>(&odd).is_err());
        // An empty policy is still written (as the server always has).
        let bare = DirectorCustom::image("l", "m", "r", InstallPolicy::default());
        assert_eq!(
            text(&bare),
            r#"{"device_id":"l","hardware_model":"m","policy":{"blackout_dates":[]},"role":"image","rollout":"r"}"#
        );
    }

    #[test]
    fn director_custom_goes_beside_the_image_repository_custom() {
        let nightlatch: Value = serde_json::from_str(FIRMWARE).unwrap();
        let custom = serde_json::json!({ NIGHTLATCH: nightlatch });
        let image = DirectorCustom::image("lock-0001", "nl-lock-v2", "ro-1", policy());
        let both = image.add_to(Some(&custom)).unwrap();
        assert_eq!(both[NIGHTLATCH], nightlatch);
        assert_eq!(DirectorCustom::from_custom(&both), Some(image.clone()));
        assert_eq!(
            NightlatchCustom::from_custom(&both),
            serde_json::from_value(nightlatch).ok()
        );
        // No custom, or one that is not an object: only `director`.
        let alone = image.add_to(None).unwrap();
        assert_eq!(alone.as_object().map(Map::len), Some(1));
        assert_eq!(DirectorCustom::from_custom(&alone), Some(image));
        assert_eq!(NightlatchCustom::from_custom(&alone), None);
    }

    #[test]
    fn nightlatch_custom_is_the_json_the_release_tools_write() {
        let firmware = NightlatchCustom {
            kind: TargetKind::Firmware,
            hardware_model: "nl-lock-v2".into(),
            version: "1.4.2".into(),
            security_counter: 7,
            payload_length: Some(5000),
            payload_sha256: Some(
                "b7952c1f6c1f7b1c0b6a6f2a6f0d0c6e0e8f4f7a6b1e3c1d2f1a0b9c8d7e6f50".into(),
            ),
            base: None,
            target: None,
        };
        assert_eq!(text(&firmware), FIRMWARE.trim_end());
        let patch = NightlatchCustom {
            kind: TargetKind::Patch,
            hardware_model: "nl-lock-v2".into(),
            version: "1.4.2".into(),
            security_counter: 7,
            payload_length: None,
            payload_sha256: None,
            base: Some(EnvelopeRef {
                version: "1.4.1".into(),
                sha256: "11".repeat(32),
                length: 6000,
            }),
            target: Some(EnvelopeRef {
                version: "1.4.2".into(),
                sha256: "22".repeat(32),
                length: 6024,
            }),
        };
        assert_eq!(text(&patch), PATCH_FILE.trim_end());
        for (v, golden) in [(&firmware, FIRMWARE), (&patch, PATCH_FILE)] {
            let back: NightlatchCustom = serde_json::from_str(golden).unwrap();
            assert_eq!(&back, v);
        }
        // Required members and known kinds only.
        let unknown = FIRMWARE.replace(r#""firmware""#, r#""full""#);
        assert!(serde_json::from_str::<NightlatchCustom>(&unknown).is_err());
        let partial = FIRMWARE.replace(r#""security_counter":7,"#, "");
        assert!(serde_json::from_str::<NightlatchCustom>(&partial).is_err());
    }
}
