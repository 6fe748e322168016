//! Specialist roles: who a subtask is for, and the guidance `execute_subtask` gives them.
//! Built-in roles carry text of our own; names are matched loosely (case, spaces, hyphens) and
//! through aliases (`system_architect` → architect); any other name gets a generic specialist
//! shaped by its name. The configuration extends or overrides roles through [`Specialists::with`].

use std::collections::HashMap;

use serde::Serialize;

/// The guidance for one role.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Specialist {
    /// The role's key (normalized: `database_architect`).
    pub name: String,
    /// One sentence: who you are for this subtask.
    pub role: String,
    pub expertise: Vec<String>,
    /// How to go about it, in order.
    pub approach: Vec<String>,
    /// Extra guidance from the configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance: Option<String>,
    /// `builtin`, `configured` or `generic` (a free-form name).
    pub source: &'static str,
}

/// What the configuration says about one role; a missing field keeps the built-in text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecialistOverride {
    pub role: Option<String>,
    pub expertise: Option<Vec<String>>,
    pub approach: Option<Vec<String>>,
    pub guidance: Option<String>,
}

/// Every known role, by normalized name, and the aliases that lead to them.
#[derive(Debug, Clone)]
pub struct Specialists {
    roles: HashMap<String, Specialist>,
    aliases: HashMap<String, String>,
}

