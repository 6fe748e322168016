//! `mcp-orchestra import`: a Claude `mcpServers` JSON file rendered as our YAML.
//!
//! Every scalar is written as a JSON string, which is also valid YAML, so no value can be
//! misread (`on`, `yes`, `1.0`, `:` …).

use std::fmt::Write as _;

use crate::model::Config;

/// Renders the servers of a loaded configuration as an `orchestra.yaml` document.
pub fn to_yaml(config: &Config) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Imported from {} by mcp-orchestra import.",
        config.source.display()
    );
    out.push_str(
        "# Add domain_boundaries and server_alternatives to route by domain and fail over.\n",
    );
    out.push_str("servers:\n");
    for s in &config.servers {
        let _ = writeln!(out, "  {}:", s.name);
        if let Some(remote) = &s.remote {
            let _ = writeln!(out, "    url: {}", q(&remote.url));
            if remote.transport == crate::model::RemoteTransport::Sse {
                out.push_str("    transport: \"sse\"\n");
            }
            if !remote.headers.is_empty() {
                out.push_str("    headers:\n");
                for (k, v) in &remote.headers {
                    let _ = writeln!(out, "      {}: {}", q(k), q(v.expose()));
                }
            }
            continue;
        }
        let _ = writeln!(out, "    command: {}", q(&s.command));
        if !s.args.is_empty() {
            let args: Vec<String> = s.args.iter().map(|a| q(a)).collect();
            let _ = writeln!(out, "    args: [{}]", args.join(", "));
        }
        if !s.env.is_empty() {
            out.push_str("    env:\n");
            for (k, v) in &s.env {
                let _ = writeln!(out, "      {}: {}", q(k), q(v));
            }
        }
        if let Some(cwd) = &s.cwd {
            let _ = writeln!(out, "    cwd: {}", q(&cwd.display().to_string()));
        }
    }
    out
}
