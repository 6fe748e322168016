//! Issue 10's configuration: the `http:` front and `url:` (remote) servers, valid and invalid,
//! every problem at its key path; the Claude import of `"type": "http"` / `"sse"` entries.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestra_config::{
    import, load_from_str, Config, Format, JwksSource, LoadError, RemoteTransport, TokenSource,
};

const SECRET: &str = "tok-5f3a9c";

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some(home().display().to_string()),
        "API_TOKEN" => Some(SECRET.into()),
        "REGION" => Some("eu".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// A folder per test (tests run in parallel), holding the config's neighbour files.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("orchestra-http-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn write(&self, file: &str, text: &str) -> &Self {
        std::fs::write(self.0.join(file), text).unwrap();
        self
    }
    fn source(&self) -> PathBuf {
        self.0.join("orchestra.yaml")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn home() -> PathBuf {
    std::env::temp_dir().join(format!("orchestra-http-home-{}", std::process::id()))
}

fn source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/orchestra.yaml")
}

const ONE_SERVER: &str = "servers:\n  a: {command: x}\n";

fn load(yaml: &str) -> Config {
    load_in(yaml, &source())
}

fn load_in(yaml: &str, source: &Path) -> Config {
    match load_from_str(yaml, Format::Yaml, source, &env) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got {e}"),
    }
}

