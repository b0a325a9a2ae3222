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
        assert!(normalize_rel("/etc/passwd").is_err());
        assert!(normalize_rel("a/../b").is_err());
        assert!(normalize_rel("./").is_err());
        assert!(contains("out", "out/x.txt"));
        assert!(contains("out", "out"));
        assert!(!contains("out", "outer/x"));
    }
}
