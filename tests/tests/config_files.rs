//! The shipped configuration files stay valid, and `check` reports problems the way people
//! need them: every one, at its key path, exit code 64, nothing on stdout but the report.

use std::process::Command;

use orchestra_tests::{gateway_bin, workspace_root, TempDir};

/// Runs `mcp-orchestra <args>` with extra environment.
fn orchestra(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(gateway_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running mcp-orchestra")
}

fn check(path: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    orchestra(&["check".as_ref(), "-c".as_ref(), path.as_os_str()], env)
}

#[test]
fn every_file_in_config_validates() {
    let dir = workspace_root().join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.unwrap().path();
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            continue;
        }
        let out = Command::new(gateway_bin())
            .arg("check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the default YAML and the Claude example, found {checked}"
    );
}

#[test]
fn check_reports_every_error_with_exit_code_64() {
    let dir = TempDir::new("badcfg");
    let path = dir.join("orchestra.yaml");
    std::fs::write(
        &path,
        "servers:\n  files: {command: npx, call_timeout: 10}\n  memory: {comand: npx}\ndomain_boundaries:\n  research: fils\n",
    )
    .unwrap();
    let out = Command::new(gateway_bin())
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "errors go to stderr"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {}: 4 configuration errors:\n  \
             - domain_boundaries.research: unknown server \"fils\" (did you mean \"files\"?)\n  \
             - servers.files.call_timeout: missing unit in \"10\" (did you mean \"10s\"?)\n  \
             - servers.memory.comand: unknown key (did you mean \"command\"?)\n  \
             - servers.memory.command: missing: the program to start (e.g. \"npx\")\n",
            path.display()
        )
    );
}

#[test]
fn environment_overrides_gateway_settings() {
    let dir = TempDir::new("envcfg");
    let path = dir.join("orchestra.yaml");
    std::fs::write(&path, "servers:\n  a: {command: x}\n").unwrap();
    let out = check(
        &path,
        &[
            ("ORCHESTRA_GATEWAY__CALL_TIMEOUT", "7s"),
            ("ORCHESTRA_UNRELATED_PLATFORM_VAR", "ignored"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("call_timeout 7s"));

    let out = check(&path, &[("ORCHESTRA_GATEWAY__CALL_TIMEOUT", "soon")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("gateway.call_timeout: invalid duration \"soon\""));
}

#[test]
fn import_turns_a_claude_config_into_yaml_that_validates() {
    let dir = TempDir::new("import");
    let example = workspace_root().join("config/claude_desktop_config.example.json");
    let out = orchestra(&["import".as_ref(), example.as_os_str()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("  memory:\n    command: \"npx\""), "{yaml}");
    let path = dir.join("imported.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let check = Command::new(gateway_bin())
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn every_command_explains_itself_with_help() {
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["tools", "--help"],
        &["health", "--help"],
        &["import", "--help"],
    ] {
        let args: Vec<&std::ffi::OsStr> = command.iter().map(|a| a.as_ref()).collect();
        let out = orchestra(&args, &[]);
        assert!(out.status.success(), "{command:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: mcp-orchestra"), "{command:?}: {text}");
    }
}

/// `check | head` and `import … | head`: a reader that stops reading early is not an error of
/// ours (no panic, exit 0).
#[test]
fn printing_into_a_closed_pipe_is_not_a_panic() {
    let config = workspace_root().join("config/orchestra.yaml");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(gateway_bin())
        .args(["check".as_ref(), "-c".as_ref(), config.as_os_str()])
        .stdout(writer)
        .output()
        .expect("running mcp-orchestra check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
