mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn an_echo_task_completes_with_its_params_as_output() {
    let app = TestApp::start().await;
    let task = app
        .create_task(json!({"type": "echo", "params": {"x": 1}, "run_immediately": true}))
        .await;
    let done = app.finished(&id_of(&task)).await;
    assert_eq!(done.result.unwrap()["result"], json!({"x": 1}));
}
