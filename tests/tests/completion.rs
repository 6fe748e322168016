//! `completion/complete` through the gateway: a prompt argument's completion is routed to the
//! prompt's server under the server's own prompt name, and answered as that server answers.

use std::time::Duration;

use orchestra_tests::{everything_entry, finish, wait_ready, Gateway};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_argument_completion_is_routed_to_the_prompts_server() {
    let config = format!("servers:\n{}", everything_entry());
    let gw = Gateway::start(&config).await;
    wait_ready(&gw, &["everything"], Duration::from_secs(60)).await;
    assert!(
        gw.initialize_result["capabilities"]["completions"].is_object(),
        "completions advertised: {}",
        gw.initialize_result
    );

    // server-everything completes its `completable-prompt`'s department argument.
    let done = gw
        .request(
            "completion/complete",
            json!({
                "ref": {"type": "ref/prompt", "name": "everything__completable-prompt"},
                "argument": {"name": "department", "value": "E"},
            }),
        )
        .await
        .expect("completion answered");
    let values = done["completion"]["values"].as_array().expect("values");
    assert!(values.iter().any(|v| v == "Engineering"), "{done}");

    let unknown = gw
        .request(
            "completion/complete",
            json!({
                "ref": {"type": "ref/prompt", "name": "everything__completable-promt"},
                "argument": {"name": "department", "value": "E"},
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown["code"], -32602, "{unknown}");
    assert_eq!(
        unknown["data"]["suggestions"][0], "everything__completable-prompt",
        "{unknown}"
    );

    let resource = gw
        .request(
            "completion/complete",
            json!({
                "ref": {"type": "ref/resource", "uri": "orchestra://nobody/demo://resource/{id}"},
                "argument": {"name": "id", "value": "1"},
            }),
        )
        .await
        .unwrap_err();
    // Resource-template completion is covered in resources.rs; an unknown server's template
    // is MCP's "resource not found", naming it.
    assert_eq!(resource["code"], -32002, "{resource}");
    assert!(
        resource["message"]
            .as_str()
            .unwrap_or_default()
            .contains("orchestra://nobody/"),
        "{resource}"
    );
    finish(gw).await;
}