/// (name, role, expertise, approach, aliases)
type Builtin = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const BUILTIN: &[Builtin] = &[
    (
        "architect",
        "You are the architect: you decide the structure everything else is built on.",
        &["system decomposition and boundaries", "interfaces and data flow", "trade-offs between simplicity, performance and change", "failure modes across components"],
        &["Read the task and the results you were given; list the requirements and constraints.", "Sketch the components, their responsibilities and the interfaces between them.", "Name the decisions and the alternatives you rejected, with why.", "Record the design as an artifact the implementers can follow."],
        &["system_architect", "software_architect", "solution_architect", "solutions_architect", "architecture"],
    ),
    (
        "implementer",
        "You are the implementer: you turn the design into working, tested code.",
        &["writing clear, idiomatic code", "incremental change with small verifiable steps", "error handling and edge cases", "keeping the build green"],
        &["Re-read the design and the dependencies' results; note the interfaces you must honour.", "Make the smallest change that works, then the next.", "Run the build and the tests after each step.", "List the files you changed and anything left undone."],
        &["developer", "backend_developer", "frontend_developer", "fullstack_developer", "full_stack_developer", "software_engineer", "engineer", "coder", "programmer", "implementation"],
    ),
    (
        "tester",
        "You are the tester: you find out whether the work really does what it should.",
        &["test design from requirements", "edge cases and failure injection", "reproducible test cases", "telling a real failure from a flaky one"],
        &["Derive the cases from the requirements, not from the code.", "Cover the failure paths as well as the happy path.", "Run everything; record exact commands and outcomes.", "Report defects with the steps that reproduce them."],
        &["qa", "qa_engineer", "test_engineer", "testing", "quality_assurance"],
    ),
    (
        "reviewer",
        "You are the reviewer: you judge the work against its purpose before others build on it.",
        &["correctness and clarity", "security and failure handling", "consistency with the design", "actionable feedback"],
        &["Read what was asked, then what was done.", "Check correctness first, then clarity, then style.", "Give each finding a location, the problem and a fix.", "Complete with needs_revision when something must change."],
        &["code_reviewer", "review"],
    ),
    (
        "researcher",
        "You are the researcher: you gather the facts the plan depends on and say how sure you are.",
        &["finding primary sources", "comparing options fairly", "separating evidence from opinion", "concise summaries"],
        &["State the questions to answer.", "Search, prefer primary and recent sources, note each one.", "Compare the options against the task's constraints.", "Summarize findings with sources and open questions."],
        &["research", "research_analyst", "analyst"],
    ),
    (
        "debugger",
        "You are the debugger: you find the cause of a failure, not just its symptom.",
        &["reproducing failures", "narrowing down by bisection", "reading logs and traces", "fixing the cause with a regression test"],
        &["Reproduce the failure reliably first.", "Form one hypothesis at a time and test it.", "Fix the cause and add a test that failed before the fix.", "Record the cause, the fix and the evidence."],
        &["troubleshooter", "debugging"],
    ),
    (
        "documenter",
        "You are the documenter: you write what the next reader needs to use and change the work.",
        &["audience-first technical writing", "accurate examples", "structure and navigation", "keeping docs in step with the code"],
        &["Name the reader and what they need to do.", "Check every statement and example against the real behaviour.", "Write the shortest text that lets them do it.", "List the documents you changed."],
        &["technical_writer", "documentation_writer", "writer", "documentation"],
    ),
    (
        "devops",
        "You are the DevOps engineer: you make the work build, ship and run the same way everywhere.",
        &["containers and orchestration", "CI/CD pipelines", "configuration and secrets", "reproducible environments"],
        &["Inventory what must run, where, and with which configuration.", "Write the build and deployment definitions as code.", "Keep secrets out of images and logs.", "Verify a clean deploy and record how to roll back."],
        &["devops_engineer", "infrastructure_engineer", "platform_engineer", "deployment", "containerization"],
    ),
    (
        "database_architect",
        "You are the database architect: you design how the data is stored, changed and queried.",
        &["schema design and normalization", "indexes and query plans", "migrations without downtime", "integrity and transactions"],
        &["List the entities, their relations and the queries that matter.", "Design the schema and the indexes for those queries.", "Write migrations that can run on live data.", "Record the schema and the migration order as artifacts."],
        &["database_engineer", "database_designer", "dba", "database"],
    ),
    (
        "api_specialist",
        "You are the API specialist: you design and integrate the contracts between services.",
        &["API design (REST, RPC, events)", "versioning and compatibility", "authentication and rate limits", "external service integration"],
        &["Write the contract first: operations, payloads, errors.", "Check it against every consumer's needs.", "Integrate external services behind a narrow interface, with timeouts and retries.", "Record the contract and example calls."],
        &["api_designer", "api_developer", "integration_specialist", "integration_engineer"],
    ),
    (
        "sre_specialist",
        "You are the site reliability engineer: you make the system observable and keep it within its objectives.",
        &["metrics, logs and traces", "alerting on symptoms", "service level objectives", "capacity and incident response"],
        &["Define what healthy means, as measurable objectives.", "Instrument the paths that serve those objectives.", "Alert on symptoms users would notice, with runbooks.", "Record dashboards, alerts and runbooks as artifacts."],
        &["sre", "site_reliability_engineer", "monitoring_specialist", "observability_engineer"],
    ),
    (
        "security_specialist",
        "You are the security specialist: you find how the work could be abused and close those paths.",
        &["threat modelling", "authentication and authorization", "secrets handling", "dependency and supply-chain risk"],
        &["Identify assets, entry points and trust boundaries.", "Look for the likely attacks on each boundary.", "Fix or mitigate, most severe first.", "Record findings, fixes and accepted risks."],
        &["security_engineer", "security_reviewer", "security"],
    ),
    (
        "data_architect",
        "You are the data architect: you decide where the data comes from, how it flows and where it lands.",
        &["data sources and their reliability", "warehouse and lake design", "data contracts and quality", "lineage"],
        &["Find and evaluate the data sources the task needs.", "Validate what each external source really provides.", "Design the target schema and the flow from sources to it.", "Record sources, schema and quality checks as artifacts."],
        &["data_modeler"],
    ),
    (
        "pipeline_engineer",
        "You are the pipeline engineer: you build the data flows that move and transform the data reliably.",
        &["ETL/ELT design", "idempotent, restartable jobs", "storage layout for large files", "data validation"],
        &["Follow the data design you were given.", "Make every step idempotent and restartable.", "Validate data at the boundaries; fail loudly.", "Record the jobs, their schedule and storage locations."],
        &["data_engineer", "etl_engineer", "etl_developer"],
    ),
    (
        "ml_engineer",
        "You are the ML engineer: you build, train and evaluate the models.",
        &["feature engineering", "training and evaluation", "experiment tracking", "reproducible training environments"],
        &["Define the metric the model must reach and the baseline.", "Prepare features from the pipeline's outputs.", "Train, evaluate, and track every experiment.", "Record the model, its metrics and how to reproduce it."],
        &["machine_learning_engineer", "data_scientist"],
    ),
    (
        "mlops_specialist",
        "You are the MLOps specialist: you put models into production and keep them honest there.",
        &["model serving", "deployment of training and serving environments", "performance and drift monitoring", "model registries"],
        &["Package the model and its environment reproducibly.", "Deploy behind a serving endpoint with a rollback path.", "Track live performance and drift against the training metrics.", "Record endpoints, dashboards and the rollback procedure."],
        &["mlops_engineer", "mlops"],
    ),
    (
        "research_coordinator",
        "You coordinate the research stage: you decide what must be found out and make sure it is.",
        &["framing research questions", "dividing research across sources", "validating sources", "synthesizing findings"],
        &["Turn the task into concrete questions.", "Assign each question to the best source or server.", "Validate what comes back; discard what cannot be confirmed.", "Summarize the answers the later stages need."],
        &[],
    ),
    (
        "implementation_manager",
        "You manage the implementation stage: you turn the design into ordered, verifiable work.",
        &["breaking work into increments", "sequencing and dependencies", "integration of parallel work", "tracking what is done"],
        &["Split the design into increments that can each be verified.", "Order them by dependency and risk.", "Check each increment in before the next.", "Record what was built and what remains."],
        &["project_manager", "delivery_manager"],
    ),
    (
        "adaptive_architect",
        "You are the adaptive architect: you redesign the workflow around the servers that are available now.",
        &["graceful degradation", "prioritizing core functionality", "deferring what needs lost capabilities", "re-planning"],
        &["Compare what the task needs with the servers and tools available now.", "Redesign the workflow for the available servers.", "Prioritize core functionality; defer advanced features that need lost capabilities.", "Record what was deferred and what must happen when the servers are back."],
        &["adaptive_planner"],
    ),
    (
        "coordinator",
        "You coordinate a synchronization point: you bring parallel streams together and check they fit.",
        &["integration across streams", "contract checking between components", "integration testing", "resolving conflicts"],
        &["Collect the results of every stream you follow.", "Check that their interfaces and assumptions agree.", "Run the integration work the sync point names.", "Record what fits, what conflicts and who must fix it."],
        &["integration_coordinator", "orchestrator", "integrator"],
    ),
];

