//! Tool definitions from a child, checked against what MCP requires of a `Tool` (spec
//! 2025-11-25) before the client sees them.
//!
//! Why: strict clients validate the whole `tools/list` result. The official Python SDK rejects
//! the entire list when one tool lacks `inputSchema` — and then even calls to a healthy
//! server's tools fail, because it re-lists to find output schemas. One careless child must
//! not take every other server down with it, so each definition is repaired when its intent
//! is clear, dropped when it is not, and every repair or drop is reported (health tool) with
//! its reason.
//!
//! The rules, member by member:
//!
//! | member | problem | action |
//! |---|---|---|
//! | (entry) | not a JSON object | drop (reported by index) |
//! | `name` | missing, not a string, or empty | drop (reported by index) |
//! | `name` | same as an earlier tool of this child | drop the later one |
//! | `inputSchema` | missing or `null` | repair: `{"type":"object"}` (no arguments) |
//! | `inputSchema` | object without `type` | repair: add `"type":"object"` |
//! | `inputSchema` | `type` is a list holding `"object"` | repair: `"type":"object"` |
//! | `inputSchema` | any other value or `type`; `properties` not an object; `required` not a list of strings | drop: what the tool takes is unknown |
//! | `outputSchema` | `null` | repair: removed |
//! | `outputSchema` | object without `type` | repair: add `"type":"object"` |
//! | `outputSchema` | any other problem (as for `inputSchema`) | repair: removed — the tool still works, the client only loses validation of `structuredContent` |
//! | `title`, `description` | not a string | repair: removed |
//! | `annotations` | not an object | repair: removed |
//! | `annotations.title` / `*Hint` | not a string / not a boolean | repair: that member removed |
//! | `_meta`, `execution` | not an object | repair: removed |
//! | `execution.taskSupport` | not `forbidden`/`optional`/`required` | repair: removed |
//! | `icons` | not a list | repair: removed |
//! | `icons[i]` | not an object with a string `src` | repair: that icon removed |
//!
//! A schema without `type` is overwhelmingly a hand-written object schema that forgot it
//! (`{"properties": {...}}`); tool arguments are always a JSON object in MCP, so adding
//! `"type":"object"` states what the child already means. A non-object argument schema
//! (`"type":"string"`) cannot be honoured by any call, and a wrong `properties` hides what the
//! tool takes: guessing there would mislead the model, so such tools are dropped.
//! Unknown members are kept: MCP allows extensions.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::redact::Redactor;

/// One tool that was repaired or dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolIssue {
    /// The tool's name, when it has a usable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Its position in the child's list (0-based, across pages).
    pub index: usize,
    pub reason: String,
}

/// What checking one child's list found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolReport {
    pub repaired: Vec<ToolIssue>,
    pub dropped: Vec<ToolIssue>,
}

impl ToolReport {
    pub fn is_empty(&self) -> bool {
        self.repaired.is_empty() && self.dropped.is_empty()
    }

    /// The report with the child's text in it (tool names, reasons quoting its values)
    /// redacted: the health report shows it to the client and the model.
    pub fn redacted(mut self, redactor: &Redactor) -> Self {
        for issue in self.repaired.iter_mut().chain(self.dropped.iter_mut()) {
            issue.reason = redactor.redact_owned(std::mem::take(&mut issue.reason));
            issue.tool = issue.tool.take().map(|t| redactor.redact_owned(t));
        }
        self
    }
}

/// Checks a child's definitions one at a time (in listing order, so that of two tools with
/// the same name the first is kept).
#[derive(Debug, Default)]
pub struct Checker {
    /// Names accepted so far → their index.
    seen: HashMap<String, usize>,
    report: ToolReport,
}

