//! The merged resource catalog the client sees: each ready server's resources and resource
//! templates under exposed URIs (`resource_uri.rs`), pre-serialized in pages, plus what it
//! takes to find the owner of a child's *own* URI — one a child returned inside a tool result
//! (a resource link) or an embedded resource, which the client may read as it is.

use std::collections::HashMap;

use serde_json::Value;

use crate::listing::{ListKind, Merged, Source};
use crate::names::Exposed;
use crate::resource_uri;

/// One server's contribution.
pub struct ServerResources<'a> {
    pub index: usize,
    pub name: &'a str,
    pub resources: &'a [Value],
    pub templates: &'a [Value],
    /// Whether the client sees them (ready servers only). A down server's last known
    /// resources stay known, so a read says "down" and can go to a fallback.
    pub listed: bool,
    /// Under the server's name (the default), or as the child named them (`namespace: false`).
    pub namespaced: bool,
}

/// An immutable snapshot, rebuilt with the other catalogs whenever a server's lists change.
#[derive(Debug)]
pub struct ResourceCatalog {
    resources: Merged,
    templates: Merged,
    /// A child's own URI → the servers that list it, in configuration order.
    by_child_uri: HashMap<Box<str>, Vec<usize>>,
    /// Each template's literal prefix (text before its first `{`), longest first.
    template_prefixes: Vec<(Box<str>, usize)>,
    /// URI scheme → the servers whose resources or templates use it.
    schemes: HashMap<Box<str>, Vec<usize>>,
}

impl Default for ResourceCatalog {
    fn default() -> Self {
        Self::build(&[], std::iter::empty())
    }
}

fn expose(server: &str, uri: &str) -> Exposed {
    Exposed {
        name: resource_uri::expose(server, uri),
        shortened: false,
    }
}

