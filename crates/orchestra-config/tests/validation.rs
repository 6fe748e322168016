//! The configuration's contract: valid files load; invalid ones report every problem at its key
//! path, in one run, with the fix when it is obvious.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestra_config::{load_from_str, Format, LoadError};

fn env(name: &str) -> Option<String> {
    match name {
        "DATA_DIR" => Some("/srv/data".into()),
        _ => None,
    }
}

fn source() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/orchestra.yaml")
}

fn errors_of(yaml: &str) -> String {
    match load_from_str(yaml, Format::Yaml, &source(), &env) {
        Ok(_) => panic!("expected configuration errors"),
        Err(LoadError::Invalid { errors, .. }) => errors.to_string(),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[test]
fn a_full_config_loads_with_defaults_resolved() {
    let yaml = r#"
gateway:
  call_timeout: 10s
servers:
  files:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "${DATA_DIR}"]
    env: {LOG_LEVEL: "${LOG_LEVEL:-info}"}
    cwd: .
    call_timeout: 2m
    tools: {allow: ["read_*"], deny: ["read_secret"]}
  memory: {command: npx, args: ["-y", "@modelcontextprotocol/server-memory"]}
domain_boundaries:
  file_operations: files
  data_persistence: {primary: memory, secondary: [files]}
server_alternatives:
  memory: {fallback: files, degraded_capabilities: [file_storage], lost_capabilities: [queries]}
"#;
    let config = load_from_str(yaml, Format::Yaml, &source(), &env).expect("valid config");
    assert_eq!(config.gateway.separator, "__");
    assert_eq!(config.gateway.call_timeout, Duration::from_secs(10));
    let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["files", "memory"]);
    let files = config.server("files").unwrap();
    assert_eq!(files.args[2], "/srv/data");
    assert_eq!(files.env, vec![("LOG_LEVEL".to_owned(), "info".to_owned())]);
    assert_eq!(files.call_timeout, Duration::from_secs(120));
    assert_eq!(
        files.cwd.as_deref(),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/.")
                .as_path()
        )
    );
    assert!(files.tools.admits("read_file") && !files.tools.admits("read_secret"));
    let memory = config.server("memory").unwrap();
    assert_eq!(
        memory.call_timeout,
        Duration::from_secs(10),
        "inherits the gateway default"
    );
    let persistence = config
        .domains
        .iter()
        .find(|d| d.name == "data_persistence")
        .unwrap();
    assert_eq!(persistence.primary.as_str(), "memory");
    assert_eq!(persistence.secondary[0].as_str(), "files");
    assert_eq!(config.alternatives[0].fallback.as_str(), "files");
}

#[test]
fn every_problem_is_reported_at_its_key_path_in_one_run() {
    let yaml = r#"
gateway:
  call_timeout: 60
  separatr: "__"
servers:
  files:
    command: npx
    comand: oops
    call_timeout: 5 parsecs
  "bad__name": {command: x}
  orchestrator: {command: x}
  empty: {command: "  "}
  nocmd: {args: []}
  envy: {command: "${MISSING_VAR}"}
domain_boundaries:
  file_operations: fles
  research: {primary: files, secondary: [files, ghost]}
server_alternatives:
  files: {fallback: empty}
  empty: {fallback: files}
  memory: {fallback: files}
extra: true
"#;
    assert_eq!(
        errors_of(yaml),
        "\
15 configuration errors:
  - domain_boundaries.file_operations: unknown server \"fles\" (did you mean \"files\"?)
  - domain_boundaries.research.secondary[0]: \"files\" is already the primary of this domain
  - domain_boundaries.research.secondary[1]: unknown server \"ghost\"
  - extra: unknown key
  - gateway.call_timeout: missing unit in \"60\" (did you mean \"60s\"?)
  - gateway.separatr: unknown key (did you mean \"separator\"?)
  - server_alternatives.empty.fallback: fallback cycle: empty -> files -> empty
  - server_alternatives.memory: unknown server \"memory\"
  - servers.bad__name: server name contains the namespace separator \"__\"; rename it (e.g. \"bad-name\")
  - servers.empty.command: is empty: give the program to start (e.g. \"npx\")
  - servers.envy.command: environment variable MISSING_VAR is not set (write ${MISSING_VAR:-default} for a fallback)
  - servers.files.call_timeout: invalid duration \"5 parsecs\" (write e.g. \"30s\", \"500ms\", \"2m\", \"1m30s\")
  - servers.files.comand: unknown key (did you mean \"command\"?)
  - servers.nocmd.command: missing: the program to start (e.g. \"npx\")
  - servers.orchestrator: \"orchestrator\" is reserved for the gateway's own tools
"
    );
}

#[test]
fn fallback_cycles_are_reported_once_with_the_whole_loop() {
    let yaml = r#"
servers:
  a: {command: x}
  b: {command: x}
  c: {command: x}
server_alternatives:
  a: {fallback: b}
  b: {fallback: c}
  c: {fallback: a}
"#;
    assert_eq!(
        errors_of(yaml),
        "1 configuration error:\n  - server_alternatives.a.fallback: fallback cycle: a -> b -> c -> a\n"
    );
}

#[test]
fn a_claude_desktop_file_works_unchanged() {
    let json = r#"{
  "globalShortcut": "Ctrl+Space",
  "mcpServers": {
    "memory": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]},
    "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}}
  }
}"#;
    let config = load_from_str(json, Format::Json, Path::new("claude.json"), &env).expect("valid");
    let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["memory", "time"]);
    assert_eq!(
        config.server("time").unwrap().env,
        vec![("TZ".to_owned(), "UTC".to_owned())]
    );
}

