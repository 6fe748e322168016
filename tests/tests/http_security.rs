//! Security of the Streamable HTTP front, over raw HTTP/1.1 (plain TCP, so that headers,
//! timing and broken connections are exactly what the test says): DNS-rebinding guard,
//! bearer tokens, JWTs against a JWKS (a file, and a URL served by the test), RFC 9728
//! metadata, sessions bound to their identity, the configured token never reaching a child,
//! body limit, slowloris headers and bodies, SSE resumption with `Last-Event-ID`, the bind
//! rules, and the Python SDK's client with a bearer token.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orchestra_tests::http_kit::{
    dechunk, events_of, http, http_at, initialize_body, open_session, parse, request_text,
    start_http, Answer, ACCEPT_BOTH, JSON,
};
use orchestra_tests::{
    deps, everything_entry, fault_server, procs, within, Gateway, TempDir, STEP,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN_A: &str = "tok-A-3f9c2e71d04b8a56";
const TOKEN_B: &str = "tok-B-9a1d7c44e2f05b3e";

async fn finish(gw: Gateway) {
    let marker = gw.marker.clone();
    let (status, _gw) = gw.close(STEP).await;
    assert!(status.success(), "gateway exit: {status}");
    procs::assert_none_left(&marker, STEP).await;
}

const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A 401 with the challenge the MCP authorization spec asks for.
fn assert_challenge(a: &Answer, addr: SocketAddr, invalid: Option<&str>) {
    assert_eq!(a.status, 401, "{a:?}");
    let challenge = a.header("www-authenticate");
    assert!(
        challenge.starts_with(&format!(
            "Bearer resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    match invalid {
        Some(why) => {
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
            assert!(
                a.json()["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(why),
                "{a:?}"
            );
        }
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
}

/// Bearer tokens (one from the environment, one from a file): the guard before anything,
/// 401 rows, the metadata, a session answering only its opener, the body limit, the probes'
/// details only for an authenticated caller, and the configured token never reaching a
/// child even with `inherit_env: all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_guard_metadata_and_session_binding() {
    let dir = TempDir::new("sec-bearer");
    let token_file = dir.join("token-b");
    std::fs::write(&token_file, format!("{TOKEN_B}\n")).expect("token file");
    let config = format!(
        "http:\n  max_body: 4KiB\n  auth:\n    bearer_tokens: [{{env: SEC_TOKEN_A}}, {{file: \"{}\"}}]\n\
         servers:\n  everything: {{command: \"{}\", args: [stdio], inherit_env: all}}\n",
        token_file.display(),
        deps().everything
    );
    let (gw, addr) = start_http(&config, &[("SEC_TOKEN_A", TOKEN_A)], &[]).await;
    let a = bearer(TOKEN_A);
    let b = bearer(TOKEN_B);

    // The guard comes first: a valid token does not make a foreign Origin or Host pass.
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &a),
            ("Origin", "https://evil.example"),
        ],
        &initialize_body(),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &a),
            ("Host", "evil.example:80"),
        ],
        &initialize_body(),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");

    // Missing, wrong, and non-bearer credentials.
    let r = http(addr, "POST", &[ACCEPT_BOTH, JSON], &initialize_body()).await;
    assert_challenge(&r, addr, None);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("authentication required"));
    let wrong = "tok-A-3f9c2e71d04b8a57";
    let r = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Authorization", &bearer(wrong))],
        &initialize_body(),
    )
    .await;
    assert_challenge(&r, addr, Some("invalid token"));
    assert!(
        !r.body.contains(wrong) && !r.header("www-authenticate").contains(wrong),
        "token echoed: {r:?}"
    );
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &format!("Basic {TOKEN_A}")),
        ],
        &initialize_body(),
    )
    .await;
    assert_challenge(&r, addr, None);
    let r = http(addr, "GET", &[("Accept", "text/event-stream")], "").await;
    assert_challenge(&r, addr, None);
    let r = http(
        addr,
        "DELETE",
        &[("Mcp-Session-Id", "00112233445566778899aabbccddeeff")],
        "",
    )
    .await;
    assert_challenge(&r, addr, None);

    // RFC 9728 metadata, at both paths, without a token.
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let m = http_at(addr, "GET", path, &[], "").await;
        assert_eq!(m.status, 200, "{path}: {m:?}");
        let doc = m.json();
        assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert!(doc.get("authorization_servers").is_none(), "{doc}");
    }

    // A's session: A is served, B is told it does not exist (POST, GET and DELETE), and
    // B's DELETE does not end it.
    let s = open_session(addr, Some(&a)).await;
    let as_a = [
        ACCEPT_BOTH,
        JSON,
        ("Authorization", a.as_str()),
        ("Mcp-Session-Id", s.as_str()),
    ];
    let as_b = [
        ACCEPT_BOTH,
        JSON,
        ("Authorization", b.as_str()),
        ("Mcp-Session-Id", s.as_str()),
    ];
    assert_eq!(http(addr, "POST", &as_a, LIST).await.status, 200);
    let r = http(addr, "POST", &as_b, LIST).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = http(
        addr,
        "GET",
        &[("Accept", "text/event-stream"), as_b[2], as_b[3]],
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = http(addr, "DELETE", &as_b[2..], "").await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        http(addr, "POST", &as_a, LIST).await.status,
        200,
        "B's DELETE ended A's session"
    );
    // B has a session of its own.
    let sb = open_session(addr, Some(&b)).await;
    assert_ne!(sb, s);

    // Over the body limit: 413 (authenticated, so the limit is what refuses it).
    let big = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "everything__echo", "arguments": {"message": "x".repeat(5000)}}});
    let r = http(addr, "POST", &as_a, &big.to_string()).await;
    assert_eq!(r.status, 413, "{r:?}");

    // The probes stay open; the report is only for a caller that would be let in.
    let h = http_at(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(h.status, 200, "{h:?}");
    assert_eq!(h.json(), json!({"status": "ok"}));
    let h = http_at(addr, "GET", "/healthz", &[("Authorization", &a)], "").await;
    assert!(h.json()["servers"].is_array(), "{h:?}");
    let r = http_at(addr, "GET", "/readyz", &[], "").await;
    assert!(r.json().get("servers").is_none(), "{r:?}");

    // The child's whole environment (server-everything's get-env), with inherit_env: all:
    // the variable that held token A is not in it, though the gateway had it.
    let env_call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "everything__get-env", "arguments": {}}});
    let r = http(addr, "POST", &as_a, &env_call.to_string()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let env_text = r.json()["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        env_text.contains("PATH"),
        "get-env did not list the environment: {r:?}"
    );
    assert!(env_text.contains("ORCHESTRA_TEST_MARKER"), "{env_text}");
    assert!(
        !env_text.contains(TOKEN_A) && !env_text.contains("SEC_TOKEN_A"),
        "the token reached the child: {env_text}"
    );
    assert!(!env_text.contains(TOKEN_B), "{env_text}");
    // Nor is either token anywhere in the gateway's log.
    let logs = gw.logs();
    assert!(
        !logs.contains(TOKEN_A) && !logs.contains(TOKEN_B) && !logs.contains(wrong),
        "a token in the log"
    );
    finish(gw).await;
}

