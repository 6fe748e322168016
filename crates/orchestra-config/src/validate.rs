//! Raw document → [`Config`]: every problem collected, each at its key path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::value::{Dict, Value};
use serde::de::DeserializeOwned;

use crate::duration;
use crate::error::{join, ConfigErrors, Errors};
use crate::expand::{expand, Sources};
use crate::glob::Glob;
use crate::model::{
    Alternative, Config, Domain, Gateway, Http, InheritEnv, Orchestrator, ProbePolicy,
    RestartPolicy, Server, ServerName, Specialist, ToolFilter,
};
use crate::raw::{
    RawAlternative, RawDomainDetail, RawGateway, RawOrchestrator, RawServer, RawSpecialist,
    RawToolFilter, TOP_LEVEL,
};
use crate::raw::{RawDuration, RawInheritEnv, RawOneOrMany, RawProbe, RawRestart, RawSize};
use crate::size;
use crate::suggest::did_you_mean;

/// Everything validation needs besides the document itself.
pub(crate) struct Context<'a> {
    /// The config file (relative `cwd`s are resolved against its folder).
    pub source: &'a Path,
    /// Environment lookup for `${VAR}` expansion (injected so tests need not touch the process env).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

pub(crate) fn validate(doc: &Value, cx: &Context<'_>) -> Result<Config, ConfigErrors> {
    let mut errors = Errors::default();
    let Some(top) = as_dict(doc, "", &mut errors) else {
        return errors.into_result(unreachable_config(cx));
    };
    check_keys(top, TOP_LEVEL, "", &mut errors);

    let gateway = validate_gateway(top.get("gateway"), &mut errors);
    let servers = validate_servers(top.get("servers"), &gateway, cx, &mut errors);
    // References are checked against every *declared* server, valid or not, so one mistake in
    // a server entry does not cascade into "unknown server" errors everywhere it is named.
    let names: BTreeSet<&str> = match top.get("servers") {
        Some(Value::Dict(_, d)) => d.keys().map(String::as_str).collect(),
        _ => BTreeSet::new(),
    };
    let domains = validate_domains(top.get("domain_boundaries"), &names, &gateway, &mut errors);
    let alternatives = validate_alternatives(
        top.get("server_alternatives"),
        &names,
        &gateway,
        &mut errors,
    );

    let orchestrator = validate_orchestrator(top.get("orchestrator"), cx, &mut errors);
    let http = crate::http::validate_http(top.get("http"), &gateway, cx, &mut errors);

    let config = Config {
        source: cx.source.to_path_buf(),
        gateway,
        servers: servers.into_values().collect(),
        domains,
        alternatives,
        orchestrator,
        http,
    };
    errors.into_result(config)
}

fn unreachable_config(cx: &Context<'_>) -> Config {
    Config {
        source: cx.source.to_path_buf(),
        gateway: Gateway::default(),
        servers: Vec::new(),
        domains: Vec::new(),
        alternatives: Vec::new(),
        orchestrator: Orchestrator::default(),
        http: Http::default(),
    }
}

