//! Human durations in the configuration: `500ms`, `30s`, `2m`, `1h`, `1m30s`.

use std::time::Duration;

/// Parses a duration written as one or more `<integer><unit>` parts (units: ms, s, m, h).
///
/// A bare number is rejected on purpose: `call_timeout: 60` could mean seconds or
/// milliseconds, and a wrong guess is worse than an error that shows the fix.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (write e.g. \"30s\" or \"500ms\")".into());
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("missing unit in \"{s}\" (did you mean \"{s}s\"?)"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad(s));
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad(s))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(bad(s)),
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(part);
    }
    Ok(total)
}

/// Formats a duration the way [`parse`] reads it (for `check` output and `import`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if !ms.is_multiple_of(60_000) || ms == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}m", ms / 60_000)
    }
}

fn bad(s: &str) -> String {
    format!("invalid duration \"{s}\" (write e.g. \"30s\", \"500ms\", \"2m\", \"1m30s\")")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bare_numbers_with_a_suggestion() {
        assert_eq!(
            parse("60"),
            Err("missing unit in \"60\" (did you mean \"60s\"?)".into())
        );
    }

    #[test]
    fn rejects_unknown_units_and_junk() {
        assert!(parse("5 parsecs").is_err());
        assert!(parse("s").is_err());
        assert!(parse("10x").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn format_round_trips() {
        for text in ["500ms", "30s", "2m", "0s", "90s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
