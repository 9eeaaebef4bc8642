//! Passphrases and PINs: from the environment (automation, tests) or typed at
//! the terminal (a keyholder at the ceremony). Never from a command-line
//! argument, where other users could see them.

use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Environment variable holding the passphrase of encrypted key files.
pub const PASSPHRASE_ENV: &str = "NIGHTLATCH_KEY_PASSPHRASE";
/// Environment variable holding a PKCS#11 user PIN.
pub const PIN_ENV: &str = "NIGHTLATCH_PKCS11_PIN";

/// Shortest passphrase accepted for a new key file.
pub const MIN_PASSPHRASE_LEN: usize = 8;

/// What to do when no passphrase or PIN could be had at the ceremony.
const HELP: &str = "run the command in a terminal to be prompted, or set NIGHTLATCH_KEY_PASSPHRASE (or NIGHTLATCH_PKCS11_PIN for a token)";

fn none(what: &str, reason: String) -> Error {
    Error::NoPassphrase {
        what: what.to_owned(),
        reason,
        help: HELP.to_owned(),
    }
}

/// The passphrase to open `what`: `$NIGHTLATCH_KEY_PASSPHRASE`, or a prompt.
pub fn passphrase(what: &str) -> Result<Zeroizing<String>> {
    from_env_or_prompt(PASSPHRASE_ENV, &format!("passphrase for {what}: "), what)
}

/// A PIN for a token: `$NIGHTLATCH_PKCS11_PIN`, or a prompt.
pub fn pin(what: &str) -> Result<Zeroizing<String>> {
    from_env_or_prompt(PIN_ENV, &format!("PIN for {what}: "), what)
}

/// A passphrase for a new key file: from the environment, or typed twice.
pub fn new_passphrase(what: &str) -> Result<Zeroizing<String>> {
    let first = match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => Zeroizing::new(p),
        Err(_) => {
            let first = prompt(&format!("new passphrase for {what}: "), what)?;
            let again = prompt("the same passphrase again: ", what)?;
            if *first != *again {
                return Err(none(what, "the two passphrases differ".into()));
            }
            first
        }
    };
    if first.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(none(
            what,
            format!("a passphrase must have at least {MIN_PASSPHRASE_LEN} characters"),
        ));
    }
    Ok(first)
}

fn from_env_or_prompt(var: &str, question: &str, what: &str) -> Result<Zeroizing<String>> {
    match std::env::var(var) {
        Ok(p) => Ok(Zeroizing::new(p)),
        Err(_) => prompt(question, what),
    }
}

fn prompt(question: &str, what: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(question)
        .map(Zeroizing::new)
        .map_err(|e| none(what, format!("cannot read from the terminal ({e})")))
}
