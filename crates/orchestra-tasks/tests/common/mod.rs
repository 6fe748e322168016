//! Shared by the crate's tests: a fake gateway (`FakeEnv`), a clock the test moves, calling
//! helpers, and a small JSON-schema checker for the subset our output schemas use.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use orchestra_tasks::{
    DomainView, Environment, Orchestrator, ServerView, Snapshot, Specialists, SqliteStore, ToolCall,
};
use serde_json::{json, Value};

/// A gateway whose health and call journal the test writes.
#[derive(Default)]
pub struct FakeEnv {
    pub snapshot: Mutex<Snapshot>,
    /// (session, call), in the order made.
    pub journal: Mutex<Vec<(String, ToolCall)>>,
    /// session → watched now.
    pub watched: Mutex<HashMap<String, bool>>,
    /// Every watch call, in order.
    pub watch_log: Mutex<Vec<(String, bool)>>,
    /// Sessions connected now (`is_live`).
    pub live: Mutex<Vec<String>>,
}

impl Environment for FakeEnv {
    fn snapshot(&self) -> Snapshot {
        self.snapshot.lock().unwrap().clone()
    }
    fn calls(&self, session: &str, since_ms: u64) -> Vec<ToolCall> {
        self.journal
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, c)| s == session && c.at_ms >= since_ms)
            .map(|(_, c)| c.clone())
            .collect()
    }
    fn watch(&self, session: &str, on: bool) {
        self.watched.lock().unwrap().insert(session.to_string(), on);
        self.watch_log
            .lock()
            .unwrap()
            .push((session.to_string(), on));
    }
    fn is_live(&self, session: &str) -> bool {
        self.live.lock().unwrap().iter().any(|s| s == session)
    }
}

impl FakeEnv {
    /// Servers `files` (read_file, write_file), `db` (query, migrate; fallback files) and
    /// `search` (web_search), all up; domains `file_operations` → files and
    /// `data_persistence` → db (fallback files: file_storage kept; queries, transactions lost).
    pub fn standard() -> Self {
        let env = FakeEnv::default();
        *env.snapshot.lock().unwrap() = Snapshot {
            servers: vec![
                server("files", &["files__read_file", "files__write_file"], None),
                server("db", &["db__query", "db__migrate"], Some("files")),
                server("search", &["search__web_search"], None),
            ],
            domains: vec![
                DomainView {
                    name: "file_operations".into(),
                    owner: "files".into(),
                    mode: "normal".into(),
                    serving: Some("files".into()),
                    degraded_capabilities: vec![],
                    lost_capabilities: vec![],
                },
                DomainView {
                    name: "data_persistence".into(),
                    owner: "db".into(),
                    mode: "normal".into(),
                    serving: Some("db".into()),
                    degraded_capabilities: vec!["file_storage".into()],
                    lost_capabilities: vec!["queries".into(), "transactions".into()],
                },
            ],
            separator: "__".into(),
        };
        env
    }

    /// Takes `name` down; domains it owns go to its fallback (degraded) or are lost.
    pub fn down(&self, name: &str, reason: &str) {
        let mut s = self.snapshot.lock().unwrap();
        let fallback_up: Option<String> = {
            let v = s.servers.iter().find(|v| v.name == name).unwrap();
            v.fallback
                .clone()
                .filter(|f| s.servers.iter().any(|o| o.name == *f && o.up))
        };
        let v = s.servers.iter_mut().find(|v| v.name == name).unwrap();
        v.up = false;
        v.state = "restarting".into();
        v.reason = Some(reason.into());
        for d in s.domains.iter_mut().filter(|d| d.owner == name) {
            match &fallback_up {
                Some(f) => {
                    d.mode = "degraded".into();
                    d.serving = Some(f.clone());
                }
                None => {
                    d.mode = "lost".into();
                    d.serving = None;
                }
            }
        }
    }

    /// Brings `name` back; its domains are normal again.
    pub fn up(&self, name: &str) {
        let mut s = self.snapshot.lock().unwrap();
        let v = s.servers.iter_mut().find(|v| v.name == name).unwrap();
        v.up = true;
        v.state = "ready".into();
        v.reason = None;
        for d in s.domains.iter_mut().filter(|d| d.owner == name) {
            d.mode = "normal".into();
            d.serving = Some(name.into());
        }
    }

