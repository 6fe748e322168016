//! Secrets removed from text a child wrote before the gateway shows that text to the client or
//! the model: the health report's stderr tail, a server's reason, last error, `serverInfo` and
//! tool-definition reports, supervision events, and the answers for unavailable tools all quote
//! the child, and children print credentials (a connection string in a stack trace, `API_KEY=…`
//! in a start-up banner, a token in an HTTP error).
//!
//! Two kinds of secret are found:
//! - **known values**: every value of a server's `env` that is not plain ([`Builder::configured`]),
//!   and values of settings that look secret ([`is_secret_setting`]): the gateway's own
//!   environment (a child may have inherited any of it) and secret-looking arguments
//!   (`--token=…`, `--api-key …`, `-e NAME=…`, `--header "Authorization: Bearer …"`;
//!   [`Redactor::for_config`]). Any further source of secrets (HTTP headers, say) is one more
//!   [`Builder::setting`] or [`Builder::secret`]. Each line of a multi-line value (a PEM key, a
//!   service-account JSON) is known too, and so is the value's JSON-escaped form.
//! - **credential shapes**, whoever the secret belongs to: `key=value`, `key: value` and
//!   `"key": "value"` under a secret-looking key (`API_KEY=…`, `--password=…`,
//!   `Authorization: Bearer …`, a whole `Cookie:` header), bare `Bearer …` tokens, URL
//!   passwords (`postgres://admin:…@db`) and tokens with a well-known prefix (`sk-…`, `ghp_…`,
//!   `AKIA…`, JWTs…).
//!
//! A secret becomes [`MARKER`]; what names it stays (`API_KEY=[REDACTED]`,
//! `postgres://admin:[REDACTED]@db`, `ghp_[REDACTED]`), so an operator still sees what was
//! there. Text is redacted once, where it enters something that can be shown — not at every
//! read. The gateway's own tracing logs keep the raw text: they go to the operator's terminal,
//! and the operator owns those secrets anyway.
//!
//! What is *not* treated as secret, so that ordinary text is not shredded:
//! - values shorter than [`MIN_SECRET_CHARS`], and *plain* values, whatever they are called:
//!   numbers, paths, bare URLs (`scheme://host[:port]` and a short path, without userinfo,
//!   query or fragment), booleans, status words (`true`, `required`, `missing`…), placeholders
//!   and `$VARIABLE` references;
//! - a configured `env` value under an innocuous name that is an *ordinary* word: a log level
//!   (`WARNING`), an environment name (`production`), `localhost`, a host name
//!   (`db.example.com`) or a cloud region (`us-east-1`). Under a secret-looking name
//!   (`DB_PASSWORD: production`) it is still a secret;
//! - a known value found inside a longer word: a value shorter than 24 characters only matches
//!   as a whole token (no letter or digit right before or after it), so `production` in
//!   `reproduction` stays; a longer one matches anywhere (it is no English word);
//! - under a generic key (`key`, `auth`, `pass`, `cache_key`…, or one whose secret word is not
//!   the last, like `secret_sauce` or `token_type`), a value that does not look random (no digit
//!   or inner capital): `cache key: user:42:profile`, `[auth] key: rotated`; keys naming an
//!   error (`KeyError: 'name'`) and Rust paths (`auth::login`) are no assignments at all.

use std::borrow::Cow;
use std::sync::LazyLock;

use orchestra_config::Config;
use std::ops::Range;

use regex::{Captures, Regex, RegexBuilder};
use serde_json::Value;

/// What a secret is replaced with.
pub const MARKER: &str = "[REDACTED]";
/// Shorter values are never redacted: they would match ordinary words and numbers.
pub const MIN_SECRET_CHARS: usize = 6;
/// A value under an innocuous name must be at least this long to count as generated; a known
/// value this long is matched even inside a longer word.
const MIN_GENERATED_CHARS: usize = 24;
/// Text past a cut that [`Redactor::redact_capped`] still redacts, beyond the longest known
/// value: the longest credential shape a cut could split (a key and its start, a URL's user).
const SHAPE_MARGIN: usize = 1024;

/// Removes secrets from text. Cheap to share (`Arc`); `Default` knows the credential shapes
/// but no configured values.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Known secret values, longest first (a value that contains another goes first).
    known: Vec<String>,
}

/// Collects the known secrets of a [`Redactor`].
#[derive(Debug, Default)]
pub struct Builder {
    known: Vec<String>,
}

impl Redactor {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The redactor for a configuration: every server's `env` values that are not plain, the
    /// secret-looking settings in its arguments, and the gateway's own environment (children
    /// inherit it, so they can print it).
    pub fn for_config(config: &Config) -> Self {
        let mut b = Self::builder();
        for server in &config.servers {
            // A value the user configured for a child is treated as secret whatever its name
            // (the config is where tokens go); only plain values are exempt. The gateway's
            // own environment, full of PWD, PATH and the like, goes by name and shape.
            for (name, value) in &server.env {
                b = b.configured(name, value);
            }
            b = b.flags(&server.args);
        }
        for (name, value) in std::env::vars_os() {
            if let (Some(name), Some(value)) = (name.to_str(), value.to_str()) {
                b = b.setting(name, value);
            }
        }
        b.build()
    }

