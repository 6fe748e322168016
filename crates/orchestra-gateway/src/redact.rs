//! Secrets removed from text a child wrote before the gateway shows that text to the client or
//! the model: the health report's stderr tail, a server's reason and last error, supervision
//! events, and the answers for unavailable tools all quote the child's stderr or error replies,
//! and children print credentials (a connection string in a stack trace, `API_KEY=…` in a
//! start-up banner, a token in an HTTP error).
//!
//! Two kinds of secret are found:
//! - **known values**: every value of a server's `env` that is not plain ([`Builder::configured`]),
//!   and values of settings that look secret ([`is_secret_setting`]): the gateway's own
//!   environment (a child may have inherited any of it) and secret-looking `--flag` arguments
//!   ([`Redactor::for_config`]). Any further source
//!   of secrets (HTTP headers, say) is one more [`Builder::setting`] or [`Builder::secret`].
//! - **credential shapes**, whoever the secret belongs to: `key=value`, `key: value` and
//!   `"key": "value"` under a secret-looking key (`API_KEY=…`, `--password=…`,
//!   `Authorization: Bearer …`), bare `Bearer …` tokens, URL passwords
//!   (`postgres://admin:…@db`) and tokens with a well-known prefix (`sk-…`, `ghp_…`, `AKIA…`,
//!   JWTs…).
//!
//! A secret becomes [`MARKER`]; what names it stays (`API_KEY=[REDACTED]`,
//! `postgres://admin:[REDACTED]@db`, `ghp_[REDACTED]`), so an operator still sees what was
//! there. Text is redacted once, where it enters something that can be shown — not at every
//! read. The gateway's own tracing logs keep the raw text: they go to the operator's terminal,
//! and the operator owns those secrets anyway.
//!
//! What is *not* treated as secret, so that ordinary text is not shredded: values shorter than
//! [`MIN_SECRET_CHARS`], numbers, paths, URLs without a password, booleans and status words
//! (`true`, `required`, `missing`…). A value under an innocuous name (`NODE_ENV=production`,
//! `MODEL=claude-3-5-sonnet`) is only a known secret when it looks generated (long, mixed case
//! and digits) or is a URL with a password.

use std::borrow::Cow;
use std::sync::LazyLock;

use orchestra_config::Config;
use regex::{Captures, Regex};

/// What a secret is replaced with.
pub const MARKER: &str = "[REDACTED]";
/// Shorter known values are never redacted: they would match ordinary words and numbers.
pub const MIN_SECRET_CHARS: usize = 6;
/// A value under an innocuous name must be at least this long to count as generated.
const MIN_GENERATED_CHARS: usize = 24;

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

    /// The redactor for a configuration: secret-looking values of every server's `env` and
    /// of its `--flag value` / `--flag=value` arguments, and of the gateway's own environment
    /// (children inherit it, so they can print it).
    pub fn for_config(config: &Config) -> Self {
        let mut b = Self::builder();
        for server in &config.servers {
            // A value the user configured for a child is treated as secret whatever its name
            // (the config is where tokens go); only plain values are exempt. The gateway's
            // own environment, full of PWD, PATH and the like, goes by name and shape.
            for (_, value) in &server.env {
                b = b.configured(value);
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
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MARKER));
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
}

impl Builder {
    /// A value known to be secret, redacted wherever it appears (ignored when shorter than
    /// [`MIN_SECRET_CHARS`]: it would shred ordinary text).
    pub fn secret(mut self, value: &str) -> Self {
        let value = value.trim();
        if value.chars().count() >= MIN_SECRET_CHARS && !self.known.iter().any(|k| k == value) {
            self.known.push(value.to_owned());
        }
        self
    }

    /// A value configured for a child (its `env`): a known secret unless it is a plain value
    /// (number, path, URL without a password, boolean or status word) or too short.
    pub fn configured(self, value: &str) -> Self {
        if is_plain_value(value.trim()) {
            self
        } else {
            self.secret(value)
        }
    }

