//! Plan compilation: references by index, id and title; every rejection, precisely worded;
//! the design document's stages, streams and sync points as one graph.

use orchestra_tasks::compile::{compile, input::PlanInput};
use orchestra_tasks::error::Problem;
use orchestra_tasks::model::{Origin, Plan};
use serde_json::{json, Value};

fn plan(v: Value) -> Plan {
    let input: PlanInput = serde_json::from_value(v).unwrap();
    compile(input, "task-t", 0).unwrap_or_else(|p| panic!("rejected: {p:#?}"))
}

fn problems(v: Value) -> Vec<String> {
    problems_in(serde_json::from_value(v).unwrap())
}

/// From raw text, as a client sends it: `parallel_streams` keeps the order written (a
/// `json!` value sorts object keys).
fn raw(text: &str) -> PlanInput {
    serde_json::from_str(text).unwrap()
}

fn problems_in(input: PlanInput) -> Vec<String> {
    match compile(input, "task-t", 0) {
        Ok(p) => panic!("accepted: {p:#?}"),
        Err(ps) => ps
            .iter()
            .map(|Problem { path, message }| format!("{path}: {message}"))
            .collect(),
    }
}

/// `title → titles of its dependencies`.
fn deps_by_title(p: &Plan) -> Vec<(String, Vec<String>)> {
    p.subtasks
        .iter()
        .map(|s| {
            (
                s.title.clone(),
                s.depends_on
                    .iter()
                    .map(|&d| p.subtasks[d].title.clone())
                    .collect(),
            )
        })
        .collect()
}

fn deps_of<'a>(p: &'a Plan, title: &str) -> Vec<&'a str> {
    let s = p
        .subtasks
        .iter()
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("no {title}"));
    s.depends_on
        .iter()
        .map(|&d| p.subtasks[d].title.as_str())
        .collect()
}

#[test]
fn dependencies_by_index_id_and_title() {
    let p = plan(json!({
        "description": "shop",
        "subtasks": [
            { "title": "Architecture", "specialist": "system_architect", "id": "arch" },
            { "title": "Database Design", "specialist": "database_architect", "depends_on": [0] },
            { "title": "Services", "specialist": "backend_developer", "depends_on": ["arch", "Database Design"] },
            { "title": "Tests", "specialist": "tester", "depends_on": [2, "Services", "arch"] }
        ]
    }));
    assert_eq!(deps_of(&p, "Database Design"), ["Architecture"]);
    assert_eq!(deps_of(&p, "Services"), ["Architecture", "Database Design"]);
    assert_eq!(
        deps_of(&p, "Tests"),
        ["Architecture", "Services"],
        "same subtask twice counts once"
    );
    assert_eq!(p.subtasks[2].id, "task-t.2");
    assert_eq!(p.subtasks[0].key.as_deref(), Some("arch"));
    assert_eq!(p.ready(), vec![0]);
}

#[test]
fn unknown_references_are_named_with_a_suggestion() {
    let ps = problems(json!({
        "description": "d",
        "subtasks": [
            { "title": "Database Design", "specialist": "dba" },
            { "title": "B", "specialist": "x", "depends_on": ["Databse Design", 7, "nothing like it"] }
        ]
    }));
    assert_eq!(
        ps,
        [
            "subtasks[1].depends_on[0]: unknown subtask \"Databse Design\" (did you mean \"Database Design\"?)",
            "subtasks[1].depends_on[1]: index 7 is out of range: `subtasks` has 2 entries (0 to 1)",
            "subtasks[1].depends_on[2]: unknown subtask \"nothing like it\"",
        ]
    );
}

#[test]
fn duplicates_and_ambiguity_are_rejected() {
    let ps = problems(json!({
        "description": "d",
        "subtasks": [
            { "title": "A", "specialist": "x", "id": "a" },
            { "title": "A", "specialist": "x", "id": "a" },
            { "title": "a", "specialist": "x" },
            { "title": "C", "specialist": "x", "depends_on": ["a"] }
        ]
    }));
    assert!(ps.contains(&"subtasks[1].title: duplicate title \"A\": subtasks[0] has it too (titles name subtasks, so they must differ)".to_string()), "{ps:#?}");
    assert!(
        ps.contains(&"subtasks[1].id: duplicate id \"a\": subtasks[0] has it too".to_string()),
        "{ps:#?}"
    );
    assert!(ps.contains(&"subtasks[3].depends_on[0]: \"a\" is ambiguous: the id of subtasks[0] and the title of subtasks[2]".to_string()), "{ps:#?}");
}