impl Checker {
    /// The definition to expose (repaired if needed), or None when it must be dropped.
    pub fn admit(&mut self, index: usize, tool: Value) -> Option<Value> {
        let Value::Object(mut def) = tool else {
            self.drop_tool(None, index, format!("not a JSON object ({})", kind(&tool)));
            return None;
        };
        let name = match def.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            Some(Value::String(_)) => {
                self.drop_tool(None, index, "empty name".into());
                return None;
            }
            Some(other) => {
                let why = format!("name is {}, not a string", kind(other));
                self.drop_tool(None, index, why);
                return None;
            }
            None => {
                self.drop_tool(None, index, "no name".into());
                return None;
            }
        };
        if let Some(first) = self.seen.get(&name) {
            let why =
                format!("duplicate name (tool #{first} has the same name; the first is kept)");
            self.drop_tool(Some(name), index, why);
            return None;
        }
        let mut fixes = Vec::new();
        if let Err(why) = check_input_schema(&mut def, &mut fixes) {
            self.drop_tool(Some(name), index, why);
            return None;
        }
        check_output_schema(&mut def, &mut fixes);
        check_optional_members(&mut def, &mut fixes);
        if !fixes.is_empty() {
            self.report.repaired.push(ToolIssue {
                tool: Some(name.clone()),
                index,
                reason: fixes.join("; "),
            });
        }
        self.seen.insert(name, index);
        Some(Value::Object(def))
    }

    pub fn finish(self) -> ToolReport {
        self.report
    }

    fn drop_tool(&mut self, tool: Option<String>, index: usize, reason: String) {
        self.report.dropped.push(ToolIssue {
            tool,
            index,
            reason,
        });
    }
}

/// Checks a whole list (the catalog cache, written by an older version, goes through this).
pub fn sanitize(tools: Vec<Value>) -> (Vec<Value>, ToolReport) {
    let mut checker = Checker::default();
    let kept = tools
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| checker.admit(i, t))
        .collect();
    (kept, checker.finish())
}

/// The name a config filter can judge: a non-empty string (anything else is dropped anyway).
pub fn usable_name(tool: &Value) -> Option<&str> {
    tool.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn check_input_schema(def: &mut Map<String, Value>, fixes: &mut Vec<String>) -> Result<(), String> {
    match def.get_mut("inputSchema") {
        None | Some(Value::Null) => {
            let was = if def.contains_key("inputSchema") {
                "inputSchema was null"
            } else {
                "no inputSchema"
            };
            def.insert(
                "inputSchema".into(),
                serde_json::json!({ "type": "object" }),
            );
            fixes.push(format!(
                "{was}: set to {{\"type\":\"object\"}} (no arguments)"
            ));
            Ok(())
        }
        Some(schema) => object_schema("inputSchema", schema, fixes),
    }
}

fn check_output_schema(def: &mut Map<String, Value>, fixes: &mut Vec<String>) {
    let remove = match def.get_mut("outputSchema") {
        None => return,
        Some(Value::Null) => "outputSchema was null: removed".to_owned(),
        Some(schema) => match object_schema("outputSchema", schema, fixes) {
            Ok(()) => return,
            Err(why) => format!("{why}: outputSchema removed"),
        },
    };
    def.remove("outputSchema");
    fixes.push(remove);
}

/// An object schema: `type` "object" (added when absent), `properties` an object,
/// `required` a list of strings.
fn object_schema(member: &str, schema: &mut Value, fixes: &mut Vec<String>) -> Result<(), String> {
    let Value::Object(obj) = schema else {
        return Err(format!("{member} is {}, not an object", kind(schema)));
    };
    match obj.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        None => {
            obj.insert("type".into(), Value::from("object"));
            fixes.push(format!("{member} had no type: \"type\":\"object\" added"));
        }
        Some(Value::Array(types)) if types.iter().any(|t| t == "object") => {
            obj.insert("type".into(), Value::from("object"));
            fixes.push(format!(
                "{member}.type listed several types: set to \"object\""
            ));
        }
        Some(other) => {
            return Err(format!("{member}.type is {other}, not \"object\""));
        }
    }
    if let Some(p) = obj.get("properties").filter(|p| !p.is_object()) {
        return Err(format!("{member}.properties is {}, not an object", kind(p)));
    }
    if let Some(r) = obj.get("required") {
        let strings = r.as_array().is_some_and(|a| a.iter().all(Value::is_string));
        if !strings {
            return Err(format!("{member}.required is not a list of strings"));
        }
    }
    Ok(())
}

