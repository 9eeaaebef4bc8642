//! Which delegated role is trusted for a target path: the TUF rule, decided
//! the way python-tuf 7 (`DelegatedRole.is_delegated_path`) decides it.
//!
//! * `path_hash_prefixes`: the lowercase hex SHA-256 of the target path's
//!   UTF-8 bytes starts with one of the prefixes (any length; `""` matches
//!   every path, a prefix longer than 64 characters none).
//! * `paths`: the pattern and the target path have the same number of
//!   `/`-separated segments and each target segment matches its pattern
//!   segment as Python's `fnmatch.fnmatchcase` matches it: `*` any run of
//!   characters, `?` one character, `[...]` one character of a class
//!   (ranges `a-z`, `[!...]` negated, `]` first is a member, an unclosed `[`
//!   is a literal `[`). There is no escape character (`\` is literal). So a
//!   wildcard never matches `/` (theupdateframework/specification#174).
//!
//! Characters are Unicode scalar values, as in Python (`?` matches `é`
//! whole).

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

/// Whether a delegated role with these `paths` and `path_hash_prefixes` is
/// trusted for `target`. Like python-tuf, the hash prefixes decide when they
/// are present, else the patterns; a role with neither is trusted for
/// nothing. (A role with both is malformed: the metadata parsers refuse it.)
pub fn is_delegated_path<P, H>(
    paths: Option<&[P]>,
    path_hash_prefixes: Option<&[H]>,
    target: &str,
) -> bool
where
    P: AsRef<str>,
    H: AsRef<str>,
{
    if let Some(prefixes) = path_hash_prefixes {
        let hash = target_path_hash(target);
        return prefixes
            .iter()
            .any(|p| hash_prefix_matches(&hash, p.as_ref()));
    }
    if let Some(patterns) = paths {
        return patterns.iter().any(|p| path_matches(p.as_ref(), target));
    }
    false
}

/// Lowercase hex of the SHA-256 of `target`'s UTF-8 bytes.
pub fn target_path_hash(target: &str) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(target.as_bytes());
    let mut hex = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        hex[2 * i] = DIGITS[usize::from(b >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    hex
}

/// Whether `hash` (from [`target_path_hash`]) starts with `prefix`
/// (compared as written: an uppercase prefix matches nothing).
pub fn hash_prefix_matches(hash: &[u8; 64], prefix: &str) -> bool {
    hash.starts_with(prefix.as_bytes())
}

/// Whether `target` matches the delegation path pattern `pattern`:
/// python-tuf's `_is_target_in_pathpattern`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    if pattern.split('/').count() != target.split('/').count() {
        return false;
    }
    pattern
        .split('/')
        .zip(target.split('/'))
        .all(|(p, t)| fnmatchcase(t, p))
}

/// Python's `fnmatch.fnmatchcase(name, pattern)`: the whole of `name`
/// matches `pattern` (where `*` and `?` match `/` too).
pub fn fnmatchcase(name: &str, pattern: &str) -> bool {
    let tokens = compile(pattern);
    let name: Vec<char> = name.chars().collect();
    // Every token but `*` takes exactly one character, so backtracking to
    // the last `*` is enough (linear in practice, never exponential).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    loop {
        match tokens.get(pi) {
            Some(Token::Star) => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some(token) => {
                if let Some(&c) = name.get(ni)
                    && token.matches(c)
                {
                    pi += 1;
                    ni += 1;
                    continue;
                }
            }
            None if ni == name.len() => return true,
            None => {}
        }
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters (consecutive stars are one).
    Star,
    /// `?`: any one character.
    Any,
    /// A character that stands for itself.
    Literal(char),
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)) != *negated
            }
        }
    }
}

/// The tokens of `pattern`, read as CPython's `fnmatch._translate` reads it.
fn compile(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let n = p.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::Any),
            '[' => {
                // The class ends at the first `]` after an optional `!` and
                // an optional leading `]` (which is then a member).
                let mut j = i;
                if p.get(j) == Some(&'!') {
                    j += 1;
                }
                if p.get(j) == Some(&']') {
                    j += 1;
                }
                while j < n && p[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    out.push(Token::Literal('['));
                } else {
                    out.push(class(&p, i, j));
                    i = j + 1;
                }
            }
            c => out.push(Token::Literal(c)),
        }
    }
    out
}