    /// `text` with every secret replaced by [`MARKER`]; borrowed when nothing was found.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.known {
            if let Some(s) = replace_known(&out, secret) {
                out = Cow::Owned(s);
            }
        }
        if let Cow::Owned(s) = assignments(&out) {
            out = Cow::Owned(s);
        }
        if let Cow::Owned(s) = tokens(&out) {
            out = Cow::Owned(s);
        }
        out
    }

    /// [`Redactor::redact`] for an owned string (no copy when nothing was found).
    pub fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }

    /// `text` redacted and cut to `cap` bytes (with `…` when cut). Redacting comes first (a cut
    /// could leave the start of a secret that no longer matches), but only of the part that
    /// can survive the cut plus what a secret starting in it can span: a child's 16 MiB error
    /// or 64 KiB stderr line costs no more than a short one.
    pub fn redact_capped(&self, text: &str, cap: usize) -> String {
        let longest = self.known.first().map_or(0, String::len);
        let head = cut(
            text,
            cap.saturating_add(longest).saturating_add(SHAPE_MARGIN),
        );
        let mut out = self.redact(head).into_owned();
        if out.len() > cap || head.len() < text.len() {
            out.truncate(cut(&out, cap).len());
            out.push('…');
        }
        out
    }

    /// Redacts every string in `value` (object keys too): JSON a child sent, kept for display.
    pub fn redact_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                if map.keys().any(|k| matches!(self.redact(k), Cow::Owned(_))) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(k, v)| (self.redact_owned(k), v))
                        .collect();
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` with each occurrence of the known value `secret` replaced, or None if there is none.
/// A short value only counts as a whole token: where it starts (ends) with a letter or digit,
/// the character before (after) it must not be one (`production` in `reproduction` is not the
/// value). A long one counts anywhere: glued to other text (`%3D…`) it is still the secret.
fn replace_known(text: &str, secret: &str) -> Option<String> {
    let bounded = secret.chars().count() < MIN_GENERATED_CHARS;
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (starts_alnum, ends_alnum) = (
        alnum(secret.chars().next()),
        alnum(secret.chars().next_back()),
    );
    let mut out: Option<String> = None;
    let (mut copied, mut from) = (0, 0);
    while let Some(i) = text[from..].find(secret) {
        let (at, end) = (from + i, from + i + secret.len());
        if bounded
            && ((starts_alnum && alnum(text[..at].chars().next_back()))
                || (ends_alnum && alnum(text[end..].chars().next())))
        {
            // Not a whole token; an overlapping occurrence may still be one.
            from = at + secret.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
        o.push_str(&text[copied..at]);
        o.push_str(MARKER);
        (copied, from) = (end, end);
    }
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

impl Builder {
    /// A value known to be secret, redacted wherever it appears (ignored when shorter than
    /// [`MIN_SECRET_CHARS`]: it would shred ordinary text). Of a multi-line value (a PEM key,
    /// a JSON credentials file) each line that is not plain is known too — a child prints one
    /// line at a time — and so is its JSON-escaped form (`…\n…`), as a child embeds it in JSON.
    pub fn secret(mut self, value: &str) -> Self {
        let value = value.trim();
        if value.contains('\n') {
            for line in value.lines().map(str::trim) {
                // PEM armour (`-----BEGIN PRIVATE KEY-----`) names the secret; it is not one.
                if !is_plain_value(line) && !line.starts_with("-----") {
                    self.push(line);
                }
            }
            if let Ok(json) = serde_json::to_string(value) {
                self.push(&json[1..json.len() - 1]);
            }
        }
        self.push(value);
        self
    }

    fn push(&mut self, value: &str) {
        if value.chars().count() >= MIN_SECRET_CHARS && !self.known.iter().any(|k| k == value) {
            self.known.push(value.to_owned());
        }
    }

    /// A value configured for a child's `env` variable `name`: a known secret unless it is
    /// plain or too short, or is an ordinary word (log level, environment name, host name,
    /// region) under a name that does not look secret. Of `Bearer <token>` the token is known.
    pub fn configured(self, name: &str, value: &str) -> Self {
        let v = without_scheme(value.trim());
        if is_plain_value(v) || (!is_secret_name(name) && is_ordinary_value(v)) {
            self
        } else {
            self.secret(v)
        }
    }

    /// A named setting (environment variable, header, flag): its value is a known secret if
    /// [`is_secret_setting`] says so. Of `Bearer <token>` the token is known.
    pub fn setting(self, name: &str, value: &str) -> Self {
        let v = without_scheme(value.trim());
        if is_secret_setting(name, v) {
            self.secret(v)
        } else {
            self
        }
    }

    /// Command-line arguments: the value of `--name=value`, or of `--name value`, is a setting,
    /// and so is an argument that is itself a setting, `NAME=value` (`-e GITHUB_TOKEN=…`,
    /// `env API_KEY=… node`) or a header `Name: value` (`--header "Authorization: Bearer …"`).
    pub fn flags(mut self, args: &[String]) -> Self {
        for (i, arg) in args.iter().enumerate() {
            let Some(flag) = arg.strip_prefix('-') else {
                if let Some((name, value)) = embedded_setting(arg) {
                    self = self.setting(name, value);
                }
                continue;
            };
            let flag = flag.trim_start_matches('-');
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => {
                    if let Some((inner, value)) = embedded_setting(value) {
                        self = self.setting(inner, value);
                    }
                    (name, Some(value))
                }
                // A next argument that is a setting itself is also read on its own turn.
                None => (
                    flag,
                    args.get(i + 1)
                        .map(String::as_str)
                        .filter(|v| !v.starts_with('-')),
                ),
            };
            // `-e NAME=value` is the setting NAME, not a value of `e`; under a secret flag
            // (`--password=user:pass`) the whole value is the secret.
            if let Some(value) =
                value.filter(|v| is_secret_name(name) || embedded_setting(v).is_none())
            {
                self = self.setting(name, value);
            }
        }
        self
    }

    pub fn build(mut self) -> Redactor {
        self.known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        Redactor { known: self.known }
    }
}

/// `NAME=value` or `Name: value` (a header; `Name:value` too, but not `scheme://…`) as one
/// argument, with a name that could be a variable or header name.
fn embedded_setting(arg: &str) -> Option<(&str, &str)> {
    let split = arg.find(['=', ':'])?;
    let (name, value) = (&arg[..split], &arg[split + 1..]);
    let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    let value = value.trim();
    (name_ok && !value.is_empty() && !value.starts_with("//")).then_some((name, value))
}

/// `value` without a leading authorization scheme (`Bearer `, `Basic `…).
fn without_scheme(value: &str) -> &str {
    &value[scheme_len(value)..]
}

/// Whether the value of the setting `name` is a secret: at least [`MIN_SECRET_CHARS`] long, not
/// a plain value (number, path, bare URL, boolean or status word), and either under a
/// secret-looking name ([`is_secret_name`]), a URL with a password, or generated-looking
/// (≥ 24 characters without spaces, with upper case, lower case and digits).
pub fn is_secret_setting(name: &str, value: &str) -> bool {
    let v = value.trim();
    if v.chars().count() < MIN_SECRET_CHARS || is_plain_value(v) {
        return false;
    }
    is_secret_name(name) || has_url_password(v) || looks_generated(v)
}

/// Whether a setting's name says it holds a secret: one of its words (split at `_ - .` and
/// camelCase) is KEY, TOKEN, SECRET, PASSWORD/PASSWD/PASS/PWD/PASSPHRASE, CREDENTIAL(S)/CREDS,
/// AUTH/AUTHORIZATION, COOKIE, DSN, JWT, BEARER, or SESSION followed by ID/KEY/TOKEN, or a word
/// ends in PASSWORD, TOKEN, SECRET, APIKEY… (`PGPASSWORD`, `GHTOKEN`). `SESSION` alone is not
/// enough (`DESKTOP_SESSION=ubuntu`), nor are `AUTHOR`, `KEYBOARD`, `MONKEY` or `TOKENS`.
pub fn is_secret_name(name: &str) -> bool {
    let words = words(name);
    words.iter().any(|w| is_secret_word(w))
        || words.windows(2).any(|p| {
            p[0] == "session" && matches!(p[1].as_str(), "id" | "key" | "token" | "secret")
        })
}

/// One lower-case word of a name that says it holds a secret (see [`is_secret_name`]).
fn is_secret_word(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pass",
        "pwd",
        "passphrase",
        "credential",
        "credentials",
        "creds",
        "auth",
        "authorization",
        "cookie",
        "dsn",
        "jwt",
        "bearer",
        "sessionid",
    ];
    const ENDINGS: &[&str] = &[
        "password",
        "passwd",
        "token",
        "secret",
        "apikey",
        "accesskey",
        "privatekey",
        "secretkey",
        "sessionid",
    ];
    WORDS.contains(&w) || ENDINGS.iter().any(|e| w.len() > e.len() && w.ends_with(e))
}