impl Default for Specialists {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Specialists {
    /// The built-in roles.
    pub fn builtin() -> Self {
        let mut roles = HashMap::new();
        let mut aliases = HashMap::new();
        for &(name, role, expertise, approach, names) in BUILTIN {
            roles.insert(
                name.to_string(),
                Specialist {
                    name: name.to_string(),
                    role: role.to_string(),
                    expertise: expertise.iter().map(|s| s.to_string()).collect(),
                    approach: approach.iter().map(|s| s.to_string()).collect(),
                    guidance: None,
                    source: "builtin",
                },
            );
            for alias in names {
                aliases.insert(alias.to_string(), name.to_string());
            }
        }
        Self { roles, aliases }
    }

    /// Adds or overrides the role `name` (matched like a subtask's specialist: an alias of a
    /// built-in role overrides that role). Unset fields keep the built-in text; a new role
    /// gets the generic text for them.
    pub fn with(mut self, name: &str, change: SpecialistOverride) -> Self {
        let key = self.canonical(name);
        let mut specialist = self.roles.remove(&key).unwrap_or_else(|| generic(&key));
        if let Some(role) = change.role {
            specialist.role = role;
        }
        if let Some(expertise) = change.expertise {
            specialist.expertise = expertise;
        }
        if let Some(approach) = change.approach {
            specialist.approach = approach;
        }
        if change.guidance.is_some() {
            specialist.guidance = change.guidance;
        }
        specialist.source = "configured";
        self.roles.insert(key, specialist);
        self
    }

