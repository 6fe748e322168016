//! The gateway's `instructions` at `initialize`: what it is, how names are formed, and each
//! server's own instructions under its name (known once it has been ready — now, or in the
//! last run with the same configuration, from the catalog cache).

use std::fmt::Write as _;

use crate::child::ChildHandle;
use crate::health;
use crate::hub::Gateway;

/// A server's own instructions are cut to this many bytes in the gateway's (one verbose child
/// must not crowd out the rest).
const MAX_CHILD_INSTRUCTIONS: usize = 8 * 1024;

/// `text` cut to at most `max` bytes at a character boundary, marked when cut.
fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match crate::redact::cut(text, max) {
        head if head.len() == text.len() => text.into(),
        head => format!("{head}… (cut)").into(),
    }
}

/// The `instructions` given to the client at initialize.
pub(super) fn text(gw: &Gateway) -> String {
    let names: Vec<&str> = gw.children().iter().map(ChildHandle::name).collect();
    let separator = &gw.config().gateway.separator;
    let mut text = format!(
        "mcp-orchestra aggregates {} MCP servers ({}). Their tools and prompts are named \
         <server>{separator}<name>, their resources orchestra://<server>/<the server's own \
         URI>. Call {} to see which servers and domains are up, what \
         failed and why.",
        names.len(),
        names.join(", "),
        health::TOOL_NAME
    );
    // A server with `namespace: false` is the exception to that rule: say which.
    if let Some(own) = gw.children().iter().find(|c| !c.spec().namespace) {
        let _ = write!(
            text,
            " Except {}'s: its tools, prompts and resources keep the server's own names and URIs.",
            own.name()
        );
    }
    // The Task Orchestrator, when it is wired in: how a model uses it, in one line.
    if gw.local_tools().get("orchestrator_plan_task").is_some() {
        text.push_str(
            " For multi-step work across servers, plan it with orchestrator_plan_task, then for \
             each ready subtask call orchestrator_execute_subtask (it says which servers and \
             tools are usable right now), do the work, and orchestrator_complete_subtask; \
             finish with orchestrator_synthesize_results. orchestrator_get_status resumes open \
             plans.",
        );
    }
    // Each server's own instructions, under its name: known once it has been ready (now,
    // or in the last run with this same configuration).
    for child in gw.children() {
        let Some(own) = child.instructions() else {
            continue;
        };
        let name = child.name();
        let naming = if child.spec().namespace {
            format!("its tools and prompts are {name}{separator}*")
        } else {
            "its tools and prompts keep their own names".to_owned()
        };
        let _ = write!(
            text,
            "\n\n## Server \"{name}\" ({naming})\n\n{}",
            cut(&own, MAX_CHILD_INSTRUCTIONS)
        );
    }
    text
}