impl ResourceCatalog {
    /// `own`: the gateway's own resources, listed first as they are.
    pub fn build<'a>(
        own: &[Value],
        servers: impl IntoIterator<Item = ServerResources<'a>>,
    ) -> Self {
        let servers: Vec<ServerResources<'a>> = servers.into_iter().collect();
        let resources = Merged::build(
            ListKind::Resources,
            own,
            servers.iter().map(|s| Source {
                index: s.index,
                name: s.name,
                items: s.resources,
                listed: s.listed,
                namespaced: s.namespaced,
            }),
            expose,
        );
        let templates = Merged::build(
            ListKind::ResourceTemplates,
            &[],
            servers.iter().map(|s| Source {
                index: s.index,
                name: s.name,
                items: s.templates,
                listed: s.listed,
                namespaced: s.namespaced,
            }),
            expose,
        );
        let mut by_child_uri: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut template_prefixes = Vec::new();
        let mut schemes: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut note_scheme = |uri: &str, server: usize| {
            if let Some(scheme) = resource_uri::scheme_of(uri) {
                let owners = schemes
                    .entry(scheme.to_ascii_lowercase().into())
                    .or_default();
                if !owners.contains(&server) {
                    owners.push(server);
                }
            }
        };
        for s in &servers {
            for uri in s.resources.iter().filter_map(|r| r.get("uri")?.as_str()) {
                let owners = by_child_uri.entry(uri.into()).or_default();
                if !owners.contains(&s.index) {
                    owners.push(s.index);
                }
                note_scheme(uri, s.index);
            }
            for template in s
                .templates
                .iter()
                .filter_map(|t| t.get("uriTemplate")?.as_str())
            {
                template_prefixes.push((resource_uri::template_prefix(template).into(), s.index));
                note_scheme(template, s.index);
            }
        }
        template_prefixes
            .sort_by_key(|(prefix, _): &(Box<str>, usize)| std::cmp::Reverse(prefix.len()));
        Self {
            resources,
            templates,
            by_child_uri,
            template_prefixes,
            schemes,
        }
    }

    pub fn resources(&self) -> &Merged {
        &self.resources
    }

    pub fn templates(&self) -> &Merged {
        &self.templates
    }

    /// The servers that may own a child's own URI, most likely first: those that list it,
    /// then those with a template it fits (longest literal prefix first; a prefix that is
    /// only the scheme says nothing), then those whose URIs share its scheme.
    pub fn owners_of(&self, child_uri: &str) -> Vec<usize> {
        let mut owners: Vec<usize> = self
            .by_child_uri
            .get(child_uri)
            .cloned()
            .unwrap_or_default();
        let scheme_len = resource_uri::scheme_of(child_uri).map_or(0, |s| s.len() + 1);
        for (prefix, server) in &self.template_prefixes {
            let telling = prefix.trim_end_matches('/').len() > scheme_len;
            if telling && child_uri.starts_with(&**prefix) && !owners.contains(server) {
                owners.push(*server);
            }
        }
        if let Some(same) = resource_uri::scheme_of(child_uri)
            .and_then(|s| self.schemes.get(s.to_ascii_lowercase().as_str()))
        {
            for server in same {
                if !owners.contains(server) {
                    owners.push(*server);
                }
            }
        }
        owners
    }

    /// Whether `server` has the child URI `child_uri`: lists it, or has a template it fits.
    pub fn serves(&self, server: usize, child_uri: &str) -> bool {
        self.by_child_uri
            .get(child_uri)
            .is_some_and(|owners| owners.contains(&server))
            || self
                .template_prefixes
                .iter()
                .any(|(p, s)| *s == server && !p.is_empty() && child_uri.starts_with(&**p))
    }

    /// Listed resource and template URIs of `servers` (alternatives for guidance).
    pub fn uris_of(&self, servers: &[String]) -> Vec<String> {
        self.resources
            .keys()
            .chain(self.templates.keys())
            .filter(|uri| {
                resource_uri::split(uri).is_some_and(|(s, _)| servers.iter().any(|x| x == s))
            })
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> ResourceCatalog {
        let a = [json!({"uri": "file:///tmp/a.txt", "name": "a"})];
        let a_templates = [json!({"uriTemplate": "file:///{path}", "name": "any file"})];
        let b = [json!({"uri": "demo://resource/static/1", "name": "one"})];
        let b_templates = [json!({"uriTemplate": "demo://resource/dynamic/{id}", "name": "dyn"})];
        ResourceCatalog::build(
            &[],
            [
                ServerResources {
                    index: 0,
                    name: "files",
                    resources: &a,
                    templates: &a_templates,
                    listed: true,
                    namespaced: true,
                },
                ServerResources {
                    index: 1,
                    name: "everything",
                    resources: &b,
                    templates: &b_templates,
                    listed: true,
                    namespaced: true,
                },
            ],
        )
    }

    #[test]
    fn lists_exposed_uris_and_templates() {
        let c = catalog();
        let page: Value = serde_json::from_str(c.resources().first_page()).unwrap();
        assert_eq!(
            page["resources"][0]["uri"],
            "orchestra://files/file:///tmp/a.txt"
        );
        assert_eq!(page["resources"][1]["name"], "one");
        let page: Value = serde_json::from_str(c.templates().first_page()).unwrap();
        assert_eq!(
            page["resourceTemplates"][1]["uriTemplate"],
            "orchestra://everything/demo://resource/dynamic/{id}"
        );
    }

    #[test]
    fn a_childs_own_uri_finds_its_owner() {
        let c = catalog();
        assert_eq!(c.owners_of("demo://resource/static/1"), vec![1]);
        assert_eq!(c.owners_of("demo://resource/dynamic/42"), vec![1]);
        // Seen only in a tool result: the scheme still points at the server that uses it.
        assert_eq!(c.owners_of("demo://resource/links/7"), vec![1]);
        assert_eq!(c.owners_of("file:///etc/hosts"), vec![0]);
        assert!(c.owners_of("https://example.com").is_empty());
        assert!(c.serves(0, "file:///x"));
        assert!(!c.serves(1, "file:///x"));
    }
}
