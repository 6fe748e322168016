//! `http:` — the Streamable HTTP front: where it listens, who may reach it (Origin / Host
//! allow-lists, bearer tokens, JWTs), and its session limits.
//!
//! Secrets are only ever *named* here (`{env: NAME}`, `{file: PATH}`): a token written inline
//! would end up in version control and backups, so it is refused, and never quoted back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::value::Value;

use crate::error::{join, Errors};
use crate::model::{BearerToken, Gateway, Http, HttpAuth, JwksSource, Jwt, Secret, TokenSource};
use crate::raw::{RawHttp, RawHttpAuth, RawJwt, RawTokenSource};
use crate::validate::{entry, message_size, positive_duration, resolve, Context};
use crate::{duration, remote};

const INLINE_TOKEN: &str = "an inline token is not accepted: a secret written in the config \
     file ends up in version control, backups and screenshots. Keep it in an environment \
     variable or a file and write `{env: NAME}` or `{file: PATH}`";

pub(crate) fn validate_http(
    value: Option<&Value>,
    gateway: &Gateway,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Http {
    let mut http = Http {
        max_body: gateway.max_message_size,
        ..Http::default()
    };
    let Some(raw) = value.and_then(|v| entry::<RawHttp>(v, "http", RawHttp::FIELDS, errors)) else {
        return http;
    };
    http.listen = raw.listen.as_deref().and_then(|l| listen(l, errors));
    http.allowed_origins = list(raw.allowed_origins, "http.allowed_origins", origin, errors);
    http.allowed_hosts = list(raw.allowed_hosts, "http.allowed_hosts", host, errors);
    match raw.max_sessions {
        Some(0) => errors.push("http.max_sessions", "must be at least 1"),
        Some(n) => http.max_sessions = n,
        None => {}
    }
    if let Some(d) = raw
        .idle_timeout
        .and_then(|r| positive_duration(&r, "http.idle_timeout", errors))
    {
        http.idle_timeout = d;
    }
    if let Some(n) = raw
        .max_body
        .and_then(|r| message_size(&r, "http.max_body", errors))
    {
        http.max_body = n;
    }
    for (raw, path, slot) in [
        (
            raw.header_timeout,
            "http.header_timeout",
            &mut http.header_timeout,
        ),
        (
            raw.body_timeout,
            "http.body_timeout",
            &mut http.body_timeout,
        ),
    ] {
        if let Some(d) = raw.and_then(|r| positive_duration(&r, path, errors)) {
            *slot = d;
        }
    }
    http.allow_remote_unauthenticated = raw.allow_remote_unauthenticated.unwrap_or(false);
    let auth_ok = raw.auth.is_none() || {
        let before = errors.len();
        http.auth = auth(raw.auth.as_ref(), cx, errors);
        errors.len() == before
    };
    // Only when auth itself is fine: a broken auth block is reported where it is broken, not
    // also as "no authentication".
    if let Some(addr) = http.listen {
        if auth_ok
            && !addr.ip().is_loopback()
            && http.auth.is_empty()
            && !http.allow_remote_unauthenticated
        {
            errors.push(
                "http.listen",
                format!(
                    "{addr} is reachable from other machines, and no authentication is \
                     configured: anyone who can reach it could use every server. Configure \
                     `http.auth` (bearer_tokens or jwt), listen on 127.0.0.1, or set \
                     `http.allow_remote_unauthenticated: true` if a proxy in front authenticates"
                ),
            );
        }
    }
    http
}

fn listen(text: &str, errors: &mut Errors) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            let hint = match text.rsplit_once(':') {
                Some(("localhost", port)) => format!(" (did you mean \"127.0.0.1:{port}\"?)"),
                Some(_) => " (host names are not resolved; give an IP address)".to_owned(),
                None => format!(" (did you mean \"127.0.0.1:{text}\"?)"),
            };
            errors.push(
                "http.listen",
                format!("\"{text}\" is not an address and port such as \"127.0.0.1:8080\"{hint}"),
            );
            None
        }
    }
}

fn list(
    raw: Option<Vec<String>>,
    path: &str,
    check: fn(&str) -> Result<String, String>,
    errors: &mut Errors,
) -> Vec<String> {
    let mut out = Vec::new();
    for (i, item) in raw.into_iter().flatten().enumerate() {
        match check(&item) {
            Ok(v) => out.push(v),
            Err(e) => errors.push(format!("{path}[{i}]"), e),
        }
    }
    out
}

