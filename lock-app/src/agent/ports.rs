//! What the agent is handed instead of hardware of its own: the radio
//! ([`Net`], HTTP to the server) and the board ([`Hardware`]: clock,
//! randomness, battery, self-test).

use alloc::vec::Vec;

use crate::tuf::{self, FetchError};

/// Which repository a metadata file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repo {
    /// The image repository (`/repo/metadata/`).
    Image,
    /// The director (`/director/metadata/`).
    Director,
}

/// Why a request failed at the transport or HTTP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// No connection, timeout, reset.
    Unreachable,
    /// The server answered with this status (not 200).
    Status(u16),
    /// The answer was larger than allowed.
    TooLarge,
}

/// The radio: HTTP to the server.
pub trait Net {
    /// `POST /v1/devices/{id}/check-in` with the signature header; the body
    /// of a 200 answer (at most `max_len` bytes).
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError>;
    /// A metadata file of `repo` (at most `max_len` bytes).
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError>;
    /// Bytes `[offset, offset + len)` of a target file (`path` under
    /// `/repo/targets/`); fewer only at the end of the file.
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError>;
}

impl<T: Net + ?Sized> Net for &mut T {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError> {
        (**self).check_in(device_id, body, signature, max_len)
    }
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        (**self).fetch_metadata(repo, file, max_len)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        (**self).fetch_target(path, offset, len)
    }
}

/// Why the self-test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTestFailure {
    /// The bolt motor did not move or its sensor disagrees.
    Motor,
    /// Credentials or audit storage did not open.
    Storage,
    /// The radio did not come up.
    Radio,
}

impl SelfTestFailure {
    /// Reason code sent to the server.
    pub fn code(self) -> &'static str {
        match self {
            Self::Motor => "self_test_motor",
            Self::Storage => "self_test_storage",
            Self::Radio => "self_test_radio",
        }
    }
}

/// The board around the agent.
pub trait Hardware {
    /// The real-time clock (Unix seconds; may drift).
    fn now(&self) -> u64;
    /// Set the real-time clock (from the director's signed time).
    fn set_time(&mut self, t: u64);
    /// Fill `buf` with random bytes (nonces).
    fn random(&mut self, buf: &mut [u8]);
    /// Battery charge, percent.
    fn battery_percent(&self) -> u8;
    /// Self-test of a freshly installed image: motor, storage, radio.
    fn self_test(&mut self) -> Result<(), SelfTestFailure>;
}

/// The image repository's metadata over [`Net`], as a TUF transport.
pub(super) struct RepoTransport<'n, N: Net>(pub(super) &'n mut N, pub(super) Repo);

impl<N: Net> tuf::Transport for RepoTransport<'_, N> {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        self.0.fetch_metadata(self.1, path, max_len)
    }
}
