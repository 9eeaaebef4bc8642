//! Every way `nightlatch-keys` (and the TUF code it lends to `signing-tools`)
//! can fail, each with a hint about what to do next.
//!
//! Policy: bytes from outside (metadata files, key files, token answers) never
//! panic; each refusal names the file and the reason. The binary prints these
//! through miette and exits with code 1.

use std::io;
use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of one ceremony or repository operation.
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
        help("check that you passed the right file: metadata and key files are small")
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
            "type the passphrase again; NIGHTLATCH_KEY_PASSPHRASE, if set, is used instead of a prompt"
        )
    )]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },

    /// No passphrase could be obtained.
    #[error("no passphrase for {what}: {reason}")]
    #[diagnostic(
        code(nightlatch_keys::no_passphrase),
        help(
            "run the command in a terminal to be prompted, or set NIGHTLATCH_KEY_PASSPHRASE (or NIGHTLATCH_PKCS11_PIN for a token)"
        )
    )]
    NoPassphrase {
        /// What it was for.
        what: String,
        /// Why.
        reason: String,
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
}