fn check_optional_members(def: &mut Map<String, Value>, fixes: &mut Vec<String>) {
    for member in ["title", "description"] {
        remove_unless(def, "", member, Value::is_string, "a string", fixes);
    }
    for member in ["_meta", "execution", "annotations"] {
        remove_unless(def, "", member, Value::is_object, "an object", fixes);
    }
    if let Some(Value::Object(a)) = def.get_mut("annotations") {
        let at = "annotations.";
        remove_unless(a, at, "title", Value::is_string, "a string", fixes);
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            remove_unless(a, at, hint, Value::is_boolean, "a boolean", fixes);
        }
    }
    if let Some(Value::Object(e)) = def.get_mut("execution") {
        let valid = |v: &Value| matches!(v.as_str(), Some("forbidden" | "optional" | "required"));
        if e.get("taskSupport").is_some_and(|v| !valid(v)) {
            e.remove("taskSupport");
            fixes.push("execution.taskSupport was not forbidden/optional/required: removed".into());
        }
    }
    remove_unless(def, "", "icons", Value::is_array, "a list", fixes);
    if let Some(Value::Array(icons)) = def.get_mut("icons") {
        let before = icons.len();
        icons.retain(|i| i.get("src").is_some_and(Value::is_string));
        let removed = before - icons.len();
        if removed > 0 {
            fixes.push(format!("{removed} icon(s) without a string src removed"));
        }
    }
}