/// `scheme://host[:port]`, as browsers send it in `Origin`: normalised to lowercase, with the
/// scheme's default port dropped, so that the comparison is a plain string match.
fn origin(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return Err(format!(
            "\"{text}\" is not an origin; write scheme://host[:port], e.g. \"https://app.example.com\""
        ));
    };
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(format!("\"{text}\": an origin's scheme is http or https")),
    };
    if rest.contains(['/', '?', '#']) {
        return Err(format!(
            "\"{text}\" has a path; an origin is only scheme://host[:port]"
        ));
    }
    remote::check_authority(rest).map_err(|e| format!("\"{text}\": {e}"))?;
    let rest = rest.strip_suffix(default_port).unwrap_or(rest);
    Ok(format!("{scheme}://{rest}"))
}

/// `host[:port]` as clients send it in `Host`, lowercase.
fn host(text: &str) -> Result<String, String> {
    if text.contains("://") || text.contains(['/', '?', '#']) {
        return Err(format!(
            "\"{text}\" is not a host; write host[:port], e.g. \"mcp.example.com\""
        ));
    }
    remote::check_authority(text).map_err(|e| format!("\"{text}\": {e}"))?;
    Ok(text.to_ascii_lowercase())
}

fn auth(value: Option<&Value>, cx: &Context<'_>, errors: &mut Errors) -> HttpAuth {
    let mut auth = HttpAuth::default();
    let Some(raw) =
        value.and_then(|v| entry::<RawHttpAuth>(v, "http.auth", RawHttpAuth::FIELDS, errors))
    else {
        return auth;
    };
    const PATH: &str = "http.auth.bearer_tokens";
    match raw.bearer_tokens {
        None => {}
        Some(Value::Array(_, items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{PATH}[{i}]");
                if let Some(t) = bearer_token(item, &path, cx, errors) {
                    auth.bearer_tokens.push(t);
                }
            }
        }
        Some(Value::String(..)) => errors.push(PATH, INLINE_TOKEN),
        Some(other) => errors.push(
            PATH,
            format!(
                "expected a list of {{env: NAME}} / {{file: PATH}}, found {}",
                kind_of(&other)
            ),
        ),
    }
    auth.jwt = raw.jwt.and_then(|v| jwt(&v, cx, errors));
    auth
}

/// What a value is, without its contents (which may be a secret).
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(..) | Value::Char(..) => "a string",
        Value::Num(..) => "a number",
        Value::Bool(..) => "a boolean",
        Value::Array(..) => "a list",
        Value::Dict(..) => "a mapping",
        Value::Empty(..) => "nothing",
    }
}

fn bearer_token(
    item: &Value,
    path: &str,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Option<BearerToken> {
    if !matches!(item, Value::Dict(..)) {
        errors.push(path, INLINE_TOKEN);
        return None;
    }
    let raw = entry::<RawTokenSource>(item, path, RawTokenSource::FIELDS, errors)?;
    let (source, value) = match (raw.env, raw.file) {
        (Some(name), None) => {
            let p = join(path, "env");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                errors.push(
                    &p,
                    "give the *name* of an environment variable (letters, digits, '_')",
                );
                return None;
            }
            let Some(v) = (cx.env)(&name) else {
                errors.push(&p, format!("environment variable {name} is not set"));
                return None;
            };
            (TokenSource::Env(name), (v, p))
        }
        (None, Some(file)) => {
            let p = join(path, "file");
            let full = file_path(&file, &p, cx, errors)?;
            match std::fs::read_to_string(&full) {
                Ok(v) => (TokenSource::File(full), (v, p)),
                Err(e) => {
                    errors.push(&p, format!("cannot read {}: {e}", full.display()));
                    return None;
                }
            }
        }
        _ => {
            errors.push(path, "give exactly one of `env: NAME` or `file: PATH`");
            return None;
        }
    };
    let (value, p) = value;
    // Files written by `echo` or secret managers end with a newline; it is not part of the token.
    let token = value.trim();
    if token.is_empty() {
        errors.push(&p, "the token is empty");
        return None;
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.push(
            &p,
            "the token contains whitespace, which no bearer token may hold",
        );
        return None;
    }
    Some(BearerToken {
        source,
        token: Secret::new(token.to_owned()),
    })
}