#[test]
fn cycles_are_rejected_naming_every_member() {
    let ps = problems(json!({
        "description": "d",
        "subtasks": [
            { "title": "A", "specialist": "x", "depends_on": ["C"] },
            { "title": "B", "specialist": "x", "depends_on": ["A"] },
            { "title": "C", "specialist": "x", "depends_on": ["B"] },
            { "title": "D", "specialist": "x", "depends_on": ["D"] },
            { "title": "E", "specialist": "x" },
            { "title": "F", "specialist": "x", "depends_on": ["G"] },
            { "title": "G", "specialist": "x", "depends_on": ["F", "E"] }
        ]
    }));
    assert_eq!(
        ps,
        [
            "subtasks[3].depends_on[0]: \"D\" depends on itself",
            "subtasks[0]: dependency cycle: \"A\" → \"C\" → \"B\" → \"A\"",
            "subtasks[5]: dependency cycle: \"F\" → \"G\" → \"F\"",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once_and_unknown_keys_are_errors() {
    let ps = problems(json!({
        "description": " ",
        "subtasks": [
            { "title": "", "specialist": " " },
            { "title": "X", "specialist": "x", "stage": "build", "stream": "web" }
        ]
    }));
    assert_eq!(
        ps,
        [
            "description: is empty: say what the plan is for",
            "subtasks[0].title: is empty",
            "subtasks[0].specialist: is empty: name a role (architect, implementer, tester, …)",
            "subtasks[1].stage: unknown stage \"build\" (declare it in `workflow_stages`)",
            "subtasks[1].stream: unknown stream \"web\" (declare it in `parallel_streams`)",
        ]
    );
    let typo: Result<PlanInput, _> = serde_json::from_value(json!({
        "description": "d", "subtasks": [{ "title": "A", "specialist": "x", "depend_on": [] }]
    }));
    assert!(typo
        .unwrap_err()
        .to_string()
        .contains("unknown field `depend_on`"));
    let nothing = problems(json!({ "description": "d" }));
    assert_eq!(nothing, ["subtasks: the plan has no subtasks: give `subtasks`, `workflow_stages` or `parallel_streams`"]);
}

/// Technique 1, exactly as the design document writes it: stages without subtasks become
/// subtasks for their orchestrator_role, chained by `depends_on`.
#[test]
fn workflow_stages_of_the_design_document_compile_to_a_pipeline() {
    let p = plan(json!({
        "description": "pipeline",
        "workflow_stages": [
            { "stage": "discovery", "servers": ["web-search", "api-client"], "orchestrator_role": "research_coordinator" },
            { "stage": "design", "servers": ["database-mcp", "claude-code"], "orchestrator_role": "system_architect", "depends_on": ["discovery"] },
            { "stage": "implementation", "servers": ["claude-code", "docker-mcp"], "orchestrator_role": "implementation_manager", "depends_on": ["design"] }
        ]
    }));
    assert_eq!(
        deps_by_title(&p),
        [
            ("discovery".to_string(), vec![]),
            ("design".to_string(), vec!["discovery".to_string()]),
            ("implementation".to_string(), vec!["design".to_string()]),
        ]
    );
    assert_eq!(p.subtasks[1].specialist, "system_architect");
    assert_eq!(p.subtasks[1].servers, ["database-mcp", "claude-code"]);
    assert!(p.subtasks.iter().all(|s| s.origin == Origin::Stage));
    assert_eq!(
        p.stages[2].orchestrator_role.as_deref(),
        Some("implementation_manager")
    );
}

#[test]
fn a_stage_subtask_depends_on_every_subtask_of_the_stages_its_stage_depends_on() {
    let p = plan(json!({
        "description": "d",
        "workflow_stages": [
            { "stage": "research", "servers": ["search"] },
            { "stage": "build", "depends_on": ["research"], "servers": ["files"] },
            { "stage": "ship", "depends_on": ["build", "research"], "orchestrator_role": "devops" }
        ],
        "subtasks": [
            { "title": "R1", "specialist": "researcher", "stage": "research" },
            { "title": "R2", "specialist": "researcher", "stage": "research" },
            { "title": "B1", "specialist": "implementer", "stage": "build", "servers": ["db"] },
            { "title": "B2", "specialist": "implementer", "stage": "build", "depends_on": ["B1"] }
        ]
    }));
    assert_eq!(deps_of(&p, "B1"), ["R1", "R2"]);
    assert_eq!(deps_of(&p, "B2"), ["R1", "R2", "B1"]);
    assert_eq!(
        deps_of(&p, "ship"),
        ["R1", "R2", "B1", "B2"],
        "a stage with no subtasks becomes one"
    );
    assert_eq!(
        p.subtasks[2].servers,
        ["db", "files"],
        "own servers first, then the stage's"
    );
    assert_eq!(p.subtasks[4].specialist, "devops");
    assert_eq!(p.ready(), vec![0, 1]);
}

#[test]
fn stage_problems_are_named() {
    let ps = problems(json!({
        "description": "d",
        "workflow_stages": [
            { "stage": "a", "depends_on": ["c"] },
            { "stage": "b", "depends_on": ["a", "dessign"] },
            { "stage": "c", "depends_on": ["b"] },
            { "stage": "a" },
            { "stage": "design" }
        ],
        "subtasks": [{ "title": "design", "specialist": "architect" }]
    }));
    assert!(
        ps.contains(
            &"workflow_stages[3].stage: duplicate stage \"a\": workflow_stages[0] has it too"
                .into()
        ),
        "{ps:#?}"
    );
    assert!(ps.contains(&"workflow_stages[1].depends_on[1]: unknown stage \"dessign\" (did you mean \"design\"?)".into()), "{ps:#?}");
    assert!(
        ps.contains(
            &"workflow_stages[0].depends_on: stage cycle: \"a\" → \"c\" → \"b\" → \"a\"".into()
        ),
        "{ps:#?}"
    );
    assert!(ps.iter().any(|p| p.starts_with("workflow_stages[4]: stage \"design\" has no subtasks, so it becomes a subtask of that title, but subtasks[0] already has it")), "{ps:#?}");
}

/// Technique 2, exactly as the design document writes it.
#[test]
fn parallel_streams_and_sync_points_of_the_design_document() {
    let p = compile(raw(r#"{
        "description": "app",
        "parallel_streams": {
            "frontend_stream": { "servers": ["claude-code", "web-search"], "subtasks": ["ui_design", "component_implementation", "testing"] },
            "backend_stream": { "servers": ["claude-code", "database-mcp", "api-client"], "subtasks": ["api_design", "database_setup", "service_implementation"] },
            "infrastructure_stream": { "servers": ["docker-mcp", "monitoring", "api-client"], "subtasks": ["container_setup", "orchestration", "monitoring_config"] }
        },
        "sync_points": [
            { "after_streams": ["frontend_stream", "backend_stream"], "coordination": "integration_testing", "servers": ["claude-code", "api-client"] }
        ]
    }"#), "task-t", 0).unwrap();
    assert_eq!(p.streams[0].stream, "frontend_stream");
    assert_eq!(p.subtasks.len(), 10);
    assert_eq!(deps_of(&p, "ui_design"), Vec::<&str>::new());
    assert_eq!(deps_of(&p, "component_implementation"), ["ui_design"]);
    assert_eq!(deps_of(&p, "testing"), ["component_implementation"]);
    assert_eq!(deps_of(&p, "service_implementation"), ["database_setup"]);
    assert_eq!(deps_of(&p, "monitoring_config"), ["orchestration"]);
    assert_eq!(
        deps_of(&p, "integration_testing"),
        ["testing", "service_implementation"]
    );
    let sync = p
        .subtasks
        .iter()
        .find(|s| s.title == "integration_testing")
        .unwrap();
    assert_eq!(sync.origin, Origin::SyncPoint);
    assert_eq!(sync.specialist, "coordinator");
    assert_eq!(sync.servers, ["claude-code", "api-client"]);
    assert_eq!(p.subtasks[1].stream.as_deref(), Some("frontend_stream"));
    assert_eq!(p.subtasks[1].servers, ["claude-code", "web-search"]);
    assert_eq!(
        p.subtasks[1].specialist, "component_implementation",
        "named after itself"
    );
    let ready: Vec<&str> = p
        .ready()
        .iter()
        .map(|&i| p.subtasks[i].title.as_str())
        .collect();
    assert_eq!(
        ready,
        ["ui_design", "api_design", "container_setup"],
        "one per stream, in parallel"
    );
}

#[test]
fn stream_members_may_be_given_subtasks_and_may_opt_out_of_the_chain() {
    let p = plan(json!({
        "description": "d",
        "subtasks": [
            { "title": "Schema", "specialist": "database_architect" },
            { "title": "Docs", "specialist": "documenter", "stream": "back", "depends_on": [] },
            { "title": "Integration", "specialist": "tester", "description": "end to end" }
        ],
        "parallel_streams": {
            "back": { "subtasks": ["Schema", "API"], "specialist": "api_specialist" },
            "ops": { "subtasks": ["Images", "Deploy"], "sequential": false }
        },
        "sync_points": [{ "after_streams": ["back", "ops"], "coordination": "Integration" }]
    }));
    assert_eq!(deps_of(&p, "API"), ["Schema"]);
    assert_eq!(
        p.subtasks
            .iter()
            .find(|s| s.title == "API")
            .unwrap()
            .specialist,
        "api_specialist"
    );
    assert_eq!(
        deps_of(&p, "Docs"),
        Vec::<&str>::new(),
        "its own depends_on [] replaces the chain link"
    );
    assert_eq!(deps_of(&p, "Deploy"), Vec::<&str>::new(), "not sequential");
    assert_eq!(
        deps_of(&p, "Integration"),
        ["Docs", "API", "Images", "Deploy"],
        "the given subtask titled like the coordination is the sync point; after every last subtask of both streams"
    );
    assert_eq!(p.subtasks[2].origin, Origin::Given);
}

#[test]
fn stream_and_sync_problems_are_named() {
    let ps = problems_in(raw(r#"{
        "description": "d",
        "subtasks": [
            { "title": "A", "specialist": "x", "stream": "one" },
            { "title": "B", "specialist": "x" }
        ],
        "parallel_streams": {
            "one": { "subtasks": ["B", "B"] },
            "two": { "subtasks": ["A", "B"] },
            "three": { "subtasks": [] }
        },
        "sync_points": [
            { "after_streams": ["one", "tow"], "coordination": "sync" },
            { "after_streams": [], "coordination": "" },
            { "after_streams": ["one"], "coordination": "B" }
        ]
    }"#));
    let expected = [
        "parallel_streams.one.subtasks[1]: \"B\" is listed twice in this stream",
        "parallel_streams.two.subtasks[0]: \"A\" is already in stream \"one\": a subtask belongs to one stream",
        "parallel_streams.two.subtasks[1]: \"B\" is already in stream \"one\": a subtask belongs to one stream",
        "parallel_streams.three.subtasks: the stream has no subtasks",
        "sync_points[0].after_streams[1]: unknown stream \"tow\" (did you mean \"two\"?)",
        "sync_points[1].coordination: is empty: name what happens at the sync point",
        "sync_points[2].coordination: \"B\" is in stream \"one\", so it cannot wait for that stream's end",
    ];
    assert_eq!(ps, expected);
    let own_stream = problems_in(raw(r#"{
        "description": "d",
        "subtasks": [{ "title": "A", "specialist": "x", "stream": "one" }],
        "parallel_streams": { "two": { "subtasks": ["A"] }, "one": {} }
    }"#));
    assert_eq!(own_stream, ["parallel_streams.two.subtasks[0]: \"A\" is in stream \"one\" (its `stream`), not \"two\""]);
    let repeated: Result<PlanInput, _> = serde_json::from_str(
        r#"{"description":"d","parallel_streams":{"a":{"subtasks":["x"]},"a":{"subtasks":["y"]}}}"#,
    );
    assert!(repeated
        .unwrap_err()
        .to_string()
        .contains("stream \"a\" is given twice"));
}

#[test]
fn a_cycle_through_a_sync_point_is_rejected() {
    let ps = problems(json!({
        "description": "d",
        "subtasks": [{ "title": "Prep", "specialist": "x", "stream": "s", "depends_on": ["Sync"] }],
        "parallel_streams": { "s": { "subtasks": ["Prep"] } },
        "sync_points": [{ "after_streams": ["s"], "coordination": "Sync" }]
    }));
    assert_eq!(
        ps,
        ["subtasks[0]: dependency cycle: \"Prep\" → \"Sync\" → \"Prep\""]
    );
}
