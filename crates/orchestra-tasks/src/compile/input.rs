//! `orchestrator_plan_task`'s arguments exactly as written: strict serde types (an unknown key
//! is an error, not ignored), the design document's keys. `compile` turns them into a plan.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub description: String,
    #[serde(default)]
    pub subtasks: Vec<SubtaskInput>,
    #[serde(default)]
    pub workflow_stages: Vec<StageInput>,
    #[serde(default)]
    pub parallel_streams: Streams,
    #[serde(default)]
    pub sync_points: Vec<SyncPointInput>,
    #[serde(default)]
    pub context: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubtaskInput {
    /// The planner's own id, usable in `depends_on`.
    #[serde(default)]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub specialist: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub servers: Vec<String>,
    /// None (absent) and `[]` differ inside a stream: `[]` says "not after the previous one".
    #[serde(default)]
    pub depends_on: Option<Vec<Ref>>,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub stream: Option<String>,
}

/// Technique 1: a pipeline stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    pub stage: String,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub orchestrator_role: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// Technique 2: one parallel stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInput {
    #[serde(default)]
    pub servers: Vec<String>,
    /// Titles of subtasks, or new names (each becomes a subtask).
    #[serde(default)]
    pub subtasks: Vec<String>,
    /// The specialist of the subtasks the stream creates (default: named after each).
    #[serde(default)]
    pub specialist: Option<String>,
    /// Each subtask after the previous one (default true).
    #[serde(default)]
    pub sequential: Option<bool>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// Technique 2: a synchronization point after streams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncPointInput {
    pub after_streams: Vec<String>,
    /// What happens there; also the subtask's title (an existing subtask of that title
    /// becomes the sync point).
    pub coordination: String,
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub specialist: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// A `depends_on` entry: an index into `subtasks`, or an id or title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Index(u64),
    Name(String),
}

/// `parallel_streams` in the order written (a JSON object; a repeated key is an error rather
/// than the last one silently winning).
#[derive(Debug, Default)]
pub struct Streams(pub Vec<(String, StreamInput)>);

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a subtask's index in `subtasks` (0-based), id or title")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ref, E> {
                Ok(Ref::Index(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ref, E> {
                u64::try_from(v)
                    .map(Ref::Index)
                    .map_err(|_| E::custom(format!("index {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ref, E> {
                Ok(Ref::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Streams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Streams;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of streams: {\"name\": {servers, subtasks}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Streams, A::Error> {
                let mut out: Vec<(String, StreamInput)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!(
                            "stream \"{name}\" is given twice"
                        )));
                    }
                    let stream = map.next_value::<StreamInput>()?;
                    out.push((name, stream));
                }
                Ok(Streams(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Ref::Index(i) => write!(f, "{i}"),
            Ref::Name(n) => write!(f, "\"{n}\""),
        }
    }
}
