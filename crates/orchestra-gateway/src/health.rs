//! `orchestrator_health`: what is up, what is not and why — for the model and for people.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use crate::child::lists::Feature;
use crate::child::{ChildHandle, State};
use crate::hub::local::{LocalTool, ToolFuture};
use crate::hub::Gateway;
use crate::listing::ListKind;
pub use crate::time::rfc3339;

/// Events included in a report.
const RECENT_EVENTS: usize = 20;

/// The health tool's name (the gateway's own tools carry no separator).
pub const TOOL_NAME: &str = "orchestrator_health";

/// The tool as listed to the client, with its output schema.
pub fn tool_definition() -> Value {
    json!({
        "name": TOOL_NAME,
        "title": "Gateway health",
        "description": "Which MCP servers behind this gateway are up, starting or failed (and why), \
                        which domains are served, call statistics, and the names of shortened tools. \
                        Read this before relying on a server that may be down.",
        "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
        "outputSchema": output_schema(),
        "annotations": { "readOnlyHint": true, "idempotentHint": true, "openWorldHint": false },
    })
}

/// The `tools/call` result: a short text summary plus the full report as structuredContent.
pub fn call(gw: &Gateway) -> Value {
    let report = report(gw);
    json!({
        "content": [{ "type": "text", "text": summary(&report) }],
        "structuredContent": report,
    })
}

/// The full report. Every figure is read from the live gateway.
pub fn report(gw: &Gateway) -> Value {
    let catalog = gw.catalog();
    let servers: Vec<Value> = gw.children().iter().map(server_report).collect();
    let domains: Vec<Value> = gw
        .domain_states()
        .into_iter()
        .map(|d| {
            let served = d.serving.is_some();
            let mut v = json!(d);
            v["served"] = json!(served);
            v
        })
        .collect();
    let ready = gw
        .children()
        .iter()
        .filter(|c| c.state() == State::Ready)
        .count();
    json!({
        "gateway": {
            "version": env!("CARGO_PKG_VERSION"),
            "started_at": rfc3339(gw.started_at()),
            "uptime_seconds": secs(gw.uptime()),
            "config": gw.config().source.display().to_string(),
            "separator": gw.config().gateway.separator,
            "servers_total": gw.children().len(),
            "servers_ready": ready,
            "tools_exposed": catalog.len(),
        },
        "servers": servers,
        "sessions": gw.sessions().list().iter().map(|s| {
            let mut report = s.report();
            // Children's requests (sampling, elicitation, roots) waiting for its answer.
            report["server_requests"] = json!(gw.upstream().outstanding(s.id));
            report
        }).collect::<Vec<_>>(),
        "domains": domains,
        "renamed_tools": catalog.renamed(),
        "events": gw.events().recent(RECENT_EVENTS),
    })
}

fn server_report(child: &ChildHandle) -> Value {
    let status = child.status();
    let stats = child.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0);
    let up = status.state == State::Ready;
    json!({
        "name": child.name(),
        "state": status.state,
        "since": rfc3339(status.since),
        "reason": status.reason,
        "pid": child.connection().and(status.pid),
        "uptime_seconds": status.started.filter(|_| up).map(|s| secs(s.elapsed())),
        "command": child.spec().target(),
        "transport": status.transport,
        // Exposed tools: a down server's last known tools are kept for routing, not listed.
        "tools": if up { child.tools().len() } else { 0 },
        "tools_hidden_by_filter": child.hidden_tools(),
        "tools_repaired": child.tool_report().repaired,
        "tools_dropped": child.tool_report().dropped,
        // Prompts: listed like tools; a failed prompts listing leaves the tools served.
        "prompts": if up { child.prompts().len() } else { 0 },
        "prompts_error": child.prompts_error(),
        "prompts_dropped": child.list_dropped(Feature::Prompts),
        // Resources and templates: the same; a failed listing leaves the rest served.
        "resources": if up { child.list(ListKind::Resources).len() } else { 0 },
        "resource_templates": if up { child.list(ListKind::ResourceTemplates).len() } else { 0 },
        "resources_error": child.list_error(Feature::Resources),
        "resources_dropped": child.list_dropped(Feature::Resources),
        "calls": load(&stats.calls),
        "errors": load(&stats.errors),
        "timeouts": load(&stats.timeouts),
        "in_flight": child.connection().map_or(0, |c| c.in_flight()),
        "latency_p50_ms": ms(stats.latency_quantile(0.5)),
        "latency_p99_ms": ms(stats.latency_quantile(0.99)),
        "stdout_noise_lines": load(&stats.stdout_noise),
        "unmatched_responses": load(&stats.unmatched_responses),
        "oversized_messages": load(&stats.oversized_messages),
        "invalid_responses": load(&stats.invalid_responses),
        "progress_dropped": load(&stats.progress_dropped),
        "protocol_version": status.protocol_version,
        "server_info": status.server_info,
        "last_exit": status.last_exit,
        "restarts": status.restarts,
        "next_attempt": status.next_attempt.map(rfc3339),
        "probe_failures": status.probe_failures,
        "last_error": stats.last_error().or_else(|| status.reason.clone().filter(|_| status.state == State::Failed)),
        "stderr_tail": child.stderr_tail(),
    })
}