/// An Ed25519 key (PKCS#8 v1 from 32 random bytes) and its public JWK under `kid`.
fn ed25519_key(kid: &str) -> (EncodingKey, Jwk) {
    let mut seed = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("urandom"),
        &mut seed,
    )
    .expect("random");
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let key = EncodingKey::from_ed_der(&der);
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA).expect("JWK");
    jwk.common.key_id = Some(kid.to_owned());
    (key, jwk)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "mcp-gateway";

fn jwt(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, key).expect("encode")
}

fn claims(sub: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": now() + 600, "iat": now()})
}

/// JWTs checked against a JWKS file (beside a bearer token: either passes): good, wrong issuer, wrong audience, expired, bad
/// signature, unknown key id, not yet valid; the issuer in the metadata; sessions bound to
/// `iss` + `sub` (another token of the same subject continues it, another subject gets 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_rows_against_a_jwks_file() {
    let dir = TempDir::new("sec-jwt");
    let (key, jwk) = ed25519_key("k1");
    let (other_key, _) = ed25519_key("k1");
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let config = format!(
        "http:\n  auth:\n    bearer_tokens: [{{env: SEC_TOKEN_A}}]\n    jwt: {{jwks_file: \"{}\", issuer: \"{ISSUER}\", audience: [other, {AUDIENCE}]}}\nservers:\n{}",
        jwks.display(),
        fault_server("fault", "", &[])
    );
    let (gw, addr) = start_http(&config, &[("SEC_TOKEN_A", TOKEN_A)], &[]).await;

    let good = bearer(&jwt(&key, "k1", claims("alice")));
    let s = open_session(addr, Some(&good)).await;
    // With both configured, either passes; the bearer token's session is its own.
    let with_token = open_session(addr, Some(&bearer(TOKEN_A))).await;
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &good),
            ("Mcp-Session-Id", &with_token),
        ],
        LIST,
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");

    let mut c = claims("alice");
    c["iss"] = json!("https://elsewhere.test");
    let rows = [
        ("wrong issuer", jwt(&key, "k1", c.clone())),
        ("wrong audience", {
            let mut c = claims("alice");
            c["aud"] = json!("someone-else");
            jwt(&key, "k1", c)
        }),
        ("expired", {
            let mut c = claims("alice");
            c["exp"] = json!(now() - 3600);
            jwt(&key, "k1", c)
        }),
        ("not valid yet", {
            let mut c = claims("alice");
            c["nbf"] = json!(now() + 3600);
            jwt(&key, "k1", c)
        }),
        ("bad signature", jwt(&other_key, "k1", claims("alice"))),
        ("unknown key", jwt(&key, "k2", claims("alice"))),
        ("not an accepted token", "not-a-jwt".to_owned()),
    ];
    for (why, token) in &rows {
        let r = http(
            addr,
            "POST",
            &[ACCEPT_BOTH, JSON, ("Authorization", &bearer(token))],
            &initialize_body(),
        )
        .await;
        assert_challenge(&r, addr, Some(why));
        assert!(!r.body.contains(token.as_str()), "token echoed: {r:?}");
    }

    // The same subject with a fresh token continues the session; another subject does not.
    let again = bearer(&jwt(
        &key,
        "k1",
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now() + 300}),
    ));
    assert_ne!(again, good);
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &again),
            ("Mcp-Session-Id", &s),
        ],
        LIST,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let bob = bearer(&jwt(&key, "k1", claims("bob")));
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &bob),
            ("Mcp-Session-Id", &s),
        ],
        LIST,
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");

    let m = http_at(
        addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        "",
    )
    .await;
    assert_eq!(m.json()["authorization_servers"], json!([ISSUER]));
    finish(gw).await;
}

