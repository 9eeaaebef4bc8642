//! Which delegated roles are trusted for a target path: `paths` patterns
//! (matched segment by segment, as python-tuf does with `fnmatch`) or
//! `path_hash_prefixes`.

use sha2::{Digest, Sha256};

use super::encoding::hex_encode;
use super::metadata::DelegatedRole;

impl DelegatedRole {
    /// Whether this role is trusted for `target`.
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(patterns) = &self.paths {
            return patterns.iter().any(|p| path_matches(p, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex_encode(&Sha256::digest(target.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

/// `pattern` and `target` have the same number of `/`-separated segments
/// and each target segment matches its pattern segment.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    if pattern.split('/').count() != target.split('/').count() {
        return false;
    }
    pattern
        .split('/')
        .zip(target.split('/'))
        .all(|(p, t)| glob(p.as_bytes(), t.as_bytes()))
}

/// fnmatch on bytes: `*` any run, `?` one byte, `[abc]`, `[a-z]`, `[!x]`.
fn glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => class(&p[pi..], t[ti]).map(|len| pi + len),
            Some(&c) if c == t[ti] => Some(pi + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Match `c` against the class at the start of `p` (`[...]`); the class
/// length when it matches. An unclosed `[` matches a literal `[`.
fn class(p: &[u8], c: u8) -> Option<usize> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    while let Some(&b) = p.get(i) {
        if b == b']' && i > start {
            return (hit != negate).then_some(i + 1);
        }
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let end = p[i + 2];
            hit |= (b..=end).contains(&c);
            i += 3;
        } else {
            hit |= b == c;
            i += 1;
        }
    }
    (c == b'[').then_some(1)
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn patterns_match_per_segment() {
        assert!(path_matches("nl-lock-v2/*", "nl-lock-v2/1.0.0.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v2/a/b.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v3/1.0.0.nlfw"));
        assert!(path_matches("*", "file.txt"));
        assert!(!path_matches("*", "dir/file.txt"));
        assert!(path_matches("*/*.tgz", "a/b.tgz"));
        assert!(path_matches("file?.txt", "file1.txt"));
        assert!(!path_matches("file?.txt", "file10.txt"));
        assert!(path_matches("v[0-9].bin", "v7.bin"));
        assert!(!path_matches("v[!0-9].bin", "v7.bin"));
        assert!(path_matches("a*b*c", "aXXbYYc"));
        assert!(!path_matches("a*b*c", "aXXbYY"));
        assert!(path_matches("", ""));
    }
}
