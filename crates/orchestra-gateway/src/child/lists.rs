//! A child's optional lists — prompts, resources and resource templates: listed when the child
//! declares the capability, kept per child life, listed again on the child's `list_changed`.
//!
//! Unlike tools, these never decide whether a server is up: a failing listing is recorded
//! (shown by health), the last good list stays, and the server's tools are served whatever
//! happens here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::connection::{Connection, RequestError};
use super::ChildShared;
use crate::listing::ListKind;

/// At most this many dropped entries are remembered for health, per feature.
const MAX_DROPPED_NOTES: usize = 20;

/// A capability that brings lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Prompts,
    Resources,
}

impl Feature {
    /// The key in the child's `capabilities`.
    pub fn capability(self) -> &'static str {
        match self {
            Feature::Prompts => "prompts",
            Feature::Resources => "resources",
        }
    }

    /// The lists it brings (the first is required; templates are optional).
    pub fn kinds(self) -> &'static [ListKind] {
        match self {
            Feature::Prompts => &[ListKind::Prompts],
            Feature::Resources => &[ListKind::Resources, ListKind::ResourceTemplates],
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The child's optional lists as it defined them (deduplicated), with what went wrong.
#[derive(Default)]
pub struct OptionalLists {
    /// By `ListKind::index() - 1` (prompts, resources, resource templates).
    items: [Mutex<Arc<Vec<Value>>>; 3],
    /// Why the last listing of a feature failed (redacted).
    errors: [Mutex<Option<String>>; 2],
    /// Entries left out at the last listing of a feature, and why.
    dropped: [Mutex<Vec<String>>; 2],
}

impl OptionalLists {
    pub fn get(&self, kind: ListKind) -> Arc<Vec<Value>> {
        match kind {
            ListKind::Tools => Arc::default(),
            _ => lock(&self.items[kind.index() - 1]).clone(),
        }
    }

    pub fn error(&self, feature: Feature) -> Option<String> {
        lock(&self.errors[feature.slot()]).clone()
    }

    pub fn dropped(&self, feature: Feature) -> Vec<String> {
        lock(&self.dropped[feature.slot()]).clone()
    }

    /// Publishes `kind`'s new list; returns whether it changed.
    fn set(&self, kind: ListKind, items: Vec<Value>) -> bool {
        let mut current = lock(&self.items[kind.index() - 1]);
        let changed = **current != items;
        if changed {
            *current = Arc::new(items);
        }
        changed
    }

    /// Forgets a feature the child does not declare (this life). Returns whether anything
    /// was there.
    pub fn clear(&self, feature: Feature) -> bool {
        let mut changed = false;
        for kind in feature.kinds() {
            changed |= self.set(*kind, Vec::new());
        }
        *lock(&self.errors[feature.slot()]) = None;
        lock(&self.dropped[feature.slot()]).clear();
        changed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether the child's `initialize` result declares `feature`.
pub fn declares(capabilities: Option<&Value>, feature: Feature) -> bool {
    capabilities
        .and_then(|c| c.get(feature.capability()))
        .is_some_and(|v| !v.is_null())
}

/// Lists every page of each of `feature`'s lists within `budget` and publishes them; returns
/// whether any changed. A failure is recorded and logged, never fatal; the last good lists
/// stay. A child that has resources but no templates (`-32601` for the templates list) simply
/// has none.
pub(crate) async fn relist(
    shared: &ChildShared,
    conn: &Connection,
    feature: Feature,
    budget: Duration,
) -> Result<bool, String> {
    let listed = tokio::time::timeout(budget, async {
        let mut all = Vec::new();
        for (n, kind) in feature.kinds().iter().enumerate() {
            match super::task::list_all(conn, kind.method(), kind.result_key(), budget).await {
                Ok(items) => all.push(items),
                Err(ListError::Rpc { code: -32601, .. }) if n > 0 => all.push(Vec::new()),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(all)
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "{}: no complete answer within {}",
            feature.kinds()[0].method(),
            orchestra_config::duration::format(budget)
        ))
    });
    let lists = &shared.lists;
    let all = match listed {
        Ok(all) => all,
        Err(e) => {
            let e = shared.redact(e);
            tracing::warn!(server = %shared.name, error = %e, feature = feature.capability(), "cannot list the child's {}; serving the rest without them", feature.capability());
            *lock(&lists.errors[feature.slot()]) = Some(e.clone());
            return Err(e);
        }
    };
    let mut notes = Vec::new();
    let mut changed = false;
    for (kind, items) in feature.kinds().iter().zip(all) {
        let items = dedup(*kind, items, &mut notes);
        changed |= lists.set(*kind, items);
    }
    for note in &notes {
        tracing::warn!(server = %shared.name, "{note}");
    }
    notes.truncate(MAX_DROPPED_NOTES);
    let notes = notes.into_iter().map(|n| shared.redact(n)).collect();
    *lock(&lists.dropped[feature.slot()]) = notes;
    *lock(&lists.errors[feature.slot()]) = None;
    Ok(changed)
}

/// An entry without a usable key cannot be addressed by a client; a repeated key could not be
/// told apart (the first is kept). Everything else is the child's definition, as written.
fn dedup(kind: ListKind, items: Vec<Value>, notes: &mut Vec<String>) -> Vec<Value> {
    let field = kind.key_field();
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| match item.get(field).and_then(Value::as_str) {
            Some(key) if !key.is_empty() => {
                let fresh = seen.insert(key.to_owned());
                if !fresh {
                    notes.push(format!(
                        "dropped {} \"{key}\": its {field} repeats an earlier one (the first is kept)",
                        kind.noun()
                    ));
                }
                fresh
            }
            _ => {
                notes.push(format!("dropped a {} without a usable {field}", kind.noun()));
                false
            }
        })
        .collect()
}

/// Why a list request failed.
#[derive(Debug)]
pub enum ListError {
    /// The child answered with a JSON-RPC error.
    Rpc {
        method: String,
        code: i64,
        error: String,
    },
    Other(String),
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::Rpc { method, error, .. } => {
                write!(f, "{method} failed: error response {error}")
            }
            ListError::Other(e) => f.write_str(e),
        }
    }
}