/// `orchestrator:` — whether it is on, where its database is, and specialists of the user's own.
fn validate_orchestrator(
    value: Option<&Value>,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Orchestrator {
    let mut orchestrator = Orchestrator::default();
    let Some(raw) = value
        .and_then(|v| entry::<RawOrchestrator>(v, "orchestrator", RawOrchestrator::FIELDS, errors))
    else {
        return orchestrator;
    };
    if let Some(enabled) = raw.enabled {
        orchestrator.enabled = enabled;
    }
    if let Some(store) = raw.store {
        let path = match store.strip_prefix("~/") {
            Some(rest) => match (cx.env)("HOME") {
                Some(home) => Some(Path::new(&home).join(rest)),
                None => {
                    errors.push(
                        "orchestrator.store",
                        format!("HOME is not set, so \"{store}\" cannot be resolved"),
                    );
                    None
                }
            },
            None if store.trim().is_empty() => {
                errors.push("orchestrator.store", "is empty; give a file path (or leave it out for the default in your data directory)".to_owned());
                None
            }
            // Relative to the config file, never to whatever folder the client started us in.
            None => Some(match cx.source.parent() {
                Some(dir) => dir.join(&store),
                None => PathBuf::from(&store),
            }),
        };
        orchestrator.store = path;
    }
    if let Some(specialists) = raw.specialists {
        if let Some(dict) = as_dict(&specialists, "orchestrator.specialists", errors) {
            for (name, entry_value) in dict {
                let path = join("orchestrator.specialists", name);
                if name.trim().is_empty() {
                    errors.push(&path, "a specialist needs a name".to_owned());
                    continue;
                }
                let Some(raw) =
                    entry::<RawSpecialist>(entry_value, &path, RawSpecialist::FIELDS, errors)
                else {
                    continue;
                };
                if raw.role.is_none()
                    && raw.expertise.is_none()
                    && raw.approach.is_none()
                    && raw.guidance.is_none()
                {
                    errors.push(
                        &path,
                        "says nothing; give at least one of role, expertise, approach, guidance"
                            .to_owned(),
                    );
                    continue;
                }
                orchestrator.specialists.push(Specialist {
                    name: name.clone(),
                    role: raw.role,
                    expertise: raw.expertise.map(RawOneOrMany::into_vec),
                    approach: raw.approach.map(RawOneOrMany::into_vec),
                    guidance: raw.guidance,
                });
            }
        }
    }
    orchestrator
}

fn validate_gateway(value: Option<&Value>, errors: &mut Errors) -> Gateway {
    let mut gateway = Gateway::default();
    let Some(raw) =
        value.and_then(|v| entry::<RawGateway>(v, "gateway", RawGateway::FIELDS, errors))
    else {
        return gateway;
    };
    if let Some(sep) = raw.separator {
        if sep.is_empty() || sep.len() > 3 || !sep.chars().all(|c| c == '_' || c == '-') {
            errors.push(
                "gateway.separator",
                format!("\"{sep}\" is not allowed; use 1 to 3 of '_' and '-' (default \"__\")"),
            );
        } else {
            gateway.separator = sep;
        }
    }
    let mut set = |key: &str, raw: Option<RawDuration>, slot: &mut Duration| {
        if let Some(d) = raw.and_then(|r| positive_duration(&r, &join("gateway", key), errors)) {
            *slot = d;
        }
    };
    set("call_timeout", raw.call_timeout, &mut gateway.call_timeout);
    set(
        "startup_timeout",
        raw.startup_timeout,
        &mut gateway.startup_timeout,
    );
    set(
        "shutdown_grace",
        raw.shutdown_grace,
        &mut gateway.shutdown_grace,
    );
    if let Some(n) = raw
        .max_message_size
        .and_then(|r| message_size(&r, "gateway.max_message_size", errors))
    {
        gateway.max_message_size = n;
    }
    if let Some(inherit) = raw
        .inherit_env
        .and_then(|r| inherit_env(r, "gateway.inherit_env", errors))
    {
        gateway.inherit_env = inherit;
    }
    gateway.restart = restart_policy(raw.restart, &gateway.restart, "gateway.restart", errors);
    gateway.probe = probe_policy(raw.probe, &gateway.probe, "gateway.probe", errors);
    gateway
}

fn validate_servers(
    value: Option<&Value>,
    gateway: &Gateway,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> BTreeMap<String, Server> {
    let mut servers = BTreeMap::new();
    let Some(value) = value else {
        errors.push(
            "servers",
            "no servers configured; add at least one child MCP server",
        );
        return servers;
    };
    let Some(dict) = as_dict(value, "servers", errors) else {
        return servers;
    };
    if dict.is_empty() {
        errors.push(
            "servers",
            "no servers configured; add at least one child MCP server",
        );
    }
    for (name, value) in dict {
        let path = join("servers", name);
        let server_name = match ServerName::parse(name, &gateway.separator) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(&path, e);
                None
            }
        };
        let Some(raw) = entry::<RawServer>(value, &path, RawServer::FIELDS, errors) else {
            continue;
        };
        if let Some(server) =
            server_name.and_then(|n| validate_server(n, raw, &path, gateway, cx, errors))
        {
            servers.insert(name.clone(), server);
        }
    }
    refuse_two_unprefixed(&servers, errors);
    servers
}

