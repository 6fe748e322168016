//! `${VAR}`, `${VAR:-default}` and `${file:PATH}` expansion in commands, arguments, env values
//! and cwd.

/// Where expansion reads values from.
pub(crate) struct Sources<'a> {
    /// An environment variable's value.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// A file's contents (the path as written; the caller resolves it against the config's
    /// folder).
    pub file: &'a dyn Fn(&str) -> Result<String, String>,
}

/// Expands `${VAR}` / `${VAR:-default}` from the environment and `${file:PATH}` from a file
/// (so secrets need not sit in the config; one trailing newline is dropped, as files written
/// by `echo` or secret managers end with one); `$$` is a literal `$`.
///
/// A `$` not followed by `{` or `$` is kept as written, so shell-ish arguments such as
/// `$HOME` stay untouched (the child, not us, decides what they mean).
pub(crate) fn expand(text: &str, sources: &Sources<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body_and_more) = after.strip_prefix('{') {
            let end = body_and_more
                .find('}')
                .ok_or_else(|| format!("unclosed \"${{\" in \"{text}\""))?;
            let body = &body_and_more[..end];
            if let Some(path) = body.strip_prefix("file:") {
                if path.is_empty() {
                    return Err(format!("empty file path in \"{text}\""));
                }
                if path.contains("${") {
                    return Err(format!(
                        "a variable inside ${{file:...}} is not expanded in \"{text}\"; write the \
                         path itself (relative to the config file, or starting with ~/)"
                    ));
                }
                let path = match path.strip_prefix("~/") {
                    Some(rest) => match (sources.env)("HOME") {
                        Some(home) => format!("{}/{rest}", home.trim_end_matches('/')),
                        None => {
                            return Err(format!("HOME is not set, so \"{path}\" cannot be read"))
                        }
                    },
                    None => path.to_owned(),
                };
                let contents = (sources.file)(&path)?;
                let contents = contents.strip_suffix('\n').unwrap_or(&contents);
                out.push_str(contents.strip_suffix('\r').unwrap_or(contents));
                rest = &body_and_more[end + 1..];
                continue;
            }
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name \"{name}\" in \"{text}\""));
            }
            match ((sources.env)(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (write ${{{name}:-default}} for a fallback)"
                    ))
                }
            }
            rest = &body_and_more[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        matches!(name, "HOME_DIR" | "HOME").then(|| "/home/me".to_owned())
    }

    fn file(path: &str) -> Result<String, String> {
        match path {
            "/run/secrets/token" | "/home/me/.token" => Ok("s3cr3t\n".into()),
            _ => Err(format!("cannot read {path}: No such file or directory")),
        }
    }

    fn run(text: &str) -> Result<String, String> {
        expand(
            text,
            &Sources {
                env: &env,
                file: &file,
            },
        )
    }

    #[test]
    fn expands_set_and_defaulted_variables() {
        assert_eq!(run("${HOME_DIR}/x").unwrap(), "/home/me/x");
        assert_eq!(run("${LOG_LEVEL:-info}").unwrap(), "info");
        assert_eq!(run("${HOME_DIR:-/tmp}").unwrap(), "/home/me");
        assert_eq!(run("cost: $$5 and $PATH").unwrap(), "cost: $5 and $PATH");
    }

    #[test]
    fn reports_unset_and_malformed_variables() {
        assert_eq!(
            run("${NOPE}").unwrap_err(),
            "environment variable NOPE is not set (write ${NOPE:-default} for a fallback)"
        );
        assert!(run("${OPEN").is_err());
        assert!(run("${bad-name}").is_err());
    }

    #[test]
    fn reads_file_values_without_the_trailing_newline() {
        assert_eq!(
            run("Bearer ${file:/run/secrets/token}").unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(
            run("${file:/nope}").unwrap_err(),
            "cannot read /nope: No such file or directory"
        );
        assert!(run("${file:}").is_err());
        assert_eq!(run("${file:~/.token}").unwrap(), "s3cr3t");
        assert!(run("${file:${HOME}/.token}")
            .unwrap_err()
            .contains("not expanded"));
    }
}