/// Serves `body` as JSON to every GET on a local port, counting the requests; returns the
/// URL and the counter.
async fn serve_jwks(
    body: String,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/jwks.json"), hits, task)
}

/// JWKS by URL: fetched (once, cached), a good token passes; a key server that cannot be
/// reached makes the gateway answer 503 and say why in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_with_a_jwks_url_and_an_unreachable_one() {
    let (key, jwk) = ed25519_key("url-key");
    let (url, hits, server) =
        serve_jwks(serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap()).await;
    let config = |url: &str| {
        format!(
            "http:\n  auth:\n    jwt: {{jwks_url: \"{url}\", issuer: \"{ISSUER}\", audience: {AUDIENCE}}}\nservers:\n{}",
            fault_server("fault", "", &[])
        )
    };
    let (gw, addr) = start_http(&config(&url), &[], &[]).await;
    let good = bearer(&jwt(&key, "url-key", claims("carol")));
    let s = open_session(addr, Some(&good)).await;
    let r = http(
        addr,
        "POST",
        &[
            ACCEPT_BOTH,
            JSON,
            ("Authorization", &good),
            ("Mcp-Session-Id", &s),
        ],
        LIST,
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the key set is cached"
    );
    finish(gw).await;
    server.abort();

    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/jwks.json", dead.local_addr().unwrap());
    drop(dead);
    let (gw, addr) = start_http(&config(&dead_url), &[], &[]).await;
    let r = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Authorization", &good)],
        &initialize_body(),
    )
    .await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signing keys"),
        "{r:?}"
    );
    assert!(
        gw.logs().contains("cannot load the JWT signing keys"),
        "{}",
        gw.logs()
    );
    finish(gw).await;
}

