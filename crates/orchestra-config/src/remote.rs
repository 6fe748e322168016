//! A server reached by `url:` instead of started by `command:`: its address, headers, bearer
//! token and transport, and the keys that only make sense for one kind or the other.

use crate::error::{join, Errors};
use crate::model::{Remote, RemoteTransport, Secret};
use crate::raw::RawServer;
use crate::validate::{expanded, Context};

/// Headers the gateway's HTTP client sets itself: a configured value would break the transport.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "accept",
    "connection",
    "transfer-encoding",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// `args`, `env`, `cwd`, `inherit_env` on a url server: each reported at its key.
pub(crate) fn refuse_process_keys(raw: &RawServer, path: &str, errors: &mut Errors) {
    for (key, present) in [
        ("args", raw.args.is_some()),
        ("env", raw.env.is_some()),
        ("cwd", raw.cwd.is_some()),
        ("inherit_env", raw.inherit_env.is_some()),
    ] {
        if present {
            errors.push(
                join(path, key),
                format!(
                    "not allowed on a `url` server: `{key}` describes a process the gateway \
                     starts, and a remote server is not started (use `headers` to pass values)"
                ),
            );
        }
    }
}

/// `headers`, `bearer_token_env`, `transport`, or a remote `type`, on a `command` server.
pub(crate) fn refuse_remote_keys(raw: &RawServer, path: &str, errors: &mut Errors) {
    for (key, present) in [
        ("headers", raw.headers.is_some()),
        ("bearer_token_env", raw.bearer_token_env.is_some()),
        ("transport", raw.transport.is_some()),
    ] {
        if present {
            errors.push(
                join(path, key),
                format!("only for a remote server: `{key}` needs a `url`"),
            );
        }
    }
    match raw.kind.as_deref() {
        None | Some("stdio") => {}
        Some(kind @ ("http" | "sse" | "streamable-http" | "streamable_http")) => errors.push(
            join(path, "type"),
            format!("\"{kind}\" is a remote server: give its `url` (not a `command`)"),
        ),
        Some(kind) => errors.push(join(path, "type"), unknown_type(kind)),
    }
}

fn unknown_type(kind: &str) -> String {
    format!(
        "unknown server type \"{kind}\"; use \"stdio\" (a command), \"http\" or \"sse\" (a url)"
    )
}

/// Checks a url server's own keys; `None` when any of them is wrong (each reported).
pub(crate) fn validate_remote(
    url: &str,
    raw: &RawServer,
    path: &str,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Option<Remote> {
    let before = errors.len();
    let url_path = join(path, "url");
    let url = expanded(url, &url_path, cx, errors).and_then(|u| match check_url(&u) {
        Ok(()) => Some(u),
        Err(e) => {
            errors.push(&url_path, e);
            None
        }
    });
    let transport = transport(raw, path, errors);
    let mut headers = Vec::new();
    for (name, value) in raw.headers.iter().flatten() {
        let key_path = format!("{path}.headers.{name}");
        if let Err(e) = check_header_name(name, raw.bearer_token_env.is_some()) {
            errors.push(&key_path, e);
            continue;
        }
        let Some(v) = expanded(value, &key_path, cx, errors) else {
            continue;
        };
        // Checked after expansion (a file's contents count) and never quoted: it may be a secret.
        if v.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            errors.push(
                &key_path,
                "the value contains a line break or NUL, which no header may hold",
            );
            continue;
        }
        headers.push((name.clone(), Secret::new(v)));
    }
    let bearer_token = raw.bearer_token_env.as_deref().and_then(|name| {
        let key_path = join(path, "bearer_token_env");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(
                &key_path,
                "give the *name* of an environment variable holding the token (letters, digits, \
                 '_'), never the token itself",
            );
            return None;
        }
        match (cx.env)(name) {
            Some(v) if !v.trim().is_empty() => Some(Secret::new(v.trim().to_owned())),
            Some(_) => {
                errors.push(&key_path, format!("environment variable {name} is empty"));
                None
            }
            None => {
                errors.push(&key_path, format!("environment variable {name} is not set"));
                None
            }
        }
    });
    if errors.len() > before {
        return None;
    }
    Some(Remote {
        url: url?,
        headers,
        bearer_token,
        transport,
    })
}

/// `transport:` and Claude's `type:` together (they must agree when both are written).
fn transport(raw: &RawServer, path: &str, errors: &mut Errors) -> RemoteTransport {
    let from_type = match raw.kind.as_deref() {
        None => None,
        Some("http" | "streamable-http" | "streamable_http") => {
            Some(RemoteTransport::StreamableHttp)
        }
        Some("sse") => Some(RemoteTransport::Sse),
        Some("stdio") => {
            errors.push(
                join(path, "type"),
                "\"stdio\" servers are started from a `command`; a server with a `url` is \
                 \"http\" or \"sse\"",
            );
            None
        }
        Some(kind) => {
            errors.push(join(path, "type"), unknown_type(kind));
            None
        }
    };
    let from_transport = match raw.transport.as_deref() {
        None => None,
        Some("streamable_http") => Some(RemoteTransport::StreamableHttp),
        Some("sse") => Some(RemoteTransport::Sse),
        Some(other) => {
            let hint = crate::suggest::did_you_mean(other, ["streamable_http", "sse"]);
            errors.push(
                join(path, "transport"),
                format!(
                    "unknown transport \"{other}\"{hint}; use `streamable_http` (default) or \
                     `sse` (the legacy HTTP+SSE transport)"
                ),
            );
            None
        }
    };
    match (from_type, from_transport) {
        (Some(a), Some(b)) if a != b => {
            errors.push(
                join(path, "transport"),
                "disagrees with `type`; keep one of the two",
            );
            a
        }
        (a, b) => b.or(a).unwrap_or_default(),
    }
}

/// `http(s)://host[:port][/path][?query]`, without credentials or a fragment.
fn check_url(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("\"{url}\" contains whitespace"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "\"{url}\" is not a URL; write e.g. \"https://mcp.example.com/mcp\""
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "unsupported scheme \"{scheme}\"; a remote server is reached over http or https"
        ));
    }
    if url.contains('#') {
        return Err("a URL sent to a server has no `#fragment`; remove it".into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        // Never echo it: the part before '@' is a password.
        return Err(
            "credentials in the URL are not accepted (they end up in logs); \
                    use `bearer_token_env` or `headers`"
                .into(),
        );
    }
    check_authority(authority).map_err(|e| format!("\"{url}\": {e}"))
}

/// `host[:port]`, the host a name, an IPv4 address or a bracketed IPv6 address.
pub(crate) fn check_authority(authority: &str) -> Result<(), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unclosed '[' in the address")?;
        addr.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("\"{addr}\" is not an IPv6 address"))?;
        match after {
            "" => ("x", None),
            p => (
                "x",
                Some(
                    p.strip_prefix(':')
                        .ok_or("expected ':' and a port after ']'")?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    {
        return Err(format!("\"{host}\" is not a host name or address"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("\"{p}\" is not a port number (0-65535)"));
        }
    }
    Ok(())
}

fn check_header_name(name: &str, has_bearer: bool) -> Result<(), String> {
    // RFC 9110 token characters.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err("not a valid header name (letters, digits and !#$%&'*+-.^_`|~)".into());
    }
    let lower = name.to_ascii_lowercase();
    if MANAGED_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "`{name}` is set by the gateway itself for the MCP transport; remove it"
        ));
    }
    if lower == "authorization" && has_bearer {
        return Err(
            "conflicts with `bearer_token_env`, which sets Authorization; keep one of the two"
                .into(),
        );
    }
    Ok(())
}
