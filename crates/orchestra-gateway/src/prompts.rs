//! The merged prompt catalog the client sees: exposed name (`<server><separator><prompt>`,
//! named by the same rules as tools, `names.rs`) → owning server and child prompt name, plus
//! the pre-serialized `prompts/list` result.
//!
//! Prompt definitions are the child's own and are passed on as written but for the name.

use serde_json::Value;

use crate::listing::{ListKind, Merged, Source};
use crate::names;

/// Where a `prompts/get` for an exposed prompt goes (`original`: the child's prompt name).
pub use crate::listing::Target as PromptRoute;

/// One server's contribution to the prompt catalog.
pub struct ServerPrompts<'a> {
    pub index: usize,
    pub name: &'a str,
    /// Prompt definitions exactly as the child listed them.
    pub prompts: &'a [Value],
    /// Whether the client sees them (ready servers only). A down server's last known prompts
    /// stay routable, so that asking for one says the server is down rather than "unknown".
    pub listed: bool,
    /// Under the server's name (the default), or as the child named them (`namespace: false`).
    pub namespaced: bool,
}

/// An immutable snapshot, rebuilt with the tool catalog whenever a server's lists change.
#[derive(Debug)]
pub struct PromptCatalog {
    merged: Merged,
}

impl Default for PromptCatalog {
    fn default() -> Self {
        Self {
            merged: Merged::empty(ListKind::Prompts),
        }
    }
}

impl PromptCatalog {
    pub fn build<'a>(
        separator: &str,
        servers: impl IntoIterator<Item = ServerPrompts<'a>>,
    ) -> Self {
        let merged = Merged::build(
            ListKind::Prompts,
            &[],
            servers.into_iter().map(|s| Source {
                index: s.index,
                name: s.name,
                items: s.prompts,
                listed: s.listed,
                namespaced: s.namespaced,
            }),
            |server, prompt| names::expose(server, separator, prompt),
        );
        Self { merged }
    }
}

/// Everything else (routes, pages, digest, suggestions) is the merged list's own.
impl std::ops::Deref for PromptCatalog {
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
    fn namespaces_listed_prompts_and_keeps_down_servers_routable() {
        let up = [
            json!({"name": "greet", "description": "Say hi", "arguments": [{"name": "who", "required": true}]}),
        ];
        let down = [json!({"name": "plan"})];
        let c = PromptCatalog::build(
            "__",
            [
                ServerPrompts {
                    index: 0,
                    name: "a",
                    prompts: &up,
                    listed: true,
                    namespaced: true,
                },
                ServerPrompts {
                    index: 1,
                    name: "b",
                    prompts: &down,
                    listed: false,
                    namespaced: true,
                },
            ],
        );
        let listed: Value = serde_json::from_str(c.first_page()).unwrap();
        assert_eq!(listed["prompts"].as_array().unwrap().len(), 1);
        assert_eq!(listed["prompts"][0]["name"], "a__greet");
        assert_eq!(listed["prompts"][0]["arguments"][0]["name"], "who");
        let r = c.route("a__greet").unwrap();
        assert_eq!((r.server, &*r.original), (0, "greet"));
        assert_eq!(&*c.route("b__plan").unwrap().original, "plan");
        assert_eq!(c.suggestions("a__gret"), vec!["a__greet".to_owned()]);
        assert_eq!(c.len(), 1);
    }
}