/// Two servers without a namespace could list the same name, and which one a client reached
/// would then depend on the order they were merged in: refused at load instead.
fn refuse_two_unprefixed(servers: &BTreeMap<String, Server>, errors: &mut Errors) {
    let unprefixed: Vec<&str> = servers
        .iter()
        .filter(|(_, s)| !s.namespace)
        .map(|(n, _)| n.as_str())
        .collect();
    if unprefixed.len() < 2 {
        return;
    }
    for name in &unprefixed {
        let others: Vec<&str> = unprefixed.iter().copied().filter(|o| o != name).collect();
        errors.push(
            format!("servers.{name}.namespace"),
            format!(
                "only one server may set `namespace: false` (also set on: {}): two servers \
                 exposed under their own names could offer the same name",
                others.join(", ")
            ),
        );
    }
}

fn validate_server(
    name: ServerName,
    raw: RawServer,
    path: &str,
    gateway: &Gateway,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Option<Server> {
    let before = errors.len();
    // A url server is not started: what describes a process has no meaning for it.
    let remote = match raw.url.as_deref() {
        Some(url) => {
            crate::remote::refuse_process_keys(&raw, path, errors);
            crate::remote::validate_remote(url, &raw, path, cx, errors)
        }
        None => {
            crate::remote::refuse_remote_keys(&raw, path, errors);
            None
        }
    };
    let command = match raw.command.as_deref() {
        Some(_) if raw.url.is_some() => {
            errors.push(
                path,
                "has both `command` and `url`; give `command` for a server the gateway starts, \
                 or `url` for a remote one",
            );
            None
        }
        None if raw.url.is_none() => {
            errors.push(
                join(path, "command"),
                "missing: the program to start (e.g. \"npx\")",
            );
            None
        }
        None => None,
        Some(c) if c.trim().is_empty() => {
            errors.push(
                join(path, "command"),
                "is empty: give the program to start (e.g. \"npx\")",
            );
            None
        }
        // A relative path with a slash (`./bin/server`, `../scripts/pyx`) means "next to this
        // config file", not "wherever the gateway happens to be started from".
        Some(c) => expanded(c, &join(path, "command"), cx, errors).map(|c| {
            if c.contains('/') && !Path::new(&c).is_absolute() {
                resolve(cx.source, &c).display().to_string()
            } else {
                c
            }
        }),
    };
    let args: Vec<String> = raw
        .args
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, a)| expanded(a, &format!("{path}.args[{i}]"), cx, errors))
        .collect();
    let mut env = Vec::new();
    for (key, value) in raw.env.iter().flatten() {
        let key_path = format!("{path}.env.{key}");
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            errors.push(&key_path, "not a valid environment variable name");
            continue;
        }
        if let Some(v) = expanded(value, &key_path, cx, errors) {
            env.push((key.clone(), v));
        }
    }
    let cwd = raw.cwd.as_deref().and_then(|c| {
        let c = expanded(c, &join(path, "cwd"), cx, errors)?;
        let dir = resolve(cx.source, &c);
        if dir.is_dir() {
            Some(dir)
        } else {
            errors.push(
                join(path, "cwd"),
                format!("directory {} does not exist", dir.display()),
            );
            None
        }
    });
    let call_timeout = raw
        .call_timeout
        .and_then(|d| positive_duration(&d, &join(path, "call_timeout"), errors))
        .unwrap_or(gateway.call_timeout);
    let startup_timeout = raw
        .startup_timeout
        .and_then(|d| positive_duration(&d, &join(path, "startup_timeout"), errors))
        .unwrap_or(gateway.startup_timeout);
    let restart = restart_policy(
        raw.restart,
        &gateway.restart,
        &join(path, "restart"),
        errors,
    );
    let probe = probe_policy(raw.probe, &gateway.probe, &join(path, "probe"), errors);
    let tools = validate_tool_filter(raw.tools.unwrap_or_default(), &join(path, "tools"), errors);
    let max_message_size = raw
        .max_message_size
        .and_then(|r| message_size(&r, &join(path, "max_message_size"), errors))
        .unwrap_or(gateway.max_message_size);
    // A server's own list replaces the gateway's (it is the more specific statement).
    let inherit_env = raw
        .inherit_env
        .and_then(|r| inherit_env(r, &join(path, "inherit_env"), errors))
        .unwrap_or_else(|| gateway.inherit_env.clone());
    if errors.len() > before {
        return None;
    }
    let command = match remote {
        Some(_) => String::new(),
        None => command?,
    };
    Some(Server {
        name,
        command,
        args,
        env,
        inherit_env,
        cwd,
        call_timeout,
        startup_timeout,
        tools,
        restart,
        probe,
        max_message_size,
        remote,
        namespace: raw.namespace.unwrap_or(true),
    })
}