    /// A named setting (environment variable, header, flag): its value is a known secret if
    /// [`is_secret_setting`] says so.
    pub fn setting(self, name: &str, value: &str) -> Self {
        if is_secret_setting(name, value) {
            self.secret(value)
        } else {
            self
        }
    }

    /// Command-line arguments: the value of `--name=value`, or of `--name value`, is a setting.
    pub fn flags(mut self, args: &[String]) -> Self {
        for (i, arg) in args.iter().enumerate() {
            let Some(flag) = arg.strip_prefix('-') else {
                continue;
            };
            match flag.split_once('=') {
                Some((name, value)) => self = self.setting(name, value),
                None => {
                    if let Some(value) = args.get(i + 1).filter(|v| !v.starts_with('-')) {
                        self = self.setting(flag, value);
                    }
                }
            }
        }
        self
    }

    pub fn build(mut self) -> Redactor {
        self.known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        Redactor { known: self.known }
    }
}

/// Whether the value of the setting `name` is a secret: at least [`MIN_SECRET_CHARS`] long, not
/// a plain value (number, path, URL without a password, boolean or status word), and either
/// under a secret-looking name ([`is_secret_name`]), a URL with a password, or generated-looking
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
    let words = words(name);
    words.iter().any(|w| {
        WORDS.contains(&w.as_str()) || ENDINGS.iter().any(|e| w.len() > e.len() && w.ends_with(e))
    }) || words
        .windows(2)
        .any(|p| p[0] == "session" && matches!(p[1].as_str(), "id" | "key" | "token" | "secret"))
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

/// Values that are never secrets, whatever they are called: numbers, paths, URLs without a
/// password, placeholders, booleans and status words.
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
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || (v.contains("://") && !has_url_password(v))
        || v.bytes().all(|b| b == b'*' || b == b'x' || b == b'X')
        || (v.starts_with('<') && v.ends_with('>'))
        // `$TOKEN`, `${TOKEN}`: a reference to a variable, not its value.
        || v.starts_with("${")
        || v.strip_prefix('$').is_some_and(|name| {
            name.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        })
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

/// The credential shapes, compiled once. Both are linear-time (the regex crate has no
/// backtracking), and a line without a candidate costs one DFA scan each.
struct Shapes {
    /// The `key=`, `key: `, `"key": `, `key => ` before a value, under a key containing a
    /// secret-looking word; the key is checked by [`is_secret_name`] and the value is read by
    /// [`value_span`] afterwards, so that a key found not secret does not swallow its value
    /// (`tokens: password=…`).
    assignment: Regex,
    /// Secrets recognisable by their own shape.
    token: Regex,
}

static SHAPES: LazyLock<Shapes> = LazyLock::new(|| {
    Shapes {
    assignment: Regex::new(concat!(
        r#"(?i)(?P<key>[a-z0-9_.-]*(?:key|token|secret|pass|pwd|cred|auth|cookie|session|dsn|jwt|bearer)[a-z0-9_.-]*)"#,
        r#"["']?[ \t]*(?:=>?|:)[ \t]*"#,
    ))
    .expect("assignment pattern"),
    token: Regex::new(concat!(
        // A URL's password: the scheme and user stay.
        r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@"'<>]*:(?P<url>[^\s/?#@"'<>]+)@"#,
        // Well-known prefixes: the prefix stays.
        r#"|(?-u:\b)(?:sk-ant-|sk-proj-|sk-svcacct-|sk-|glpat-)(?P<dash>[A-Za-z0-9_-]{20,})"#,
        r#"|(?-u:\b)(?:sk_live_|sk_test_|rk_live_|rk_test_|npm_|hf_)(?P<alnum>[A-Za-z0-9]{16,})"#,
        r#"|(?-u:\b)(?:gh[pousr]_|github_pat_)(?P<github>[A-Za-z0-9_]{30,})"#,
        r#"|(?-u:\b)xox[abposr]-(?P<slack>[A-Za-z0-9-]{10,})"#,
        r#"|(?-u:\b)(?:AKIA|ASIA)(?P<aws>[A-Z0-9]{16})(?-u:\b)"#,
        r#"|(?-u:\b)AIza(?P<google>[A-Za-z0-9_-]{35})"#,
        r#"|(?-u:\b)pypi-(?P<pypi>[A-Za-z0-9_-]{50,})"#,
        // A JSON Web Token: three base64url parts, the first a JSON object (`{"` = `eyJ`).
        r#"|(?-u:\b)(?P<jwt>eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*)"#,
        r#"|(?-u:\b)(?i:bearer)[ \t]+(?P<bearer>[A-Za-z0-9._~+/-]{16,}=*)"#,
    ))
    .expect("token pattern"),
}
});