    /// The guidance for `name`: a known role, or a generic specialist shaped by the name.
    pub fn get(&self, name: &str) -> Specialist {
        let key = self.canonical(name);
        self.roles
            .get(&key)
            .cloned()
            .unwrap_or_else(|| generic(&key))
    }

    /// Every known role's name, sorted (for tool descriptions and status).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.roles.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The role key `name` leads to: normalized, then through the aliases.
    fn canonical(&self, name: &str) -> String {
        let key = normalize(name);
        match self.aliases.get(&key) {
            Some(target) if !self.roles.contains_key(&key) => target.clone(),
            _ => key,
        }
    }
}

/// `"Database Architect"`, `database-architect` → `database_architect`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("generalist");
    }
    out
}

/// The specialist for a name we have no text for.
fn generic(key: &str) -> Specialist {
    let words = key.replace('_', " ");
    Specialist {
        name: key.to_string(),
        role: format!("You are the {words} specialist for this subtask."),
        expertise: vec![
            format!("the practice of {words}"),
            "turning a task into verifiable steps".to_string(),
            "reporting results others can build on".to_string(),
        ],
        approach: vec![
            "Read the task and the results of its dependencies.".to_string(),
            "Plan the steps and the servers and tools each one needs.".to_string(),
            "Do the work, checking each step.".to_string(),
            "Record results and artifacts precisely; say what is left undone.".to_string(),
        ],
        guidance: None,
        source: "generic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_spellings_reach_the_builtin_role() {
        let s = Specialists::builtin();
        for name in [
            "system_architect",
            "System Architect",
            "architect",
            "software-architect",
        ] {
            assert_eq!(s.get(name).name, "architect", "{name}");
        }
        assert_eq!(s.get("Database Architect").name, "database_architect");
        assert_eq!(s.get("backend_developer").name, "implementer");
        assert_eq!(s.get("devops_engineer").name, "devops");
        assert_eq!(s.get("sre_specialist").source, "builtin");
        for name in [
            "data_architect",
            "pipeline_engineer",
            "ml_engineer",
            "mlops_specialist",
            "research_coordinator",
            "implementation_manager",
            "adaptive_architect",
            "api_specialist",
        ] {
            assert_eq!(s.get(name).name, name);
            assert_eq!(s.get(name).source, "builtin");
        }
    }

    #[test]
    fn a_free_form_name_gets_a_generic_specialist_named_after_it() {
        let g = Specialists::builtin().get("Quantum Chemist");
        assert_eq!(g.name, "quantum_chemist");
        assert_eq!(g.source, "generic");
        assert!(g.role.contains("quantum chemist"));
        assert_eq!(Specialists::builtin().get("  ").name, "generalist");
    }

    #[test]
    fn configuration_overrides_a_builtin_through_an_alias_and_adds_new_roles() {
        let s = Specialists::builtin()
            .with(
                "system_architect",
                SpecialistOverride {
                    guidance: Some("Prefer boring technology.".into()),
                    ..Default::default()
                },
            )
            .with(
                "Security Auditor",
                SpecialistOverride {
                    role: Some("You audit.".into()),
                    ..Default::default()
                },
            );
        let a = s.get("architect");
        assert_eq!(a.guidance.as_deref(), Some("Prefer boring technology."));
        assert_eq!(a.source, "configured");
        assert!(
            a.role.contains("architect"),
            "unset fields keep the builtin text"
        );
        let auditor = s.get("security-auditor");
        assert_eq!(auditor.role, "You audit.");
        assert_eq!(auditor.source, "configured");
        assert!(!auditor.approach.is_empty());
    }
}
