//! Domain boundaries at run time: who serves each domain given which servers are up, and
//! where a down server's work goes. Pure functions of the config and a liveness predicate.

use orchestra_config::{Config, ServerName};
use serde::Serialize;

/// How well a domain is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Its owner is up.
    Normal,
    /// Its owner is down; a fallback or secondary serves part of it.
    Degraded,
    /// Nothing that can serve it is up.
    Lost,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Degraded => "degraded",
            Mode::Lost => "lost",
        }
    }
}

/// One domain's current situation.
#[derive(Debug, Clone, Serialize)]
pub struct DomainState {
    pub name: String,
    pub owner: String,
    /// Servers that may stand in for the owner (`domain_boundaries`), in order.
    pub secondary: Vec<String>,
    pub mode: Mode,
    /// The server answering for the domain now, if any.
    pub serving: Option<String>,
    /// What still works while degraded (from `server_alternatives`).
    pub degraded_capabilities: Vec<String>,
    /// What does not work now.
    pub lost_capabilities: Vec<String>,
}

/// The first server that is up along `server`'s fallback chain (`server_alternatives`),
/// skipping fallbacks that are themselves down. None if the chain has no live server.
pub fn live_fallback<'c>(
    config: &'c Config,
    server: &str,
    is_up: &dyn Fn(&str) -> bool,
) -> Option<&'c ServerName> {
    let mut current = server;
    // Chains are acyclic (validated), so this ends within the number of alternatives.
    for _ in 0..=config.alternatives.len() {
        let alt = config
            .alternatives
            .iter()
            .find(|a| a.server.as_str() == current)?;
        if is_up(alt.fallback.as_str()) {
            return Some(&alt.fallback);
        }
        current = alt.fallback.as_str();
    }
    None
}

/// Every domain's mode and serving server.
pub fn states(config: &Config, is_up: &dyn Fn(&str) -> bool) -> Vec<DomainState> {
    config
        .domains
        .iter()
        .map(|d| {
            let owner = d.primary.as_str();
            let secondary: Vec<String> =
                d.secondary.iter().map(|s| s.as_str().to_owned()).collect();
            let alt = config
                .alternatives
                .iter()
                .find(|a| a.server.as_str() == owner);
            let (degraded_caps, lost_caps) = alt.map_or((Vec::new(), Vec::new()), |a| {
                (a.degraded_capabilities.clone(), a.lost_capabilities.clone())
            });
            if is_up(owner) {
                return DomainState {
                    name: d.name.clone(),
                    owner: owner.to_owned(),
                    secondary: secondary.clone(),
                    mode: Mode::Normal,
                    serving: Some(owner.to_owned()),
                    degraded_capabilities: Vec::new(),
                    lost_capabilities: Vec::new(),
                };
            }
            let stand_in = live_fallback(config, owner, is_up)
                .or_else(|| d.secondary.iter().find(|s| is_up(s.as_str())))
                .map(|s| s.as_str().to_owned());
            match stand_in {
                Some(serving) => DomainState {
                    name: d.name.clone(),
                    owner: owner.to_owned(),
                    secondary: secondary.clone(),
                    mode: Mode::Degraded,
                    serving: Some(serving),
                    degraded_capabilities: degraded_caps,
                    lost_capabilities: lost_caps,
                },
                None => DomainState {
                    name: d.name.clone(),
                    owner: owner.to_owned(),
                    secondary: secondary.clone(),
                    mode: Mode::Lost,
                    serving: None,
                    degraded_capabilities: Vec::new(),
                    lost_capabilities: degraded_caps.into_iter().chain(lost_caps).collect(),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_config::{load_from_str, Format};
    use std::path::Path;

    fn config() -> Config {
        let yaml = r#"
servers:
  db: {command: x}
  files: {command: x}
  backup: {command: x}
  web: {command: x}
domain_boundaries:
  data_persistence: {primary: db, secondary: [backup]}
  file_operations: files
  research: web
server_alternatives:
  db: {fallback: files, degraded_capabilities: [file_storage], lost_capabilities: [queries]}
  files: {fallback: backup}
"#;
        load_from_str(yaml, Format::Yaml, Path::new("t.yaml"), &|_| None).unwrap()
    }

    fn up(list: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |s| list.contains(&s)
    }

    #[test]
    fn owner_up_is_normal() {
        let s = states(&config(), &up(&["db", "files", "web"]));
        assert_eq!(s[0].name, "data_persistence");
        assert_eq!(
            (s[0].mode, s[0].serving.as_deref()),
            (Mode::Normal, Some("db"))
        );
    }

    #[test]
    fn owner_down_falls_back_along_the_chain_then_to_secondaries() {
        let c = config();
        let s = states(&c, &up(&["files", "web"]));
        assert_eq!(
            (s[0].mode, s[0].serving.as_deref()),
            (Mode::Degraded, Some("files"))
        );
        assert_eq!(s[0].degraded_capabilities, ["file_storage"]);
        assert_eq!(s[0].lost_capabilities, ["queries"]);
        // files is down too: the chain continues to its own fallback.
        assert_eq!(
            live_fallback(&c, "db", &up(&["backup"])).map(ServerName::as_str),
            Some("backup")
        );
        // No alternative up, but a secondary is.
        let c2 = config();
        let s = states(&c2, &up(&["backup"]));
        assert_eq!(s[0].serving.as_deref(), Some("backup"));
    }

    #[test]
    fn nothing_up_is_lost_with_every_capability() {
        let s = states(&config(), &up(&[]));
        assert_eq!((s[0].mode, s[0].serving.as_deref()), (Mode::Lost, None));
        assert_eq!(s[0].lost_capabilities, ["file_storage", "queries"]);
        let research = s.iter().find(|d| d.name == "research").unwrap();
        assert_eq!(research.mode, Mode::Lost);
    }
}