/// Slowloris: headers sent a byte at a time are cut after `header_timeout`; a body that
/// trickles gets 408 after `body_timeout`. Meanwhile other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut() {
    let config = format!(
        "http: {{header_timeout: 1s, body_timeout: 1s}}\nservers:\n{}",
        fault_server("fault", "", &[])
    );
    let (gw, addr) = start_http(&config, &[], &[]).await;

    let t0 = Instant::now();
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let head = request_text(
        addr,
        "POST",
        "/mcp",
        &[ACCEPT_BOTH, JSON],
        &initialize_body(),
    );
    let cut = within(
        Duration::from_secs(20),
        "the slow-header connection to be cut",
        async {
            for byte in head.as_bytes() {
                if tcp.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    // hyper may answer 408 before closing.
                    Ok(Ok(n)) => {
                        let text = String::from_utf8_lossy(&buf[..n]).to_string();
                        assert!(!text.starts_with("HTTP/1.1 200"), "served: {text}");
                    }
                    Err(_) => {}
                }
            }
            false
        },
    )
    .await;
    let took = t0.elapsed();
    assert!(
        cut,
        "the whole request went through byte by byte ({took:?})"
    );
    assert!(took < Duration::from_secs(5), "cut only after {took:?}");

    // Another client is served meanwhile.
    let ok = http(addr, "POST", &[ACCEPT_BOTH, JSON], &initialize_body()).await;
    assert_eq!(ok.status, 200, "{ok:?}");

    // Headers at once, then a body that trickles.
    let body = initialize_body();
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let full = request_text(addr, "POST", "/mcp", &[ACCEPT_BOTH, JSON], &body);
    let header_len = full.len() - body.len();
    tcp.write_all(&full.as_bytes()[..header_len])
        .await
        .expect("write");
    let t0 = Instant::now();
    let answer = within(
        Duration::from_secs(20),
        "the slow body to be refused",
        async {
            let mut raw = Vec::new();
            for byte in body.as_bytes() {
                if tcp.write_all(&[*byte]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 4096];
                match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
                    Err(_) => {}
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.read_to_end(&mut raw)).await;
            parse(&raw)
        },
    )
    .await;
    assert_eq!(answer.status, 408, "{answer:?} after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    finish(gw).await;
}