fn jwt(value: &Value, cx: &Context<'_>, errors: &mut Errors) -> Option<Jwt> {
    const PATH: &str = "http.auth.jwt";
    let before = errors.len();
    let raw = entry::<RawJwt>(value, PATH, RawJwt::FIELDS, errors)?;
    let jwks = match (raw.jwks_url, raw.jwks_file) {
        (Some(url), None) => jwks_url(&url, errors).map(JwksSource::Url),
        (None, Some(file)) => jwks_file(&file, cx, errors).map(JwksSource::File),
        (Some(_), Some(_)) => {
            errors.push(PATH, "give one of `jwks_url` or `jwks_file`, not both");
            None
        }
        (None, None) => {
            errors.push(
                PATH,
                "missing `jwks_url` or `jwks_file`: where the keys that sign tokens are",
            );
            None
        }
    };
    if raw.issuer.trim().is_empty() {
        errors.push(join(PATH, "issuer"), "is empty");
    }
    let audience = raw.audience.into_vec();
    if audience.is_empty() || audience.iter().any(|a| a.trim().is_empty()) {
        errors.push(join(PATH, "audience"), "needs a non-empty value");
    }
    let leeway = match raw.leeway.map(|r| duration::parse(&r.0)) {
        None => Jwt::DEFAULT_LEEWAY,
        Some(Ok(d)) if d <= std::time::Duration::from_secs(600) => d,
        Some(Ok(d)) => {
            errors.push(
                join(PATH, "leeway"),
                format!(
                    "{} is too long; use at most 10m (default 1m)",
                    duration::format(d)
                ),
            );
            Jwt::DEFAULT_LEEWAY
        }
        Some(Err(e)) => {
            errors.push(join(PATH, "leeway"), e);
            Jwt::DEFAULT_LEEWAY
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Jwt {
        jwks: jwks?,
        issuer: raw.issuer,
        audience,
        leeway,
    })
}

fn jwks_url(url: &str, errors: &mut Errors) -> Option<String> {
    const PATH: &str = "http.auth.jwt.jwks_url";
    let Some(rest) = url.strip_prefix("https://").or_else(|| {
        // Plain http only to this machine: keys fetched in the clear could be swapped.
        url.strip_prefix("http://").filter(|r| {
            r.starts_with("127.0.0.1") || r.starts_with("localhost") || r.starts_with("[::1]")
        })
    }) else {
        errors.push(
            PATH,
            format!("\"{url}\" must be an https:// URL (http:// only for 127.0.0.1 / localhost)"),
        );
        return None;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    match remote::check_authority(authority) {
        Ok(()) if !authority.contains('@') => Some(url.to_owned()),
        Ok(()) => {
            errors.push(PATH, "credentials in the URL are not accepted");
            None
        }
        Err(e) => {
            errors.push(PATH, format!("\"{url}\": {e}"));
            None
        }
    }
}

/// Read now, so that a missing or malformed key set is a configuration error, not a 401 for
/// every client later.
fn jwks_file(file: &str, cx: &Context<'_>, errors: &mut Errors) -> Option<PathBuf> {
    const PATH: &str = "http.auth.jwt.jwks_file";
    let full = file_path(file, PATH, cx, errors)?;
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => {
            errors.push(PATH, format!("cannot read {}: {e}", full.display()));
            return None;
        }
    };
    let has_keys = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .is_some_and(|v| v.get("keys").is_some_and(serde_json::Value::is_array));
    if !has_keys {
        errors.push(
            PATH,
            format!(
                "{} is not a JWKS (a JSON object with a \"keys\" list)",
                full.display()
            ),
        );
        return None;
    }
    Some(full)
}

/// A file named in the config: `~/` is the home directory, a relative path is relative to the
/// config file.
fn file_path(text: &str, path: &str, cx: &Context<'_>, errors: &mut Errors) -> Option<PathBuf> {
    if text.trim().is_empty() {
        errors.push(path, "is empty; give a file path");
        return None;
    }
    match text.strip_prefix("~/") {
        Some(rest) => match (cx.env)("HOME") {
            Some(home) => Some(Path::new(&home).join(rest)),
            None => {
                errors.push(
                    path,
                    format!("HOME is not set, so \"{text}\" cannot be resolved"),
                );
                None
            }
        },
        None => Some(resolve(cx.source, text)),
    }
}
