//! Every way the repository and key operations can fail (for
//! `nightlatch-keys`, `nightlatch-sign` and the server alike), each with a
//! hint about what to do next.
//!
//! Policy: bytes from outside (metadata files, key files, envelopes, patches,
//! token answers, a server's replies) never panic; each refusal names the
//! file and the reason. The CLIs print these through miette and exit with
//! code 1.

use std::io;
use std::path::PathBuf;

use bootloader::anchors::AnchorError;
use bootloader::envelope::{EnvelopeError, MAX_SIGNATURES};
use miette::Diagnostic;
use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of one ceremony, signing or repository operation.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::read),
        help("check the path, and that you are allowed to read the file")
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A file is larger than anything this tool accepts.
    #[error("{} is larger than {limit} bytes", path.display())]
    #[diagnostic(
        code(nightlatch_keys::too_large),
        help(
            "check that you passed the right file: metadata and key files are small, and an envelope's payload is at most 4 GiB (its length is a u32)"
        )
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Largest size accepted.
        limit: u64,
    },

    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::write),
        help("check that the directory exists and that you are allowed to write to it")
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// An output file exists and `--force` was not given.
    #[error("{} already exists", path.display())]
    #[diagnostic(
        code(nightlatch_keys::exists),
        help("choose another output name, or pass --force to replace it")
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },

    /// A metadata file is not JSON of the expected shape.
    #[error("{} is not valid {what} metadata", path.display())]
    #[diagnostic(
        code(nightlatch_keys::malformed),
        help(
            "the file is damaged or is not TUF metadata of this kind; get the original copy again (compare its SHA-256 with the transcript)"
        )
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The kind expected (root, targets, ...).
        what: &'static str,
        /// The parser's message (with line and column).
        #[source]
        source: serde_json::Error,
    },

    /// Metadata parses but breaks a TUF rule.
    #[error("{} is not valid {what} metadata: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::invalid),
        help(
            "the file breaks a rule of the TUF specification; make it again with nightlatch-keys or nightlatch-sign rather than editing it by hand"
        )
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The kind expected.
        what: &'static str,
        /// The rule broken.
        reason: String,
    },

    /// Metadata cannot be written as canonical JSON (e.g. it holds a float).
    #[error("cannot encode the metadata as canonical JSON: {reason}")]
    #[diagnostic(
        code(nightlatch_keys::canonical),
        help("TUF metadata may hold only strings, integers, booleans, lists and objects")
    )]
    Canonical {
        /// Why.
        reason: String,
    },

    /// A key file is not a usable Ed25519 key.
    #[error("{} is not a usable Ed25519 key: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::key_file),
        help(
            "pass a .key file written by `nightlatch-keys keygen` (passphrase-encrypted) or `nightlatch-sign keygen`, or a .pub file where a public key is asked for"
        )
    )]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The passphrase does not decrypt the key file.
    #[error("wrong passphrase for {} (or the file is damaged)", path.display())]
    #[diagnostic(
        code(nightlatch_keys::passphrase),
        help(
            "check the passphrase; NIGHTLATCH_KEY_PASSPHRASE, when set, is used instead of asking (unset it to be asked at the terminal)"
        )
    )]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },

    /// No passphrase (or PIN) could be obtained, to read a key or for a new one.
    #[error("no passphrase for {what}: {reason}")]
    #[diagnostic(code(nightlatch_keys::no_passphrase))]
    NoPassphrase {
        /// What it was for.
        what: String,
        /// Why.
        reason: String,
        /// What to do.
        #[help]
        help: String,
    },

    /// A `pkcs11:` URI is malformed.
    #[error("invalid PKCS#11 URI {uri:?}: {reason}")]
    #[diagnostic(
        code(nightlatch_keys::pkcs11_uri),
        help(
            "use RFC 7512 form, e.g. pkcs11:token=nightlatch;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/path/pin.txt"
        )
    )]
    Pkcs11Uri {
        /// The URI (without any PIN).
        uri: String,
        /// What is wrong.
        reason: String,
    },

    /// The PKCS#11 module or token refused an operation.
    #[error("PKCS#11 {operation} failed for {uri}: {reason}")]
    #[diagnostic(code(nightlatch_keys::pkcs11))]
    Pkcs11 {
        /// The key's URI (without any PIN).
        uri: String,
        /// What was being done.
        operation: &'static str,
        /// The module's answer.
        reason: String,
        /// What to do.
        #[help]
        help: String,
    },

    /// A signature was offered by a key the metadata does not name for the role.
    #[error("key {key_id} is not a {role} key of {}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::not_in_role),
        help(
            "only keys listed for this role may sign it; `nightlatch-keys status` lists them. For a rotated root, the previous root's keys may sign too (--previous)"
        )
    )]
    KeyNotInRole {
        /// The metadata file.
        path: PathBuf,
        /// The role.
        role: String,
        /// TUF key id of the key offered.
        key_id: String,
    },

    /// The key has already signed this file.
    #[error("key {key_id} has already signed {}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::already_signed),
        help(
            "pass the file on to the next keyholder; `nightlatch-keys status` shows who is missing"
        )
    )]
    AlreadySigned {
        /// The metadata file.
        path: PathBuf,
        /// TUF key id.
        key_id: String,
    },

    /// Metadata would be produced (or accepted) with fewer valid signatures than its threshold.
    #[error("{what} has {valid} valid signature(s) by {role} keys, {threshold} required")]
    #[diagnostic(
        code(nightlatch_keys::below_threshold),
        help(
            "collect more signatures (`nightlatch-keys sign`) or pass more of the role's keys; nothing below threshold is ever written to a repository"
        )
    )]
    BelowThreshold {
        /// Which metadata.
        what: String,
        /// Whose keys.
        role: String,
        /// Valid signatures by distinct role keys.
        valid: usize,
        /// Required.
        threshold: u32,
    },

    /// Root versions in a chain do not follow one another.
    #[error("{} is root version {found}, expected version {expected}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::version_gap),
        help(
            "a client walks roots one version at a time: pass every root from the trusted one to the newest, in order, with none missing"
        )
    )]
    VersionGap {
        /// The file.
        path: PathBuf,
        /// Version expected.
        expected: u64,
        /// Version found.
        found: u64,
    },

    /// A root carries a signature by a key an earlier root revoked.
    #[error("{} is signed by key {key_id}, which root version {revoked_in} revoked", path.display())]
    #[diagnostic(
        code(nightlatch_keys::revoked_signer),
        help(
            "a revoked key may be in an attacker's hands: treat this root as hostile, remove its signatures and collect them again from current keyholders"
        )
    )]
    RevokedSigner {
        /// The root file.
        path: PathBuf,
        /// The revoked key.
        key_id: String,
        /// Version of the root that dropped the key.
        revoked_in: u64,
    },

    /// A signature in a chain that does not verify, or by a key nobody trusts.
    #[error("{} carries a bad signature by key {key_id}: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::bad_signature),
        help(
            "the file was changed after signing, or a signature was forged; get the original from the keyholders"
        )
    )]
    BadSignature {
        /// The file.
        path: PathBuf,
        /// Key id named by the signature.
        key_id: String,
        /// Why it is bad.
        reason: &'static str,
    },

    /// A command-line value is invalid.
    #[error("{reason}")]
    #[diagnostic(code(nightlatch_keys::usage))]
    Usage {
        /// What is wrong.
        reason: String,
        /// What to do.
        #[help]
        help: String,
    },

    /// The transcript is not a valid append-only log.
    #[error("transcript {} is damaged at line {line}: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_keys::transcript),
        help(
            "the transcript is append-only and hash-chained: restore it from a copy; nothing was appended"
        )
    )]
    Transcript {
        /// The transcript file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// Standard output could not be written.
    #[error("cannot write to standard output")]
    #[diagnostic(
        code(nightlatch_keys::stdout),
        help("check where the output is redirected to")
    )]
    Stdout {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The keygen `OUT` argument has no file name to add `.key`/`.pub` to.
    #[error("{} is not a usable output name", path.display())]
    #[diagnostic(
        code(nightlatch_sign::out_prefix),
        help(
            "give a file name prefix such as `keys/release-2025` (this writes release-2025.key and release-2025.pub)"
        )
    )]
    OutputPrefix {
        /// What was given.
        path: PathBuf,
    },

    /// A `--key` file is not an Ed25519 private key.
    #[error("{} is not an Ed25519 private key: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_sign::private_key),
        help(
            "pass a .key file written by `nightlatch-sign keygen` or `nightlatch-keys keygen` (PKCS#8 PEM, passphrase-encrypted or not)"
        )
    )]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An `--anchor` file is not an Ed25519 public key.
    #[error("{} is not an Ed25519 public key: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_sign::public_key),
        help(
            "pass a .pub file written by `nightlatch-sign keygen` (`-----BEGIN PUBLIC KEY-----`), or its .key file"
        )
    )]
    PublicKey {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A key could not be encoded as PEM (should not happen).
    #[error("cannot encode the key as PEM: {reason}")]
    #[diagnostic(
        code(nightlatch_sign::key_encoding),
        help("this is a bug in nightlatch-sign; nothing was written, please report it")
    )]
    KeyEncoding {
        /// The encoder's message.
        reason: String,
    },

    /// `--model` is not a valid hardware model name.
    #[error("invalid hardware model {model:?}")]
    #[diagnostic(
        code(nightlatch_sign::model),
        help("use 1 to 32 characters from a-z, 0-9, '.', '_' and '-', for example `nl-lock-v2`")
    )]
    InvalidModel {
        /// What was given.
        model: String,
    },

    /// `--version` is not `MAJOR.MINOR.PATCH`.
    #[error("invalid version {version:?}: {reason}")]
    #[diagnostic(
        code(nightlatch_sign::version),
        help("use MAJOR.MINOR.PATCH with each part a number from 0 to 65535, for example `1.4.2`")
    )]
    InvalidVersion {
        /// What was given.
        version: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The firmware image is empty.
    #[error("{} is empty", path.display())]
    #[diagnostic(
        code(nightlatch_sign::empty_image),
        help("pass the raw firmware image built for the lock (the .bin file)")
    )]
    EmptyImage {
        /// The file.
        path: PathBuf,
    },

    /// The image to sign is already an envelope.
    #[error("{} is already a signed envelope", path.display())]
    #[diagnostic(
        code(nightlatch_sign::already_signed),
        help(
            "sign the raw firmware image instead; `nightlatch-sign inspect` shows what this envelope holds"
        )
    )]
    AlreadyEnvelope {
        /// The file.
        path: PathBuf,
    },

    /// `-o` names the input image.
    #[error("the output {} is the input image", path.display())]
    #[diagnostic(
        code(nightlatch_sign::output_is_input),
        help("choose another -o path so the raw image is kept")
    )]
    OutputIsInput {
        /// The file.
        path: PathBuf,
    },

    /// The same signing key was given twice.
    #[error("key {key_id} is given twice (again as {})", path.display())]
    #[diagnostic(
        code(nightlatch_sign::duplicate_key),
        help("each --key must be a different key; remove the repeated one")
    )]
    DuplicateKey {
        /// The second file holding the key.
        path: PathBuf,
        /// Hex key id.
        key_id: String,
    },

    /// More signing keys than an envelope holds.
    #[error("{count} signing keys given, an envelope holds at most {MAX_SIGNATURES}")]
    #[diagnostic(
        code(nightlatch_sign::too_many_keys),
        help("pass at most 8 --key options")
    )]
    TooManyKeys {
        /// Keys given.
        count: usize,
    },

    /// The `--anchor`/`--threshold` combination is not a valid anchor set.
    #[error("invalid trust anchors: {reason}")]
    #[diagnostic(code(nightlatch_sign::anchors))]
    Anchors {
        /// Why the bootloader refuses the set.
        reason: AnchorError,
        /// What to do.
        #[help]
        help: String,
    },

    /// `verify` refused the envelope.
    #[error("{} was rejected: {reason}", path.display())]
    #[diagnostic(code(nightlatch_sign::rejected))]
    Rejected {
        /// The envelope file.
        path: PathBuf,
        /// The bootloader's reason.
        reason: EnvelopeError,
        /// What to do.
        #[help]
        help: String,
    },

    /// An envelope could not be parsed.
    #[error("{} is not a valid envelope: {reason}", path.display())]
    #[diagnostic(code(nightlatch_sign::malformed))]
    MalformedEnvelope {
        /// The envelope file.
        path: PathBuf,
        /// The parser's reason.
        reason: EnvelopeError,
        /// What to do.
        #[help]
        help: String,
    },

    /// The envelope could not be built (no keys, too many, or a repeated key).
    #[error("cannot build the envelope: {reason}")]
    #[diagnostic(code(nightlatch_sign::encode), help("sign with 1 to 8 distinct keys"))]
    Encode {
        /// The encoder's reason.
        reason: EnvelopeError,
    },

    /// The freshly signed envelope did not pass the bootloader's own check.
    #[error("the envelope just signed does not verify: {reason}")]
    #[diagnostic(
        code(nightlatch_sign::self_check),
        help("this is a bug in nightlatch-sign; nothing was written, please report it")
    )]
    SelfCheck {
        /// The verifier's reason.
        reason: EnvelopeError,
    },

    /// A directory is not a TUF repository made by these tools.
    #[error("{} is not a TUF repository: {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_sign::not_a_repository),
        help(
            "start one with `nightlatch-sign repo init --repo DIR ROOT.json` (a fully signed root from `nightlatch-keys`)"
        )
    )]
    NotARepository {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },

    /// A repository's metadata is in a state this command cannot build on.
    #[error("repository {}: {reason}", path.display())]
    #[diagnostic(code(nightlatch_sign::repo_state))]
    RepoState {
        /// The repository directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// What to do.
        #[help]
        help: String,
    },

    /// A target of that name is already published with other content.
    #[error("target {target} is already published with different content")]
    #[diagnostic(
        code(nightlatch_sign::target_conflict),
        help(
            "published targets never change; sign the image with a new --version and publish that"
        )
    )]
    TargetConflict {
        /// The target path.
        target: String,
    },

    /// A file given to `publish` is neither an envelope nor a known patch.
    #[error("{} is not a firmware envelope (magic NLFW): {reason}", path.display())]
    #[diagnostic(
        code(nightlatch_sign::unknown_target_file),
        help(
            "publish envelopes made by `nightlatch-sign sign` or patches made by `nightlatch-sign delta`"
        )
    )]
    UnknownTargetFile {
        /// The file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },

    /// A report could not be serialised to JSON (should not happen).
    #[error("cannot serialise the JSON report")]
    #[diagnostic(
        code(nightlatch_sign::json),
        help("this is a bug in the Nightlatch tools; please report it")
    )]
    Json {
        /// Why.
        #[source]
        source: serde_json::Error,
    },

    /// A delta patch could not be made, read or applied.
    #[error("{what}: {reason}")]
    #[diagnostic(code(nightlatch_sign::delta), help("{help}"))]
    Delta {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: bootloader::delta::DeltaError,
        /// What to do next.
        help: String,
    },
}

