//! One table of delegation path decisions (issue 18), decided through every
//! entry point that decides them: the lock's TUF client
//! (`lock_app::tuf::DelegatedRole::is_delegated_path`), the host's metadata
//! model (`nightlatch_repo::metadata::DelegatedRole::is_delegated_path`,
//! what the server's upload check `update_server::repo::upload::check` and
//! the repository tools call). Both are now `nightlatch_proto`'s one
//! `DelegatedRole` and `nightlatch_proto::paths`; this test keeps it that
//! way.
//!
//! The table is also checked against python-tuf 7
//! (`DelegatedRole.is_delegated_path`, the reference client) and, for the
//! glob rows, against Python's `fnmatch.fnmatchcase` applied per `/` segment
//! (what python-tuf does). Python is `$NIGHTLATCH_PYTHON` or the venv
//! `.ci/setup` builds; the test FAILS without it.
//!
//! `*` and `?` never match `/`: since theupdateframework/specification#174
//! a wildcard matches within one segment, and python-tuf splits both sides
//! on `/` first (rows marked "across /").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Rule {
    /// One entry of `paths`.
    Glob(&'static str),
    /// One entry of `path_hash_prefixes`.
    Hash(&'static str),
}
use Rule::{Glob, Hash};

// sha256("nl-lock-v2/1.0.0.nlfw")
const H1: &str = "37e04ad1110fe299c4994bbaeb35a7c0ee2fbf1aa55d7db42b4b761b39615a3c";
// sha256("nl-lock-v2/é.nlfw"), of its UTF-8 bytes
const H_UTF8: &str = "b247e282aa8164b5929989ee282995da66436f5401127ae8523c7e721f0ae009";

/// (rule, target path, trusted?)
const TABLE: &[(Rule, &str, bool)] = &[
    // --- `*`: the common cases, leading and trailing, and never across `/`.
    (Glob("nl-lock-v2/*"), "nl-lock-v2/1.0.0.nlfw", true),
    (Glob("nl-lock-v2/*"), "nl-lock-v3/1.0.0.nlfw", false),
    (Glob("nl-lock-v2/*"), "nl-lock-v2/beta/1.0.0.nlfw", false), // across /
    (Glob("*"), "file.txt", true),
    (Glob("*"), "dir/file.txt", false),        // across /
    (Glob("*.tgz"), "targets/foo.tgz", false), // across / (spec #173)
    (Glob("a*b"), "a/b", false),               // across /
    (Glob("**"), "a/b", false),                // across /: no recursive **
    (Glob("**"), "ab", true),
    (Glob("targets/*.tgz"), "targets/foo.tgz", true),
    (Glob("targets/*.tgz"), "targets/foo.txt", false),
    (Glob("*/*"), "a/b", true),
    (Glob("*/*"), "a/b/c", false),
    (Glob("*/*/*"), "a/b/c", true),
    (Glob("*/*.nlfw"), "nl-lock-v2/1.0.0.nlfw", true),
    (
        Glob("nl-lock-v2/*-beta.nlfw"),
        "nl-lock-v2/1.2.0-beta.nlfw",
        true,
    ), // leading *
    (
        Glob("nl-lock-v2/*-beta.nlfw"),
        "nl-lock-v2/1.2.0.nlfw",
        false,
    ),
    (Glob("nl-lock-v2/1.*"), "nl-lock-v2/1.2.0.nlfw", true), // trailing *
    (Glob("nl-lock-v2/1.*"), "nl-lock-v2/2.0.0.nlfw", false),
    (Glob("*"), "", true),
    (
        Glob("a*a*a*a*a*a*b"),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        false,
    ),
    (Glob("NL-LOCK-V2/*"), "nl-lock-v2/1.0.0.nlfw", false), // case-sensitive
    // --- `?`: one character (not one byte), never `/`.
    (Glob("foo-version-?.tgz"), "foo-version-2.tgz", true),
    (Glob("foo-version-?.tgz"), "foo-version-alpha.tgz", false),
    (Glob("file?.txt"), "file.txt", false),
    (Glob("a?b"), "a/b", false), // across /
    (Glob("nl-lock-v2/?.nlfw"), "nl-lock-v2/é.nlfw", true),
    // --- `[...]`, `[!...]`, ranges.
    (Glob("nl-lock-v[0-9]/*"), "nl-lock-v7/1.0.0.nlfw", true),
    (Glob("nl-lock-v[0-9]/*"), "nl-lock-vx/1.0.0.nlfw", false),
    (Glob("nl-lock-v[!0-9]/*"), "nl-lock-v7/1.0.0.nlfw", false),
    (Glob("nl-lock-v[!0-9]/*"), "nl-lock-vx/1.0.0.nlfw", true),
    (Glob("[abc]"), "b", true),
    (Glob("[abc]"), "d", false),
    (Glob("[a-cx-z]"), "y", true),
    (Glob("[a-cx-z]"), "m", false),
    (Glob("[A-Z]*"), "nl", false),
    (Glob("[z-a]"), "m", false),   // a reversed range is dropped
    (Glob("[x-a!b]"), "b", false), // ... and a `!` left first negates
    (Glob("[x-a!b]"), "c", true),
    (Glob("[]]"), "]", true), // `]` first is a member
    (Glob("[!]]"), "]", false),
    (Glob("[!]]"), "a", true),
    (Glob("[a-]"), "-", true), // `-` last is a member
    (Glob("[-a]"), "-", true), // `-` first is a member
    (Glob("[^a]"), "^", true), // `^` does not negate
    (Glob("[^a]"), "b", false),
    (Glob("[à-ê]"), "é", true),
    (Glob("[/]"), "/", false), // across /: the segments differ in number
    // --- escaped-looking characters: fnmatch has no escape, `\` is literal.
    (Glob("[*]"), "*", true),
    (Glob("[*]"), "x", false),
    (Glob("[?]"), "?", true),
    (Glob("[?]"), "a", false),
    (Glob("\\*"), "\\x", true),
    (Glob("\\*"), "*", false),
    (Glob("a\\?b"), "a\\zb", true),
    (Glob("[\\]"), "\\", true),
    (Glob("["), "[", true), // an unclosed `[` is a literal
    (Glob("[a"), "[a", true),
    // --- empty pattern and empty segments.
    (Glob(""), "", true),
    (Glob(""), "a", false),
    (Glob("a/*"), "a/", true),
    (Glob("/*"), "/a", true),
    (Glob("/*"), "a", false),
    (Glob("*/"), "a/", true),
    // --- path_hash_prefixes: of different lengths.
    (Hash(""), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash("3"), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash("37"), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash("37e"), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash("37e04ad1"), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash(H1), "nl-lock-v2/1.0.0.nlfw", true),
    (Hash("4"), "nl-lock-v2/1.0.0.nlfw", false),
    (Hash("38"), "nl-lock-v2/1.0.0.nlfw", false),
    (Hash("37e04ad2"), "nl-lock-v2/1.0.0.nlfw", false),
    (Hash("37E04AD1"), "nl-lock-v2/1.0.0.nlfw", false), // hex is lowercase
    (Hash("37"), "nl-lock-v3/2.1.0.nlfw", false),
    (Hash("49"), "nl-lock-v3/2.1.0.nlfw", true),
    (Hash("b247e2"), "nl-lock-v2/é.nlfw", true),
    (Hash(H_UTF8), "nl-lock-v2/é.nlfw", true),
    (Hash("e3b0c442"), "", true),
];

fn lock_decides(rule: Rule, target: &str) -> bool {
    let (paths, path_hash_prefixes) = match rule {
        Glob(p) => (Some(vec![p.to_owned()]), None),
        Hash(h) => (None, Some(vec![h.to_owned()])),
    };
    lock_app::tuf::DelegatedRole {
        name: "r".into(),
        keys: lock_app::tuf::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        },
        terminating: false,
        paths,
        path_hash_prefixes,
    }
    .is_delegated_path(target)
}