/// The class `p[start..end]` (between `[` and `]`). CPython splits it into
/// chunks at the hyphens that make ranges, drops the ranges whose start is
/// above their end (with both endpoints), and hands the rest to `re` as a
/// set whose first `!` negates: reproduced here step by step, since the
/// corner cases (`[a--]`, `[x-a!b]`, `[!b-a]`) follow from those steps.
fn class(p: &[char], start: usize, end: usize) -> Token {
    let stuff = &p[start..end];
    let mut chunks: Vec<Vec<char>> = Vec::new();
    if stuff.contains(&'-') {
        // A `-` first (after `!`) is a member, and so is a `-` right after
        // a range's end.
        let mut i = start;
        let mut k = if p[start] == '!' {
            start + 2
        } else {
            start + 1
        };
        while let Some(h) = (k..end).find(|&x| p[x] == '-') {
            chunks.push(p[i..h].to_vec());
            i = h + 1;
            k = h + 3;
        }
        if i < end {
            chunks.push(p[i..end].to_vec());
        } else if let Some(last) = chunks.last_mut() {
            // A `-` last is a member.
            last.push('-');
        }
        for k in (1..chunks.len()).rev() {
            if chunks[k - 1].last() > chunks[k].first() {
                let next = chunks.remove(k);
                let prev = &mut chunks[k - 1];
                prev.pop();
                prev.extend_from_slice(next.get(1..).unwrap_or_default());
            }
        }
    } else {
        chunks.push(stuff.to_vec());
    }
    // The set as `re` reads it: `(char, is_range_hyphen)`, the hyphens
    // between chunks being the only range operators.
    let mut set: Vec<(char, bool)> = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        if k > 0 {
            set.push(('-', true));
        }
        set.extend(chunk.iter().map(|&c| (c, false)));
    }
    let negated = set.first() == Some(&('!', false));
    if negated {
        set.remove(0);
    }
    // Empty: never matches; `!` alone: any character. Both fall out of an
    // empty (negated) range list.
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < set.len() {
        let lo = set[i].0;
        if set.get(i + 1).is_some_and(|&(_, op)| op)
            && let Some(&(hi, _)) = set.get(i + 2)
        {
            ranges.push((lo, hi));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
    Token::Class { negated, ranges }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_per_segment() {
        assert!(path_matches("nl-lock-v2/*", "nl-lock-v2/1.0.0.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v2/a/b.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v3/1.0.0.nlfw"));
        assert!(!path_matches("a/*", "a"));
        assert!(path_matches("*", "file.txt"));
        assert!(!path_matches("*", "dir/file.txt"));
        assert!(path_matches("*/*.tgz", "a/b.tgz"));
        assert!(path_matches("a/?.bin", "a/x.bin"));
        assert!(path_matches("file?.txt", "file1.txt"));
        assert!(!path_matches("file?.txt", "file10.txt"));
        assert!(path_matches("v[0-9].bin", "v7.bin"));
        assert!(!path_matches("v[!0-9].bin", "v7.bin"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("", ""));
        assert!(!path_matches("", "a"));
    }

    #[test]
    fn fnmatch_corners() {
        // Unclosed `[` is literal; `]` first is a member; `[]` alone is not
        // a class.
        assert!(fnmatchcase("[", "["));
        assert!(fnmatchcase("[a", "[a"));
        assert!(fnmatchcase("]", "[]]"));
        assert!(fnmatchcase("[]", "[]"));
        assert!(fnmatchcase("x", "[!]]"));
        assert!(!fnmatchcase("]", "[!]]"));
        // Hyphens: first, last, after a range: members.
        assert!(fnmatchcase("-", "[-a]"));
        assert!(fnmatchcase("-", "[a-]"));
        assert!(fnmatchcase("-", "[a-c-e]"));
        assert!(!fnmatchcase("d", "[a-c-e]"));
        // Reversed ranges are dropped with their endpoints.
        assert!(!fnmatchcase("b", "[z-a]"));
        assert!(!fnmatchcase("-", "[a--]"));
        assert!(fnmatchcase("q", "[!b-a]"));
        // ... and a `!` left first then negates.
        assert!(!fnmatchcase("b", "[x-a!b]"));
        assert!(fnmatchcase("c", "[x-a!b]"));
        // No escapes: `\` is a literal.
        assert!(fnmatchcase("\\*", "\\*"));
        assert!(fnmatchcase("\\x", "\\*"));
        assert!(!fnmatchcase("*", "\\*"));
        // Characters, not bytes.
        assert!(fnmatchcase("é", "?"));
        assert!(fnmatchcase("é", "[à-ê]"));
        // `*` and `?` match `/` in fnmatch itself.
        assert!(fnmatchcase("a/b", "a*b"));
        assert!(fnmatchcase("a/b", "a?b"));
    }

    #[test]
    fn long_star_runs_stay_fast() {
        let name = "a".repeat(2000);
        let pattern = "*a".repeat(200) + "b";
        assert!(!fnmatchcase(&name, &pattern));
    }

    #[test]
    fn hash_prefixes() {
        // sha256("nl-lock-v2/1.0.0.nlfw")
        let hash = target_path_hash("nl-lock-v2/1.0.0.nlfw");
        let hex = core::str::from_utf8(&hash).unwrap();
        assert_eq!(hex.len(), 64);
        let prefixes = [&hex[..1], &hex[..2], &hex[..8], hex, ""];
        for p in prefixes {
            assert!(is_delegated_path::<&str, &str>(
                None,
                Some(&[p]),
                "nl-lock-v2/1.0.0.nlfw"
            ));
        }
        let other = if hex.starts_with('0') { "1" } else { "0" };
        assert!(!is_delegated_path::<&str, &str>(
            None,
            Some(&[other]),
            "nl-lock-v2/1.0.0.nlfw"
        ));
        let too_long = alloc::format!("{hex}0");
        assert!(!is_delegated_path::<&str, &str>(
            None,
            Some(&[too_long.as_str()]),
            "nl-lock-v2/1.0.0.nlfw"
        ));
        // Hash prefixes decide when present; neither: nothing.
        assert!(!is_delegated_path(
            Some(&["*"]),
            Some(&[other]),
            "nl-lock-v2/1.0.0.nlfw"
        ));
        assert!(!is_delegated_path::<&str, &str>(None, None, "x"));
    }
}