    pub fn record(
        &self,
        session: &str,
        tool: &str,
        server: &str,
        outcome: &str,
        failover_to: Option<&str>,
        at_ms: u64,
    ) {
        self.journal.lock().unwrap().push((
            session.into(),
            ToolCall {
                tool: tool.into(),
                server: Some(server.into()),
                outcome: outcome.into(),
                failover_to: failover_to.map(str::to_string),
                at_ms,
                duration_ms: 7,
            },
        ));
    }

    pub fn is_watched(&self, session: &str) -> bool {
        self.watched
            .lock()
            .unwrap()
            .get(session)
            .copied()
            .unwrap_or(false)
    }
}

pub fn server(name: &str, tools: &[&str], fallback: Option<&str>) -> ServerView {
    ServerView {
        name: name.into(),
        up: true,
        state: "ready".into(),
        reason: None,
        tools: tools.iter().map(|t| t.to_string()).collect(),
        fallback: fallback.map(str::to_string),
    }
}

/// A clock the test sets.
#[derive(Clone, Default)]
pub struct Clock(pub Arc<AtomicU64>);

impl Clock {
    pub fn at(ms: u64) -> Self {
        Clock(Arc::new(AtomicU64::new(ms)))
    }
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// An orchestrator on an in-memory store, with the test's clock.
pub fn orchestrator(clock: &Clock) -> Orchestrator {
    let c = clock.clone();
    Orchestrator::new(
        Box::new(SqliteStore::in_memory().unwrap()),
        Specialists::builtin(),
    )
    .with_clock(move || c.now())
}

/// Calls `tool`, asserts success and that the structured content matches the tool's output
/// schema; returns (text, structuredContent).
pub fn ok(
    o: &Orchestrator,
    env: &FakeEnv,
    session: &str,
    tool: &str,
    args: Value,
) -> (String, Value) {
    let r = o.call(tool, Some(&args.to_string()), session, env);
    assert!(
        r.get("isError").is_none(),
        "{tool} {args} failed: {}",
        text_of(&r)
    );
    let structured = r["structuredContent"].clone();
    let def = Orchestrator::tool_definitions()
        .into_iter()
        .find(|d| d["name"] == tool)
        .unwrap();
    if let Err(e) = check(&def["outputSchema"], &structured, "$") {
        panic!("{tool} output does not match its schema: {e}\n{structured:#}");
    }
    (text_of(&r), structured)
}

/// Calls `tool`, asserts it is refused; returns the message.
pub fn refused(o: &Orchestrator, env: &FakeEnv, session: &str, tool: &str, args: Value) -> String {
    let r = o.call(tool, Some(&args.to_string()), session, env);
    assert_eq!(
        r["isError"],
        json!(true),
        "{tool} {args} should fail: {r:#}"
    );
    assert!(r.get("structuredContent").is_none());
    text_of(&r)
}

pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The ids of a `[{id, …}]` list.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Checks `value` against `schema` for the keywords our schemas use: type, properties,
/// required, items, enum, minimum, additionalProperties.
pub fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{path}: bad type keyword")),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{path}: {value} is not of type {t}"));
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(value) {
            return Err(format!("{path}: {value} is not one of {e:?}"));
        }
    }
    if let (Some(min), Some(v)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if v < min {
            return Err(format!("{path}: {v} < {min}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                return Err(format!("{path}: required \"{r}\" missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(s, v, &format!("{path}.{k}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{path}: unexpected \"{k}\"")),
                    Some(s @ Value::Object(_)) => check(s, v, &format!("{path}.{k}"))?,
                    _ if props.is_some() && schema.get("type") == Some(&json!("object")) => {
                        // Our output schemas list every property they emit.
                        return Err(format!("{path}: \"{k}\" is not in the schema"));
                    }
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(items, v, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

/// A small deterministic generator (xorshift64*), for the hand-rolled property tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}