fn host_decides(rule: Rule, target: &str) -> bool {
    let (paths, path_hash_prefixes) = match rule {
        Glob(p) => (Some(vec![p.to_owned()]), None),
        Hash(h) => (None, Some(vec![h.to_owned()])),
    };
    nightlatch_repo::metadata::DelegatedRole {
        name: "r".into(),
        keys: nightlatch_repo::metadata::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        },
        terminating: false,
        paths,
        path_hash_prefixes,
    }
    .is_delegated_path(target)
}

fn python() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "python-tuf venv not found at {} (or $NIGHTLATCH_PYTHON): run bash .ci/setup",
        p.display()
    );
    p
}

const PYTHON: &str = r#"
import json, sys
from fnmatch import fnmatchcase
from tuf.api.metadata import DelegatedRole
out = []
for kind, value, target in json.load(sys.stdin):
    if kind == "glob":
        role = DelegatedRole("r", [], 1, False, paths=[value])
        t, p = target.split("/"), value.split("/")
        fm = len(t) == len(p) and all(fnmatchcase(a, b) for a, b in zip(t, p))
    else:
        role = DelegatedRole("r", [], 1, False, path_hash_prefixes=[value])
        fm = None
    out.append({"tuf": role.is_delegated_path(target), "fnmatch": fm})
