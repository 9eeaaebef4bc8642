//! The signed time's Merkle tree: the server answers a batch of check-ins
//! with one signature over a time and the root of a tree whose leaves are
//! the check-ins ([`time_leaf`]); each answer carries its leaf's index and
//! path ([`SignedTime`]), and the lock rebuilds its own leaf and checks
//! that it folds to the signed root ([`verify_signed_time`]).
//!
//! * Leaf: `SHA-256(0x00 ‖ LEAF_TAG ‖ u8 len(id) ‖ id ‖ u8 len(nonce) ‖
//!   nonce ‖ counter u64 BE ‖ targets_version u64 BE ‖ targets_sha256[32])`.
//! * Inner node: `SHA-256(0x01 ‖ left ‖ right)` (the `0x00`/`0x01` prefixes
//!   keep a leaf from passing for a node and back).
//! * Tree: the leaves in batch order, padded to a power of two by repeating
//!   the last leaf; a path lists the sibling at each level, leaf level first;
//!   bit `i` of the index set means the node at level `i` is a right child.
//! * Signature: Ed25519 by one of the director root's `timestamp` keys over
//!   [`time_message`]`(time, root)`.
//!
//! Padding repeats the last leaf, so that leaf's path also folds to the root
//! under the index of a padding copy whose subtree mirrors its own: the copy
//! is the same leaf, so this proves nothing the real index does not.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{SignedTime, TIME_CONTEXT, b64};

/// Domain tag of a Merkle leaf.
pub const LEAF_TAG: &[u8] = b"nightlatch/time-leaf/v1";
/// Most levels of a path: a batch holds fewer than 2^32 check-ins.
pub const MAX_DEPTH: usize = 32;

/// A SHA-256 digest: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// The Merkle leaf of one check-in (layout in the module documentation).
/// A device id or nonce longer than 255 bytes is cut off in its length byte
/// only; the server refuses both long before (ids are names, nonces at most
/// [`super::MAX_NONCE`] bytes).
pub fn time_leaf(
    device_id: &str,
    nonce: &[u8],
    counter: u64,
    targets_version: u64,
    targets_sha256: &[u8; 32],
) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(LEAF_TAG);
    h.update([u8::try_from(device_id.len()).unwrap_or(u8::MAX)]);
    h.update(device_id.as_bytes());
    h.update([u8::try_from(nonce.len()).unwrap_or(u8::MAX)]);
    h.update(nonce);
    h.update(counter.to_be_bytes());
    h.update(targets_version.to_be_bytes());
    h.update(targets_sha256);
    h.finalize().into()
}

/// An inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn merkle_node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Fold a leaf up its path (bit `level` of `index` set: the node is a right
/// child, its sibling on the left; levels past 31 are left children). No
/// shape check: see [`verify_proof`].
pub fn merkle_fold(leaf: &Hash, index: u32, path: &[Hash]) -> Hash {
    let mut node = *leaf;
    for (level, sibling) in path.iter().enumerate() {
        let right = u32::try_from(level)
            .ok()
            .and_then(|l| index.checked_shr(l))
            .is_some_and(|bits| bits & 1 == 1);
        node = if right {
            merkle_node(sibling, &node)
        } else {
            merkle_node(&node, sibling)
        };
    }
    node
}

/// Why a Merkle proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// More than [`MAX_DEPTH`] levels, or an index with bits above the
    /// path's length (no leaf of a tree that deep has it).
    Shape,
    /// The leaf does not fold to the root.
    NotInTree,
}

/// Check that `leaf` sits at `index` of the tree with `root`, by `path`.
pub fn verify_proof(leaf: &Hash, index: u32, path: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if path.len() > MAX_DEPTH || (path.len() < MAX_DEPTH && u64::from(index) >> path.len() != 0) {
        return Err(ProofError::Shape);
    }
    if merkle_fold(leaf, index, path) == *root {
        Ok(())
    } else {
        Err(ProofError::NotInTree)
    }
}

