//! "Did you mean": the nearest known name to a typo.

/// The closest candidate to `input`, if one is close enough to be a plausible typo.
pub fn nearest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = input.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(input.len()) / 3).max(1) || c.starts_with(input) && !input.is_empty())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let keys = ["epochs", "batch", "momentum"];
        assert_eq!(nearest("epoch", keys), Some("epochs"));
        assert_eq!(nearest("mometnum", keys), Some("momentum"));
        assert_eq!(nearest("Batch", keys), Some("batch"));
        assert_eq!(nearest("colour", keys), None);
    }
}