#[test]
fn remote_claude_entries_are_imported_as_url_servers() {
    // Rejected before issue 10; the details are covered in tests/http_config.rs.
    let json = r#"{"mcpServers": {"web": {"type": "http", "url": "https://example.com/mcp"}}}"#;
    let config = load_from_str(json, Format::Json, Path::new("c.json"), &env).expect("valid");
    let web = config.server("web").unwrap();
    assert_eq!(web.remote.as_ref().unwrap().url, "https://example.com/mcp");
}

#[test]
fn yaml_syntax_errors_are_reported_not_panicked() {
    let err = errors_of("servers: [unclosed\n");
    assert!(
        err.starts_with("1 configuration error:\n  - syntax error"),
        "{err}"
    );
}

#[test]
fn restart_and_probe_blocks_inherit_gateway_defaults_key_by_key() {
    let yaml = r#"
gateway:
  restart: {initial_backoff: 1s, max_restarts: 3}
  probe: {interval: 2s}
servers:
  a: {command: x, restart: {max_backoff: 5s}, probe: {timeout: 500ms, unhealthy_after: 1, restart_after: 2}}
  b: {command: x}
"#;
    let config = load_from_str(yaml, Format::Yaml, &source(), &env).expect("valid");
    let a = config.server("a").unwrap();
    assert_eq!(
        a.restart.initial_backoff,
        Duration::from_secs(1),
        "from the gateway"
    );
    assert_eq!(a.restart.max_backoff, Duration::from_secs(5), "its own");
    assert_eq!(a.restart.max_restarts, 3);
    assert_eq!(a.restart.multiplier, 2.0, "built-in default");
    assert_eq!(a.probe.interval, Duration::from_secs(2));
    assert_eq!(a.probe.timeout, Duration::from_millis(500));
    assert_eq!((a.probe.unhealthy_after, a.probe.restart_after), (1, 2));
    let b = config.server("b").unwrap();
    assert_eq!(b.restart.max_backoff, Duration::from_secs(30));
    assert_eq!(b.probe.timeout, Duration::from_secs(5));
}