/// How strongly a key found before `=`/`:` in text says its value is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyStrength {
    /// Not a secret key, or no assignment (`KeyError: …`).
    None,
    /// A generic word (`key: …`, `auth: …`, `cache_key: …`) or a secret word that is not the
    /// last (`secret_sauce: …`, `token_type=…`): only a random-looking value is a secret.
    Weak,
    /// `password`, `API_KEY`, `x-api-key`, `access_token`…: any value that is not plain.
    Strong,
}

fn key_strength(key: &str) -> KeyStrength {
    /// Alone, these name many things besides credentials (`cache key: …`, `pass: 3 tests`).
    const GENERIC: &[&str] = &[
        "key",
        "auth",
        "pass",
        "pwd",
        "cred",
        "creds",
        "credential",
        "credentials",
    ];
    /// `<word>_key` where the key is a data-structure key, not a credential.
    const DATA_KEYS: &[&str] = &[
        "cache",
        "primary",
        "foreign",
        "sort",
        "partition",
        "hash",
        "range",
        "map",
        "lookup",
        "index",
        "unique",
        "composite",
        "row",
        "object",
        "dict",
        "group",
        "routing",
        "shard",
        "dedup",
        "idempotency",
    ];
    let words = words(key);
    let Some(last) = words.last() else {
        return KeyStrength::None;
    };
    // `KeyError: 'model_name'`, `TokenExpiredError: jwt expired`: an error's name.
    if matches!(
        last.as_str(),
        "error" | "errors" | "err" | "exception" | "exceptions"
    ) || !is_secret_name(key)
    {
        return KeyStrength::None;
    }
    let generic = match words.as_slice() {
        [only] => GENERIC.contains(&only.as_str()),
        [.., before, last] => last == "key" && DATA_KEYS.contains(&before.as_str()),
        [] => false,
    };
    if is_secret_word(last) && !generic {
        KeyStrength::Strong
    } else {
        KeyStrength::Weak
    }
}

/// Lower-case words of a name: split at non-alphanumerics and at lower→upper case changes.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            prev_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Values that are never secrets, whatever they are called: numbers, paths, bare URLs,
/// placeholders, booleans and status words.
fn is_plain_value(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "true",
        "false",
        "null",
        "none",
        "nil",
        "undefined",
        "yes",
        "no",
        "on",
        "off",
        "enabled",
        "disabled",
        "required",
        "optional",
        "missing",
        "invalid",
        "expired",
        "present",
        "provided",
        "configured",
        "set",
        "unset",
        "empty",
        "ok",
        "valid",
        "revoked",
        "unknown",
        "default",
        "bearer",
        "basic",
        "digest",
        "negotiate",
    ];
    let lower = v.to_ascii_lowercase();
    v.contains(MARKER)
        || WORDS.contains(&lower.as_str())
        || v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || is_path(v)
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || is_bare_url(v)
        || v.bytes().all(|b| b == b'*' || b == b'x' || b == b'X')
        || (v.starts_with('<') && v.ends_with('>'))
        // `$TOKEN`, `${TOKEN}`: a reference to a variable, not its value.
        || v.starts_with("${")
        || v.strip_prefix('$').is_some_and(|name| {
            name.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// An absolute path: starts with `/`, has no `+` or `=` and no segment that looks random. One
/// base64 secret in 64 starts with `/` (`/9j/4AAQ…`), and base64 has `+`, `=` padding, or long
/// runs mixing upper case, lower case and digits; path segments rarely do.
fn is_path(v: &str) -> bool {
    v.starts_with('/') && !v.contains(['+', '=']) && !v.split('/').any(random_segment)
}

/// At least 8 characters mixing upper case, lower case and digits.
fn random_segment(s: &str) -> bool {
    s.len() >= 8
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// `scheme://host[:port]` with at most a short path (≤ 32 bytes, no random-looking segment),
/// and no userinfo, query or fragment. A webhook URL (`hooks.slack.com/services/T…/B…/…`), a
/// signed URL (`?sig=…`) or one with a user is a credential in itself.
fn is_bare_url(v: &str) -> bool {
    let Some((scheme, rest)) = v.split_once("://") else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
        && !authority.is_empty()
        && !v.contains(|c: char| c.is_whitespace() || matches!(c, '?' | '#'))
        && !authority.contains('@')
        && path.len() <= 32
        && !path.split('/').any(random_segment)
}

/// Values that say how or where a program runs, not who it is: log levels, environment names,
/// `localhost`, host names and cloud regions. Ordinary under an innocuous name; under a
/// secret-looking one (`DB_PASSWORD: production`) the value is still a secret.
fn is_ordinary_value(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "trace",
        "debug",
        "info",
        "notice",
        "warn",
        "warning",
        "error",
        "critical",
        "fatal",
        "verbose",
        "silent",
        "production",
        "prod",
        "development",
        "dev",
        "staging",
        "test",
        "testing",
        "local",
        "localhost",
    ];
    static REGION: LazyLock<Regex> = LazyLock::new(|| {
        // AWS `us-east-1`, `us-gov-west-1`, `eu-west-2a`; GCP `us-central1`, `europe-west4-b`.
        ascii_regex(concat!(
            r"^(?:us|eu|ap|sa|ca|me|af|il|mx|cn|asia|europe|northamerica|southamerica|australia|africa)",
            r"(?:-[a-z]+)+-?[0-9]{1,2}[a-z]?(?:-[a-z])?$",
        ))
    });
    let lower = v.to_ascii_lowercase();
    WORDS.contains(&lower.as_str()) || is_host_name(v) || REGION.is_match(v)
}

/// A lower-case DNS name with at least two labels and an alphabetic top-level label
/// (`db.internal.example.com`, `api.github.com:443`), or `localhost[:port]`.
fn is_host_name(v: &str) -> bool {
    let host = match v.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => v,
    };
    let labels: Vec<&str> = host.split('.').collect();
    host == "localhost"
        || (labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
            && labels
                .last()
                .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_lowercase())))
}

/// `scheme://user:password@host…` (a whole value, no spaces).
fn has_url_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !v.contains(char::is_whitespace)
        && authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Long, unbroken, and mixing upper case, lower case and digits: a generated key or token.
fn looks_generated(v: &str) -> bool {
    v.len() >= MIN_GENERATED_CHARS
        && !v.contains(char::is_whitespace)
        && v.bytes().any(|b| b.is_ascii_uppercase())
        && v.bytes().any(|b| b.is_ascii_lowercase())
        && v.bytes().any(|b| b.is_ascii_digit())
}