/// A few lines a person (or model) can read at a glance.
pub fn summary(report: &Value) -> String {
    let g = &report["gateway"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mcp-orchestra {}: {}/{} servers ready, {} tools, up {}s",
        g["version"].as_str().unwrap_or("?"),
        g["servers_ready"],
        g["servers_total"],
        g["tools_exposed"],
        g["uptime_seconds"]
    );
    for s in report["servers"].as_array().into_iter().flatten() {
        let state = s["state"].as_str().unwrap_or("?");
        let _ = write!(out, "- {}: {state}", s["name"].as_str().unwrap_or("?"));
        if state == "ready" {
            let _ = write!(
                out,
                ", {} tools, {} calls, {} errors",
                s["tools"], s["calls"], s["errors"]
            );
        }
        if let Some(reason) = s["reason"].as_str() {
            let _ = write!(out, " — {reason}");
        }
        if let Some(restarts) = s["restarts"].as_u64().filter(|r| *r > 0) {
            let _ = write!(out, " [{restarts} restarts]");
        }
        out.push('\n');
    }
    for d in report["domains"].as_array().into_iter().flatten() {
        let name = d["name"].as_str().unwrap_or("?");
        let list = |key: &str| {
            d[key].as_array().map_or(String::new(), |a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        match (d["mode"].as_str(), d["serving"].as_str()) {
            (Some("normal"), Some(by)) => {
                let _ = writeln!(out, "- domain {name}: normal, served by {by}");
            }
            (Some("degraded"), Some(by)) => {
                let _ = writeln!(
                    out,
                    "- domain {name}: DEGRADED, served by {by} instead of {} (still: [{}]; lost: [{}])",
                    d["owner"].as_str().unwrap_or("?"),
                    list("degraded_capabilities"),
                    list("lost_capabilities")
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "- domain {name}: LOST, {} is down and nothing stands in (lost: [{}])",
                    d["owner"].as_str().unwrap_or("?"),
                    list("lost_capabilities")
                );
            }
        }
    }
    let events = report["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !events.is_empty() {
        out.push_str("recent events:\n");
        for e in &events[events.len().saturating_sub(5)..] {
            let _ = writeln!(
                out,
                "  {} {} {}: {}",
                e["at"].as_str().unwrap_or("?"),
                e["server"].as_str().unwrap_or("?"),
                e["kind"].as_str().unwrap_or("?"),
                e["detail"].as_str().unwrap_or("")
            );
        }
    }
    for r in report["renamed_tools"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- tool {} is {}'s \"{}\"",
            r["exposed"].as_str().unwrap_or("?"),
            r["server"].as_str().unwrap_or("?"),
            r["tool"].as_str().unwrap_or("?")
        );
    }
    out
}

fn output_schema() -> Value {
    let nullable = |t: &str| json!({ "type": [t, "null"] });
    let mut schema = json!({
        "type": "object",
        "required": ["gateway", "servers", "domains", "renamed_tools", "events"],
        "properties": {
            "gateway": {
                "type": "object",
                "required": ["version", "uptime_seconds", "servers_total", "servers_ready", "tools_exposed"],
                "properties": {
                    "version": { "type": "string" },
                    "started_at": { "type": "string" },
                    "uptime_seconds": { "type": "number" },
                    "config": { "type": "string" },
                    "separator": { "type": "string" },
                    "servers_total": { "type": "integer" },
                    "servers_ready": { "type": "integer" },
                    "tools_exposed": { "type": "integer" },
                },
            },
            "servers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "state", "tools", "calls", "errors", "timeouts"],
                    "properties": {
                        "name": { "type": "string" },
                        "state": { "type": "string", "enum": ["starting", "ready", "unhealthy", "restarting", "failed", "misconfigured", "stopped"] },
                        "since": { "type": "string" },
                        "reason": nullable("string"),
                        "pid": nullable("integer"),
                        "uptime_seconds": nullable("number"),
                        "command": { "type": "string" },
                        "transport": nullable("string"),
                        "tools": { "type": "integer" },
                        "tools_hidden_by_filter": { "type": "integer" },
                        "calls": { "type": "integer" },
                        "errors": { "type": "integer" },
                        "timeouts": { "type": "integer" },
                        "in_flight": { "type": "integer" },
                        "latency_p50_ms": nullable("number"),
                        "latency_p99_ms": nullable("number"),
                        "stdout_noise_lines": { "type": "integer" },
                        "unmatched_responses": { "type": "integer" },
                        "protocol_version": nullable("string"),
                        "server_info": {},
                        "last_exit": nullable("string"),
                        "restarts": { "type": "integer" },
                        "next_attempt": nullable("string"),
                        "probe_failures": { "type": "integer" },
                        "last_error": nullable("string"),
                        "stderr_tail": { "type": "array", "items": { "type": "string" } },
                    },
                },
            },
            "domains": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "owner", "mode", "served"],
                    "properties": {
                        "name": { "type": "string" },
                        "owner": { "type": "string" },
                        "secondary": { "type": "array", "items": { "type": "string" } },
                        "mode": { "type": "string", "enum": ["normal", "degraded", "lost"] },
                        "served": { "type": "boolean" },
                        "serving": nullable("string"),
                        "degraded_capabilities": { "type": "array", "items": { "type": "string" } },
                        "lost_capabilities": { "type": "array", "items": { "type": "string" } },
                    },
                },
            },
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": { "type": "string" },
                        "server": { "type": "string" },
                        "kind": { "type": "string" },
                        "detail": { "type": "string" },
                    },
                },
            },
            "renamed_tools": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "exposed": { "type": "string" },
                        "server": { "type": "string" },
                        "tool": { "type": "string" },
                    },
                },
            },
        },
    });
    // What the child itself got wrong (kept apart: json! nests only so deep).
    let tool_issues = json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["index", "reason"],
            "properties": {
                "tool": { "type": "string" },
                "index": { "type": "integer" },
                "reason": { "type": "string" },
            },
        },
    });
    let server = &mut schema["properties"]["servers"]["items"]["properties"];
    server["tools_repaired"] = tool_issues.clone();
    server["tools_dropped"] = tool_issues;
    server["prompts"] = json!({ "type": "integer" });
    server["prompts_error"] = nullable("string");
    server["resources"] = json!({ "type": "integer" });
    server["resource_templates"] = json!({ "type": "integer" });
    server["resources_error"] = nullable("string");
    let notes = json!({ "type": "array", "items": { "type": "string" } });
    server["prompts_dropped"] = notes.clone();
    server["resources_dropped"] = notes;
    for counter in [
        "oversized_messages",
        "invalid_responses",
        "progress_dropped",
    ] {
        server[counter] = json!({ "type": "integer" });
    }
    schema["properties"]["sessions"] = json!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["id", "transport", "opened_at"],
            "properties": {
                "id": { "type": "string" },
                "transport": { "type": "string" },
                "opened_at": { "type": "string" },
                "protocol_version": nullable("string"),
                "client": {},
                "capabilities": {},
                "log_level": nullable("string"),
                "subscriptions": { "type": "integer" },
                "server_requests": { "type": "integer" },
            },
        },
    });
    schema
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// `orchestrator_health` as one of the gateway's own tools.
pub fn tool() -> std::sync::Arc<dyn LocalTool> {
    std::sync::Arc::new(HealthTool)
}

struct HealthTool;

impl LocalTool for HealthTool {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn definition(&self) -> Value {
        tool_definition()
    }

    fn call<'a>(
        &'a self,
        gw: &'a Gateway,
        _caller: &'a crate::reply::Caller,
        _arguments: Option<&'a str>,
    ) -> ToolFuture<'a> {
        Box::pin(async move { call(gw) })
    }
}