#[test]
fn restart_and_probe_values_are_checked() {
    let yaml = r#"
servers:
  a:
    command: x
    restart: {initial_backoff: 1m, max_backoff: 10s, multiplier: 0.5, jitter: 1.5, max_restarts: 0, within: forever}
    probe: {unhealthy_after: 3, restart_after: 2, intervall: 1s}
"#;
    assert_eq!(
        errors_of(yaml),
        "\
7 configuration errors:
  - servers.a.probe.intervall: unknown key (did you mean \"interval\"?)
  - servers.a.probe.restart_after: 2 is below unhealthy_after (3); a child is restarted only after it is unhealthy
  - servers.a.restart.initial_backoff: 1m is longer than max_backoff (10s)
  - servers.a.restart.jitter: 1.5 is out of range; use 0.0 up to (not including) 1.0
  - servers.a.restart.max_restarts: must be at least 1
  - servers.a.restart.multiplier: 0.5 is out of range; use 1.0 to 10.0 (default 2.0)
  - servers.a.restart.within: invalid duration \"forever\" (write e.g. \"30s\", \"500ms\", \"2m\", \"1m30s\")
"
    );
}

#[test]
fn every_bad_value_of_one_server_is_reported_not_just_the_first() {
    let errors = errors_of(
        "servers:\n  files:\n    command: [npx]\n    args: 3\n    env: [A]\n    startup_timeout: 5s\n",
    );
    for key in [
        "servers.files.command",
        "servers.files.args",
        "servers.files.env",
    ] {
        assert!(
            errors.contains(&format!("{key}: expected")),
            "{key} in:\n{errors}"
        );
    }
}

#[test]
fn duplicate_keys_are_reported_at_their_path() {
    let errors = errors_of(
        "gateway:\n  call_timeout: 5s\n  call_timeout: 9s\nservers:\n  files:\n    command: npx\n    env: {TOKEN: a, TOKEN: b}\n",
    );
    assert!(
        errors.contains("gateway.call_timeout: duplicate key"),
        "{errors}"
    );
    assert!(
        errors.contains("servers.files.env.TOKEN: duplicate key"),
        "{errors}"
    );
    let json = r#"{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}"#;
    match load_from_str(json, Format::Json, &source(), &env) {
        Err(LoadError::Invalid { errors, .. }) => {
            assert!(
                errors.to_string().contains("servers.a: duplicate key"),
                "{errors}"
            )
        }
        other => panic!("expected a duplicate-key error, got {other:?}"),
    }
}

#[test]
fn inherit_env_and_message_size_resolve_per_server_over_the_gateway() {
    let yaml = r#"
gateway:
  inherit_env: [AWS_PROFILE]
  max_message_size: 32MiB
servers:
  a: {command: x}
  b: {command: x, inherit_env: all, max_message_size: 1048576}
"#;
    let config = load_from_str(yaml, Format::Yaml, &source(), &env).expect("valid config");
    let a = config.server("a").unwrap();
    assert_eq!(
        a.inherit_env,
        orchestra_config::InheritEnv::Names(vec!["AWS_PROFILE".into()])
    );
    assert!(a.inherit_env.admits("AWS_PROFILE") && a.inherit_env.admits("PATH"));
    assert!(a.inherit_env.admits("LC_CTYPE") && !a.inherit_env.admits("GITHUB_TOKEN"));
    assert_eq!(a.max_message_size, 32 << 20);
    let b = config.server("b").unwrap();
    assert_eq!(b.inherit_env, orchestra_config::InheritEnv::All);
    assert_eq!(b.max_message_size, 1 << 20);
    let default = load_from_str("servers: {a: {command: x}}", Format::Yaml, &source(), &env)
        .expect("valid config");
    assert_eq!(
        default.servers[0].inherit_env,
        orchestra_config::InheritEnv::Base
    );
    assert_eq!(default.servers[0].max_message_size, 16 << 20);

    let errors = errors_of(
        "servers:\n  a: {command: x, inherit_env: some, max_message_size: 1KiB}\n  b: {command: x, inherit_env: [\"A=B\"], max_message_size: lots}\n",
    );
    assert!(
        errors.contains("servers.a.inherit_env: \"some\" is not allowed"),
        "{errors}"
    );
    assert!(
        errors.contains("servers.a.max_message_size: 1KiB is out of range"),
        "{errors}"
    );
    assert!(
        errors.contains("servers.b.inherit_env[0]: not a valid"),
        "{errors}"
    );
    assert!(
        errors.contains("servers.b.max_message_size: invalid size"),
        "{errors}"
    );
}

#[test]
fn values_can_come_from_files_next_to_the_config() {
    let dir = std::env::temp_dir().join(format!("orchestra-config-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "s3cr3t\n").unwrap();
    let source = dir.join("orchestra.yaml");
    let yaml = "servers:\n  a:\n    command: x\n    env: {TOKEN: \"${file:token}\", ABS: \"${file:DIR/token}\"}\n"
        .replace("DIR", &dir.display().to_string());
    let config = load_from_str(&yaml, Format::Yaml, &source, &env).expect("valid config");
    assert_eq!(
        config.servers[0].env,
        vec![
            ("ABS".to_owned(), "s3cr3t".to_owned()),
            ("TOKEN".to_owned(), "s3cr3t".to_owned())
        ]
    );
    let missing = "servers:\n  a: {command: x, env: {TOKEN: \"${file:nope}\"}}\n";
    match load_from_str(missing, Format::Yaml, &source, &env) {
        Err(LoadError::Invalid { errors, .. }) => {
            let text = errors.to_string();
            assert!(text.contains("servers.a.env.TOKEN: cannot read"), "{text}");
            assert!(text.contains("nope"), "{text}");
        }
        other => panic!("expected an unreadable-file error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_inside_nested_entries_are_all_reported_once() {
    let errors = errors_of(
        "servers:\n  a:\n    args: 5\n    tools: {allow: 5, deny: 6}\n    env: {A: [1], B: {x: 1}}\n  b:\n    command: x\n    args: [ok, [nested]]\ndomain_boundaries:\n  d: {primary: 5}\n",
    );
    for want in [
        "servers.a.args: expected",
        "servers.a.tools.allow: expected",
        "servers.a.tools.deny: expected",
        "servers.a.env.A: expected",
        "servers.a.env.B: expected",
        // The checks after deserialization still run on what was fine.
        "servers.a.command: missing",
        "servers.b.args[1]: expected",
        "domain_boundaries.d.primary: expected",
    ] {
        assert!(errors.contains(want), "{want} in:\n{errors}");
    }
    assert!(
        !errors.contains("missing required key `primary`"),
        "a key with a bad value is not also missing:\n{errors}"
    );
}

#[test]
fn the_orchestrator_section_resolves_its_store_and_takes_specialists_of_the_users_own() {
    let yaml = r#"
servers:
  files: {command: npx}
orchestrator:
  store: state/tasks.db
  specialists:
    security_auditor:
      role: Security auditor
      approach: Threat-model first, then read the code.
"#;
    let config = load_from_str(yaml, Format::Yaml, &source(), &env).expect("valid");
    let o = &config.orchestrator;
    assert!(o.enabled, "on by default");
    assert_eq!(
        o.store.as_deref(),
        Some(source().parent().unwrap().join("state/tasks.db").as_path()),
        "relative to the config file, never to the working directory"
    );
    assert_eq!(o.specialists.len(), 1);
    assert_eq!(o.specialists[0].name, "security_auditor");
    assert_eq!(o.specialists[0].role.as_deref(), Some("Security auditor"));

    let defaults = load_from_str(
        "servers: {files: {command: npx}}",
        Format::Yaml,
        &source(),
        &env,
    )
    .expect("valid");
    assert!(defaults.orchestrator.enabled && defaults.orchestrator.store.is_none());

    let errors = errors_of(
        r#"
servers:
  files: {command: npx}
orchestrator:
  enabled: maybe
  store: ""
  specialists:
    empty: {}
    odd: {role: R, mood: grumpy}
  colour: blue
"#,
    );
    for expected in [
        "orchestrator.colour",
        "orchestrator.enabled",
        "orchestrator.store",
        "orchestrator.specialists.empty",
        "orchestrator.specialists.odd.mood",
    ] {
        assert!(errors.contains(expected), "{expected} not in:\n{errors}");
    }
}

/// `namespace: false` exposes one server under its child's own names; it is off by default,
/// and a second server without a namespace is refused at load at both entries (two of them
/// could offer the same name).
#[test]
fn namespace_false_is_allowed_for_one_server_only() {
    let config = load_from_str(
        "servers:\n  a: {command: x}\n  b: {command: x, namespace: false}\n",
        Format::Yaml,
        &source(),
        &env,
    )
    .expect("valid config");
    assert!(
        config.server("a").unwrap().namespace,
        "namespaced by default"
    );
    assert!(!config.server("b").unwrap().namespace);

    let errors = errors_of(
        "servers:\n  a: {command: x, namespace: false}\n  b: {command: x, namespace: false}\n  c: {command: x}\n",
    );
    assert!(
        errors.contains("servers.a.namespace") && errors.contains("servers.b.namespace"),
        "{errors}"
    );
    assert!(errors.contains("only one server"), "{errors}");
    assert!(!errors.contains("servers.c"), "{errors}");
    let errors = errors_of("servers:\n  a: {command: x, namespace: no-thanks}\n");
    assert!(errors.contains("servers.a.namespace"), "{errors}");
}
