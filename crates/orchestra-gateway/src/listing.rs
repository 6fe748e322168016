//! One merge for every list the gateway serves (tools, prompts, resources, resource
//! templates): each ready server's entries under an exposed key, the first of a collision
//! kept, a down server's entries left routable but unlisted, and the result pre-serialized in
//! pages of [`PAGE_SIZE`] so that serving a page is a copy, not a serialization.
//!
//! Cursors are `<digest>.<page>`: the digest is a hash of the whole listed content, so a
//! cursor stays valid across rebuilds that did not change this list, and a cursor into a
//! list that has changed since is refused (the client lists again from the start; it is sent
//! the matching `list_changed` too) rather than silently skipping or repeating entries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde_json::Value;

use crate::fnv::FnvHasher;
use crate::names::Exposed;

/// Entries per served page. Large enough that an ordinary catalog is one page (clients that
/// never follow `nextCursor` — several don't for tools — still see everything), small enough
/// that one page of a 10,000-entry list stays a modest message.
pub const PAGE_SIZE: usize = 1000;

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    pub const ALL: [ListKind; 4] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::ResourceTemplates,
    ];

    /// The list method (`tools/list`, …).
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
        }
    }

    /// The array's key in the list result.
    pub fn result_key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The member that names an entry (and is rewritten to the exposed key).
    pub fn key_field(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        }
    }

    /// The notification that tells a client this list changed (resources and their
    /// templates share one).
    pub fn list_changed(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources | ListKind::ResourceTemplates => {
                "notifications/resources/list_changed"
            }
        }
    }

    /// What one entry is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            ListKind::Tools => "tool",
            ListKind::Prompts => "prompt",
            ListKind::Resources => "resource",
            ListKind::ResourceTemplates => "resource template",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where an exposed entry goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index of the owning server in the configuration.
    pub server: usize,
    /// The entry's key as the child knows it.
    pub original: Arc<str>,
    /// The key the client uses (shared, so a call does not allocate it).
    pub exposed: Arc<str>,
}

/// An exposed key that differs from the plain `<server><separator><name>`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Renamed {
    pub exposed: String,
    pub server: String,
    /// The child's own name.
    pub tool: String,
}

/// One server's contribution.
pub struct Source<'a> {
    pub index: usize,
    pub name: &'a str,
    /// Entries exactly as the child listed them.
    pub items: &'a [Value],
    /// Whether the client sees them: only a ready server's entries are listed. A down
    /// server's last known entries stay routable, so that asking for one can be answered
    /// with its fallback or with what to use instead rather than "unknown".
    pub listed: bool,
    /// Whether its keys are exposed under its name (`expose`) or as the child wrote them
    /// (the server's `namespace: false`).
    pub namespaced: bool,
}

/// A cursor the client sent that this list cannot continue from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorError {
    /// Not one of ours.
    Malformed,
    /// From an earlier version of the list.
    Stale,
}

/// An immutable merged list.
#[derive(Debug)]
pub struct Merged {
    kind: ListKind,
    // FNV: keys are short and come from the client the gateway serves, so SipHash's flooding
    // resistance buys nothing on this per-call lookup.
    routes: HashMap<Box<str>, Target, BuildHasherDefault<FnvHasher>>,
    /// Each page's whole result, ready to splice into a response.
    pages: Vec<Arc<str>>,
    digest: u64,
    /// Exposed keys of listed entries, in listing order.
    keys: Vec<Box<str>>,
    renamed: Vec<Renamed>,
}

impl Merged {
    /// An empty list of `kind`.
    pub fn empty(kind: ListKind) -> Self {
        Self::build(kind, &[], std::iter::empty(), |_, k| Exposed {
            name: k.to_owned(),
            shortened: false,
        })
    }

