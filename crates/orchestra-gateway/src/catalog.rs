//! The merged tool catalog the client sees: exposed name → owning server and child tool name,
//! plus the pre-serialized `tools/list` result (so listing 10,000 tools is a copy, not a
//! serialization).

use serde_json::Value;

use crate::listing::{ListKind, Merged, Source};
use crate::names;

pub use crate::listing::Renamed;
/// Where a call to an exposed tool goes (`original`: the tool's name at the child).
pub use crate::listing::Target as Route;

/// One server's contribution to the catalog.
pub struct ServerTools<'a> {
    pub index: usize,
    pub name: &'a str,
    /// Tool definitions exactly as the child listed them (already filtered by config).
    pub tools: &'a [Value],
    /// Whether the client sees them: only a ready server's tools are listed. A down
    /// server's last known tools stay routable, so that a call to one can be answered with
    /// its fallback or with what to use instead.
    pub listed: bool,
    /// Under the server's name (the default), or as the child named them (`namespace: false`).
    pub namespaced: bool,
}

/// An immutable snapshot; a new one replaces it whenever any server's tools change.
#[derive(Debug)]
pub struct Catalog {
    merged: Merged,
}

impl Default for Catalog {
    fn default() -> Self {
        Self {
            merged: Merged::empty(ListKind::Tools),
        }
    }
}

impl Catalog {
    /// Builds the catalog from the gateway's own tools (listed first, never renamed) and
    /// every live server's tools.
    pub fn build<'a>(
        separator: &str,
        own_tools: &[Value],
        servers: impl IntoIterator<Item = ServerTools<'a>>,
    ) -> Self {
        let merged = Merged::build(
            ListKind::Tools,
            own_tools,
            servers.into_iter().map(|s| Source {
                index: s.index,
                name: s.name,
                items: s.tools,
                listed: s.listed,
                namespaced: s.namespaced,
            }),
            |server, tool| names::expose(server, separator, tool),
        );
        Self { merged }
    }
}

/// Everything else (routes, pages, digest, renamed names, suggestions) is the merged list's
/// own: one place for every list kind.
impl std::ops::Deref for Catalog {
    type Target = Merged;

    fn deref(&self) -> &Merged {
        &self.merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_and_lists_namespaced_tools_unchanged_but_for_the_name() {
        let own = [json!({"name": "orchestrator_health", "inputSchema": {"type": "object"}})];
        let files = [
            json!({"name": "read_file", "description": "Read", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}),
        ];
        let long = "x".repeat(70);
        let other = [json!({"name": long, "inputSchema": {"type": "object"}})];
        let c = Catalog::build(
            "__",
            &own,
            [
                ServerTools {
                    index: 0,
                    name: "files",
                    tools: &files,
                    listed: true,
                    namespaced: true,
                },
                ServerTools {
                    index: 1,
                    name: "odd",
                    tools: &other,
                    listed: true,
                    namespaced: true,
                },
            ],
        );
        assert_eq!(c.len(), 3);
        let r = c.route("files__read_file").unwrap();
        assert_eq!((r.server, &*r.original), (0, "read_file"));
        let listed: Value = serde_json::from_str(c.first_page()).unwrap();
        assert_eq!(listed["tools"][1]["annotations"]["readOnlyHint"], true);
        assert_eq!(listed["tools"][1]["description"], "Read");
        assert_eq!(c.renamed().len(), 1);
        assert_eq!(
            &*c.route(&c.renamed()[0].exposed).unwrap().original,
            long.as_str()
        );
        assert_eq!(
            c.suggestions("files__read"),
            vec!["files__read_file".to_owned()]
        );
    }
}