/// A random token has a digit or an upper-case letter somewhere; English words joined by
/// hyphens (`sk-learn-compatible-estimators`) do not.
fn looks_random(t: &str) -> bool {
    t.bytes()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// What a value under a weak key must look like to be a secret: one unbroken run without `:`
/// (`user:42:profile` is a compound key), mixing letters with digits or with an inner capital
/// (`9f8e7d6c5b4a`, `zQmTwLpX`), or generated.
fn looks_random_value(v: &str) -> bool {
    let letters = v.bytes().any(|b| b.is_ascii_alphabetic());
    let digits = v.bytes().any(|b| b.is_ascii_digit());
    let inner_capital = v.bytes().skip(1).any(|b| b.is_ascii_uppercase())
        && v.bytes().any(|b| b.is_ascii_lowercase());
    !v.contains(|c: char| c.is_whitespace() || c == ':')
        && ((letters && digits) || inner_capital || looks_generated(v))
}

/// The credential shapes, compiled once. Both regexes are linear-time (the regex crate has no
/// backtracking) and small: ASCII-only (Unicode classes under bounded repetition compile to
/// NFAs of tens of thousands of states: milliseconds at start-up and megabytes of memory), and
/// they match only a fixed anchor: a secret word, a token prefix. What has a length limit
/// around the anchor (a key's other words, a URL's user) is read in Rust ([`next_assignment`],
/// [`next_url_password`]), which checks the same limits in a few bytes. A str regex that is
/// ASCII-only matches ASCII bytes only, so every offset it reports is a char boundary.
/// (ASCII case folding: unlike Unicode's, it does not take the Kelvin sign `K` for `k` or the
/// long `ſ` for `s` in a key.)
struct Shapes {
    /// A secret-looking word (`key`, `token`, `pass`…, any case) that can be part of the key of
    /// a `key=`, `key: `, `"key": `, `key => ` ([`next_assignment`] reads the rest).
    keyword: Regex,
    /// Secrets recognisable by their own shape (URL passwords apart: [`next_url_password`]).
    token: Regex,
}

static SHAPES: LazyLock<Shapes> = LazyLock::new(|| Shapes {
    keyword: ascii_regex("(?i)key|token|secret|pass|pwd|cred|auth|cookie|session|dsn|jwt|bearer"),
    token: ascii_regex(concat!(
        // Well-known prefixes: the prefix stays.
        r#"\b(?:sk-ant-|sk-proj-|sk-svcacct-|sk-|glpat-)(?P<dash>[A-Za-z0-9_-]{20,})"#,
        r#"|\b(?:sk_live_|sk_test_|rk_live_|rk_test_|npm_|hf_)(?P<alnum>[A-Za-z0-9]{16,})"#,
        r#"|\b(?:gh[pousr]_|github_pat_)(?P<github>[A-Za-z0-9_]{30,})"#,
        r#"|\bxox[abposr]-(?P<slack>[A-Za-z0-9-]{10,})"#,
        r#"|\b(?:AKIA|ASIA)(?P<aws>[A-Z0-9]{16})\b"#,
        r#"|\bAIza(?P<google>[A-Za-z0-9_-]{35})"#,
        r#"|\bpypi-(?P<pypi>[A-Za-z0-9_-]{50,})"#,
        // A JSON Web Token: three base64url parts, the first a JSON object (`{"` = `eyJ`).
        r#"|\b(?P<jwt>eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*)"#,
        r#"|\b(?i:bearer)[ \t]+(?P<bearer>[A-Za-z0-9._~+/-]{16,}=*)"#,
    )),
});

/// A regex without Unicode: classes, `\b` and case folding are ASCII, and a pattern that could
/// match a non-ASCII byte is refused at build time (so offsets are char boundaries).
fn ascii_regex(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("redaction pattern")
}

/// The groups of [`Shapes::token`] that hold the secret.
const TOKEN_GROUPS: &[&str] = &[
    "dash", "alnum", "github", "slack", "aws", "google", "pypi", "jwt", "bearer",
];

/// How many key characters may come before and after the secret word in a key
/// (`AWS_SECRET_ACCESS_KEY`); bounded so that a long run before a key costs nothing.
const KEY_WORDS_MAX: usize = 64;
/// The longest word [`Shapes::keyword`] matches (`session`).
const KEYWORD_MAX: usize = 7;

/// A byte of a key: `[A-Za-z0-9_.-]`.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A key under a secret word and what follows it, as found by [`next_assignment`].
struct Assignment {
    /// The key: a run of key bytes holding a secret word, with at most [`KEY_WORDS_MAX`] key
    /// bytes before and after the word.
    key: Range<usize>,
    /// `=`, `=>` or `:`.
    sep: Range<usize>,
    /// Where the assignment ends and the value starts (after the blanks behind `sep`).
    end: usize,
}

/// The first (leftmost-starting) assignment at or after `pos`: a key (see [`Assignment::key`];
/// it cannot start before `pos`), then an optional closing quote, blanks, and `=`, `=>` or `:`
/// and blanks. Linear: each run of key bytes is read once whole, and after that only the
/// secret words near its end (the only ones a key can end with) are looked at again.
fn next_assignment(text: &str, pos: usize) -> Option<Assignment> {
    let bytes = text.as_bytes();
    let blanks = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count()
    };
    let mut from = pos;
    while let Some(word) = SHAPES.keyword.find_at(text, from) {
        let key_end = word.end()
            + bytes[word.end()..]
                .iter()
                .take_while(|&&b| is_key_byte(b))
                .count();
        // Every offset from here to `key_end` is a char boundary: the word and the run are ASCII.
        if key_end - word.end() > KEY_WORDS_MAX {
            // Only a word ending within the limit of the run's end can start the key.
            from = (word.start() + 1).max(key_end.saturating_sub(KEY_WORDS_MAX + KEYWORD_MAX));
            continue;
        }
        let mut i = key_end;
        if matches!(bytes.get(i), Some(b'"' | b'\'')) {
            i += 1;
        }
        i = blanks(i);
        let sep = match (bytes.get(i), bytes.get(i + 1)) {
            (Some(b'='), Some(b'>')) => i..i + 2,
            (Some(b'=' | b':'), _) => i..i + 1,
            // No secret word in this run can start an assignment.
            _ => {
                from = key_end;
                continue;
            }
        };
        let before = bytes[pos..word.start()]
            .iter()
            .rev()
            .take(KEY_WORDS_MAX)
            .take_while(|&&b| is_key_byte(b))
            .count();
        return Some(Assignment {
            key: word.start() - before..key_end,
            end: blanks(sep.end),
            sep,
        });
    }
    None
}

/// A URL's password: where the URL starts (its scheme) and ends (after the `@`), and where the
/// password lies. The first at or after `pos` of `scheme://user:password@`: a scheme of at most
/// 32 bytes (`[A-Za-z][A-Za-z0-9+.-]*`), a user of at most 255 characters without
/// `:/?#@"'<>` or white space, and a password up to the last `@` before any of `/?#"'<>` or
/// white space (`p@ss@db`). Linear: the user and password end before the next `/`, so before
/// the next `://`.
fn next_url_password(text: &str, pos: usize) -> Option<(Range<usize>, Range<usize>)> {
    const USER_MAX: usize = 255;
    const SCHEME_MAX: usize = 32;
    let bytes = text.as_bytes();
    let mut from = pos;
    while let Some(i) = text[from..].find("://") {
        let colon = from + i;
        from = colon + 1;
        let scheme_run = bytes[pos..colon]
            .iter()
            .rev()
            .take(SCHEME_MAX)
            .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
            .count();
        // The leftmost start, as a regex search would report it.
        let Some(start) = (colon - scheme_run..colon).find(|&s| bytes[s].is_ascii_alphabetic())
        else {
            continue;
        };
        let after = colon + 3;
        let user_end = text[after..]
            .char_indices()
            .take(USER_MAX + 1)
            .find(|&(_, c)| c == ':' || c.is_whitespace() || "/?#@\"'<>".contains(c))
            .filter(|&(_, c)| c == ':');
        let Some((user_len, _)) = user_end else {
            continue;
        };
        let password = after + user_len + 1;
        let run = text[password..]
            .find(|c: char| c.is_whitespace() || "/?#\"'<>".contains(c))
            .unwrap_or(text.len() - password);
        match text[password..password + run].rfind('@') {
            Some(at) if at > 0 => {
                return Some((start..password + at + 1, password..password + at));
            }
            _ => continue,
        }
    }
    None
}