    /// Merges `own` entries (the gateway's, listed first as they are) and each server's,
    /// keyed by `expose(server, key)` — or by the key itself for a server that is not
    /// namespaced, which then never takes a key of the gateway's own.
    pub fn build<'a>(
        kind: ListKind,
        own: &[Value],
        servers: impl IntoIterator<Item = Source<'a>>,
        expose: impl Fn(&str, &str) -> Exposed,
    ) -> Self {
        let field = kind.key_field();
        let mut routes: HashMap<Box<str>, Target, _> = HashMap::default();
        let mut renamed = Vec::new();
        let mut keys: Vec<Box<str>> = Vec::new();
        let mut listed: Vec<String> = own.iter().map(Value::to_string).collect();
        keys.extend(
            own.iter()
                .filter_map(|e| e.get(field).and_then(Value::as_str))
                .map(Into::into),
        );
        let own_keys = keys.len();
        for server in servers {
            for item in server.items {
                let Some(original) = item.get(field).and_then(Value::as_str) else {
                    continue;
                };
                let exposed = if server.namespaced {
                    expose(server.name, original)
                } else {
                    Exposed {
                        name: original.to_owned(),
                        shortened: false,
                    }
                };
                // Only an unprefixed key can be one of the gateway's own.
                let taken = routes.contains_key(exposed.name.as_str())
                    || (!server.namespaced
                        && keys[..own_keys].iter().any(|k| **k == *exposed.name));
                if taken {
                    tracing::warn!(
                        server = server.name,
                        key = original,
                        kind = kind.noun(),
                        "two entries get the same exposed key; keeping the first"
                    );
                    continue;
                }
                if server.listed {
                    if exposed.shortened {
                        renamed.push(Renamed {
                            exposed: exposed.name.clone(),
                            server: server.name.to_owned(),
                            tool: original.to_owned(),
                        });
                    }
                    let mut def = item.clone();
                    def[field] = Value::String(exposed.name.clone());
                    listed.push(def.to_string());
                    keys.push(exposed.name.as_str().into());
                }
                let target = Target {
                    server: server.index,
                    original: original.into(),
                    exposed: exposed.name.as_str().into(),
                };
                routes.insert(exposed.name.into_boxed_str(), target);
            }
        }
        let digest = digest(&listed);
        let pages = paginate(kind.result_key(), &listed, digest);
        Self {
            kind,
            routes,
            pages,
            digest,
            keys,
            renamed,
        }
    }

    pub fn kind(&self) -> ListKind {
        self.kind
    }

    /// The target of an exposed key, listed or not.
    pub fn route(&self, exposed: &str) -> Option<&Target> {
        self.routes.get(exposed)
    }

    /// Every routable target (listed or not).
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.routes.values()
    }

    /// The first page (the whole list when it fits one page).
    pub fn first_page(&self) -> &Arc<str> {
        &self.pages[0]
    }

    /// Every page, in order.
    pub fn pages(&self) -> &[Arc<str>] {
        &self.pages
    }

    /// The page a client's `cursor` points to (the first without one).
    pub fn page(&self, cursor: Option<&str>) -> Result<&Arc<str>, CursorError> {
        let Some(cursor) = cursor else {
            return Ok(self.first_page());
        };
        let (digest, page) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        let digest = u64::from_str_radix(digest, 16).map_err(|_| CursorError::Malformed)?;
        let page: usize = page.parse().map_err(|_| CursorError::Malformed)?;
        if digest != self.digest {
            return Err(CursorError::Stale);
        }
        self.pages.get(page).ok_or(CursorError::Malformed)
    }

    /// A hash of the whole listed content: equal digests, equal lists.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Exposed keys of the listed entries, in listing order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| &**k)
    }

    pub fn renamed(&self) -> &[Renamed] {
        &self.renamed
    }

    /// How many entries are listed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Listed keys close to `wanted`, best first.
    pub fn suggestions(&self, wanted: &str) -> Vec<String> {
        orchestra_config::suggest::closest(wanted, self.keys(), 3)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

impl CursorError {
    /// The client's error (-32602, as the specification asks for an invalid cursor).
    pub fn to_error(&self, kind: ListKind) -> crate::error::GatewayError {
        crate::error::GatewayError::InvalidParams(match self {
            CursorError::Malformed => format!("{}: unknown cursor", kind.method()),
            CursorError::Stale => format!(
                "{}: the list changed since this cursor was given; list again from the start",
                kind.method()
            ),
        })
    }
}

fn digest(entries: &[String]) -> u64 {
    let mut h = FnvHasher::default();
    for e in entries {
        h.write(e.as_bytes());
        h.write_u8(0);
    }
    h.finish()
}

fn paginate(key: &str, entries: &[String], digest: u64) -> Vec<Arc<str>> {
    let chunks: Vec<&[String]> = if entries.is_empty() {
        vec![&[]]
    } else {
        entries.chunks(PAGE_SIZE).collect()
    };
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut page =
                String::with_capacity(chunk.iter().map(|e| e.len() + 1).sum::<usize>() + 64);
            page.push_str("{\"");
            page.push_str(key);
            page.push_str("\":[");
            for (n, e) in chunk.iter().enumerate() {
                if n > 0 {
                    page.push(',');
                }
                page.push_str(e);
            }
            page.push(']');
            if i < last {
                page.push_str(&format!(",\"nextCursor\":\"{digest:x}.{}\"", i + 1));
            }
            page.push('}');
            page.into()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain(server: &str, key: &str) -> Exposed {
        Exposed {
            name: format!("{server}__{key}"),
            shortened: false,
        }
    }

    #[test]
    fn merges_listed_servers_and_keeps_down_ones_routable() {
        let a = [
            json!({"name": "greet", "description": "hi"}),
            json!({"name": "greet"}),
        ];
        let b = [json!({"name": "plan"})];
        let m = Merged::build(
            ListKind::Prompts,
            &[],
            [
                Source {
                    index: 0,
                    name: "a",
                    items: &a,
                    listed: true,
                    namespaced: true,
                },
                Source {
                    index: 1,
                    name: "b",
                    items: &b,
                    listed: false,
                    namespaced: true,
                },
            ],
            plain,
        );
        let page: Value = serde_json::from_str(m.first_page()).unwrap();
        assert_eq!(
            page,
            json!({"prompts": [{"name": "a__greet", "description": "hi"}]})
        );
        assert_eq!(&*m.route("b__plan").unwrap().original, "plan");
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn pages_follow_one_another_and_stale_cursors_are_refused() {
        let items: Vec<Value> = (0..2500)
            .map(|i| json!({"uri": format!("x://{i}")}))
            .collect();
        let m = Merged::build(
            ListKind::Resources,
            &[],
            [Source {
                index: 0,
                name: "s",
                items: &items,
                listed: true,
                namespaced: true,
            }],
            plain,
        );
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page: Value = serde_json::from_str(m.page(cursor.as_deref()).unwrap()).unwrap();
            for r in page["resources"].as_array().unwrap() {
                seen.push(r["uri"].as_str().unwrap().to_owned());
            }
            match page.get("nextCursor") {
                Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 2500);
        assert_eq!(seen[2499], "s__x://2499");
        let other = Merged::build(
            ListKind::Resources,
            &[],
            [Source {
                index: 0,
                name: "s",
                items: &items[1..],
                listed: true,
                namespaced: true,
            }],
            plain,
        );
        let stale = format!("{:x}.1", m.digest());
        assert_eq!(other.page(Some(&stale)), Err(CursorError::Stale));
        assert_eq!(m.page(Some("nonsense")), Err(CursorError::Malformed));
        assert_eq!(
            m.page(Some(&format!("{:x}.9", m.digest()))),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn an_empty_list_is_one_empty_page() {
        let m = Merged::empty(ListKind::ResourceTemplates);
        assert_eq!(&**m.first_page(), "{\"resourceTemplates\":[]}");
    }

    /// A server with `namespace: false` is listed and routed under its own keys; it never
    /// takes one of the gateway's own, and the namespaced servers beside it are unchanged.
    #[test]
    fn an_unnamespaced_server_keeps_its_keys_but_never_the_gateways() {
        let own = [json!({"name": "orchestrator_health"})];
        let bare = [
            json!({"name": "test_simple_text"}),
            json!({"name": "orchestrator_health", "description": "an impostor"}),
        ];
        let other = [json!({"name": "test_simple_text"})];
        let m = Merged::build(
            ListKind::Tools,
            &own,
            [
                Source {
                    index: 0,
                    name: "fixture",
                    items: &bare,
                    listed: true,
                    namespaced: false,
                },
                Source {
                    index: 1,
                    name: "b",
                    items: &other,
                    listed: true,
                    namespaced: true,
                },
            ],
            plain,
        );
        let keys: Vec<&str> = m.keys().collect();
        assert_eq!(
            keys,
            [
                "orchestrator_health",
                "test_simple_text",
                "b__test_simple_text"
            ]
        );
        let route = m.route("test_simple_text").unwrap();
        assert_eq!((route.server, &*route.original), (0, "test_simple_text"));
        assert!(
            m.route("orchestrator_health").is_none(),
            "the gateway's own tool is not routed to the child"
        );
        let page: Value = serde_json::from_str(m.first_page()).unwrap();
        assert_eq!(page["tools"].as_array().unwrap().len(), 3);
    }
}
