//! Workspace-relative paths in one normal form, so `./a/b/`, `a//b` and `a/b` are one path.

/// Normalise a relative path; absolute paths and paths that leave the workspace are
/// refused (their content could change without the pipeline saying so).
pub fn normalize_rel(p: &str) -> Result<String, &'static str> {
    if p.starts_with('/') {
        return Err("must be relative to the pipeline file's folder");
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("must not leave the pipeline file's folder (`..`)"),
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return Err("is empty");
    }
    Ok(parts.join("/"))
}

/// Whether `p` is a relative path in normal form already (what `normalize_rel` would
/// give back unchanged).
pub fn is_normal_rel(p: &str) -> bool {
    !p.is_empty() && p.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// Whether `inner` is `outer` or lies inside it.
pub fn contains(outer: &str, inner: &str) -> bool {
    inner == outer || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(normalize_rel("./a//b/").unwrap(), "a/b");
        for p in ["a", "a/b.txt", "a/.b/c"] {
            assert!(is_normal_rel(p) && normalize_rel(p).unwrap() == p, "{p}");
        }
        for p in ["", "/a", "./a", "a//b", "a/", "a/./b", "a/../b", ".."] {
            assert!(!is_normal_rel(p), "{p}");
        }
        assert!(normalize_rel("/etc/passwd").is_err());
        assert!(normalize_rel("a/../b").is_err());
        assert!(normalize_rel("./").is_err());
        assert!(contains("out", "out/x.txt"));
        assert!(contains("out", "out"));
        assert!(!contains("out", "outer/x"));
    }
}
