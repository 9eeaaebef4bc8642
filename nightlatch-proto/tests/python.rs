//! The protocol crate against the Python it must agree with, run live: our
//! canonical JSON against securesystemslib's `encode_canonical` (what
//! python-tuf signs), and our glob against `fnmatch.fnmatchcase` (what
//! python-tuf matches delegation path segments with).
//!
//! Python is the venv `.ci/setup` builds (`.venv/bin/python`, python-tuf 7
//! and securesystemslib) or `$NIGHTLATCH_PYTHON`. These tests FAIL without
//! it: a comparison that is skipped proves nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nightlatch_proto::{cjson, paths};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "python with securesystemslib not found at {} (or $NIGHTLATCH_PYTHON): run bash .ci/setup",
        p.display()
    );
    p
}

/// Run `script` with `input` as JSON on stdin; its stdout, parsed.
fn run_python(script: &str, input: &Value) -> Value {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python's answer is JSON")
}

/// JSON texts and what securesystemslib makes of them.
const CANONICAL_CORPUS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    r#""""#,
    r#""plain""#,
    r#""quote \" backslash \\ slash \/ solidus /""#,
    r#""\b\f\n\r\t\u0000\u0001\u001f\u007f\u0080\u009f""#,
    r#""\u00e9 e\u0301 \u212a K \u2028\u2029 \ufeff \uffff \ufffd""#,
    r#""\ud83d\udd12 \ud800\udc00 \udbff\udfff""#,
    "\"raw \u{1f512} \u{e9} \u{10ffff}\"",
    r#""\\\"\\\\\"""#,
    "[]",
    "{}",
    "[[],[[]],{},[{}]]",
    r#"{"b":1,"a":2,"c":{"z":[3,2,1],"y":{"x":null}}}"#,
    r#"{"a":1,"a!":2,"a\"":3,"a#":4,"a\\":5,"":6," ":7,"~":8,"\u007f":9}"#,
    r#"{"\u00e9":1,"e\u0301":2,"\ud83d\ude00":3,"\uffff":4,"\uff61":5,"z":6,"Z":7}"#,
    r#"{"K":1,"\u212a":2,"k":3}"#,
    r#"[1,-2,{"keys":{"ab":{"keytype":"ed25519","keyval":{"public":"00"},"scheme":"ed25519"}}}]"#,
    r#"{"signed":{"_type":"targets","spec_version":"1.0.31","version":7,"expires":"2030-01-01T00:00:00Z","targets":{"m/1.0.0.nlfw":{"length":1024,"hashes":{"sha256":"ab"},"custom":{"nightlatch":{"kind":"full"}}}},"delegations":{"keys":{},"roles":[{"name":"m","keyids":[],"threshold":1,"terminating":true,"paths":["m/*"]}]}}}"#,
];

/// Texts securesystemslib refuses (floats) and so must we.
const REFUSED_BY_BOTH: &[&str] = &[
    "1.5",
    "1.0",
    "0.0",
    "-0.0",
    "1e3",
    "1E-2",
    "-1.5e300",
    r#"{"a":[1,{"b":0.5}]}"#,
    r#"{"version":1,"expires":2.0}"#,
];

/// Texts securesystemslib writes (Python's integers have no bound, and its
/// json reads `-0` as 0) but serde_json holds as floats, so we refuse: the
/// one place we are stricter. No TUF writer emits these.
const REFUSED_BY_US_ONLY: &[&str] = &[
    "-0",
    "18446744073709551616",
    "-9223372036854775809",
    "[123456789012345678901234567890]",
];

const ENCODE: &str = r#"
import json, sys
from securesystemslib.formats import encode_canonical
out = []
for text in json.load(sys.stdin):
    try:
        out.append(encode_canonical(json.loads(text)))
    except Exception as e:
        out.append(None)
print(json.dumps(out))
"#;

