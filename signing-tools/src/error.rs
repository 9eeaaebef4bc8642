//! Every way `nightlatch-sign` can fail, each with a hint about what to do next.
//!
//! The binary prints these through miette's fancy handler and exits with code 1.

use std::io;
use std::path::PathBuf;

use bootloader::anchors::AnchorError;
use bootloader::envelope::{EnvelopeError, MAX_SIGNATURES};
use miette::Diagnostic;
use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of one `nightlatch-sign` command.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    #[diagnostic(
        code(nightlatch_sign::read),
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
        code(nightlatch_sign::too_large),
        help(
            "an envelope payload is limited to 4 GiB (its length is a u32); check you passed the right file"
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
        code(nightlatch_sign::write),
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
        code(nightlatch_sign::exists),
        help("pass --force to replace it, or choose another output name")
    )]
    Exists {
        /// The file.
        path: PathBuf,
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

    /// No passphrase for an encrypted key file (to read, or for a new one).
    #[error("no passphrase for {what}: {reason}")]
    #[diagnostic(code(nightlatch_sign::no_passphrase))]
    NoPassphrase {
        /// The key file.
        what: String,
        /// Why there is none.
        reason: String,
        /// What to do.
        #[help]
        help: String,
    },

    /// The passphrase does not decrypt the key file.
    #[error("wrong passphrase for {} (or the file is damaged)", path.display())]
    #[diagnostic(
        code(nightlatch_sign::wrong_passphrase),
        help(
            "check the passphrase; NIGHTLATCH_KEY_PASSPHRASE, when set, is used instead of asking (unset it to be asked at the terminal)"
        )
    )]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
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

    /// `inspect` could not parse the envelope.
    #[error("{} is not a valid envelope: {reason}", path.display())]
    #[diagnostic(code(nightlatch_sign::malformed))]
    Malformed {
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

    /// Standard output could not be written (closed pipe, full disk).
    #[error("cannot write to standard output")]
    #[diagnostic(
        code(nightlatch_sign::stdout),
        help("check where the output is redirected to")
    )]
    Stdout {
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A TUF metadata, key source or ceremony error (from `keys-ceremony`).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Tuf(#[from] keys_ceremony::Error),

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
        help("this is a bug in nightlatch-sign; please report it")
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
    /// `verify` refused `path` for `reason`.
    pub fn rejected(path: impl Into<PathBuf>, reason: EnvelopeError) -> Self {
        Self::Rejected {
            path: path.into(),
            help: envelope_help(&reason),
            reason,
        }
    }

    /// `inspect` could not parse `path`.
    pub fn malformed(path: impl Into<PathBuf>, reason: EnvelopeError) -> Self {
        Self::Malformed {
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
