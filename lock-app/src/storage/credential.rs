//! PIN credentials: roles, validity windows, salted PIN hashes, and their
//! fixed-size record on flash.
//!
//! Record format (version 1, [`RECORD_LEN`] bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version (`1`) |
//! | 1 | 1 | role (`0` owner, `1` resident, `2` guest, `3` service) |
//! | 2 | 2 | credential id |
//! | 4 | 8 | not-before, Unix seconds (inclusive) |
//! | 12 | 8 | not-after, Unix seconds (exclusive; `u64::MAX` = no end) |
//! | 20 | 32 | SHA-256(salt ‖ PIN) |
//! | 52 | 4 | reserved, zero |
//!
//! The PIN itself is never stored.

use sequential_storage::map::{SerializationError, Value};
use sha2::{Digest, Sha256};

/// Serialized length of a credential record.
pub const RECORD_LEN: usize = 56;
/// Current record format version.
pub const RECORD_VERSION: u8 = 1;
/// Shortest accepted PIN (digits).
pub const PIN_MIN: usize = 4;
/// Longest accepted PIN (digits).
pub const PIN_MAX: usize = 12;

/// Who a credential belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The lock's owner.
    Owner,
    /// Someone who lives there.
    Resident,
    /// A visitor, usually with a time-limited code.
    Guest,
    /// Cleaning, maintenance, deliveries.
    Service,
}

impl Role {
    fn to_byte(self) -> u8 {
        match self {
            Self::Owner => 0,
            Self::Resident => 1,
            Self::Guest => 2,
            Self::Service => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Owner,
            1 => Self::Resident,
            2 => Self::Guest,
            3 => Self::Service,
            _ => return None,
        })
    }
}

/// When a credential opens the door: `not_before <= now < not_after`
/// (Unix seconds, the lock's trusted time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Validity {
    /// First second the code works.
    pub not_before: u64,
    /// First second the code no longer works (`u64::MAX`: never expires).
    pub not_after: u64,
}

impl Validity {
    /// Valid from the epoch on, forever.
    pub const ALWAYS: Self = Self {
        not_before: 0,
        not_after: u64::MAX,
    };

    /// Where `now` falls relative to the window.
    pub fn check(&self, now: u64) -> Result<(), DenyReason> {
        if now < self.not_before {
            Err(DenyReason::NotYetValid)
        } else if now >= self.not_after {
            Err(DenyReason::Expired)
        } else {
            Ok(())
        }
    }
}

/// A salted PIN hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PinHash(pub [u8; 32]);

impl PinHash {
    /// SHA-256 over the per-lock salt and the PIN digits.
    pub fn new(salt: &[u8; 16], pin: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(pin);
        Self(h.finalize().into())
    }
}

/// Check a PIN's shape: [`PIN_MIN`]..=[`PIN_MAX`] ASCII digits.
pub fn pin_is_well_formed(pin: &[u8]) -> bool {
    (PIN_MIN..=PIN_MAX).contains(&pin.len()) && pin.iter().all(u8::is_ascii_digit)
}

/// One stored credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential {
    /// Credential id (the map key; [`crate::storage::MAX_CREDENTIAL_ID`] at most).
    pub id: u16,
    /// Whose it is.
    pub role: Role,
    /// When it works.
    pub validity: Validity,
    /// Salted hash of the PIN.
    pub pin_hash: PinHash,
}

impl Credential {
    /// Serialize into the fixed record.
    pub fn to_record(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[0] = RECORD_VERSION;
        r[1] = self.role.to_byte();
        r[2..4].copy_from_slice(&self.id.to_le_bytes());
        r[4..12].copy_from_slice(&self.validity.not_before.to_le_bytes());
        r[12..20].copy_from_slice(&self.validity.not_after.to_le_bytes());
        r[20..52].copy_from_slice(&self.pin_hash.0);
        r
    }

    /// Parse a record; `None` for an unknown version or malformed bytes.
    pub fn from_record(r: &[u8]) -> Option<Self> {
        if r.len() != RECORD_LEN || r[0] != RECORD_VERSION || r[52..56] != [0; 4] {
            return None;
        }
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&r[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&r[20..52]);
        Some(Self {
            id: u16::from_le_bytes([r[2], r[3]]),
            role: Role::from_byte(r[1])?,
            validity: Validity {
                not_before: u64_at(4),
                not_after: u64_at(12),
            },
            pin_hash: PinHash(hash),
        })
    }
}

/// Why a PIN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// No credential has this PIN (or the PIN is malformed).
    UnknownPin,
    /// The code's window has not started yet.
    NotYetValid,
    /// The code's window has ended.
    Expired,
}

impl DenyReason {
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::UnknownPin => 0,
            Self::NotYetValid => 1,
            Self::Expired => 2,
        }
    }

    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::UnknownPin,
            1 => Self::NotYetValid,
            2 => Self::Expired,
            _ => return None,
        })
    }
}

/// The answer to a PIN entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Open the door.
    Granted {
        /// Which credential matched.
        id: u16,
        /// Its role.
        role: Role,
    },
    /// Keep it shut.
    Denied {
        /// Why.
        reason: DenyReason,
        /// The matching credential, if the PIN matched one outside its window.
        id: Option<u16>,
    },
}

/// Map value wrapper: the raw record bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record(pub [u8; RECORD_LEN]);

impl<'a> Value<'a> for Record {
    fn serialize_into(&self, buffer: &mut [u8]) -> Result<usize, SerializationError> {
        let out = buffer
            .get_mut(..RECORD_LEN)
            .ok_or(SerializationError::BufferTooSmall)?;
        out.copy_from_slice(&self.0);
        Ok(RECORD_LEN)
    }

    fn deserialize_from(buffer: &'a [u8]) -> Result<(Self, usize), SerializationError> {
        let src = buffer
            .get(..RECORD_LEN)
            .ok_or(SerializationError::BufferTooSmall)?;
        let mut r = [0u8; RECORD_LEN];
        r.copy_from_slice(src);
        Ok((Self(r), RECORD_LEN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_rejects_other_versions() {
        let c = Credential {
            id: 7,
            role: Role::Guest,
            validity: Validity {
                not_before: 10,
                not_after: 20,
            },
            pin_hash: PinHash::new(&[1; 16], b"1234"),
        };
        let mut r = c.to_record();
        assert_eq!(Credential::from_record(&r), Some(c));
        r[0] = 2;
        assert_eq!(Credential::from_record(&r), None);
    }

    #[test]
    fn window_edges_are_half_open() {
        let v = Validity {
            not_before: 100,
            not_after: 200,
        };
        assert_eq!(v.check(99), Err(DenyReason::NotYetValid));
        assert_eq!(v.check(100), Ok(()));
        assert_eq!(v.check(199), Ok(()));
        assert_eq!(v.check(200), Err(DenyReason::Expired));
    }

    #[test]
    fn hash_depends_on_salt() {
        assert_ne!(
            PinHash::new(&[1; 16], b"1234"),
            PinHash::new(&[2; 16], b"1234")
        );
        assert!(pin_is_well_formed(b"0000"));
        assert!(!pin_is_well_formed(b"12a4"));
        assert!(!pin_is_well_formed(b"123"));
    }
}
