//! Unpadded base64url (RFC 4648 §5), the encoding of every binary field of
//! a check-in: alphabet `A–Z a–z 0–9 - _`, no `=`. Anything else (padding,
//! the standard alphabet, non-canonical trailing bits) is refused.

use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encode.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode; `None` for anything that is not canonical unpadded base64url.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Decode exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    decode(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_unpadded_base64url() {
        assert_eq!(encode([0xfb, 0xff]), "-_8");
        assert_eq!(decode("-_8"), Some(alloc::vec![0xfb, 0xff]));
        assert_eq!(decode("AA=="), None);
        assert_eq!(decode("+/8"), None);
        // Trailing bits that are not zero: not canonical.
        assert_eq!(decode("AB"), None);
        assert_eq!(decode_array::<2>("-_8"), Some([0xfb, 0xff]));
        assert_eq!(decode_array::<3>("-_8"), None);
    }
}