/// Smallest and largest accepted `max_message_size`: below a few KiB even an `initialize`
/// answer may not fit; above 1 GiB one message could exhaust memory.
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 4 * 1024..=1 << 30;

pub(crate) fn message_size(raw: &RawSize, path: &str, errors: &mut Errors) -> Option<usize> {
    match size::parse(&raw.0) {
        Ok(n) if MESSAGE_SIZE_RANGE.contains(&n) => Some(n),
        Ok(n) => {
            errors.push(
                path,
                format!(
                    "{} is out of range; use {} to {} (default {})",
                    size::format(n),
                    size::format(*MESSAGE_SIZE_RANGE.start()),
                    size::format(*MESSAGE_SIZE_RANGE.end()),
                    size::format(Gateway::DEFAULT_MAX_MESSAGE_SIZE)
                ),
            );
            None
        }
        Err(e) => {
            errors.push(path, e);
            None
        }
    }
}

fn inherit_env(raw: RawInheritEnv, path: &str, errors: &mut Errors) -> Option<InheritEnv> {
    match raw {
        RawInheritEnv::Word(w) if w == "all" => Some(InheritEnv::All),
        RawInheritEnv::Word(w) => {
            errors.push(
                path,
                format!("\"{w}\" is not allowed; write `all` or a list of variable names such as [AWS_PROFILE]"),
            );
            None
        }
        RawInheritEnv::Names(names) => {
            let before = errors.len();
            for (i, n) in names.iter().enumerate() {
                if n.is_empty() || n.contains('=') || n.contains('\0') {
                    errors.push(
                        format!("{path}[{i}]"),
                        "not a valid environment variable name",
                    );
                }
            }
            (errors.len() == before).then_some(InheritEnv::Names(names))
        }
    }
}

/// `restart:` over `base` (the gateway's defaults, or the built-in ones).
fn restart_policy(
    raw: Option<Value>,
    base: &RestartPolicy,
    path: &str,
    errors: &mut Errors,
) -> RestartPolicy {
    let mut p = base.clone();
    let Some(raw) = raw.and_then(|v| entry::<RawRestart>(&v, path, RawRestart::FIELDS, errors))
    else {
        return p;
    };
    let dur = |raw: Option<RawDuration>, key: &str, slot: &mut Duration, errors: &mut Errors| {
        if let Some(d) = raw.and_then(|r| positive_duration(&r, &join(path, key), errors)) {
            *slot = d;
        }
    };
    dur(
        raw.initial_backoff,
        "initial_backoff",
        &mut p.initial_backoff,
        errors,
    );
    dur(raw.max_backoff, "max_backoff", &mut p.max_backoff, errors);
    dur(
        raw.stable_after,
        "stable_after",
        &mut p.stable_after,
        errors,
    );
    dur(raw.within, "within", &mut p.within, errors);
    dur(
        raw.reprobe_after,
        "reprobe_after",
        &mut p.reprobe_after,
        errors,
    );
    if let Some(m) = raw.multiplier {
        if (1.0..=10.0).contains(&m) {
            p.multiplier = m;
        } else {
            errors.push(
                join(path, "multiplier"),
                format!("{m} is out of range; use 1.0 to 10.0 (default 2.0)"),
            );
        }
    }
    if let Some(j) = raw.jitter {
        if (0.0..1.0).contains(&j) {
            p.jitter = j;
        } else {
            errors.push(
                join(path, "jitter"),
                format!("{j} is out of range; use 0.0 up to (not including) 1.0"),
            );
        }
    }
    if let Some(n) = raw.max_restarts {
        if n == 0 {
            errors.push(join(path, "max_restarts"), "must be at least 1");
        } else {
            p.max_restarts = n;
        }
    }
    if p.initial_backoff > p.max_backoff {
        errors.push(
            join(path, "initial_backoff"),
            format!(
                "{} is longer than max_backoff ({})",
                duration::format(p.initial_backoff),
                duration::format(p.max_backoff)
            ),
        );
    }
    p
}

