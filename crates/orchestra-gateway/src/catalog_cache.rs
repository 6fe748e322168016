//! The last known catalog of each server, kept on disk so the next start can answer the
//! client's first `tools/list` at once while children are still starting ("instant start").
//!
//! One file per server, named by a fingerprint of everything in its config that can change
//! what it lists (command, args, env, cwd, tool filters): a changed config never reuses a
//! stale list. The real list replaces the cached one as soon as the child is ready; if they
//! differ, the client gets `notifications/tools/list_changed`.

use std::path::{Path, PathBuf};

use orchestra_config::Server;
use serde_json::Value;

/// Where catalogs are kept; `None` disables caching.
#[derive(Debug, Clone, Default)]
pub struct CatalogCache {
    dir: Option<PathBuf>,
}

impl CatalogCache {
    /// `$ORCHESTRA_CACHE_DIR`, else `$XDG_CACHE_HOME/mcp-orchestra`, else
    /// `~/.cache/mcp-orchestra`; disabled when none can be determined.
    pub fn from_env() -> Self {
        let dir = std::env::var_os("ORCHESTRA_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("mcp-orchestra"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mcp-orchestra"))
            });
        Self {
            dir: dir.map(|d| d.join("catalog")),
        }
    }

    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The tools `server` listed last time it ran with this same configuration.
    pub fn load(&self, server: &Server) -> Option<Vec<Value>> {
        let text = std::fs::read_to_string(self.path(server)?).ok()?;
        match serde_json::from_str::<Value>(&text)
            .ok()?
            .get_mut("tools")?
            .take()
        {
            Value::Array(tools) => Some(tools),
            _ => None,
        }
    }

    /// The `instructions` `server` gave last time it ran with this same configuration.
    pub fn load_instructions(&self, server: &Server) -> Option<String> {
        let text = std::fs::read_to_string(self.path(server)?).ok()?;
        serde_json::from_str::<Value>(&text)
            .ok()?
            .get("instructions")?
            .as_str()
            .map(str::to_owned)
    }

    /// Remembers `tools` (and the `instructions` it gave) for `server` (atomically; failures
    /// only cost the next instant start).
    pub fn store(&self, server: &Server, tools: &[Value], instructions: Option<&str>) {
        let Some(path) = self.path(server) else {
            return;
        };
        let body = serde_json::json!({
            "server": server.name.as_str(),
            "tools": tools,
            "instructions": instructions,
        })
        .to_string();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == body) {
            return;
        }
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &body)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::debug!(server = %server.name, error = %e, "could not cache the catalog");
        }
    }

    fn path(&self, server: &Server) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{}-{:016x}.json", server.name, fingerprint(server))))
    }
}

/// Everything in a server's config that can change what it lists.
fn fingerprint(server: &Server) -> u64 {
    let mut parts: Vec<String> = vec![server.command.clone()];
    parts.extend(server.args.iter().cloned());
    parts.extend(server.env.iter().map(|(k, v)| format!("{k}={v}")));
    parts.push(
        server
            .cwd
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default(),
    );
    parts.extend(
        server
            .tools
            .allow
            .iter()
            .map(|g| format!("+{}", g.as_str())),
    );
    parts.extend(server.tools.deny.iter().map(|g| format!("-{}", g.as_str())));
    // A remote server is its URL and transport (header values are left out: they may be
    // secrets, and this hash is written to disk).
    if let Some(remote) = &server.remote {
        parts.push(format!("url={} {:?}", remote.url, remote.transport));
    }
    parts.push(env!("CARGO_PKG_VERSION").to_owned());
    crate::fnv::hash(parts.join("\0").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_config::{load_from_str, Format};

    fn server(args: &str) -> Server {
        let yaml = format!("servers:\n  s: {{command: x, args: [{args}]}}\n");
        load_from_str(&yaml, Format::Yaml, Path::new("t.yaml"), &|_| None)
            .unwrap()
            .servers
            .remove(0)
    }

    #[test]
    fn round_trips_and_ignores_other_configs() {
        let dir = std::env::temp_dir().join(format!("orchestra-cache-test-{}", std::process::id()));
        let cache = CatalogCache::in_dir(&dir);
        let tools = vec![serde_json::json!({"name": "t", "inputSchema": {"type": "object"}})];
        assert!(cache.load(&server("a")).is_none());
        cache.store(&server("a"), &tools, Some("use t"));
        assert_eq!(cache.load(&server("a")), Some(tools.clone()));
        assert_eq!(
            cache.load_instructions(&server("a")).as_deref(),
            Some("use t")
        );
        cache.store(&server("a"), &tools, None);
        assert_eq!(cache.load_instructions(&server("a")), None);
        assert!(
            cache.load(&server("b")).is_none(),
            "another config must not reuse it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_remote_server_is_told_apart_by_its_url() {
        let remote = |url: &str| {
            let yaml = format!("servers:\n  s: {{url: \"{url}\"}}\n");
            load_from_str(&yaml, Format::Yaml, Path::new("t.yaml"), &|_| None)
                .unwrap()
                .servers
                .remove(0)
        };
        assert_ne!(
            fingerprint(&remote("http://a.example/mcp")),
            fingerprint(&remote("http://b.example/mcp"))
        );
    }
}
