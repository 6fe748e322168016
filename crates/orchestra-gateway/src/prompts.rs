//! The merged prompt catalog the client sees: exposed name (`<server><separator><prompt>`,
//! named by the same rules as tools, `names.rs`) → owning server and child prompt name, plus
//! the pre-serialized `prompts/list` result.
//!
//! Prompt definitions are the child's own and are passed on as written but for the name.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::names;

/// Where a `prompts/get` for an exposed prompt goes.
#[derive(Debug, Clone)]
pub struct PromptRoute {
    /// Index of the owning server in the configuration.
    pub server: usize,
    /// The prompt's name as the child knows it.
    pub prompt: Arc<str>,
}

/// One server's contribution to the prompt catalog.
pub struct ServerPrompts<'a> {
    pub index: usize,
    pub name: &'a str,
    /// Prompt definitions exactly as the child listed them.
    pub prompts: &'a [Value],
    /// Whether the client sees them (ready servers only). A down server's last known prompts
    /// stay routable, so that asking for one says the server is down rather than "unknown".
    pub listed: bool,
}

/// An immutable snapshot, rebuilt with the tool catalog whenever a server's lists change.
#[derive(Debug)]
pub struct PromptCatalog {
    routes: HashMap<Box<str>, PromptRoute>,
    /// `{"prompts":[...]}`, ready to splice into a response.
    list_result: Arc<str>,
    /// Exposed names of listed prompts, in listing order (for suggestions).
    names: Vec<Box<str>>,
}

impl Default for PromptCatalog {
    fn default() -> Self {
        Self {
            routes: HashMap::new(),
            list_result: "{\"prompts\":[]}".into(),
            names: Vec::new(),
        }
    }
}

impl PromptCatalog {
    pub fn build<'a>(
        separator: &str,
        servers: impl IntoIterator<Item = ServerPrompts<'a>>,
    ) -> Self {
        let mut routes = HashMap::new();
        let mut names: Vec<Box<str>> = Vec::new();
        let mut listed: Vec<String> = Vec::new();
        for server in servers {
            for prompt in server.prompts {
                let Some(original) = prompt.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let exposed = names::expose(server.name, separator, original);
                if routes.contains_key(exposed.name.as_str()) {
                    tracing::warn!(
                        server = server.name,
                        prompt = original,
                        "two prompts get the same exposed name; keeping the first"
                    );
                    continue;
                }
                if server.listed {
                    let mut def = prompt.clone();
                    def["name"] = Value::String(exposed.name.clone());
                    listed.push(def.to_string());
                    names.push(exposed.name.as_str().into());
                }
                routes.insert(
                    exposed.name.into_boxed_str(),
                    PromptRoute {
                        server: server.index,
                        prompt: original.into(),
                    },
                );
            }
        }
        let list_result = format!("{{\"prompts\":[{}]}}", listed.join(",")).into();
        Self {
            routes,
            list_result,
            names,
        }
    }

    /// The route of an exposed prompt name, listed or not.
    pub fn route(&self, exposed: &str) -> Option<&PromptRoute> {
        self.routes.get(exposed)
    }

    pub fn list_result(&self) -> &Arc<str> {
        &self.list_result
    }

    /// How many prompts are listed.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Listed prompt names close to `wanted`, best first.
    pub fn suggestions(&self, wanted: &str) -> Vec<String> {
        orchestra_config::suggest::closest(wanted, self.names.iter().map(|n| &**n), 3)
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
                },
                ServerPrompts {
                    index: 1,
                    name: "b",
                    prompts: &down,
                    listed: false,
                },
            ],
        );
        let listed: Value = serde_json::from_str(c.list_result()).unwrap();
        assert_eq!(listed["prompts"].as_array().unwrap().len(), 1);
        assert_eq!(listed["prompts"][0]["name"], "a__greet");
        assert_eq!(listed["prompts"][0]["arguments"][0]["name"], "who");
        let r = c.route("a__greet").unwrap();
        assert_eq!((r.server, &*r.prompt), (0, "greet"));
        assert_eq!(&*c.route("b__plan").unwrap().prompt, "plan");
        assert_eq!(c.suggestions("a__gret"), vec!["a__greet".to_owned()]);
        assert_eq!(c.len(), 1);
    }
}