/// `probe:` over `base`.
fn probe_policy(
    raw: Option<Value>,
    base: &ProbePolicy,
    path: &str,
    errors: &mut Errors,
) -> ProbePolicy {
    let mut p = base.clone();
    let Some(raw) = raw.and_then(|v| entry::<RawProbe>(&v, path, RawProbe::FIELDS, errors)) else {
        return p;
    };
    if let Some(d) = raw
        .interval
        .and_then(|r| positive_duration(&r, &join(path, "interval"), errors))
    {
        p.interval = d;
    }
    if let Some(d) = raw
        .timeout
        .and_then(|r| positive_duration(&r, &join(path, "timeout"), errors))
    {
        p.timeout = d;
    }
    for (key, raw, slot) in [
        (
            "unhealthy_after",
            raw.unhealthy_after,
            &mut p.unhealthy_after,
        ),
        ("restart_after", raw.restart_after, &mut p.restart_after),
    ] {
        match raw {
            Some(0) => errors.push(join(path, key), "must be at least 1"),
            Some(n) => *slot = n,
            None => {}
        }
    }
    if p.restart_after < p.unhealthy_after {
        errors.push(
            join(path, "restart_after"),
            format!(
                "{} is below unhealthy_after ({}); a child is restarted only after it is unhealthy",
                p.restart_after, p.unhealthy_after
            ),
        );
    }
    p
}

fn validate_tool_filter(raw: RawToolFilter, path: &str, errors: &mut Errors) -> ToolFilter {
    let mut globs = |list: Vec<String>, key: &str| -> Vec<Glob> {
        list.iter()
            .enumerate()
            .filter_map(|(i, p)| match Glob::new(p) {
                Ok(g) => Some(g),
                Err(e) => {
                    errors.push(format!("{path}.{key}[{i}]"), e);
                    None
                }
            })
            .collect()
    };
    ToolFilter {
        allow: globs(raw.allow, "allow"),
        deny: globs(raw.deny, "deny"),
    }
}

fn validate_domains(
    value: Option<&Value>,
    servers: &BTreeSet<&str>,
    gateway: &Gateway,
    errors: &mut Errors,
) -> Vec<Domain> {
    let Some(dict) = value.and_then(|v| as_dict(v, "domain_boundaries", errors)) else {
        return Vec::new();
    };
    let mut domains = Vec::new();
    for (domain, value) in dict {
        let path = join("domain_boundaries", domain);
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            errors.push(&path, "domain names use letters, digits, '_' and '-'");
            continue;
        }
        let (primary, secondary, primary_path) = match value {
            Value::String(_, s) => (s.clone(), Vec::new(), path.clone()),
            Value::Dict(..) => {
                let Some(d) =
                    entry::<RawDomainDetail>(value, &path, RawDomainDetail::FIELDS, errors)
                else {
                    continue;
                };
                (d.primary, d.secondary, join(&path, "primary"))
            }
            other => {
                errors.push(
                    &path,
                    format!(
                        "expected a server name or {{primary, secondary}}, found {}",
                        other.to_actual()
                    ),
                );
                continue;
            }
        };
        let primary = known_server(&primary, &primary_path, servers, gateway, errors);
        let mut seen = BTreeSet::new();
        let mut secondaries = Vec::new();
        for (i, s) in secondary.iter().enumerate() {
            let p = format!("{path}.secondary[{i}]");
            if Some(s.as_str()) == primary.as_ref().map(ServerName::as_str) {
                errors.push(&p, format!("\"{s}\" is already the primary of this domain"));
            } else if !seen.insert(s.clone()) {
                errors.push(&p, format!("\"{s}\" is listed twice"));
            } else if let Some(n) = known_server(s, &p, servers, gateway, errors) {
                secondaries.push(n);
            }
        }
        if let Some(primary) = primary {
            domains.push(Domain {
                name: domain.clone(),
                primary,
                secondary: secondaries,
            });
        }
    }
    domains
}