impl Error {
    /// A command-line usage error with a hint.
    pub fn usage(reason: impl Into<String>, help: impl Into<String>) -> Self {
        Self::Usage {
            reason: reason.into(),
            help: help.into(),
        }
    }

    /// Metadata at `path` breaks a rule.
    pub fn invalid(
        path: impl Into<PathBuf>,
        what: &'static str,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            path: path.into(),
            what,
            reason: reason.into(),
        }
    }

    /// `verify` refused `path` for `reason`.
    pub fn rejected(path: impl Into<PathBuf>, reason: EnvelopeError) -> Self {
        Self::Rejected {
            path: path.into(),
            help: envelope_help(&reason),
            reason,
        }
    }

    /// `path` is not a parseable envelope.
    pub fn malformed_envelope(path: impl Into<PathBuf>, reason: EnvelopeError) -> Self {
        Self::MalformedEnvelope {
            path: path.into(),
            help: envelope_help(&reason),
            reason,
        }
    }

    /// `--anchor` keys and `--threshold` (`keys` of them) do not form a valid set.
    pub fn anchors(reason: AnchorError, keys: usize) -> Self {
        Self::Anchors {
            help: anchor_help(&reason, keys),
            reason,
        }
    }
}

/// What to do about an envelope the bootloader refuses.
pub fn envelope_help(reason: &EnvelopeError) -> String {
    match reason {
        EnvelopeError::TooShort => "the file is shorter than an envelope header: is it a complete envelope written by `nightlatch-sign sign`?".into(),
        EnvelopeError::BadMagic => "this is not a Nightlatch envelope; a raw firmware image must first be signed with `nightlatch-sign sign`".into(),
        EnvelopeError::UnsupportedFormat(_) => "this envelope format is not the one this bootloader reads; re-sign the raw image with this nightlatch-sign".into(),
        EnvelopeError::LengthMismatch { .. } => "the file was truncated or has extra bytes; copy or download it again".into(),
        EnvelopeError::PayloadTooLarge { .. } => "the payload is larger than allowed; check the image and the partition size".into(),
        EnvelopeError::WrongModel => "this image is for another hardware model; check --model, or sign the image for this model".into(),
        EnvelopeError::SecurityCounterTooLow { minimum, .. } => format!(
            "a device with this minimum refuses the image as a rollback; re-sign it with --counter {minimum} or higher"
        ),
        EnvelopeError::ThresholdNotMet { .. } => "check that the --anchor keys are the ones that signed (compare key ids with `nightlatch-sign inspect`) and that --threshold is what you expect".into(),
        EnvelopeError::DigestMismatch => "the payload changed after signing; copy or download the envelope again, or re-sign the image".into(),
        _ => "the envelope header is corrupt; copy or download it again, or re-sign the raw image".into(),
    }
}

