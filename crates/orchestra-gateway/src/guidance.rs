//! What the model is told when a tool's server is down and nothing can stand in: since when
//! and why, what each affected domain can still do, and which tools to use instead.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::child::ChildHandle;
use crate::domains::Mode;
use crate::hub::Gateway;
use crate::time::rfc3339;

/// Key under the result's `_meta` carrying the same information for programs.
pub const UNAVAILABLE_META_KEY: &str = "mcp-orchestra/unavailable";
/// At most this many alternative tools are named.
const MAX_ALTERNATIVES: usize = 20;

/// An `isError` tool result explaining why `tool` cannot be served now.
pub fn unavailable_result(gw: &Gateway, child: &ChildHandle, tool: &str) -> Value {
    let catalog = gw.catalog();
    let separator = &gw.config().gateway.separator;
    let (text, meta) = unavailable(
        gw,
        child,
        &format!("Tool \"{tool}\""),
        "tools",
        |stand_ins| of_servers(catalog.keys(), stand_ins, separator),
    );
    json!({
        "content": [{ "type": "text", "text": text }],
        "isError": true,
        "_meta": { UNAVAILABLE_META_KEY: meta }
    })
}

/// The exposed names (`<server><separator><name>`) among `names` that belong to `servers`.
pub fn of_servers<'a>(
    names: impl Iterator<Item = &'a str>,
    servers: &[String],
    separator: &str,
) -> Vec<String> {
    names
        .filter(|n| {
            servers.iter().any(|s| {
                n.strip_prefix(s.as_str())
                    .is_some_and(|rest| rest.starts_with(separator))
            })
        })
        .take(MAX_ALTERNATIVES)
        .map(str::to_owned)
        .collect()
}

/// Why `subject` (`Prompt "x"`, `Resource "uri"`) cannot be served now, as text and as the
/// structured form (`_meta` of a tool result, `data` of an error), with `alternatives`: the
/// `plural` (tools, prompts, …) of the same kind that the servers standing in for `child` offer (at most
/// [`MAX_ALTERNATIVES`] are shown).
pub fn unavailable(
    gw: &Gateway,
    child: &ChildHandle,
    subject: &str,
    plural: &str,
    alternatives: impl FnOnce(&[String]) -> Vec<String>,
) -> (String, Value) {
    let status = child.status();
    let server = child.name();
    let domains: Vec<_> = gw
        .domain_states()
        .into_iter()
        .filter(|d| d.owner == server)
        .collect();
    let fallback = gw.live_fallback(server);
    // What to use instead: what those who now serve the server's domains (or its fallback)
    // offer.
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
    let mut use_instead = alternatives(&stand_ins);
    use_instead.truncate(MAX_ALTERNATIVES);

    let mut text = format!(
        "{subject} is unavailable: server \"{server}\" is {} since {}",
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
        let _ = write!(
            text,
            " No alternative {plural} are available; retry later or tell the user."
        );
    } else {
        let _ = write!(text, " Use instead: {}.", use_instead.join(", "));
    }
    let meta = json!({
        "server": server,
        "state": status.state,
        "since": rfc3339(status.since),
        "reason": status.reason,
        "next_attempt": status.next_attempt.map(rfc3339),
        "fallback": fallback,
        "domains": domains,
        "use_instead": use_instead,
    });
    (text, meta)
}