fn validate_alternatives(
    value: Option<&Value>,
    servers: &BTreeSet<&str>,
    gateway: &Gateway,
    errors: &mut Errors,
) -> Vec<Alternative> {
    let Some(dict) = value.and_then(|v| as_dict(v, "server_alternatives", errors)) else {
        return Vec::new();
    };
    let mut alternatives = Vec::new();
    for (server, value) in dict {
        let path = join("server_alternatives", server);
        let owner = known_server(server, &path, servers, gateway, errors);
        let Some(raw) = entry::<RawAlternative>(value, &path, RawAlternative::FIELDS, errors)
        else {
            continue;
        };
        let fallback_path = join(&path, "fallback");
        if raw.fallback == *server {
            errors.push(&fallback_path, "a server cannot be its own fallback");
            continue;
        }
        let fallback = known_server(&raw.fallback, &fallback_path, servers, gateway, errors);
        for (key, list) in [
            ("degraded_capabilities", &raw.degraded_capabilities),
            ("lost_capabilities", &raw.lost_capabilities),
        ] {
            for (i, cap) in list.iter().enumerate() {
                if cap.trim().is_empty() {
                    errors.push(format!("{path}.{key}[{i}]"), "empty capability name");
                }
            }
        }
        if let (Some(server), Some(fallback)) = (owner, fallback) {
            alternatives.push(Alternative {
                server,
                fallback,
                degraded_capabilities: raw.degraded_capabilities,
                lost_capabilities: raw.lost_capabilities,
            });
        }
    }
    report_fallback_cycles(&alternatives, errors);
    alternatives
}

/// A fallback chain that returns to where it started can never serve anything.
fn report_fallback_cycles(alternatives: &[Alternative], errors: &mut Errors) {
    let next: BTreeMap<&str, &str> = alternatives
        .iter()
        .map(|a| (a.server.as_str(), a.fallback.as_str()))
        .collect();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for start in next.keys() {
        let mut chain = vec![*start];
        let mut cur = *start;
        while let Some(&n) = next.get(cur) {
            if let Some(pos) = chain.iter().position(|s| *s == n) {
                let cycle = &chain[pos..];
                // Report each cycle once, at its alphabetically first member.
                let first = *cycle.iter().min().unwrap_or(&n);
                if first == *start && reported.insert(first) {
                    let mut shown: Vec<&str> = cycle.to_vec();
                    shown.push(n);
                    errors.push(
                        format!("server_alternatives.{start}.fallback"),
                        format!("fallback cycle: {}", shown.join(" -> ")),
                    );
                }
                break;
            }
            chain.push(n);
            cur = n;
        }
    }
}

fn known_server(
    name: &str,
    path: &str,
    servers: &BTreeSet<&str>,
    gateway: &Gateway,
    errors: &mut Errors,
) -> Option<ServerName> {
    if servers.contains(name) {
        return ServerName::parse(name, &gateway.separator).ok();
    }
    errors.push(
        path,
        format!(
            "unknown server \"{name}\"{}",
            did_you_mean(name, servers.iter().copied())
        ),
    );
    None
}

