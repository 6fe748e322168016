//! "Did you mean …?" suggestions for names the user mistyped.

/// The candidates closest to `wanted`, best first, at most `limit`; empty when none is close.
pub fn closest<'a, I>(wanted: &str, candidates: I, limit: usize) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted_lower = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &'a str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let c_lower = c.to_ascii_lowercase();
            let d = distance(&wanted_lower, &c_lower);
            // Close enough: a few edits relative to length, or one contains the other.
            let threshold = (wanted.len().max(c.len()) / 4).max(2);
            let contains = wanted_lower.len() >= 3
                && (c_lower.contains(&wanted_lower) || wanted_lower.contains(&c_lower));
            (d <= threshold || contains).then_some((d, c))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    // Only the best few: a near miss next to an exact-shape match is noise.
    let best = scored.first().map_or(0, |s| s.0);
    scored
        .into_iter()
        .filter(|(d, _)| *d <= best + 1)
        .take(limit)
        .map(|(_, c)| c)
        .collect()
}

/// ` (did you mean "x"?)` or an empty string.
pub fn did_you_mean<'a, I>(wanted: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(wanted, candidates, 1).first() {
        Some(best) => format!(" (did you mean \"{best}\"?)"),
        None => String::new(),
    }
}

/// Levenshtein distance over bytes (names here are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(
            did_you_mean("fles", ["files", "memory"]),
            " (did you mean \"files\"?)"
        );
        assert_eq!(
            did_you_mean("memroy", ["files", "memory"]),
            " (did you mean \"memory\"?)"
        );
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("docker", ["files", "memory"]), "");
    }

    #[test]
    fn only_the_closest_names_are_suggested() {
        let names = [
            "everything__echo",
            "everything__get-env",
            "everything__get-sum",
        ];
        assert_eq!(
            closest("everything__ecoh", names, 3),
            vec!["everything__echo"]
        );
    }

    #[test]
    fn substring_matches_count() {
        assert_eq!(
            closest("echo", ["everything__echo", "files__read"], 3),
            vec!["everything__echo"]
        );
    }
}