/// What to do about an anchor set the bootloader refuses.
pub fn anchor_help(reason: &AnchorError, keys: usize) -> String {
    match reason {
        AnchorError::BadThreshold => {
            format!("--threshold must be between 1 and the number of --anchor keys ({keys})")
        }
        AnchorError::TooManyKeys => {
            format!("pass at most {} --anchor keys", bootloader::anchors::MAX_ANCHOR_KEYS)
        }
        AnchorError::DuplicateKey => "the same key is given twice; remove the repeated --anchor".into(),
        AnchorError::InvalidKey => "one --anchor is a weak or invalid Ed25519 key; use keys made by `nightlatch-sign keygen`".into(),
        AnchorError::Malformed => "this is not a complete rotation record; write one with `nightlatch-sign anchors rotate`".into(),
        AnchorError::NotNewer { .. } => "the record's --set-version must exceed the lock's current anchor set version".into(),
        AnchorError::CurrentThresholdNotMet { .. } => "not enough current anchor keyholders have signed: add signatures with `nightlatch-sign anchors sign --key CURRENT.key RECORD`".into(),
        AnchorError::NewThresholdNotMet { .. } => "the new keyholders must sign too (proving the new keys are held): `nightlatch-sign anchors sign --key NEW.key RECORD`".into(),
        _ => "check the --anchor and --threshold options".into(),
    }
}
