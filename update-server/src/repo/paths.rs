//! TUF delegation path patterns, as python-tuf matches them: the pattern and
//! the target path have the same number of `/`-separated parts, and each
//! part matches its glob (`*` any run of characters, `?` one character).

/// Whether `target` matches `pattern`.
pub fn matches(pattern: &str, target: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let t: Vec<&str> = target.split('/').collect();
    p.len() == t.len()
        && p.iter()
            .zip(&t)
            .all(|(p, t)| glob(p.as_bytes(), t.as_bytes()))
}

fn glob(p: &[u8], t: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_patterns() {
        assert!(matches("nl-lock-v2/*", "nl-lock-v2/1.0.0.nlfw"));
        assert!(!matches("nl-lock-v2/*", "nl-lock-v3/1.0.0.nlfw"));
        assert!(!matches("nl-lock-v2/*", "nl-lock-v2/a/b"));
        assert!(matches("*/1.?.0.nlfw", "m/1.2.0.nlfw"));
        assert!(matches("m/*.nl*", "m/1.0.0.nlfw"));
        assert!(!matches("m/*.nldp", "m/1.0.0.nlfw"));
    }
}
