//! The merged tool catalog the client sees: exposed name → owning server and child tool name,
//! plus the pre-serialized `tools/list` result (so listing 10,000 tools is a copy, not a
//! serialization).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use serde_json::Value;

use crate::fnv::FnvHasher;
use crate::names;

/// Where a call to an exposed tool goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// Index of the owning server in the configuration.
    pub server: usize,
    /// The tool's name as the child knows it.
    pub tool: Arc<str>,
    /// The name the client used (shared, so a call does not allocate it).
    pub exposed: Arc<str>,
}

/// An exposed name that differs from `<server><separator><tool>`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Renamed {
    pub exposed: String,
    pub server: String,
    pub tool: String,
}

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
}

/// An immutable snapshot; a new one replaces it whenever any server's tools change.
#[derive(Debug, Default)]
pub struct Catalog {
    // FNV: names are short and come from the client the gateway serves, so SipHash's flooding
    // resistance buys nothing on this per-call lookup.
    routes: HashMap<Box<str>, Route, BuildHasherDefault<FnvHasher>>,
    /// `{"tools":[...]}`, ready to splice into a response.
    list_result: Arc<str>,
    renamed: Vec<Renamed>,
    /// Exposed names in listing order (for suggestions and the CLI table); only listed tools.
    names: Vec<Box<str>>,
}

impl Catalog {
    /// Builds the catalog from the gateway's own tools (listed first, never renamed) and
    /// every live server's tools.
    pub fn build<'a>(
        separator: &str,
        own_tools: &[Value],
        servers: impl IntoIterator<Item = ServerTools<'a>>,
    ) -> Self {
        let mut routes = HashMap::default();
        let mut renamed = Vec::new();
        let mut names: Vec<Box<str>> = Vec::new();
        let mut listed: Vec<String> = own_tools.iter().map(Value::to_string).collect();
        for t in own_tools {
            if let Some(n) = t.get("name").and_then(Value::as_str) {
                names.push(n.into());
            }
        }
        for server in servers {
            for tool in server.tools {
                let Some(original) = tool.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let exposed = names::expose(server.name, separator, original);
                if routes.contains_key(exposed.name.as_str()) {
                    tracing::warn!(
                        server = server.name,
                        tool = original,
                        "duplicate tool name from child; keeping the first"
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
                    let mut def = tool.clone();
                    def["name"] = Value::String(exposed.name.clone());
                    listed.push(def.to_string());
                    names.push(exposed.name.as_str().into());
                }
                let route = Route {
                    server: server.index,
                    tool: original.into(),
                    exposed: exposed.name.as_str().into(),
                };
                routes.insert(exposed.name.into_boxed_str(), route);
            }
        }
        let list_result = format!("{{\"tools\":[{}]}}", listed.join(",")).into();
        Self {
            routes,
            list_result,
            renamed,
            names,
        }
    }

    /// The route of an exposed name, listed or not (a down server's tools stay routable).
    pub fn route(&self, exposed: &str) -> Option<&Route> {
        self.routes.get(exposed)
    }

    pub fn list_result(&self) -> &Arc<str> {
        &self.list_result
    }

    pub fn renamed(&self) -> &[Renamed] {
        &self.renamed
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    /// How many tools are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Exposed names close to `wanted`, best first.
    pub fn suggestions(&self, wanted: &str) -> Vec<String> {
        orchestra_config::suggest::closest(wanted, self.names(), 3)
            .into_iter()
            .map(str::to_owned)
            .collect()
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
                },
                ServerTools {
                    index: 1,
                    name: "odd",
                    tools: &other,
                    listed: true,
                },
            ],
        );
        assert_eq!(c.len(), 3);
        let r = c.route("files__read_file").unwrap();
        assert_eq!((r.server, &*r.tool), (0, "read_file"));
        let listed: Value = serde_json::from_str(c.list_result()).unwrap();
        assert_eq!(listed["tools"][1]["annotations"]["readOnlyHint"], true);
        assert_eq!(listed["tools"][1]["description"], "Read");
        assert_eq!(c.renamed().len(), 1);
        assert_eq!(
            &*c.route(&c.renamed()[0].exposed).unwrap().tool,
            long.as_str()
        );
        assert_eq!(
            c.suggestions("files__read"),
            vec!["files__read_file".to_owned()]
        );
    }
}