impl ListError {
    pub fn from_request(method: &str, e: RequestError) -> Self {
        match e {
            RequestError::Rpc(error) => {
                let code = serde_json::from_str::<Value>(&error)
                    .ok()
                    .and_then(|e| e.get("code").and_then(Value::as_i64))
                    .unwrap_or(0);
                ListError::Rpc {
                    method: method.to_owned(),
                    code,
                    error,
                }
            }
            e @ RequestError::TooLarge { .. } => ListError::Other(format!("{method} {e}")),
            e => ListError::Other(format!("{method} failed: {e}")),
        }
    }
}

impl From<ListError> for String {
    fn from(e: ListError) -> String {
        e.to_string()
    }
}

/// Lists `feature` again each time the child says it changed (coalesced: notifications that
/// arrive during a listing make one more), at least `spacing` apart; `changed` is called when
/// a list really changed. Never returns: it lives in the serving loop's `select!`.
pub(crate) async fn follow_changes(
    shared: &ChildShared,
    conn: &Connection,
    feature: Feature,
    spacing: Duration,
    changed: impl Fn(),
) {
    loop {
        conn.list_changed(feature).notified().await;
        match relist(shared, conn, feature, shared.spec.call_timeout).await {
            Ok(true) => changed(),
            Ok(false) => {
                tracing::debug!(server = %shared.name, feature = feature.capability(), "relisted after list_changed: no change")
            }
            Err(_) => {} // logged and recorded by relist
        }
        tokio::time::sleep(spacing).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn repeated_and_unnamed_entries_are_dropped_with_a_note() {
        let mut notes = Vec::new();
        let kept = dedup(
            ListKind::Resources,
            vec![
                json!({"uri": "a://1", "name": "first"}),
                json!({"uri": "a://1", "name": "second"}),
                json!({"name": "no uri"}),
                json!({"uri": "a://2"}),
            ],
            &mut notes,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0]["name"], "first");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("\"a://1\""), "{notes:?}");
    }
}
