//! The gateway crate's modules form layers, each using only its own layer and those below
//! (docs/architecture.md, "Layers"). This reads every `crate::<module>` path in the sources
//! (tests and comments left out) and fails on an edge that goes up, on a module missing from
//! the table below, and on any cycle between modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first.
const LAYERS: &[&[&str]] = &[
    // Leaves: no knowledge of children, sessions or routing.
    &[
        "fnv",
        "time",
        "jsonrpc",
        "outbox",
        "sink",
        "journal",
        "reply",
        "names",
        "error",
        "redact",
        "events",
        "logging",
        "listing",
        "resource_uri",
        "tool_def",
        "catalog_cache",
        "domains",
    ],
    // Supervision of one child, transport and containment; knows no session.
    &["containment", "child"],
    // Merged catalogs.
    &["catalog", "prompts", "resources"],
    // Shared state: the session registry, requests to clients, the hub.
    &["sessions", "upstream", "hub"],
    // What every caller uses: routing, health, guidance.
    &["route", "health", "guidance"],
    // The client's side.
    &["front"],
    // The composition root.
    &["app"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<module>` references in the non-test, non-comment code of `text`.
fn references(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let module: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                found.insert(module);
            }
        }
    }
    found
}

/// The module graph: top-level module → the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if first == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let uses = graph.entry(first.clone()).or_default();
        for module in references(&text) {
            if module != first {
                uses.insert(module);
            }
        }
    }
    graph
}

#[test]
fn every_module_uses_only_its_own_layer_and_those_below() {
    let mut problems = Vec::new();
    for (module, uses) in graph() {
        let Some(own) = layer_of(&module) else {
            problems.push(format!(
                "module `{module}` is in no layer: add it to LAYERS"
            ));
            continue;
        };
        for used in uses {
            match layer_of(&used) {
                None => problems.push(format!("`{module}` uses `{used}`, which is in no layer")),
                Some(layer) if layer > own => problems.push(format!(
                    "`{module}` (layer {own}) uses `{used}` (layer {layer}): an upward edge"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_modules_use_each_other_even_indirectly() {
    let graph = graph();
    // Depth-first search with colours; a grey node met again closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
            panic!("modules use each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_reader_sees_edges_in_code_but_not_in_comments_or_tests() {
    let text = "use crate::child::Connection;\n// crate::front is only mentioned\n\
                fn f() { crate::time::rfc3339(x) }\n#[cfg(test)]\nmod tests { use crate::app; }";
    let found: Vec<String> = references(text).into_iter().collect();
    assert_eq!(found, ["child", "time"]);
}