/// Reads a response's head and then SSE events from `tcp` until `enough` says so.
async fn read_events(
    tcp: &mut TcpStream,
    seen: &mut String,
    enough: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    within(STEP, "SSE events", async {
        loop {
            if let Some((_, body)) = seen.split_once("\r\n\r\n") {
                let events = events_of(&dechunk(body));
                if enough(&events) {
                    return events;
                }
            }
            let mut buf = [0u8; 8192];
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "stream closed early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
}

/// SSE resumption. A POST's stream cut after its first progress event is resumed by GET
/// with `Last-Event-ID`: the rest of the progress and the answer arrive, then the stream
/// ends. The session's own stream, cut after two events, replays the second on GET with the
/// first one's id. An id naming no kept stream is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resumes_a_cut_post_stream_and_the_session_stream() {
    let config = format!("servers:\n{}", fault_server("fault", "log_all_levels", &[]));
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let s = open_session(addr, Some("Bearer unused")).await;
    let sid = ("Mcp-Session-Id", s.as_str());

    // A call with progress, answered on an SSE stream; cut after the first event.
    let call = json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {
        "name": "fault__progress", "arguments": {"steps": 4, "interval_ms": 300},
        "_meta": {"progressToken": "p1"}}});
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        request_text(
            addr,
            "POST",
            "/mcp",
            &[ACCEPT_BOTH, JSON, sid],
            &call.to_string(),
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut seen = String::new();
    let first = read_events(&mut tcp, &mut seen, |e| !e.is_empty()).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    let (first_id, first_event) = first[0].clone();
    assert_eq!(
        first_event["method"], "notifications/progress",
        "{first_event}"
    );
    drop(tcp);

    let r = http(
        addr,
        "GET",
        &[
            ("Accept", "text/event-stream"),
            sid,
            ("Last-Event-ID", &first_id),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let rest = r.events_with_ids();
    assert!(
        !rest.iter().any(|(id, _)| *id == first_id),
        "the event the client had was sent again: {rest:?}"
    );
    let (_, last) = rest.last().expect("events after the cut");
    assert_eq!(last["id"], 10, "the stream ends with the answer: {rest:?}");
    assert!(last["result"].is_object(), "{last}");
    let progress: Vec<f64> = rest
        .iter()
        .filter(|(_, e)| e["method"] == "notifications/progress")
        .filter_map(|(_, e)| e["params"]["progress"].as_f64())
        .collect();
    let first_progress = first_event["params"]["progress"].as_f64().unwrap();
    assert!(
        !progress.is_empty() && progress.iter().all(|p| *p > first_progress),
        "{rest:?}"
    );
    // Event ids are the stream's, in order.
    let (stream, _) = first_id.rsplit_once('-').unwrap();
    assert!(
        rest.iter()
            .all(|(id, _)| id.starts_with(&format!("{stream}-"))),
        "{rest:?}"
    );

    // The session's own stream: log messages (a call makes the child send one per level).
    let level = json!({"jsonrpc": "2.0", "id": 11, "method": "logging/setLevel", "params": {"level": "debug"}});
    assert_eq!(
        http(addr, "POST", &[ACCEPT_BOTH, JSON, sid], &level.to_string())
            .await
            .status,
        200
    );
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(format!("GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {s}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let echo = json!({"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": {"name": "fault__echo", "arguments": {"text": "hi"}}});
    assert_eq!(
        http(addr, "POST", &[ACCEPT_BOTH, JSON, sid], &echo.to_string())
            .await
            .status,
        200
    );
    let mut seen = String::new();
    let got = read_events(&mut tcp, &mut seen, |e| e.len() >= 2).await;
    drop(tcp);
    let (id1, _) = &got[0];
    let (id2, e2) = &got[1];
    // The GET lock is released once the server notices the cut: retry until it is.
    let replay = within(STEP, "the resumed session stream", async {
        loop {
            let mut tcp = TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(format!("GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {s}\r\nLast-Event-ID: {id1}\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut seen = String::new();
            let mut buf = [0u8; 8192];
            while !seen.contains("\r\n\r\n") {
                let n = tcp.read(&mut buf).await.expect("read");
                assert!(n > 0, "{seen}");
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            if seen.starts_with("HTTP/1.1 409") {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
            return read_events(&mut tcp, &mut seen, |e| !e.is_empty()).await;
        }
    })
    .await;
    assert_eq!(&replay[0].0, id2, "{replay:?}");
    assert_eq!(&replay[0].1, e2);

    let r = http(
        addr,
        "GET",
        &[
            ("Accept", "text/event-stream"),
            sid,
            ("Last-Event-ID", "ffffffffffff99-1"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    finish(gw).await;
}

/// Binding: without auth, a non-loopback address is refused (exit 64, naming the way out);
/// with auth configured it is served (that is what authentication is for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_needs_authentication() {
    let servers = format!("servers:\n{}", fault_server("fault", "", &[]));
    let mut refused = Gateway::spawn_with_args(
        &format!("http: {{listen: \"0.0.0.0:0\"}}\n{servers}"),
        &[],
        &["--no-stdio"],
    );
    let status = refused.wait_exit(STEP).await;
    assert_eq!(status.code(), Some(64), "{}", refused.logs());
    // Its stderr is drained by a task of the kit: wait for the message to be read.
    within(STEP, "the refusal's message", async {
        while !refused.logs().contains("http.auth") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    procs::assert_none_left(&refused.marker, STEP).await;

    let config = format!("http:\n  listen: \"0.0.0.0:0\"\n  auth: {{bearer_tokens: [{{env: SEC_TOKEN_A}}]}}\n{servers}");
    let gw = Gateway::spawn_with_args(&config, &[("SEC_TOKEN_A", TOKEN_A)], &[]);
    let logs = within(STEP, "the HTTP front to start", async {
        loop {
            let logs = gw.logs();
            if logs.contains("serving Streamable HTTP") || logs.contains("error") {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(logs.contains("url=http://0.0.0.0:"), "{logs}");
    finish(gw).await;
}

/// The official Python SDK's Streamable HTTP client with `Authorization: Bearer` passes end
/// to end; without the header it fails on the 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_with_a_bearer_token() {
    let config = format!(
        "http: {{auth: {{bearer_tokens: [{{env: SEC_TOKEN_A}}]}}}}\nservers:\n{}",
        everything_entry()
    );
    let (gw, addr) = start_http(&config, &[("SEC_TOKEN_A", TOKEN_A)], &[]).await;
    assert!(addr.ip().is_loopback());
    let run = |headers: Option<Value>| {
        let mut cmd = tokio::process::Command::new(&deps().python);
        cmd.arg(orchestra_tests::workspace_root().join("tests/python/http_client.py"))
            .arg(format!("http://{addr}/mcp"));
        if let Some(h) = headers {
            cmd.arg(h.to_string());
        }
        cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
        async move {
            let out = within(
                Duration::from_secs(90),
                "the Python SDK's HTTP client",
                cmd.output(),
            )
            .await
            .expect("running python");
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            serde_json::from_str::<Value>(stdout.trim()).unwrap_or_else(|e| {
                panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
            })
        }
    };
    let obs = run(Some(json!({"Authorization": bearer(TOKEN_A)}))).await;
    assert!(obs.get("error").is_none(), "{obs:#}");
    assert_eq!(obs["echo_text"], "Echo: over http");
    assert_eq!(
        obs["progress_callbacks"],
        json!([{"progress": 1.0, "total": 2.0}, {"progress": 2.0, "total": 2.0}])
    );
    assert_eq!(obs["closed"], true);
    let denied = run(None).await;
    assert!(
        denied.get("error").is_some(),
        "served without a token: {denied:#}"
    );
    assert!(denied.get("server_name").is_none(), "{denied:#}");
    finish(gw).await;
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// A client that asks for a call's SSE stream and then stops reading: the child keeps
/// producing (about 80 MB of progress), the gateway closes that stream once it is 4 MiB
/// behind instead of buffering it, its memory stays bounded, and another session is served
/// meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sse_reader_costs_bounded_memory() {
    let config = format!("servers:\n{}", fault_server("fault", "", &[]));
    let (gw, addr) = start_http(&config, &[], &[]).await;
    let s1 = open_session(addr, Some("Bearer unused")).await;
    let s2 = open_session(addr, Some("Bearer unused")).await;
    let before = peak_rss_kib(gw.pid());
    let token = "t".repeat(2000);
    let call = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call", "params": {
        "name": "fault__progress", "arguments": {"steps": 40000, "interval_ms": 0},
        "_meta": {"progressToken": token}}});
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled
        .write_all(
            request_text(
                addr,
                "POST",
                "/mcp",
                &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", &s1)],
                &call.to_string(),
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    // Never read from `stalled` again.
    within(STEP, "the stalled stream to be closed", async {
        while !gw
            .logs()
            .contains("fell too far behind its stream: closing it")
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let t0 = Instant::now();
    let echo = json!({"jsonrpc": "2.0", "id": 21, "method": "tools/call",
        "params": {"name": "fault__echo", "arguments": {"text": "still here"}}});
    let r = http(
        addr,
        "POST",
        &[ACCEPT_BOTH, JSON, ("Mcp-Session-Id", &s2)],
        &echo.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("still here"), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Let the child finish its 80 MB (no call in flight any more), then look at the peak.
    within(STEP, "the child to finish the call", async {
        loop {
            let h = http_at(addr, "GET", "/healthz", &[], "").await.json();
            if h["servers"][0]["in_flight"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let peak = peak_rss_kib(gw.pid());
    eprintln!("gateway peak RSS: {before} KiB before, {peak} KiB after");
    assert!(
        peak < before + 40 * 1024,
        "the gateway grew from {before} KiB to {peak} KiB for one stalled client"
    );
    drop(stalled);
    finish(gw).await;
}
