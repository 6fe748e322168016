//! `${VAR}` and `${VAR:-default}` expansion in commands, arguments, env values and cwd.

/// Expands `${VAR}` / `${VAR:-default}` using `lookup`; `$$` is a literal `$`.
///
/// A `$` not followed by `{` or `$` is kept as written, so shell-ish arguments such as
/// `$HOME` stay untouched (the child, not us, decides what they mean).
pub(crate) fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
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
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name \"{name}\" in \"{text}\""));
            }
            match (lookup(name), default) {
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
        (name == "HOME_DIR").then(|| "/home/me".to_owned())
    }

    #[test]
    fn expands_set_and_defaulted_variables() {
        assert_eq!(expand("${HOME_DIR}/x", &env).unwrap(), "/home/me/x");
        assert_eq!(expand("${LOG_LEVEL:-info}", &env).unwrap(), "info");
        assert_eq!(expand("${HOME_DIR:-/tmp}", &env).unwrap(), "/home/me");
        assert_eq!(
            expand("cost: $$5 and $PATH", &env).unwrap(),
            "cost: $5 and $PATH"
        );
    }

    #[test]
    fn reports_unset_and_malformed_variables() {
        assert_eq!(
            expand("${NOPE}", &env).unwrap_err(),
            "environment variable NOPE is not set (write ${NOPE:-default} for a fallback)"
        );
        assert!(expand("${OPEN", &env).is_err());
        assert!(expand("${bad-name}", &env).is_err());
    }
}
