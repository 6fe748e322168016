//! What a subtask can use right now, from the gateway's live view: its domain (primary,
//! fallback with degraded and lost capabilities, or lost) and its named servers (up or not,
//! with their exact tool names), plus what puts a subtask at risk. Pure functions of a
//! [`Snapshot`]; nothing is cached, so guidance is never staler than the call.

use std::collections::HashSet;

use serde::Serialize;

use crate::env::{ServerView, Snapshot};
use crate::model::{DomainAt, Subtask};

/// The servers and tools a subtask can use now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usable {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainGuide>,
    pub servers: Vec<ServerGuide>,
    /// Every exact tool name it can call now (deduplicated, in the order above).
    pub tools: Vec<String>,
    /// When the subtask names no server and no domain: the servers that are up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_servers_up: Vec<String>,
    /// The design document's adaptive guidance, when something it needs is lost or down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive_guidance: Option<String>,
}

/// The subtask's domain, live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainGuide {
    pub name: String,
    /// "normal" | "degraded" | "lost" | "unknown" (not configured)
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The server to use for it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
    pub tools: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub degraded_capabilities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost_capabilities: Vec<String>,
    pub guidance: String,
}

/// One server the subtask names (or its domain's owner), live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerGuide {
    pub name: String,
    /// false: no such server is configured.
    pub configured: bool,
    pub up: bool,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tools: Vec<String>,
    /// Where its calls go while it is down, when that server is up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackGuide>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FallbackGuide {
    pub name: String,
    pub up: bool,
    pub tools: Vec<String>,
}

/// Why a subtask may not get what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Risk(pub String);

/// The subtask's domain now (for the execution record).
pub fn domain_at(snapshot: &Snapshot, domain: &str) -> DomainAt {
    match snapshot.domain(domain) {
        Some(d) => DomainAt {
            domain: domain.to_string(),
            mode: d.mode.clone(),
            serving: d.serving.clone(),
        },
        None => DomainAt {
            domain: domain.to_string(),
            mode: "unknown".to_string(),
            serving: None,
        },
    }
}