/// Deserializes one section entry after reporting *all* its unknown keys (serde alone stops at
/// the first one).
pub(crate) fn entry<T: DeserializeOwned>(
    value: &Value,
    path: &str,
    fields: &[&str],
    errors: &mut Errors,
) -> Option<T> {
    let dict = as_dict(value, path, errors)?;
    check_keys(dict, fields, path, errors);
    let mut known: Dict = dict
        .iter()
        .filter(|(k, _)| fields.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // serde stops at the first bad value: report it, set that value aside and try again, so
    // that every bad value of the entry is reported in one run. What then deserializes is
    // returned even so (the errors are recorded), so the caller's own checks still run on the
    // keys that were fine and report their problems too.
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..64 {
        match Value::from(known.clone()).deserialize::<T>() {
            Ok(t) => return Some(t),
            Err(e) => {
                let mut retry = false;
                for e in e {
                    // A key set aside for a bad value is not also "missing".
                    if let figment::error::Kind::MissingField(field) = &e.kind {
                        if removed.iter().any(|r| r == field.as_ref()) {
                            continue;
                        }
                    }
                    errors.push(display_path(&known, path, &e.path), describe(&e.kind));
                    if let Some(first) = e.path.first() {
                        removed.push(first.clone());
                    }
                    retry |= remove_at(&mut known, &e.path);
                }
                if !retry {
                    return None;
                }
            }
        }
    }
    None
}

/// `path` + the error's key path, list positions written `[i]` (as everywhere else).
fn display_path(root: &Dict, path: &str, keys: &[String]) -> String {
    let mut out = path.to_owned();
    let mut at: Option<&Value> = None;
    for key in keys {
        let in_list = matches!(at, Some(Value::Array(..)));
        at = match at {
            None => root.get(key),
            Some(Value::Dict(_, d)) => d.get(key),
            Some(Value::Array(_, a)) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            Some(_) => None,
        };
        out = if in_list {
            format!("{out}[{key}]")
        } else {
            join(&out, key)
        };
    }
    out
}

/// Removes the value at `keys` so that deserialization can go on past it. Inside a mapping
/// only the bad value goes (its siblings are still checked); a bad list element takes its
/// whole list with it (removing one element would shift the positions reported later).
fn remove_at(dict: &mut Dict, keys: &[String]) -> bool {
    match keys {
        [] => false,
        [key] => dict.remove(key).is_some(),
        [key, rest @ ..] => match dict.get_mut(key) {
            Some(Value::Dict(_, inner)) => remove_at(inner, rest),
            Some(_) => dict.remove(key).is_some(),
            None => false,
        },
    }
}

fn describe(kind: &figment::error::Kind) -> String {
    use figment::error::Kind;
    match kind {
        Kind::InvalidType(actual, expected) => format!("expected {expected}, found {actual}"),
        Kind::MissingField(field) => format!("missing required key `{field}`"),
        other => other.to_string(),
    }
}

fn check_keys(dict: &Dict, fields: &[&str], path: &str, errors: &mut Errors) {
    for key in dict.keys() {
        if !fields.contains(&key.as_str()) {
            errors.push(
                join(path, key),
                format!("unknown key{}", did_you_mean(key, fields.iter().copied())),
            );
        }
    }
}

pub(crate) fn as_dict<'v>(value: &'v Value, path: &str, errors: &mut Errors) -> Option<&'v Dict> {
    match value {
        Value::Dict(_, d) => Some(d),
        Value::Empty(..) => {
            errors.push(path, "is empty; expected a mapping");
            None
        }
        other => {
            let at = if path.is_empty() {
                "the document"
            } else {
                path
            };
            errors.push(
                path,
                format!("{at} must be a mapping, found {}", other.to_actual()),
            );
            None
        }
    }
}

pub(crate) fn positive_duration(
    text: &RawDuration,
    path: &str,
    errors: &mut Errors,
) -> Option<Duration> {
    match duration::parse(&text.0) {
        Ok(d) if d.is_zero() => {
            errors.push(path, "must be greater than zero");
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(path, e);
            None
        }
    }
}

pub(crate) fn expanded(
    text: &str,
    path: &str,
    cx: &Context<'_>,
    errors: &mut Errors,
) -> Option<String> {
    let file = |p: &str| {
        let full = resolve(cx.source, p);
        std::fs::read_to_string(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    };
    let sources = Sources {
        env: cx.env,
        file: &file,
    };
    match expand(text, &sources) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(path, e);
            None
        }
    }
}

pub(crate) fn resolve(source: &Path, dir: &str) -> PathBuf {
    let p = Path::new(dir);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let base = source
        .parent()
        .filter(|b| !b.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    base.join(p)
}