print(json.dumps(out))
"#;

/// python-tuf's and fnmatch's answers, one per row.
fn python_decides() -> Vec<Value> {
    let rows: Vec<Value> = TABLE
        .iter()
        .map(|(rule, target, _)| match rule {
            Glob(p) => json!(["glob", p, target]),
            Hash(h) => json!(["hash", h, target]),
        })
        .collect();
    let mut child = Command::new(python())
        .arg("-c")
        .arg(PYTHON)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json!(rows).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lock_and_server_decide_the_table_like_python_tuf() {
    assert!(TABLE.len() >= 40);
    let python = python_decides();
    assert_eq!(python.len(), TABLE.len());
    let mut wrong = Vec::new();
    for ((rule, target, want), py) in TABLE.iter().zip(&python) {
        let lock = lock_decides(*rule, target);
        let host = host_decides(*rule, target);
        let tuf = py["tuf"].as_bool().unwrap();
        let fnmatch = py["fnmatch"].as_bool();
        let agree =
            lock == *want && host == *want && tuf == *want && fnmatch.is_none_or(|f| f == *want);
        if !agree {
            wrong.push(format!(
                "{rule:?} {target:?}: table {want}, lock {lock}, nightlatch-repo {host}, python-tuf {tuf}, fnmatchcase {fnmatch:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Both sides read the same metadata to the same roles: a delegation with
/// `path_hash_prefixes` parses on the host (it did not before) and the
/// server's upload check and the lock trust it for the same targets.
#[test]
fn hash_prefix_delegations_parse_on_both_sides() {
    let signed = json!({
        "_type": "targets",
        "spec_version": "1.0.31",
        "version": 1,
        "expires": "2040-01-01T00:00:00Z",
        "targets": {},
        "delegations": {
            "keys": {},
            "roles": [
                {"name": "bin-3", "keyids": [], "threshold": 1, "terminating": true,
                 "path_hash_prefixes": ["3"]},
                {"name": "v2", "keyids": [], "threshold": 1, "terminating": false,
                 "paths": ["nl-lock-v2/*"]}
            ]
        }
    });
    let host: nightlatch_repo::metadata::Targets = serde_json::from_value(signed.clone()).unwrap();
    let host_roles = host.delegations.unwrap().roles;
    let env = lock_app::tuf::Envelope::parse(
        json!({"signatures": [], "signed": signed})
            .to_string()
            .as_bytes(),
        lock_app::tuf::Role::Targets,
    )
    .unwrap();
    let lock = lock_app::tuf::Targets::parse(&env, lock_app::tuf::Role::Targets).unwrap();
    let lock_roles = lock.delegations.unwrap().roles;
    for target in [
        "nl-lock-v2/1.0.0.nlfw",
        "nl-lock-v3/2.1.0.nlfw",
        "nl-lock-v2/é.nlfw",
    ] {
        let h: Vec<bool> = host_roles
            .iter()
            .map(|r| r.is_delegated_path(target))
            .collect();
        let l: Vec<bool> = lock_roles
            .iter()
            .map(|r| r.is_delegated_path(target))
            .collect();
        assert_eq!(h, l, "{target}");
    }
    assert!(host_roles[0].is_delegated_path("nl-lock-v2/1.0.0.nlfw"));
    assert_eq!(host_roles[0].scope(), "path hash prefixes 3");
}
