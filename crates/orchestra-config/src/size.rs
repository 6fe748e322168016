//! Byte sizes in the configuration: `16MiB`, `512KiB`, `1GiB`, `4MB`, or a plain byte count.

/// Parses a size: an integer followed by an optional unit (B, KiB, MiB, GiB — powers of 1024 —
/// or KB, MB, GB — powers of 1000). A bare integer is bytes: unlike a duration, a size has only
/// one sensible unit when none is written.
pub fn parse(text: &str) -> Result<usize, String> {
    let s = text.trim();
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(bad(s));
    }
    let value: u64 = s[..digits].parse().map_err(|_| bad(s))?;
    let factor: u64 = match s[digits..].trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad(s)),
    };
    value
        .checked_mul(factor)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("size \"{s}\" is too large"))
}

/// Formats a size the way [`parse`] reads it, in the largest binary unit that divides it.
pub fn format(bytes: usize) -> String {
    for (unit, factor) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    format!("{bytes}B")
}

fn bad(s: &str) -> String {
    format!("invalid size \"{s}\" (write e.g. \"16MiB\", \"512KiB\" or a number of bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_round_trips() {
        assert_eq!(parse("16MiB"), Ok(16 << 20));
        assert_eq!(parse("512 KiB"), Ok(512 << 10));
        assert_eq!(parse("4MB"), Ok(4_000_000));
        assert_eq!(parse("1000"), Ok(1000));
        assert_eq!(format(16 << 20), "16MiB");
        assert_eq!(format(1000), "1000B");
        assert_eq!(parse(&format(3 << 30)), Ok(3 << 30));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse("MiB").is_err());
        assert!(parse("16 megs").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999999999999GiB").is_err());
    }
}
