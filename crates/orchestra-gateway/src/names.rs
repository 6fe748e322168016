//! Exposed tool names: `<server><separator><tool>`, kept within what model APIs accept.
//!
//! The separator is joined and split here and nowhere else. Names that would break clients
//! (over 64 characters, or characters outside `[A-Za-z0-9_-]`) are shortened
//! deterministically: a readable prefix plus a hash of the original, so the same tool always
//! gets the same name across restarts and machines.

/// Longest tool name the popular model APIs accept (`^[a-zA-Z0-9_-]{1,64}$`).
pub const MAX_NAME_LEN: usize = 64;

/// Characters in the hash suffix of a shortened name.
const HASH_LEN: usize = 8;

/// An exposed name and whether it had to be rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub name: String,
    pub shortened: bool,
}

/// Joins a server and one of its tools into the name the client sees.
pub fn expose(server: &str, separator: &str, tool: &str) -> Exposed {
    let joined = format!("{server}{separator}{tool}");
    if is_valid(&joined) {
        return Exposed {
            name: joined,
            shortened: false,
        };
    }
    let hash = format!("{:08x}", crate::fnv::hash(joined.as_bytes()) as u32);
    let sanitized: String = joined
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let keep = MAX_NAME_LEN - HASH_LEN - 1;
    let prefix: String = sanitized.chars().take(keep).collect();
    Exposed {
        name: format!("{prefix}_{hash}"),
        shortened: true,
    }
}

/// Splits an exposed name at the first separator: server names never contain it.
pub fn split<'a>(exposed: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    exposed
        .split_once(separator)
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
}

/// Whether a name is safe for every client we know.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.chars().all(is_name_char)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_valid_names_are_joined_verbatim() {
        let e = expose("files", "__", "read_file");
        assert_eq!(
            e,
            Exposed {
                name: "files__read_file".into(),
                shortened: false
            }
        );
        assert_eq!(split(&e.name, "__"), Some(("files", "read_file")));
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let tool = "a_really_long_tool_name_that_goes_on_and_on_and_on_forever_and_ever";
        let a = expose("everything", "__", tool);
        let b = expose("everything", "__", tool);
        assert!(a.shortened);
        assert_eq!(a, b);
        assert_eq!(a.name.len(), MAX_NAME_LEN);
        assert!(is_valid(&a.name));
        assert!(a.name.starts_with("everything__a_really_long"));
        assert_ne!(a.name, expose("everything", "__", &format!("{tool}2")).name);
    }

    #[test]
    fn invalid_characters_are_replaced_and_hashed() {
        let e = expose("git", "__", "git.status");
        assert!(e.shortened);
        assert!(is_valid(&e.name));
        assert!(e.name.starts_with("git__git_status_"));
        // Distinct originals that sanitize alike still get distinct names.
        assert_ne!(e.name, expose("git", "__", "git/status").name);
    }

    /// Round trip: for every valid server and tool, split(expose(s, t)) == (s, t) unless the
    /// name had to be shortened. A small exhaustive-ish sweep stands in for a property test.
    #[test]
    fn expose_and_split_round_trip() {
        let servers = ["a", "files", "claude-code", "x_y", "s-1"];
        let tools = ["t", "read_file", "with__double", "-dash", "_under", "Z9"];
        for sep in ["__", "-", "_-_"] {
            for s in servers {
                if s.contains(sep) {
                    continue;
                }
                for t in tools {
                    let e = expose(s, sep, t);
                    if !e.shortened {
                        assert_eq!(split(&e.name, sep), Some((s, t)), "{s} {sep} {t}");
                    }
                }
            }
        }
    }
}
