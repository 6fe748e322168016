//! "Did you mean …?" for names a planner mistyped (titles, stages, streams).

/// ` (did you mean "x"?)` for the closest candidate, or an empty string when none is close.
pub fn did_you_mean<'a, I>(wanted: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted_lower = wanted.to_lowercase();
    let best = candidates
        .into_iter()
        .filter_map(|c| {
            let c_lower = c.to_lowercase();
            let d = distance(&wanted_lower, &c_lower);
            // Close: a few edits relative to the length, or only a case/spacing difference.
            let threshold = (wanted.chars().count().max(c.chars().count()) / 4).max(2);
            (d <= threshold).then_some((d, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    match best {
        Some((_, c)) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

/// Levenshtein distance over chars.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
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
    fn suggests_only_close_names() {
        let names = ["Database Design", "System Architecture"];
        assert_eq!(
            did_you_mean("Databse Design", names),
            " (did you mean \"Database Design\"?)"
        );
        assert_eq!(did_you_mean("Deploy", names), "");
    }
}