/// Assignments under secret keys, with their values replaced.
fn assignments(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let (mut copied, mut pos) = (0, 0);
    while let Some(found) = next_assignment(text, pos) {
        let (key, sep) = (&text[found.key.clone()], &text[found.sep.clone()]);
        // The key is never empty, so the search always moves on.
        pos = found.end;
        let before = &text[..found.key.start];
        // `https://auth.example.com:8443`: a host and port, not a key and value.
        let authority = before.ends_with("//") || before.ends_with('@');
        // `auth::login`, `crate::token: …`: a Rust path, not an assignment.
        let path = sep == ":" && (text[found.sep.end..].starts_with(':') || before.ends_with("::"));
        let strength = key_strength(key);
        if authority || path || strength == KeyStrength::None {
            continue;
        }
        // A cookie header is all secret: `Cookie: a=1; sid=…` to the end of the line.
        let whole_line = sep == ":"
            && ["cookie", "set-cookie"]
                .iter()
                .any(|c| key.eq_ignore_ascii_case(c));
        let Some((from, to, end)) = value_span(&text[pos..], whole_line) else {
            continue;
        };
        let value = &text[pos + from..pos + to];
        if value.chars().count() < MIN_SECRET_CHARS
            || is_plain_value(value)
            || (strength == KeyStrength::Weak && !looks_random_value(value))
        {
            continue;
        }
        out.push_str(&text[copied..pos + from]);
        out.push_str(MARKER);
        copied = pos + to;
        pos += end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where the secret of the value at the start of `rest` lies, and where the value ends:
/// `"…"` or `'…'` (to the closing quote on the same line; `\"` does not close it), to the end
/// of the line when `whole_line`, or else an unquoted run up to a space, quote or separator.
/// A leading authorization scheme (`Bearer `) is not part of the secret, and it takes the
/// next word only when that could be a token (`token_type=Bearer expires_in=3600` is not).
fn value_span(rest: &str, whole_line: bool) -> Option<(usize, usize, usize)> {
    let run = |s: &str| {
        s.find(|c: char| c.is_whitespace() || "\"',;&<>(){}[]".contains(c))
            .unwrap_or(s.len())
    };
    let (open, body) = match rest.as_bytes().first()? {
        &q @ (b'"' | b'\'') => {
            let body = &rest[1..];
            (1, &body[..quoted_len(body, q)])
        }
        _ if whole_line => {
            let len = rest.find(['\r', '\n']).unwrap_or(rest.len());
            (0, rest[..len].trim_end())
        }
        _ => {
            let scheme = scheme_len(rest);
            let token = &rest[scheme..][..run(&rest[scheme..])];
            if scheme == 0 {
                (0, &rest[..run(rest)])
            } else if token.is_empty() {
                // `Bearer [REDACTED]`, `Bearer "…`: nothing here to hide.
                return None;
            } else if token.contains(':') || token.trim_end_matches('=').contains('=') {
                // The next word is another field; the value is the scheme word alone.
                (0, &rest[..run(rest)])
            } else {
                (0, &rest[..scheme + token.len()])
            }
        }
    };
    let skip = scheme_len(body);
    let (from, to) = (open + skip, open + body.len());
    if from >= to {
        return None;
    }
    let closing = usize::from(open == 1 && rest[to..].starts_with(['"', '\'']));
    Some((from, to, to + closing))
}

/// Length of a quoted string's body before its closing quote `q` (or line end), skipping
/// backslash escapes. Always a char boundary: it stops only at an ASCII byte.
fn quoted_len(body: &str, q: u8) -> usize {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == q || b == b'\r' || b == b'\n' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Length of a leading authorization scheme word and the spaces after it (`Bearer `), if any.
fn scheme_len(value: &str) -> usize {
    let Some((word, _)) = value.split_once([' ', '\t']) else {
        return 0;
    };
    if ["bearer", "basic", "token", "digest", "negotiate"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s))
    {
        let rest = &value[word.len()..];
        word.len() + (rest.len() - rest.trim_start_matches([' ', '\t']).len())
    } else {
        0
    }
}

/// Tokens recognisable by their shape and URL passwords, with the secret part replaced. Of
/// two overlapping candidates the one starting first wins, a URL on a tie (as one regex with
/// the URL first would choose); each search is redone only once the text before `pos` is past
/// its candidate, so the whole text is read about once by each.
fn tokens(text: &str) -> Cow<'_, str> {
    let re = &SHAPES.token;
    let mut out = String::new();
    let (mut copied, mut pos) = (0, 0);
    let mut url = next_url_password(text, 0);
    let mut token = re.captures(text);
    loop {
        if url.as_ref().is_some_and(|(whole, _)| whole.start < pos) {
            url = next_url_password(text, pos);
        }
        if token
            .as_ref()
            .is_some_and(|c| c.get(0).is_some_and(|m| m.start() < pos))
        {
            token = re.captures_at(text, pos);
        }
        let (whole_end, secret) = match (&url, token.as_ref().and_then(token_secret)) {
            (Some((whole, secret)), Some((start, ..))) if whole.start <= start => {
                (whole.end, Some(secret.clone()))
            }
            (Some((whole, secret)), None) => (whole.end, Some(secret.clone())),
            (_, Some((_, end, secret))) => (end, secret),
            (None, None) => break,
        };
        pos = whole_end;
        if let Some(secret) = secret {
            out.push_str(&text[copied..secret.start]);
            out.push_str(MARKER);
            copied = secret.end;
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Where a [`Shapes::token`] match starts and ends, and its secret part unless it is no token:
/// a prefix followed by English words (`sk-learn-…`).
fn token_secret(caps: &Captures) -> Option<(usize, usize, Option<Range<usize>>)> {
    let whole = caps.get(0)?;
    let (group, secret) = TOKEN_GROUPS
        .iter()
        .find_map(|g| caps.name(g).map(|m| (*g, m)))?;
    let hide = matches!(group, "jwt" | "aws") || looks_random(secret.as_str());
    Some((whole.start(), whole.end(), hide.then(|| secret.range())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(text: &str) -> String {
        Redactor::default().redact(text).into_owned()
    }

    const OPENAI: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
    const GITHUB: &str = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s";

    #[test]
    fn every_configured_value_is_a_secret_unless_plain() {
        let r = Redactor::builder()
            .configured("LOGIN", "hunter2x")
            .configured("DATA", "/srv/data")
            .configured("FLAG", "true")
            .configured("PORT", "8080")
            .configured("X", "abc")
            .build();
        assert_eq!(
            r.redact("login failed for hunter2x at /srv/data on 8080 (abc: true)"),
            "login failed for [REDACTED] at /srv/data on 8080 (abc: true)"
        );
    }

    #[test]
    fn assignments_keep_the_key_and_hide_the_value() {
        for (line, want) in [
            ("API_KEY=abc123def456", "API_KEY=[REDACTED]"),
            ("token=ghp_short", "token=[REDACTED]"),
            (
                r#"{"password": "hunter22", "user": "bob"}"#,
                r#"{"password": "[REDACTED]", "user": "bob"}"#,
            ),
            (
                "password: 'correct horse battery'",
                "password: '[REDACTED]'",
            ),
            ("token: zz-9f8e7d6c", "token: [REDACTED]"),
            (
                "node server.js --password=s3cr3tvalue",
                "node server.js --password=[REDACTED]",
            ),
            (
                "Authorization: Bearer abc.def.ghi-123",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "authorization: Basic dXNlcjpwYXNz",
                "authorization: Basic [REDACTED]",
            ),
            (
                r#"headers: {"Authorization": "Bearer tok_9f8e7d6c5b"}"#,
                r#"headers: {"Authorization": "Bearer [REDACTED]"}"#,
            ),
            ("PGPASSWORD=letmein99 psql", "PGPASSWORD=[REDACTED] psql"),
            (
                "clientSecret => 'abcDEF123'",
                "clientSecret => '[REDACTED]'",
            ),
            ("x-api-key: 0123abcd", "x-api-key: [REDACTED]"),
            (
                "GET /v1?access_token=abcdef123&x=1",
                "GET /v1?access_token=[REDACTED]&x=1",
            ),
            ("Cookie: sid=9f8e7d6c5b4a", "Cookie: [REDACTED]"),
            ("session_id=7f3a9c2e", "session_id=[REDACTED]"),
            ("password=$ecret99", "password=[REDACTED]"),
            ("tokens: password=hunter22", "tokens: password=[REDACTED]"),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "AWS_SECRET_ACCESS_KEY=[REDACTED]",
            ),
        ] {
            assert_eq!(shapes(line), want, "{line}");
        }
    }

    #[test]
    fn plain_values_under_secret_keys_stay() {
        for line in [
            "token_count: 1500",
            "auth: required",
            "api_key: missing",
            "password=***",
            "token=<your token here>",
            "TOKEN=${GITHUB_TOKEN}",
            "password=$DB_PASSWORD",
            "private_key_path=/etc/ssl/private/server.pem",
            "auth_url=https://auth.example.com/login",
            "API_KEY=[REDACTED]",
        ] {
            assert_eq!(shapes(line), line);
        }
    }

    #[test]
    fn words_that_merely_contain_a_keyword_are_not_keys() {
        for line in [
            "max_tokens: 4096",
            "tokens=1500 elapsed=3.2s",
            "author: Jane Doe",
            "keyboard=us-intl",
            "monkey: banana",
            "tokenizer=cl100k_base",
            "passthrough: enabled",
            "compass: north-by-northwest",
            "DESKTOP_SESSION: ubuntu",
            "https://auth.example.com:8443/callback",
            "connecting to keycloak:8080",
        ] {
            assert_eq!(shapes(line), line);
        }
    }

    #[test]
    fn url_passwords_are_hidden_user_and_host_stay() {
        assert_eq!(
            shapes("connecting to postgres://admin:hunter2@db/x ..."),
            "connecting to postgres://admin:[REDACTED]@db/x ..."
        );
        assert_eq!(
            shapes("redis://:p4ss@cache:6379/0"),
            "redis://:[REDACTED]@cache:6379/0"
        );
        assert_eq!(
            shapes("DATABASE_URL=mysql://root:toor@localhost:3306/app"),
            "DATABASE_URL=mysql://root:[REDACTED]@localhost:3306/app"
        );
        // No password: nothing to hide.
        for line in ["ssh://git@github.com:22/x.git", "https://user@example.com/"] {
            assert_eq!(shapes(line), line);
        }
    }

    #[test]
    fn well_known_tokens_keep_their_prefix() {
        let aws = "AKIAIOSFODNN7EXAMPLE";
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        for (text, want) in [
            (
                format!("using {OPENAI} now"),
                "using sk-proj-[REDACTED] now".to_owned(),
            ),
            (
                format!("clone with {GITHUB}"),
                "clone with ghp_[REDACTED]".to_owned(),
            ),
            (
                format!("key {aws} rejected"),
                "key AKIA[REDACTED] rejected".to_owned(),
            ),
            (format!("jwt {jwt}."), "jwt [REDACTED].".to_owned()),
            (
                "slack xoxb-123456789012-abcdefABCDEF".to_owned(),
                "slack xoxb-[REDACTED]".to_owned(),
            ),
            (
                "gitlab glpat-Abcdefghij0123456789".to_owned(),
                "gitlab glpat-[REDACTED]".to_owned(),
            ),
            (
                "anthropic sk-ant-api03-AbCdEf0123456789xyzXYZ".to_owned(),
                "anthropic sk-ant-[REDACTED]".to_owned(),
            ),
            (
                "google AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q".to_owned(),
                "google AIza[REDACTED]".to_owned(),
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv".to_owned(),
                "github_pat_[REDACTED]".to_owned(),
            ),
            (
                "sent Bearer 0a1b2c3d4e5f6a7b8c9d".to_owned(),
                "sent Bearer [REDACTED]".to_owned(),
            ),
        ] {
            assert_eq!(shapes(&text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_log_lines_are_untouched() {
        for line in [
            "listening on http://localhost:3000",
            "Secure MCP Filesystem Server running on stdio",
            "Allowed directories: [ '/home/user/projects', '/tmp' ]",
            "request 550e8400-e29b-41d4-a716-446655440000 done in 12ms",
            "2025-01-31T12:00:00.123Z INFO server started pid=4242",
            "error: ENOENT: no such file or directory, open '/home/user/.config/app/tokens.json'",
            "Using model claude-3-5-sonnet-20241022",
            "task-runner-queue-worker-pool-size=8",
            "pip install scikit-learn; import sklearn as sk-learn-compatible-estimators",
            "Bearer authentication is not configured",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "at Object.<anonymous> (/app/node_modules/pg/lib/client.js:132:17)",
            "Authentication failed for user 'admin'",
            "warning: session expired, reconnecting",
        ] {
            assert_eq!(shapes(line), line);
        }
    }

    #[test]
    fn known_values_are_hidden_anywhere() {
        let r = Redactor::builder()
            .setting("WEATHER_API_TOKEN", "Wx7-tango-Q9-lima")
            .setting("UPSTREAM", "zq8Xv2Lm9Rt4Wy7Kp3Nb6Hd1")
            .build();
        assert_eq!(
            r.redact("upstream said Wx7-tango-Q9-lima was wrong (zq8Xv2Lm9Rt4Wy7Kp3Nb6Hd1)"),
            "upstream said [REDACTED] was wrong ([REDACTED])"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_value_containing_another_is_hidden_whole() {
        let r = Redactor::builder()
            .secret("abcdefgh")
            .secret("abcdefgh-ijkl")
            .build();
        assert_eq!(
            r.redact("x abcdefgh-ijkl y abcdefgh"),
            "x [REDACTED] y [REDACTED]"
        );
    }

    #[test]
    fn which_settings_are_secrets() {
        for (name, value) in [
            ("GITHUB_PERSONAL_ACCESS_TOKEN", "abcdef"),
            ("OPENAI_API_KEY", "whatever-value"),
            ("PGPASSWORD", "hunter2"),
            ("db.pass", "letmein"),
            ("apiKey", "foo-bar-baz"),
            ("SESSION_ID", "abc123"),
            ("DATABASE_URL", "postgres://admin:hunter2@db/x"),
            ("UPSTREAM", "zq8Xv2Lm9Rt4Wy7Kp3Nb6Hd1"),
        ] {
            assert!(is_secret_setting(name, value), "{name}={value}");
        }
        for (name, value) in [
            ("API_KEY", "1"),
            ("AUTH_ENABLED", "true"),
            ("TOKEN", "short"),
            ("PASSWORD_FILE", "/run/secrets/db"),
            ("SSH_AUTH_SOCK", "/tmp/ssh-XXXX/agent.1"),
            ("PWD", "/work/project"),
            ("AUTH_URL", "https://auth.example.com"),
            ("NODE_ENV", "production"),
            ("MODEL", "claude-3-5-sonnet-20241022"),
            ("DESKTOP_SESSION", "ubuntu"),
            ("XDG_SESSION_TYPE", "wayland"),
            ("CARGO_PKG_AUTHORS", "Jane Doe <jane@example.com>"),
            ("PORT", "30000000"),
            ("ALLOWED_DIRS", "/home/user/projects"),
        ] {
            assert!(!is_secret_setting(name, value), "{name}={value}");
        }
    }

    #[test]
    fn flag_values_are_settings() {
        let args: Vec<String> = [
            "--api-key",
            "abcdef123",
            "--token=xyz987654",
            "--port",
            "3000",
            "-v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = Redactor::builder().flags(&args).build();
        assert_eq!(
            r.redact("got abcdef123 and xyz987654 on 3000"),
            "got [REDACTED] and [REDACTED] on 3000"
        );
    }

    #[test]
    fn redaction_is_idempotent() {
        let r = Redactor::builder().secret("c0nf1gured-v4lue").build();
        let line = format!(
            r#"fatal API_KEY={OPENAI} token={GITHUB} dsn postgres://admin:hunter2@db/x {{"password": "c0nf1gured-v4lue"}} Authorization: Bearer {GITHUB}"#
        );
        let once = r.redact(&line).into_owned();
        for secret in [OPENAI, GITHUB, "hunter2", "c0nf1gured-v4lue"] {
            assert!(!once.contains(secret), "{secret} in {once}");
        }
        assert_eq!(
            once,
            r#"fatal API_KEY=[REDACTED] token=[REDACTED] dsn postgres://admin:[REDACTED]@db/x {"password": "[REDACTED]"} Authorization: Bearer [REDACTED]"#
        );
        assert_eq!(r.redact(&once), once);
    }

    #[test]
    fn configured_values_match_whole_tokens_and_ordinary_words_stay() {
        let r = Redactor::builder()
            .configured("NODE_ENV", "production")
            .configured("HOST", "localhost")
            .configured("REGION", "us-east-1")
            .configured("FASTMCP_LOG_LEVEL", "WARNING")
            .configured("DB_HOST", "db.internal.example.com:5432")
            .configured("GCP_ZONE", "europe-west4-b")
            .configured("WEATHER", "tango-lima")
            .configured("UPSTREAM", "zq8Xv2Lm9Rt4Wy7Kp3Nb6Hd1")
            .build();
        let line = "WARNING:root:retrying in production against localhost in us-east-1 \
                    via db.internal.example.com:5432 (europe-west4-b)";
        assert_eq!(r.redact(line), line);
        // A configured value is hidden as a whole token, not inside another word.
        assert_eq!(
            r.redact("tango-lima failed (tango-lima); xtango-lima tango-limax kept"),
            "[REDACTED] failed ([REDACTED]); xtango-lima tango-limax kept"
        );
        // A long one is hidden even glued to other text.
        assert_eq!(
            r.redact("GET /hook?sig%3Dzq8Xv2Lm9Rt4Wy7Kp3Nb6Hd1x"),
            "GET /hook?sig%3D[REDACTED]x"
        );
        // Under a secret-looking name an ordinary word is still a secret.
        let r = Redactor::builder()
            .configured("DB_PASSWORD", "production")
            .build();
        assert_eq!(
            r.redact("login with production failed; reproduction steps"),
            "login with [REDACTED] failed; reproduction steps"
        );
    }

    #[test]
    fn errors_paths_short_values_and_plain_words_under_generic_keys_stay() {
        for line in [
            "KeyError: 'model_name'",
            "TokenExpiredError: jwt expired",
            "AuthenticationException: try again",
            "Missing key: name",
            "primary key: id",
            "cache key: user:42:profile",
            "cache_key: user-profile-page",
            "[auth] key: rotated",
            "secret_sauce: recipe-book",
            "test auth::login ... ok",
            "token_type=Bearer expires_in=3600",
            "password: abc",
        ] {
            assert_eq!(shapes(line), line);
        }
        // Random-looking values under the same generic keys are still hidden.
        for (line, want) in [
            ("key: 9f8e7d6c5b4a", "key: [REDACTED]"),
            ("auth: zQmTwLpXvR", "auth: [REDACTED]"),
            ("secret_sauce: Zx9kQ2mLp7", "secret_sauce: [REDACTED]"),
            (
                "token_type=Bearer access_token=Zx9kQ2mLp7",
                "token_type=Bearer access_token=[REDACTED]",
            ),
        ] {
            assert_eq!(shapes(line), want, "{line}");
        }
    }

    #[test]
    fn base64_that_starts_with_a_slash_and_credential_urls_are_not_plain() {
        let r = Redactor::builder()
            .configured("IMAGE_KEY", "/9j/4AAQSkZJRgABAQAAAQABAAD")
            .configured("SIGNING", "/Zx9kQ2mLp7+vR4t=")
            .configured(
                "SLACK",
                "https://hooks.slack.com/services/T0A1B2C3D/B4E5F6/Xy7Zq8Wv9",
            )
            .configured(
                "DOWNLOAD",
                "https://bucket.example.com/f?X-Amz-Signature=ab12cd",
            )
            .configured("GIT", "https://oauth@git.example.com")
            .build();
        assert_eq!(
            r.redact(
                "key /9j/4AAQSkZJRgABAQAAAQABAAD sig /Zx9kQ2mLp7+vR4t= \
                 posting to https://hooks.slack.com/services/T0A1B2C3D/B4E5F6/Xy7Zq8Wv9 \
                 https://bucket.example.com/f?X-Amz-Signature=ab12cd https://oauth@git.example.com"
            ),
            "key [REDACTED] sig [REDACTED] posting to [REDACTED] [REDACTED] [REDACTED]"
        );
        for plain in [
            "/srv/data",
            "/tmp",
            "/tmp/ssh-XXXX/agent.1",
            "/home/user/My Documents/notes.md",
            "http://localhost:3000",
            "https://api.example.com/v1/mcp",
        ] {
            assert!(is_plain_value(plain), "{plain}");
        }
    }

    #[test]
    fn settings_inside_arguments_are_read() {
        let args: Vec<String> = [
            "-y",
            "mcp-remote",
            "https://mcp.example.com/sse",
            "--header",
            "Authorization: Bearer Zx9kQ2mLp7",
            "--header=X-Api-Key:abcdef123",
            "-e",
            "GITHUB_TOKEN=gh0_tok3n_val",
            "--password=user:pass99",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = Redactor::builder().flags(&args).build();
        assert_eq!(
            r.redact("got Zx9kQ2mLp7, abcdef123, gh0_tok3n_val, user:pass99 from https://mcp.example.com/sse"),
            "got [REDACTED], [REDACTED], [REDACTED], [REDACTED] from https://mcp.example.com/sse"
        );
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_known() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n\
                   BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n\
                   -----END PRIVATE KEY-----\n";
        let r = Redactor::builder().configured("GOOGLE_KEY", pem).build();
        assert_eq!(
            r.redact("bad line: BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"),
            "bad line: [REDACTED]"
        );
        assert_eq!(
            r.redact("-----BEGIN PRIVATE KEY-----"),
            "-----BEGIN PRIVATE KEY-----"
        );
        let json = serde_json::json!({ "blob": pem.trim() }).to_string();
        assert_eq!(r.redact(&json), r#"{"blob":"[REDACTED]"}"#);
    }

    #[test]
    fn secrets_are_hidden_whole() {
        for (line, want) in [
            (
                "postgres://admin:p@ss@db:5432/x",
                "postgres://admin:[REDACTED]@db:5432/x",
            ),
            (
                r#"{"password": "ab\"cdefgh", "user": "bob"}"#,
                r#"{"password": "[REDACTED]", "user": "bob"}"#,
            ),
            (
                "Cookie: a=1; sid=9f8e7d6c5b4a\nnext",
                "Cookie: [REDACTED]\nnext",
            ),
            (
                "Set-Cookie: sid=9f8e7d6c5b4a; Path=/; HttpOnly",
                "Set-Cookie: [REDACTED]",
            ),
        ] {
            assert_eq!(shapes(line), want, "{line}");
        }
    }

    #[test]
    fn json_strings_and_keys_are_redacted() {
        let r = Redactor::builder().secret("Wx7-tango-Q9-lima").build();
        let mut v = serde_json::json!({
            "name": "srv",
            "version": format!("1.0 token={GITHUB}"),
            "nested": [{ "Wx7-tango-Q9-lima": 1 }, "via Wx7-tango-Q9-lima", 3, null],
        });
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "name": "srv",
                "version": "1.0 token=[REDACTED]",
                "nested": [{ "[REDACTED]": 1 }, "via [REDACTED]", 3, null],
            })
        );
    }

    #[test]
    fn capped_redaction_hides_secrets_across_the_cut_and_skips_the_rest() {
        let r = Redactor::builder().secret("Wx7-tango-Q9-lima").build();
        let text = format!("{}Wx7-tango-Q9-lima and more", "a ".repeat(145));
        // Longer than the cap raw, not once redacted: nothing is cut.
        assert!(text.len() > 310);
        let out = r.redact_capped(&text, 310);
        assert_eq!(out, format!("{}[REDACTED] and more", "a ".repeat(145)));
        let out = r.redact_capped(&text, 295);
        assert!(out.ends_with('…') && !out.contains("Wx7"), "{out}");
        assert!(out.len() <= 295 + '…'.len_utf8());
        // A 16 MiB error full of candidates costs what its first kilobytes cost.
        let huge = "password=hunter22 ".repeat(1 << 20);
        let t = std::time::Instant::now();
        let out = r.redact_capped(&huge, 300);
        assert!(!out.contains("hunter22"), "{out}");
        assert!(
            t.elapsed() < std::time::Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_long_run_before_a_key_is_cheap() {
        // Unbounded, the key run made this take ~1.7 s in a debug build (~40 ms bounded).
        let text = "x".repeat(1 << 20) + "password=hunter22";
        let t = std::time::Instant::now();
        assert!(shapes(&text).ends_with("password=[REDACTED]"));
        assert!(
            t.elapsed() < std::time::Duration::from_millis(600),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn multi_byte_text_right_next_to_secrets() {
        // Every offset the shapes report must be a char boundary, or slicing would panic.
        for (line, want) in [
            ("éAPI_KEY=abc123def456é ü", "éAPI_KEY=[REDACTED] ü"),
            ("postgres://ü:pässwörd@db/ü", "postgres://ü:[REDACTED]@db/ü"),
            (
                "üpostgres://admin:hunter2@dbü",
                "üpostgres://admin:[REDACTED]@dbü",
            ),
            (
                "ésk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zé",
                "ésk-proj-[REDACTED]é",
            ),
            (
                "ßAuthorization: Bearer abc.def.ghi-123ß",
                "ßAuthorization: Bearer [REDACTED]",
            ),
            ("日本token=値値値値値値", "日本token=[REDACTED]"),
            ("x://é:é@é", "x://é:[REDACTED]@é"),
            // Non-ASCII letters are no key or token characters.
            ("tokenü: abcdef123", "tokenü: abcdef123"),
            ("clé_secrète=hunter22", "clé_secrète=hunter22"),
            (
                "Bearer éabcdefghijklmnop1234",
                "Bearer éabcdefghijklmnop1234",
            ),
        ] {
            assert_eq!(shapes(line), want, "{line}");
        }
        // A URL's user is limited in characters, not bytes.
        let user = "é".repeat(255);
        assert_eq!(
            shapes(&format!("db://{user}:pw123456@h")),
            format!("db://{user}:[REDACTED]@h")
        );
        let long = format!("db://{user}é:pw123456@h");
        assert_eq!(shapes(&long), long);
    }

    #[test]
    fn odd_input_does_not_panic_or_stall() {
        let r = Redactor::builder().secret("Ünïcödé-sëcrét").build();
        assert_eq!(r.redact("é Ünïcödé-sëcrét ü"), "é [REDACTED] ü");
        assert_eq!(r.redact("pässwörd=ü-wert"), "pässwörd=ü-wert");
        assert_eq!(r.redact("password=\"ü-wert-ß"), "password=\"[REDACTED]");
        assert_eq!(r.redact("token: Bearer "), "token: Bearer ");
        // Long runs of near-matches: linear time, so this is quick.
        let long = "token=".repeat(20_000) + &"a:".repeat(20_000) + &"sk-".repeat(20_000);
        let t = std::time::Instant::now();
        let _ = r.redact(&long);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }
}