#[test]
fn canonical_json_matches_securesystemslib() {
    let all: Vec<&str> = CANONICAL_CORPUS
        .iter()
        .chain(REFUSED_BY_BOTH)
        .chain(REFUSED_BY_US_ONLY)
        .copied()
        .collect();
    let theirs = run_python(ENCODE, &json!(all));
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), all.len());
    for (text, want) in all.iter().zip(theirs) {
        let value: Value = serde_json::from_str(text).unwrap();
        let ours = cjson::to_vec(&value).map(|b| String::from_utf8(b).unwrap());
        if REFUSED_BY_US_ONLY.contains(text) {
            assert!(want.is_string(), "securesystemslib writes {text}");
            assert!(ours.is_err(), "{text} must be refused, got {ours:?}");
        } else if REFUSED_BY_BOTH.contains(text) {
            assert!(want.is_null(), "securesystemslib refuses {text}");
            assert!(ours.is_err(), "{text} must be refused, got {ours:?}");
        } else {
            let want = want
                .as_str()
                .unwrap_or_else(|| panic!("securesystemslib refused {text}"));
            assert_eq!(ours.as_deref(), Ok(want), "{text}");
        }
    }
}

/// The same comparison on the stored vectors (made by securesystemslib 1.6).
#[test]
fn canonical_json_matches_stored_securesystemslib_vectors() {
    let fixtures: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/canonical_json.json")).unwrap();
    assert!(fixtures.len() >= 10);
    for f in fixtures {
        let input = f["input"].as_str().unwrap();
        let want = f["canonical"].as_str().unwrap();
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            String::from_utf8(cjson::to_vec(&v).unwrap()).unwrap(),
            want,
            "{input}"
        );
    }
}

const FNMATCH: &str = r#"
import json, sys
from fnmatch import fnmatchcase
print(json.dumps([fnmatchcase(n, p) for n, p in json.load(sys.stdin)]))
"#;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
    fn string(&mut self, alphabet: &[char], max: u64) -> String {
        let len = self.next() % (max + 1);
        (0..len).map(|_| self.pick(alphabet)).collect()
    }
}

/// Every glob corner CPython's `fnmatch` has, on generated patterns: class
/// brackets, `!`, hyphens in every position, reversed ranges, `^`, `\`,
/// non-ASCII, and `*`/`?` against `/`.
#[test]
fn glob_matches_fnmatchcase_on_generated_cases() {
    const PATTERN: &[char] = &[
        'a', 'b', 'c', 'z', '-', '-', '!', '[', '[', ']', ']', '*', '?', '^', '\\', '/', 'é',
    ];
    const NAME: &[char] = &[
        'a', 'b', 'c', 'z', '-', '!', '[', ']', '^', '\\', '/', 'é', '.',
    ];
    const CLASS: &[char] = &[
        'a', 'b', 'c', 'z', '-', '-', '-', '!', '!', ']', '[', '^', 'é',
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cases: Vec<(String, String)> = Vec::new();
    // Classes alone: every way `[...]` can be read, against one character.
    while cases.len() < 10_000 {
        let pattern = format!("[{}]", rng.string(CLASS, 6));
        let name = rng.pick(NAME).to_string();
        cases.push((name, pattern));
    }
    while cases.len() < 30_000 {
        let pattern = rng.string(PATTERN, 9);
        // Half the names are made to fit the pattern's literal skeleton.
        let name = if rng.next().is_multiple_of(2) {
            pattern
                .chars()
                .map(|c| match c {
                    '*' | '?' | '[' | ']' | '!' => rng.pick(NAME),
                    c => c,
                })
                .collect()
        } else {
            rng.string(NAME, 7)
        };
        cases.push((name, pattern));
    }
    let theirs = run_python(FNMATCH, &json!(cases));
    let theirs = theirs.as_array().unwrap();
    assert_eq!(theirs.len(), cases.len());
    let mut matched = 0;
    for ((name, pattern), want) in cases.iter().zip(theirs) {
        let want = want.as_bool().unwrap();
        matched += usize::from(want);
        assert_eq!(
            paths::fnmatchcase(name, pattern),
            want,
            "fnmatchcase({name:?}, {pattern:?})"
        );
    }
    // The corpus exercises both answers.
    assert!(matched > 3_000 && matched < 27_000, "{matched} matched");
}
