//! What the model is told when a tool's server is down and nothing can stand in: since when
//! and why, what each affected domain can still do, and which tools to use instead.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::app::Gateway;
use crate::child::ChildHandle;
use crate::domains::Mode;
use crate::health::rfc3339;

/// Key under the result's `_meta` carrying the same information for programs.
pub const UNAVAILABLE_META_KEY: &str = "mcp-orchestra/unavailable";
/// At most this many alternative tools are named.
const MAX_ALTERNATIVES: usize = 20;

/// An `isError` tool result explaining why `tool` cannot be served now.
pub fn unavailable_result(gw: &Gateway, child: &ChildHandle, tool: &str) -> Value {
    let status = child.status();
    let server = child.name();
    let domains: Vec<_> = gw
        .domain_states()
        .into_iter()
        .filter(|d| d.owner == server)
        .collect();
    let fallback = gw.live_fallback(server);
    // Tools to use instead: those of whoever now serves the server's domains (or its fallback).
    let stand_ins: Vec<String> = domains
        .iter()
        .filter_map(|d| d.serving.clone())
        .chain(fallback.clone())
        .fold(Vec::new(), |mut acc, s| {
            if !acc.contains(&s) {
                acc.push(s);
            }
            acc
        });
    let catalog = gw.catalog();
    let separator = &gw.config().gateway.separator;
    let use_instead: Vec<String> = catalog
        .names()
        .filter(|n| {
            stand_ins
                .iter()
                .any(|s| n.starts_with(&format!("{s}{separator}")))
        })
        .take(MAX_ALTERNATIVES)
        .map(str::to_owned)
        .collect();

    let mut text = format!(
        "Tool \"{tool}\" is unavailable: server \"{server}\" is {} since {}",
        status.state.as_str(),
        rfc3339(status.since)
    );
    if let Some(reason) = &status.reason {
        let _ = write!(text, " ({reason})");
    }
    text.push('.');
    if let Some(next) = status.next_attempt {
        let _ = write!(text, " Next restart attempt at {}.", rfc3339(next));
    }
    for d in &domains {
        match d.mode {
            Mode::Degraded => {
                let _ = write!(
                    text,
                    " Domain {} is degraded: served by \"{}\"",
                    d.name,
                    d.serving.as_deref().unwrap_or("?")
                );
                if !d.degraded_capabilities.is_empty() {
                    let _ = write!(
                        text,
                        "; still possible: {}",
                        d.degraded_capabilities.join(", ")
                    );
                }
                if !d.lost_capabilities.is_empty() {
                    let _ = write!(text, "; lost: {}", d.lost_capabilities.join(", "));
                }
                text.push('.');
            }
            Mode::Lost => {
                let _ = write!(
                    text,
                    " Domain {} is lost: no server that can serve it is up",
                    d.name
                );
                if !d.lost_capabilities.is_empty() {
                    let _ = write!(text, " (lost: {})", d.lost_capabilities.join(", "));
                }
                text.push('.');
            }
            Mode::Normal => {}
        }
    }
    if use_instead.is_empty() {
        text.push_str(" No alternative tools are available; retry later or tell the user.");
    } else {
        let _ = write!(text, " Use instead: {}.", use_instead.join(", "));
    }
    json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": {
            UNAVAILABLE_META_KEY: {
                "server": server,
                "state": status.state,
                "since": rfc3339(status.since),
                "reason": status.reason,
                "next_attempt": status.next_attempt.map(rfc3339),
                "fallback": fallback,
                "domains": domains,
                "use_instead": use_instead,
            }
        }
    })
}