/// A batch's tree: its root and each leaf's path (server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    root: Hash,
    paths: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The tree over `leaves` (padded to a power of two by repeating the
    /// last leaf). `None` for no leaves, or more than 2^32.
    pub fn build(leaves: &[Hash]) -> Option<Self> {
        let last = *leaves.last()?;
        if u32::try_from(leaves.len() - 1).is_err() {
            return None;
        }
        let width = leaves.len().next_power_of_two();
        let depth = width.trailing_zeros() as usize;
        let mut level: Vec<Hash> = Vec::with_capacity(width);
        level.extend_from_slice(leaves);
        level.resize(width, last);
        let mut paths: Vec<Vec<Hash>> = (0..leaves.len())
            .map(|_| Vec::with_capacity(depth))
            .collect();
        let mut shift = 0;
        while level.len() > 1 {
            for (i, path) in paths.iter_mut().enumerate() {
                path.push(level[(i >> shift) ^ 1]);
            }
            level = level
                .chunks_exact(2)
                .map(|pair| merkle_node(&pair[0], &pair[1]))
                .collect();
            shift += 1;
        }
        Some(Self {
            root: level[0],
            paths,
        })
    }

    /// The root.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// How many leaves (without padding).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Never: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The path of leaf `index`, leaf level first.
    pub fn path(&self, index: usize) -> Option<&[Hash]> {
        self.paths.get(index).map(Vec::as_slice)
    }

    /// The [`SignedTime`] of every leaf, in order, for the signature `sig`
    /// over [`time_message`]`(time, root)`.
    pub fn signed_times(self, time: u64, sig: &Signature) -> Vec<SignedTime> {
        let merkle_root = b64::encode(self.root);
        let sig = b64::encode(sig.to_bytes());
        self.paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| SignedTime {
                time,
                merkle_root: merkle_root.clone(),
                // At most 2^32 leaves (`build`).
                index: u32::try_from(i).unwrap_or(u32::MAX),
                path: path.iter().map(b64::encode).collect(),
                sig: sig.clone(),
            })
            .collect()
    }
}

/// The bytes the director's timestamp key signs:
/// [`TIME_CONTEXT`] ‖ time u64 BE ‖ root.
pub fn time_message(time: u64, merkle_root: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(TIME_CONTEXT.len() + 40);
    m.extend_from_slice(TIME_CONTEXT);
    m.extend_from_slice(&time.to_be_bytes());
    m.extend_from_slice(merkle_root);
    m
}

/// Why a signed time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Binary fields of the wrong length or encoding, or an index that does
    /// not fit the path.
    Malformed,
    /// This check-in's leaf does not fold to the signed root: the answer is
    /// for another check-in (replayed, or misdirected).
    NotBound,
    /// The signature does not verify with any of the keys.
    Signature,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => {
                "malformed signed time (root, path, index or signature of the wrong shape)"
            }
            Self::NotBound => "the leaf does not lead to the signed root",
            Self::Signature => "the time signature does not verify",
        })
    }
}

impl core::error::Error for TimeError {}

/// The keys a signed time may be signed by: one key, or any of several (a
/// lock trusts every `timestamp` key of its director root).
pub trait TimeKeys {
    /// Whether one of the keys verifies `sig` over `message` strictly.
    fn any_verifies(&self, message: &[u8], sig: &Signature) -> bool;
}

impl TimeKeys for VerifyingKey {
    fn any_verifies(&self, message: &[u8], sig: &Signature) -> bool {
        self.verify_strict(message, sig).is_ok()
    }
}

impl TimeKeys for [VerifyingKey] {
    fn any_verifies(&self, message: &[u8], sig: &Signature) -> bool {
        self.iter().any(|k| k.any_verifies(message, sig))
    }
}

impl<const N: usize> TimeKeys for [VerifyingKey; N] {
    fn any_verifies(&self, message: &[u8], sig: &Signature) -> bool {
        self.as_slice().any_verifies(message, sig)
    }
}

impl TimeKeys for Vec<VerifyingKey> {
    fn any_verifies(&self, message: &[u8], sig: &Signature) -> bool {
        self.as_slice().any_verifies(message, sig)
    }
}

/// What a lock checks about a [`SignedTime`]: the leaf it rebuilt from its
/// own check-in folds to the root, and the time and root are signed by one
/// of `keys` (`verify_strict`). Returns the time.
pub fn verify_signed_time<K: TimeKeys + ?Sized>(
    t: &SignedTime,
    keys: &K,
    leaf: &Hash,
) -> Result<u64, TimeError> {
    let root = b64::decode_array::<32>(&t.merkle_root).ok_or(TimeError::Malformed)?;
    if t.path.len() > MAX_DEPTH {
        return Err(TimeError::Malformed);
    }
    let path = t
        .path
        .iter()
        .map(|p| b64::decode_array::<32>(p))
        .collect::<Option<Vec<Hash>>>()
        .ok_or(TimeError::Malformed)?;
    verify_proof(leaf, t.index, &path, &root).map_err(|e| match e {
        ProofError::Shape => TimeError::Malformed,
        ProofError::NotInTree => TimeError::NotBound,
    })?;
    let sig = Signature::from_bytes(&b64::decode_array::<64>(&t.sig).ok_or(TimeError::Malformed)?);
    if keys.any_verifies(&time_message(t.time, &root), &sig) {
        Ok(t.time)
    } else {
        Err(TimeError::Signature)
    }
}