/// What `s` can use now.
pub fn usable(snapshot: &Snapshot, s: &Subtask) -> Usable {
    let mut tools: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut lost: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    let domain = s.domain.as_deref().map(|name| {
        let g = domain_guide(snapshot, name);
        add_all(&mut tools, &mut seen, &g.tools);
        match g.mode.as_str() {
            "normal" => {}
            "degraded" => lost.extend(g.lost_capabilities.iter().cloned()),
            _ => {
                lost.extend(g.lost_capabilities.iter().cloned());
                down.push(format!("domain \"{name}\""));
            }
        }
        g
    });
    let mut names: Vec<&str> = Vec::new();
    if let Some(owner) = domain.as_ref().and_then(|d| d.owner.as_deref()) {
        names.push(owner);
    }
    for n in &s.servers {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let servers: Vec<ServerGuide> = names.iter().map(|&n| server_guide(snapshot, n)).collect();
    for g in &servers {
        if g.up {
            add_all(&mut tools, &mut seen, &g.tools);
        } else {
            if let Some(f) = g.fallback.as_ref().filter(|f| f.up) {
                add_all(&mut tools, &mut seen, &f.tools);
            }
            // The domain's owner being down is already told by the domain's mode.
            let is_owner =
                domain.as_ref().and_then(|d| d.owner.as_deref()) == Some(g.name.as_str());
            if !is_owner && g.fallback.as_ref().is_none_or(|f| !f.up) {
                down.push(format!("server \"{}\"", g.name));
            }
        }
    }
    let other_servers_up = if s.domain.is_none() && s.servers.is_empty() {
        snapshot
            .servers
            .iter()
            .filter(|v| v.up)
            .map(|v| v.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let adaptive_guidance =
        (!down.is_empty() || !lost.is_empty()).then(|| adaptive(&down, &lost, &tools));
    Usable {
        domain,
        servers,
        tools,
        other_servers_up,
        adaptive_guidance,
    }
}

/// What puts `s` at risk now (empty when nothing does).
pub fn risks(snapshot: &Snapshot, s: &Subtask) -> Vec<Risk> {
    let mut out = Vec::new();
    let mut owner = None;
    if let Some(name) = &s.domain {
        match snapshot.domain(name) {
            None => out.push(Risk(format!(
                "domain \"{name}\" is not configured{}",
                known(snapshot.domains.iter().map(|d| d.name.as_str()))
            ))),
            Some(d) => {
                owner = Some(d.owner.as_str());
                match d.mode.as_str() {
                    "normal" => {}
                    "degraded" => out.push(Risk(format!(
                        "domain \"{name}\" is degraded: \"{}\" is down, \"{}\" serves it{}",
                        d.owner,
                        d.serving.as_deref().unwrap_or("?"),
                        list_suffix("; lost", &d.lost_capabilities),
                    ))),
                    mode => out.push(Risk(format!(
                        "domain \"{name}\" is {mode}: \"{}\" is down and nothing serves it{}",
                        d.owner,
                        list_suffix("; lost", &d.lost_capabilities),
                    ))),
                }
            }
        }
    }
    for n in &s.servers {
        if Some(n.as_str()) == owner {
            continue;
        }
        match snapshot.server(n) {
            None => out.push(Risk(format!(
                "server \"{n}\" is not configured{}",
                known(snapshot.servers.iter().map(|v| v.name.as_str()))
            ))),
            Some(v) if !v.up => {
                let fallback = v
                    .fallback
                    .as_deref()
                    .and_then(|f| snapshot.server(f))
                    .filter(|f| f.up)
                    .map(|f| format!("; its fallback \"{}\" is up", f.name))
                    .unwrap_or_default();
                out.push(Risk(format!(
                    "server \"{n}\" is down ({}){fallback}",
                    why(v)
                )));
            }
            Some(_) => {}
        }
    }
    out
}

fn domain_guide(snapshot: &Snapshot, name: &str) -> DomainGuide {
    let Some(d) = snapshot.domain(name) else {
        return DomainGuide {
            name: name.to_string(),
            mode: "unknown".to_string(),
            owner: None,
            serving: None,
            tools: Vec::new(),
            degraded_capabilities: Vec::new(),
            lost_capabilities: Vec::new(),
            guidance: format!(
                "Domain \"{name}\" is not configured in domain_boundaries{}; use the servers listed below.",
                known(snapshot.domains.iter().map(|d| d.name.as_str()))
            ),
        };
    };
    let serving = d
        .serving
        .as_deref()
        .and_then(|s| snapshot.server(s))
        .filter(|v| v.up);
    let tools = serving.map(|v| v.tools.clone()).unwrap_or_default();
    let owner_view = snapshot.server(&d.owner);
    let owner_why = owner_view
        .map(why)
        .unwrap_or_else(|| "not running".to_string());
    let guidance = match (d.mode.as_str(), serving) {
        ("normal", Some(v)) => format!(
            "Domain \"{name}\" is normal: use \"{}\" ({}).",
            v.name,
            crate::text::count(v.tools.len(), "tool")
        ),
        ("degraded", Some(v)) => format!(
            "Domain \"{name}\" is degraded: its server \"{}\" is down ({owner_why}), so \"{}\" serves it with reduced capabilities{}{}. Use \"{}\"'s tools for what they cover; defer what needs the lost capabilities and say so in your results.",
            d.owner,
            v.name,
            list_suffix("; still available", &d.degraded_capabilities),
            list_suffix("; lost", &d.lost_capabilities),
            v.name,
        ),
        _ => format!(
            "Domain \"{name}\" is lost: its server \"{}\" is down ({owner_why}) and no fallback can serve it{}. Work with what is available now; prioritize core functionality and defer what needs the lost capabilities, recording what you deferred.",
            d.owner,
            list_suffix("; lost", &d.lost_capabilities),
        ),
    };
    DomainGuide {
        name: name.to_string(),
        mode: d.mode.clone(),
        owner: Some(d.owner.clone()),
        serving: serving.map(|v| v.name.clone()),
        tools,
        degraded_capabilities: d.degraded_capabilities.clone(),
        lost_capabilities: d.lost_capabilities.clone(),
        guidance,
    }
}

fn server_guide(snapshot: &Snapshot, name: &str) -> ServerGuide {
    let Some(v) = snapshot.server(name) else {
        return ServerGuide {
            name: name.to_string(),
            configured: false,
            up: false,
            state: "not configured".to_string(),
            reason: Some(format!(
                "no server \"{name}\" is configured{}",
                known(snapshot.servers.iter().map(|v| v.name.as_str()))
            )),
            tools: Vec::new(),
            fallback: None,
        };
    };
    let fallback = if v.up {
        None
    } else {
        v.fallback.as_deref().map(|f| match snapshot.server(f) {
            Some(fv) => FallbackGuide {
                name: fv.name.clone(),
                up: fv.up,
                tools: if fv.up { fv.tools.clone() } else { Vec::new() },
            },
            None => FallbackGuide {
                name: f.to_string(),
                up: false,
                tools: Vec::new(),
            },
        })
    };
    ServerGuide {
        name: v.name.clone(),
        configured: true,
        up: v.up,
        state: v.state.clone(),
        reason: v.reason.clone(),
        tools: if v.up { v.tools.clone() } else { Vec::new() },
        fallback,
    }
}

/// The design document's adaptive guidance, for what is down or lost.
fn adaptive(down: &[String], lost: &[String], tools: &[String]) -> String {
    let mut out = String::from("Redesign this subtask for the servers available now: ");
    if !down.is_empty() {
        out.push_str(&format!("{} cannot be used; ", down.join(", ")));
    }
    if tools.is_empty() {
        out.push_str("no tool of its servers can be called now; ");
    } else {
        out.push_str(&format!("work with the {} tools listed; ", tools.len()));
    }
    out.push_str("prioritize core functionality and defer advanced features");
    if !lost.is_empty() {
        out.push_str(&format!(" that need: {}", lost.join(", ")));
    }
    out.push_str(". Record what you deferred in your results; if nothing useful can be done without it, complete with next_action \"blocked\" and say what is missing.");
    out
}

fn why(v: &ServerView) -> String {
    match &v.reason {
        Some(r) => format!("{}: {r}", v.state),
        None => v.state.clone(),
    }
}

/// Appends the tools not listed yet (servers have hundreds: no quadratic scan).
fn add_all(into: &mut Vec<String>, seen: &mut HashSet<String>, more: &[String]) {
    for t in more {
        if seen.insert(t.clone()) {
            into.push(t.clone());
        }
    }
}

fn list_suffix(label: &str, items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!("{label}: {}", items.join(", "))
    }
}

fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (configured: {})", names.join(", "))
    }
}