fn errors_in(yaml: &str, source: &Path) -> Vec<String> {
    match load_from_str(yaml, Format::Yaml, source, &env) {
        Ok(_) => panic!("expected configuration errors for:\n{yaml}"),
        Err(LoadError::Invalid { errors, .. }) => errors.iter().map(|e| e.to_string()).collect(),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn errors_of(yaml: &str) -> Vec<String> {
    errors_in(yaml, &source())
}

/// Asserts that each `(path, fragment)` is one error at exactly that path, and that nothing
/// else was reported.
fn assert_errors(errors: &[String], want: &[(&str, &str)]) {
    for (path, fragment) in want {
        assert!(
            errors.iter().any(|e| e
                .strip_prefix(&format!("{path}: "))
                .is_some_and(|m| m.contains(fragment))),
            "no error at {path} containing {fragment:?} in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), want.len(), "{}", errors.join("\n"));
}

// ---------------------------------------------------------------- the http: section

#[test]
fn without_an_http_section_there_is_no_front_and_the_defaults_hold() {
    let config = load(ONE_SERVER);
    let http = &config.http;
    assert_eq!(http.listen, None);
    assert_eq!(http.max_sessions, 100);
    assert_eq!(http.idle_timeout, Duration::from_secs(30 * 60));
    assert_eq!(http.header_timeout, Duration::from_secs(10));
    assert_eq!(http.body_timeout, Duration::from_secs(30));
    assert_eq!(http.max_body, config.gateway.max_message_size);
    assert!(!http.allow_remote_unauthenticated);
    assert!(http.auth.is_empty());
    // max_body follows the gateway's max_message_size when not set.
    let config = load(&format!(
        "gateway: {{max_message_size: 1MiB}}\nhttp: {{listen: \"127.0.0.1:0\"}}\n{ONE_SERVER}"
    ));
    assert_eq!(config.http.max_body, 1024 * 1024);
    assert_eq!(config.http.listen, Some("127.0.0.1:0".parse().unwrap()));
}

#[test]
fn a_full_http_section_resolves_sources_relative_to_the_config_and_home() {
    let dir = Dir::new("full");
    dir.write("token", &format!("{SECRET}-file\n"))
        .write("jwks.json", r#"{"keys": []}"#);
    std::fs::create_dir_all(home()).unwrap();
    std::fs::write(home().join("orchestra-token"), "home-token").unwrap();
    let yaml = format!(
        r#"
http:
  listen: "0.0.0.0:8080"
  allowed_origins: ["HTTPS://App.Example.com:443", "http://localhost:3000"]
  allowed_hosts: ["MCP.example.com", "10.0.0.5:8080"]
  max_sessions: 7
  idle_timeout: 5m
  max_body: 2MiB
  header_timeout: 3s
  body_timeout: 1m
  auth:
    bearer_tokens: [{{env: API_TOKEN}}, {{file: token}}, {{file: "~/orchestra-token"}}]
    jwt: {{jwks_file: jwks.json, issuer: "https://issuer.example", audience: [a, b], leeway: 30s}}
{ONE_SERVER}"#
    );
    let config = load_in(&yaml, &dir.source());
    let http = &config.http;
    assert_eq!(
        http.listen,
        Some("0.0.0.0:8080".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(
        http.allowed_origins,
        ["https://app.example.com", "http://localhost:3000"]
    );
    assert_eq!(http.allowed_hosts, ["mcp.example.com", "10.0.0.5:8080"]);
    assert_eq!(http.max_sessions, 7);
    assert_eq!(http.idle_timeout, Duration::from_secs(300));
    assert_eq!(http.header_timeout, Duration::from_secs(3));
    assert_eq!(http.body_timeout, Duration::from_secs(60));
    assert_eq!(http.max_body, 2 * 1024 * 1024);
    let tokens: Vec<(&TokenSource, &str)> = http
        .auth
        .bearer_tokens
        .iter()
        .map(|t| (&t.source, t.token.expose()))
        .collect();
    assert_eq!(
        tokens,
        [
            (&TokenSource::Env("API_TOKEN".into()), SECRET),
            (&TokenSource::File(dir.0.join("token")), "tok-5f3a9c-file"),
            (
                &TokenSource::File(home().join("orchestra-token")),
                "home-token"
            ),
        ]
    );
    let jwt = http.auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.jwks, JwksSource::File(dir.0.join("jwks.json")));
    assert_eq!(jwt.issuer, "https://issuer.example");
    assert_eq!(jwt.audience, ["a", "b"]);
    assert_eq!(jwt.leeway, Duration::from_secs(30));
    // Secrets never show in Debug output (logs, panics).
    assert!(!format!("{config:?}").contains(SECRET));
}

#[test]
fn a_non_loopback_listen_needs_authentication_or_an_explicit_opt_out() {
    for addr in ["0.0.0.0:8080", "192.168.1.10:80", "[::]:8080"] {
        let errors = errors_of(&format!("http: {{listen: \"{addr}\"}}\n{ONE_SERVER}"));
        assert_errors(
            &errors,
            &[(
                "http.listen",
                "is reachable from other machines, and no authentication is configured",
            )],
        );
        assert!(
            errors[0].contains("allow_remote_unauthenticated"),
            "{errors:?}"
        );
    }
    for ok in [
        "http: {listen: \"127.0.0.1:8080\"}",
        "http: {listen: \"[::1]:8080\"}",
        "http: {listen: \"0.0.0.0:8080\", allow_remote_unauthenticated: true}",
        "http: {listen: \"0.0.0.0:8080\", auth: {bearer_tokens: [{env: API_TOKEN}]}}",
        "http: {listen: \"0.0.0.0:8080\", auth: {jwt: {jwks_url: \"https://id.example/jwks\", issuer: i, audience: a}}}",
    ] {
        let config = load(&format!("{ok}\n{ONE_SERVER}"));
        assert!(config.http.listen.is_some(), "{ok}");
    }
}

#[test]
fn inline_tokens_are_refused_without_being_quoted_back() {
    let errors = errors_of(&format!(
        "http:\n  listen: \"127.0.0.1:1\"\n  auth: {{bearer_tokens: [\"{SECRET}\", {{env: API_TOKEN}}]}}\n{ONE_SERVER}"
    ));
    assert_errors(
        &errors,
        &[(
            "http.auth.bearer_tokens[0]",
            "an inline token is not accepted",
        )],
    );
    assert!(errors[0].contains("{env: NAME}") && errors[0].contains("{file: PATH}"));
    let errors = errors_of(&format!(
        "http:\n  auth: {{bearer_tokens: \"{SECRET}\"}}\n{ONE_SERVER}"
    ));
    assert_errors(
        &errors,
        &[("http.auth.bearer_tokens", "an inline token is not accepted")],
    );
    for e in &errors {
        assert!(!e.contains(SECRET), "the secret was echoed: {e}");
    }
}

#[test]
fn token_sources_must_exist_be_readable_and_say_one_thing() {
    let dir = Dir::new("sources");
    dir.write("blank", "\n");
    let yaml = format!(
        r#"
http:
  auth:
    bearer_tokens:
      - {{env: NOT_SET}}
      - {{file: missing-token}}
      - {{env: API_TOKEN, file: token}}
      - {{}}
      - {{evn: API_TOKEN}}
      - {{env: EMPTY}}
      - {{file: blank}}
      - {{env: "API-TOKEN"}}
{ONE_SERVER}"#
    );
    let errors = errors_in(&yaml, &dir.source());
    assert_errors(
        &errors,
        &[
            (
                "http.auth.bearer_tokens[0].env",
                "environment variable NOT_SET is not set",
            ),
            ("http.auth.bearer_tokens[1].file", "cannot read"),
            ("http.auth.bearer_tokens[2]", "exactly one of"),
            ("http.auth.bearer_tokens[3]", "exactly one of"),
            (
                "http.auth.bearer_tokens[4].evn",
                "unknown key (did you mean \"env\"?)",
            ),
            ("http.auth.bearer_tokens[4]", "exactly one of"),
            ("http.auth.bearer_tokens[5].env", "the token is empty"),
            ("http.auth.bearer_tokens[6].file", "the token is empty"),
            (
                "http.auth.bearer_tokens[7].env",
                "*name* of an environment variable",
            ),
        ],
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&dir.0.join("missing-token").display().to_string())),
        "the resolved path is shown: {errors:?}"
    );
}

#[test]
fn jwt_settings_are_checked_key_by_key() {
    let dir = Dir::new("jwt");
    dir.write("not-jwks.json", r#"{"kid": 1}"#);
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "{jwks_url: \"https://a/k\", audience: a}",
            &[("http.auth.jwt", "missing required key `issuer`")],
        ),
        (
            "{jwks_url: \"https://a/k\", issuer: i}",
            &[("http.auth.jwt", "missing required key `audience`")],
        ),
        (
            "{issuer: i, audience: a}",
            &[("http.auth.jwt", "missing `jwks_url` or `jwks_file`")],
        ),
        (
            "{jwks_url: \"https://a/k\", jwks_file: not-jwks.json, issuer: i, audience: a}",
            &[("http.auth.jwt", "not both")],
        ),
        (
            "{jwks_url: \"http://id.example/k\", issuer: i, audience: a}",
            &[("http.auth.jwt.jwks_url", "must be an https:// URL")],
        ),
        (
            "{jwks_file: not-jwks.json, issuer: i, audience: a}",
            &[("http.auth.jwt.jwks_file", "is not a JWKS")],
        ),
        (
            "{jwks_file: nope.json, issuer: i, audience: a}",
            &[("http.auth.jwt.jwks_file", "cannot read")],
        ),
        (
            "{jwks_url: \"https://a/k\", issuer: \" \", audience: [], leeway: 1h, audince: x}",
            &[
                ("http.auth.jwt.issuer", "is empty"),
                ("http.auth.jwt.audience", "needs a non-empty value"),
                ("http.auth.jwt.leeway", "too long"),
                ("http.auth.jwt.audince", "did you mean \"audience\"?"),
            ],
        ),
    ];
    for (jwt, want) in cases {
        let yaml = format!("http:\n  auth:\n    jwt: {jwt}\n{ONE_SERVER}");
        assert_errors(&errors_in(&yaml, &dir.source()), want);
    }
    // http:// is accepted for a JWKS served on this machine.
    let config = load(&format!(
        "http:\n  auth:\n    jwt: {{jwks_url: \"http://127.0.0.1:9000/jwks\", issuer: i, audience: a}}\n{ONE_SERVER}"
    ));
    let jwt = config.http.auth.jwt.unwrap();
    assert_eq!(
        jwt.jwks,
        JwksSource::Url("http://127.0.0.1:9000/jwks".into())
    );
    assert_eq!(jwt.audience, ["a"]);
    assert_eq!(jwt.leeway, Duration::from_secs(60), "the default leeway");
}

#[test]
fn every_bad_http_value_is_reported_at_its_key_in_one_run() {
    let yaml = format!(
        r#"
http:
  listen: "localhost:8080"
  allowed_origins: ["https://app.example.com/path", "app.example.com", "ftp://x", "https://ok.example"]
  allowed_hosts: ["https://mcp.example.com", "bad host", "h:99999"]
  max_sessions: 0
  idle_timeout: 0s
  header_timeout: 0s
  body_timeout: soon
  max_body: 1KiB
  allow_remote_unauthenticated: "yes"
  auth: {{bearer: []}}
  lisen: x
{ONE_SERVER}"#
    );
    assert_errors(
        &errors_of(&yaml),
        &[
            ("http.listen", "did you mean \"127.0.0.1:8080\"?"),
            ("http.allowed_origins[0]", "has a path"),
            ("http.allowed_origins[1]", "is not an origin"),
            ("http.allowed_origins[2]", "scheme is http or https"),
            ("http.allowed_hosts[0]", "is not a host"),
            ("http.allowed_hosts[1]", "is not a host name or address"),
            ("http.allowed_hosts[2]", "is not a port number"),
            ("http.max_sessions", "must be at least 1"),
            ("http.idle_timeout", "must be greater than zero"),
            ("http.header_timeout", "must be greater than zero"),
            ("http.body_timeout", "invalid duration"),
            ("http.max_body", "out of range"),
            ("http.allow_remote_unauthenticated", "expected a boolean"),
            ("http.auth.bearer", "did you mean \"bearer_tokens\"?"),
            ("http.lisen", "did you mean \"listen\"?"),
        ],
    );
}

// ---------------------------------------------------------------- url: servers

#[test]
fn a_url_server_expands_its_headers_and_reads_its_bearer_token() {
    let dir = Dir::new("remote");
    dir.write("key", "k-123\n");
    let yaml = r#"
servers:
  web:
    url: "https://${REGION}.mcp.example.com/mcp"
    headers: {X-Region: "${REGION}", X-Api-Key: "${file:key}", X-Plain: "v"}
    bearer_token_env: API_TOKEN
    call_timeout: 5s
    tools: {deny: [delete_*]}
  legacy: {url: "http://127.0.0.1:9000/sse", transport: sse}
  local: {command: x}
"#;
    let config = load_in(yaml, &dir.source());
    let web = config.server("web").unwrap();
    let remote = web.remote.as_ref().unwrap();
    assert_eq!(remote.url, "https://eu.mcp.example.com/mcp");
    let headers: Vec<(&str, &str)> = remote
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        headers,
        [("X-Api-Key", "k-123"), ("X-Plain", "v"), ("X-Region", "eu")]
    );
    assert_eq!(remote.bearer_token.as_ref().unwrap().expose(), SECRET);
    assert_eq!(remote.transport, RemoteTransport::StreamableHttp);
    assert_eq!(web.call_timeout, Duration::from_secs(5));
    assert!(!web.tools.admits("delete_all"));
    assert_eq!(web.command, "", "nothing to spawn");
    assert_eq!(web.target(), "https://eu.mcp.example.com/mcp");
    let legacy = config.server("legacy").unwrap().remote.as_ref().unwrap();
    assert_eq!(legacy.transport, RemoteTransport::Sse);
    assert!(config.server("local").unwrap().remote.is_none());
    assert!(!format!("{config:?}").contains(SECRET));
    assert!(!format!("{config:?}").contains("k-123"));
}

#[test]
fn command_and_url_exclude_each_other_and_their_keys() {
    let yaml = r#"
servers:
  both: {command: x, url: "https://a.example/mcp"}
  remote:
    url: "https://a.example/mcp"
    args: [x]
    env: {A: b}
    cwd: .
    inherit_env: all
  local:
    command: x
    headers: {X: y}
    bearer_token_env: API_TOKEN
    transport: sse
    type: http
"#;
    let errors = errors_of(yaml);
    assert_errors(
        &errors,
        &[
            ("servers.both", "has both `command` and `url`"),
            ("servers.remote.args", "not allowed on a `url` server"),
            ("servers.remote.env", "not allowed on a `url` server"),
            ("servers.remote.cwd", "not allowed on a `url` server"),
            (
                "servers.remote.inherit_env",
                "not allowed on a `url` server",
            ),
            ("servers.local.headers", "needs a `url`"),
            ("servers.local.bearer_token_env", "needs a `url`"),
            ("servers.local.transport", "needs a `url`"),
            ("servers.local.type", "is a remote server: give its `url`"),
        ],
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a remote server is not started")),
        "says why: {errors:?}"
    );
}

#[test]
fn bad_remote_values_are_reported_at_their_keys() {
    let yaml = r#"
servers:
  a: {url: "ftp://files.example/mcp"}
  b: {url: "mcp.example.com/mcp"}
  c: {url: "https://user:hunter2@mcp.example.com/mcp"}
  d: {url: "https://${NOPE}/mcp"}
  e: {url: "https://a.example/mcp", bearer_token_env: NOT_SET}
  f: {url: "https://a.example/mcp", bearer_token_env: "Bearer abc"}
  g: {url: "https://a.example/mcp", transport: streamable-http}
  h: {url: "https://a.example/mcp", type: sse, transport: streamable_http}
  i: {url: "https://a.example/mcp", type: stdio}
  j: {url: "https://a.example/mcp", type: websocket}
  k:
    url: "https://a.example:99999/mcp"
    headers: {"Bad Name": x, Mcp-Session-Id: y, X-Missing: "${NOPE}"}
  l: {url: "https://a.example/mcp", bearer_token_env: API_TOKEN, headers: {authorization: "x"}}
  m: {url: "https://a.example/mcp", bearer_token_env: EMPTY}
"#;
    let errors = errors_of(yaml);
    assert_errors(
        &errors,
        &[
            ("servers.a.url", "unsupported scheme \"ftp\""),
            ("servers.b.url", "is not a URL"),
            ("servers.c.url", "credentials in the URL are not accepted"),
            ("servers.d.url", "environment variable NOPE is not set"),
            (
                "servers.e.bearer_token_env",
                "environment variable NOT_SET is not set",
            ),
            ("servers.f.bearer_token_env", "never the token itself"),
            (
                "servers.g.transport",
                "unknown transport \"streamable-http\" (did you mean \"streamable_http\"?)",
            ),
            ("servers.h.transport", "disagrees with `type`"),
            (
                "servers.i.type",
                "\"stdio\" servers are started from a `command`",
            ),
            ("servers.j.type", "unknown server type \"websocket\""),
            ("servers.k.url", "is not a port number"),
            ("servers.k.headers.Bad Name", "not a valid header name"),
            (
                "servers.k.headers.Mcp-Session-Id",
                "set by the gateway itself",
            ),
            (
                "servers.k.headers.X-Missing",
                "environment variable NOPE is not set",
            ),
            (
                "servers.l.headers.authorization",
                "conflicts with `bearer_token_env`",
            ),
            (
                "servers.m.bearer_token_env",
                "environment variable EMPTY is empty",
            ),
        ],
    );
    assert!(
        !errors.iter().any(|e| e.contains("hunter2")),
        "a password in a URL is never echoed: {errors:?}"
    );
}

// ---------------------------------------------------------------- the Claude import

#[test]
fn claude_http_sse_and_url_entries_are_imported() {
    let json = r#"{
  "theme": "dark",
  "mcpServers": {
    "web": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"X-Api-Key": "${API_TOKEN}"}},
    "old": {"type": "sse", "url": "https://old.example.com/sse"},
    "bare": {"url": "https://bare.example.com/mcp"},
    "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"]}
  }
}"#;
    let config = load_from_str(json, Format::Json, Path::new("claude.json"), &env).expect("valid");
    let remote = |name: &str| config.server(name).unwrap().remote.clone().unwrap();
    let web = remote("web");
    assert_eq!(web.url, "https://mcp.example.com/mcp");
    assert_eq!(web.transport, RemoteTransport::StreamableHttp);
    assert_eq!(web.headers[0].0, "X-Api-Key");
    assert_eq!(web.headers[0].1.expose(), SECRET);
    assert_eq!(remote("old").transport, RemoteTransport::Sse);
    assert_eq!(remote("bare").transport, RemoteTransport::StreamableHttp);
    let time = config.server("time").unwrap();
    assert!(time.remote.is_none());
    assert_eq!(time.command, "uvx");

    // `mcp-orchestra import` writes them back as url servers, and the result loads the same.
    let yaml = import::to_yaml(&config);
    assert!(
        yaml.contains("  old:\n    url: \"https://old.example.com/sse\"\n    transport: \"sse\"\n"),
        "{yaml}"
    );
    let again = load(&yaml);
    assert_eq!(again.server("old").unwrap().remote, Some(remote("old")));
    assert_eq!(again.server("web").unwrap().remote, Some(web));
}

#[test]
fn claude_entries_that_mix_kinds_are_reported() {
    let json = r#"{"mcpServers": {
        "a": {"type": "http", "command": "npx"},
        "b": {"type": "stdio", "url": "https://a.example/mcp"},
        "c": {"type": "sse"}
    }}"#;
    let errors = match load_from_str(json, Format::Json, Path::new("c.json"), &env) {
        Err(LoadError::Invalid { errors, .. }) => {
            errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        }
        other => panic!("expected errors, got {other:?}"),
    };
    assert_errors(
        &errors,
        &[
            ("servers.a.type", "is a remote server: give its `url`"),
            (
                "servers.b.type",
                "\"stdio\" servers are started from a `command`",
            ),
            ("servers.c.command", "missing"),
            ("servers.c.type", "is a remote server: give its `url`"),
        ],
    );
}