/// The groups of [`Shapes::token`] that hold the secret.
const TOKEN_GROUPS: &[&str] = &[
    "url", "dash", "alnum", "github", "slack", "aws", "google", "pypi", "jwt", "bearer",
];

/// Assignments under secret keys, with their values replaced.
fn assignments(text: &str) -> Cow<'_, str> {
    let re = &SHAPES.assignment;
    let mut out = String::new();
    let (mut copied, mut pos) = (0, 0);
    while let Some(caps) = re.captures_at(text, pos) {
        let (Some(whole), Some(key)) = (caps.get(0), caps.name("key")) else {
            break;
        };
        // The key is never empty, so the search always moves on.
        pos = whole.end();
        // `https://auth.example.com:8443`: a host and port, not a key and value.
        let authority =
            text[..whole.start()].ends_with("//") || text[..whole.start()].ends_with('@');
        if authority || !is_secret_name(key.as_str()) {
            continue;
        }
        let Some((from, to, end)) = value_span(&text[pos..]) else {
            continue;
        };
        if is_plain_value(&text[pos + from..pos + to]) {
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
/// `"…"` or `'…'` (to the closing quote on the same line), or an unquoted run up to a space,
/// quote or separator. A leading authorization scheme (`Bearer `) is not part of the secret.
fn value_span(rest: &str) -> Option<(usize, usize, usize)> {
    let (open, body) = match rest.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let body = &rest[1..];
            let len = body.find([*q as char, '\r', '\n']).unwrap_or(body.len());
            (1, &body[..len])
        }
        _ => {
            let len = rest
                .find(|c: char| c.is_whitespace() || "\"',;&<>(){}[]".contains(c))
                .unwrap_or(rest.len());
            // `Bearer abc…`: the scheme word ends the run; the token follows it.
            let scheme = scheme_len(rest);
            let token_len = rest[scheme..]
                .find(|c: char| c.is_whitespace() || "\"',;&<>(){}[]".contains(c))
                .unwrap_or(rest.len() - scheme);
            match (scheme, token_len) {
                (0, _) => (0, &rest[..len]),
                // `Bearer [REDACTED]`, `Bearer "…`: nothing here to hide.
                (_, 0) => return None,
                _ => (0, &rest[..scheme + token_len]),
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

/// Tokens recognisable by their shape, with the secret part replaced.
fn tokens(text: &str) -> Cow<'_, str> {
    SHAPES.token.replace_all(text, |caps: &Captures| {
        let whole = caps.get(0).expect("group 0");
        let found = TOKEN_GROUPS
            .iter()
            .find_map(|g| caps.name(g).map(|m| (*g, m)));
        match found {
            // A prefix followed by English words (`sk-learn-…`) is not a token.
            Some((group, secret))
                if matches!(group, "url" | "jwt" | "aws") || looks_random(secret.as_str()) =>
            {
                let s = whole.as_str();
                let (from, to) = (secret.start() - whole.start(), secret.end() - whole.start());
                format!("{}{MARKER}{}", &s[..from], &s[to..])
            }
            _ => whole.as_str().to_owned(),
        }
    })
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
            .configured("hunter2x")
            .configured("/srv/data")
            .configured("true")
            .configured("8080")
            .configured("abc")
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
