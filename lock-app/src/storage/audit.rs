//! Audit log entries and their fixed-size record in the flash queue.
//!
//! Record format (version 1, [`ENTRY_LEN`] bytes, little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | format version (`1`) |
//! | 1 | 1 | event kind |
//! | 2 | 1 | event detail (deny reason, tamper code) |
//! | 3 | 1 | reserved, zero |
//! | 4 | 4 | sequence number (monotonic per lock, never reused; at offset 4 in every version) |
//! | 8 | 8 | timestamp, Unix seconds (the lock's trusted time) |
//! | 16 | 4 | argument (credential id + 1 or 0, firmware version) |
//! | 20 | 4 | entries dropped so far (see [`OverflowPolicy`]) |

use super::credential::DenyReason;

/// Serialized length of an audit entry.
pub const ENTRY_LEN: usize = 24;
/// Current entry format version.
pub const ENTRY_VERSION: u8 = 1;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditEvent {
    /// Unlocked by PIN.
    UnlockPin {
        /// The credential that matched.
        credential: u16,
    },
    /// A PIN was refused.
    Denied {
        /// Why.
        reason: DenyReason,
        /// The credential it matched, outside its window.
        credential: Option<u16>,
    },
    /// Tamper switch, forced bolt, repeated bad PINs (code chosen by the caller).
    Tamper {
        /// Device-specific code.
        code: u8,
    },
    /// The door sensor saw the door open.
    DoorOpened,
    /// The door sensor saw the door close.
    DoorClosed,
    /// A verified update was staged in DFU.
    UpdateStaged {
        /// Firmware version.
        version: u32,
    },
    /// The update was installed and confirmed.
    UpdateInstalled {
        /// Firmware version.
        version: u32,
    },
    /// The update failed its trial boot and was reverted.
    UpdateReverted {
        /// Firmware version.
        version: u32,
    },
}

/// One audit log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditEntry {
    /// Monotonic sequence number.
    pub seq: u32,
    /// Unix seconds.
    pub time: u64,
    /// What happened.
    pub event: AuditEvent,
    /// How many entries had been dropped (overflow) when this one was written.
    pub dropped_before: u32,
}

/// What to do when the audit partition is full.
///
/// The choice is the operator's. [`OverflowPolicy::DropOldest`] is the
/// default: a lock that has been offline for months keeps its most recent
/// history, which is what an owner asks about; the gap is visible both in the
/// sequence numbers and in every later entry's `dropped_before`.
/// [`OverflowPolicy::RefuseNew`] keeps the oldest history intact (useful when
/// the first entries after an incident matter most); refused entries are
/// counted the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverflowPolicy {
    /// Drop the oldest unacknowledged entries to make room.
    #[default]
    DropOldest,
    /// Keep what is stored; refuse (and count) new entries.
    RefuseNew,
}

impl AuditEvent {
    fn encode(&self) -> (u8, u8, u32) {
        match *self {
            Self::UnlockPin { credential } => (1, 0, u32::from(credential) + 1),
            Self::Denied { reason, credential } => (
                2,
                reason.to_byte(),
                credential.map_or(0, |c| u32::from(c) + 1),
            ),
            Self::Tamper { code } => (3, code, 0),
            Self::DoorOpened => (4, 0, 0),
            Self::DoorClosed => (5, 0, 0),
            Self::UpdateStaged { version } => (6, 0, version),
            Self::UpdateInstalled { version } => (7, 0, version),
            Self::UpdateReverted { version } => (8, 0, version),
        }
    }

    fn decode(kind: u8, detail: u8, arg: u32) -> Option<Self> {
        let cred = |a: u32| u16::try_from(a.checked_sub(1)?).ok();
        Some(match kind {
            1 => Self::UnlockPin {
                credential: cred(arg)?,
            },
            2 => Self::Denied {
                reason: DenyReason::from_byte(detail)?,
                credential: if arg == 0 { None } else { Some(cred(arg)?) },
            },
            3 => Self::Tamper { code: detail },
            4 => Self::DoorOpened,
            5 => Self::DoorClosed,
            6 => Self::UpdateStaged { version: arg },
            7 => Self::UpdateInstalled { version: arg },
            8 => Self::UpdateReverted { version: arg },
            _ => return None,
        })
    }
}

/// The sequence number of a stored entry of any format version (every
/// version keeps it at offset 4).
pub fn seq_of(raw: &[u8]) -> Option<u32> {
    let b = raw.get(4..8)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl AuditEntry {
    /// Serialize into the fixed record.
    pub fn to_bytes(&self) -> [u8; ENTRY_LEN] {
        let (kind, detail, arg) = self.event.encode();
        let mut r = [0u8; ENTRY_LEN];
        r[0] = ENTRY_VERSION;
        r[1] = kind;
        r[2] = detail;
        r[4..8].copy_from_slice(&self.seq.to_le_bytes());
        r[8..16].copy_from_slice(&self.time.to_le_bytes());
        r[16..20].copy_from_slice(&arg.to_le_bytes());
        r[20..24].copy_from_slice(&self.dropped_before.to_le_bytes());
        r
    }

    /// Parse a record; `None` for an unknown version or malformed bytes.
    pub fn from_bytes(r: &[u8]) -> Option<Self> {
        if r.len() != ENTRY_LEN || r[0] != ENTRY_VERSION || r[3] != 0 {
            return None;
        }
        let u32_at = |o: usize| u32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let mut t = [0u8; 8];
        t.copy_from_slice(&r[8..16]);
        Some(Self {
            seq: u32_at(4),
            time: u64::from_le_bytes(t),
            event: AuditEvent::decode(r[1], r[2], u32_at(16))?,
            dropped_before: u32_at(20),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips() {
        let events = [
            AuditEvent::UnlockPin { credential: 0 },
            AuditEvent::UnlockPin { credential: 65535 },
            AuditEvent::Denied {
                reason: DenyReason::Expired,
                credential: Some(3),
            },
            AuditEvent::Denied {
                reason: DenyReason::UnknownPin,
                credential: None,
            },
            AuditEvent::Tamper { code: 9 },
            AuditEvent::DoorOpened,
            AuditEvent::DoorClosed,
            AuditEvent::UpdateStaged { version: 5 },
            AuditEvent::UpdateInstalled { version: 6 },
            AuditEvent::UpdateReverted { version: 7 },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let e = AuditEntry {
                seq: i as u32,
                time: 1_700_000_000 + i as u64,
                event,
                dropped_before: 2,
            };
            assert_eq!(AuditEntry::from_bytes(&e.to_bytes()), Some(e));
        }
        assert_eq!(AuditEntry::from_bytes(&[0xFF; ENTRY_LEN]), None);
    }
}