/// Removes `member` (reported as `<at><member>`) when present and not of the expected kind
/// (null included: every member checked here is optional, and absence is how MCP says none).
fn remove_unless(
    obj: &mut Map<String, Value>,
    at: &str,
    member: &str,
    ok: fn(&Value) -> bool,
    expected: &str,
    fixes: &mut Vec<String>,
) {
    if let Some(v) = obj.get(member).filter(|v| !ok(v)) {
        fixes.push(format!(
            "{at}{member} was {}, not {expected}: removed",
            kind(v)
        ));
        obj.remove(member);
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reasons(issues: &[ToolIssue]) -> Vec<(Option<&str>, usize, &str)> {
        issues
            .iter()
            .map(|i| (i.tool.as_deref(), i.index, i.reason.as_str()))
            .collect()
    }

    #[test]
    fn valid_tools_pass_untouched() {
        let t = json!({"name": "a", "title": "A", "description": "d",
            "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
            "outputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true, "title": "t"},
            "icons": [{"src": "data:,"}], "_meta": {"k": 1}, "execution": {"taskSupport": "optional"},
            "x-extension": 5});
        let (kept, report) = sanitize(vec![t.clone()]);
        assert_eq!(kept, vec![t]);
        assert!(report.is_empty(), "{report:?}");
    }

    #[test]
    fn missing_or_null_input_schemas_mean_no_arguments() {
        let (kept, report) = sanitize(vec![
            json!({"name": "noschema", "description": "d"}),
            json!({"name": "nullschema", "inputSchema": null}),
            json!({"name": "untyped", "inputSchema": {"properties": {"a": {}}}}),
        ]);
        assert_eq!(kept[0]["inputSchema"], json!({"type": "object"}));
        assert_eq!(kept[1]["inputSchema"], json!({"type": "object"}));
        assert_eq!(
            kept[2]["inputSchema"],
            json!({"type": "object", "properties": {"a": {}}})
        );
        assert_eq!(report.repaired.len(), 3);
        assert!(report.repaired[0].reason.starts_with("no inputSchema"));
        assert!(report.repaired[1]
            .reason
            .starts_with("inputSchema was null"));
        assert!(report.dropped.is_empty());
    }

    #[test]
    fn the_report_is_redacted_for_display() {
        let secret = "Wx7-tango-Q9-lima";
        let (_, report) = sanitize(vec![
            json!({"name": secret, "inputSchema": {"type": "object"}}),
            json!({"name": secret, "inputSchema": {"type": "object"}}),
            json!({"name": "t", "inputSchema": {"type": secret}}),
        ]);
        let shown = report.redacted(&Redactor::builder().secret(secret).build());
        assert_eq!(shown.dropped.len(), 2);
        assert_eq!(shown.dropped[0].tool.as_deref(), Some("[REDACTED]"));
        assert!(shown.dropped[1].reason.contains("[REDACTED]"), "{shown:?}");
        assert!(!format!("{shown:?}").contains(secret), "{shown:?}");
    }

    #[test]
    fn what_cannot_be_repaired_is_dropped_with_its_reason() {
        let (kept, report) = sanitize(vec![
            json!("just a string"),
            json!({"description": "no name"}),
            json!({"name": 7, "inputSchema": {"type": "object"}}),
            json!({"name": "", "inputSchema": {"type": "object"}}),
            json!({"name": "stringy", "inputSchema": {"type": "string"}}),
            json!({"name": "listy", "inputSchema": [1]}),
            json!({"name": "props", "inputSchema": {"type": "object", "properties": []}}),
            json!({"name": "ok", "inputSchema": {"type": "object"}}),
            json!({"name": "ok", "inputSchema": {"type": "object"}, "description": "second"}),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["name"], "ok");
        assert!(kept[0].get("description").is_none(), "the first is kept");
        assert_eq!(
            reasons(&report.dropped),
            vec![
                (None, 0, "not a JSON object (a string)"),
                (None, 1, "no name"),
                (None, 2, "name is a number, not a string"),
                (None, 3, "empty name"),
                (
                    Some("stringy"),
                    4,
                    "inputSchema.type is \"string\", not \"object\""
                ),
                (Some("listy"), 5, "inputSchema is a list, not an object"),
                (
                    Some("props"),
                    6,
                    "inputSchema.properties is a list, not an object"
                ),
                (
                    Some("ok"),
                    8,
                    "duplicate name (tool #7 has the same name; the first is kept)"
                ),
            ]
        );
    }

    #[test]
    fn bad_optional_members_are_removed_not_the_tool() {
        let (kept, report) = sanitize(vec![json!({
            "name": "t", "inputSchema": {"type": ["object", "null"]},
            "description": 5, "title": null, "outputSchema": {"type": "array"},
            "annotations": {"readOnlyHint": "yes", "title": 1, "destructiveHint": false},
            "icons": [{"src": 1}, {"src": "ok"}], "_meta": [], "execution": {"taskSupport": "always"},
        })]);
        let t = &kept[0];
        assert_eq!(t["inputSchema"], json!({"type": "object"}));
        for gone in ["description", "title", "outputSchema", "_meta"] {
            assert!(t.get(gone).is_none(), "{gone} kept: {t}");
        }
        assert_eq!(t["annotations"], json!({"destructiveHint": false}));
        assert_eq!(t["icons"], json!([{"src": "ok"}]));
        assert_eq!(t["execution"], json!({}));
        let reason = &report.repaired[0].reason;
        for part in [
            "inputSchema.type listed several types",
            "outputSchema.type is \"array\", not \"object\": outputSchema removed",
            "description was a number, not a string: removed",
            "annotations.readOnlyHint was a string, not a boolean: removed",
            "annotations.title was a number",
            "_meta was a list, not an object: removed",
            "1 icon(s) without a string src removed",
            "execution.taskSupport",
        ] {
            assert!(reason.contains(part), "{part:?} not in {reason:?}");
        }
    }
}
