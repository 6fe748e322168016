//! Micro-benchmarks of the per-call CPU work: routing, naming, re-addressing a call, and the
//! catalog rebuild that follows a change. Run with `cargo bench -p orchestra-gateway`.

use divan::{black_box, Bencher};
use orchestra_gateway::catalog::{Catalog, ServerTools};
use orchestra_gateway::jsonrpc::{self, CallParams, Envelope};
use orchestra_gateway::names;
use serde_json::{json, Value};

fn main() {
    divan::main();
}

/// 50 servers × 200 tools: the large catalog of the performance issue.
fn tools() -> Vec<(String, Vec<Value>)> {
    (0..50)
        .map(|s| {
            let tools = (0..200)
                .map(|t| json!({"name": format!("tool_{t}"), "description": "A tool", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}))
                .collect();
            (format!("s{s:02}"), tools)
        })
        .collect()
}

fn catalog(servers: &[(String, Vec<Value>)]) -> Catalog {
    Catalog::build(
        "__",
        &[],
        servers
            .iter()
            .enumerate()
            .map(|(i, (name, tools))| ServerTools {
                index: i,
                name,
                tools,
                listed: true,
                namespaced: true,
            }),
    )
}

#[divan::bench]
fn route_lookup_in_10k_tools(bencher: Bencher) {
    let servers = tools();
    let catalog = catalog(&servers);
    bencher.bench(|| catalog.route(black_box("s37__tool_123")).map(|r| r.server));
}

#[divan::bench]
fn expose_short_name() -> names::Exposed {
    names::expose(black_box("files"), "__", black_box("read_text_file"))
}

#[divan::bench]
fn expose_name_needing_shortening() -> names::Exposed {
    names::expose(
        black_box("everything"),
        "__",
        black_box("a_tool_name_long_enough_to_need_a_hash_suffix_to_fit_64"),
    )
}

/// A client's tools/call, as the front reads it.
const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"files__read_text_file","arguments":{"path":"/tmp/notes.txt"},"_meta":{"progressToken":17}}}"#;
/// A child's answer, as its connection reads it.
const ANSWER: &[u8] =
    br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello world"}]}}"#;

/// The envelope alone, twice per forwarded call (the request, then the answer).
#[divan::bench(args = ["call", "answer"])]
fn parse_an_envelope(bencher: Bencher, which: &str) {
    let line = if which == "call" { CALL } else { ANSWER };
    bencher.bench(|| Envelope::parse(black_box(line)).map(|e| e.kind()).ok());
}

/// A tools/call's params alone: the tool name, the other members kept raw.
#[divan::bench]
fn parse_call_params(bencher: Bencher) {
    let env = Envelope::parse(CALL).unwrap();
    let params = env.params.unwrap();
    bencher.bench(|| {
        CallParams::from_raw(black_box(params))
            .map(|c| c.rest.len())
            .ok()
    });
}

#[divan::bench]
fn readdress_a_call(bencher: Bencher) {
    let line = CALL;
    let mut out = Vec::with_capacity(256);
    bencher.bench_local(|| {
        out.clear();
        let env = Envelope::parse(black_box(line)).unwrap();
        let call = CallParams::from_raw(env.params.unwrap()).unwrap();
        call.write_request(&mut out, 42, "read_text_file", None);
        out.len()
    });
}

#[divan::bench]
fn answer_a_call(bencher: Bencher) {
    let line = ANSWER;
    let mut out = Vec::with_capacity(256);
    bencher.bench_local(|| {
        out.clear();
        let env = Envelope::parse(black_box(line)).unwrap();
        let result = env.result.unwrap();
        jsonrpc::write_answer(&mut out, "17", b"result", result.get());
        out.len()
    });
}

#[divan::bench(sample_count = 20)]
fn rebuild_10k_tool_catalog(bencher: Bencher) {
    let servers = tools();
    bencher.bench(|| catalog(&servers).len());
}

#[divan::bench]
fn list_10k_tools_response(bencher: Bencher) {
    let servers = tools();
    let catalog = catalog(&servers);
    bencher.bench(|| jsonrpc::response_line("1", catalog.first_page()).len());
}
