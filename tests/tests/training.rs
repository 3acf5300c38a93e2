//! Training across stages: ingest -> features -> training through the local stack, with a
//! real MLflow tracking server receiving the run; the model registry's history through
//! automatic promotion, a second version, manual promotion and rollback; redelivery.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use contracts::LoadedProject;
use mlpipe::pipeline;
use mlpipe::sample::{SampleOptions, generate};
use mlpipe::stack::LocalStack;
use serde_json::{Value, json};
use storage::Store;
use tests::Mlflow;
use train::job::{JobConfig, TrainOutcome};

fn sample_project() -> LoadedProject {
    LoadedProject::load(&tests::repo_root().join("examples/fraud")).expect("sample project loads")
}

async fn mlflow_get(uri: &str, path: &str) -> Value {
    let resp = reqwest::get(format!("{uri}/api/2.0/mlflow/{path}"))
        .await
        .unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_register_promote_track_in_mlflow_and_roll_back() {
    let server = Mlflow::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(&dir.path().join("store")).unwrap();
    let job = JobConfig {
        mlflow: Some(train::mlflow::Client::new(&server.uri()).unwrap()),
        actor: None,
    };
    let stack = LocalStack::new(&store).with_train(job.clone());
    pipeline::push_project(stack.store(), &sample_project())
        .await
        .unwrap();
    let path = dir.path().join("tx.csv");
    let mut file = std::fs::File::create(&path).unwrap();
    generate(
        &SampleOptions {
            rows: 20_000,
            bad_rows: 0,
            ..Default::default()
        },
        &mut file,
    )
    .unwrap();
    pipeline::upload(&stack, "transactions", &path)
        .await
        .unwrap();
    let deliveries = stack.run_until_quiet(|_| {}).await;
    assert!(deliveries.iter().all(|d| d.ok), "{deliveries:#?}");
    let trained = deliveries
        .iter()
        .find(|d| d.stage == events::Stage::Train)
        .expect("the manifest reached training");
    let outcome = &trained.result[0];
    assert_eq!(outcome["outcome"], "trained", "{outcome}");
    assert_eq!(outcome["version"], 1);
    assert_eq!(outcome["promoted"], true);
    let run_id = outcome["run"].as_str().unwrap().to_string();

    // The bundle says what serving and monitoring need.
    let bundle = registry::bundle(&store, "fraud", 1).await.unwrap().unwrap();
    let onnx = store.get(&bundle.model_key).await.unwrap().bytes;
    assert_eq!(bundle.content_hash, hex_sha256(&onnx));
    assert_eq!(bundle.task, "binary-classification");
    assert_eq!(bundle.classes, vec!["false", "true"]);
    assert!(bundle.threshold.is_some());
    assert!(bundle.inputs.len() > 10 && bundle.inputs.iter().all(|i| i.ty == "f32"));
    assert!(
        store
            .head(&bundle.reference_profile.key)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .head(&bundle.feature_spec.key)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(bundle.training_run, run_id);
    for m in [
        "pr_auc",
        "roc_auc",
        "log_loss",
        "brier",
        "f1",
        "pr_auc_ci_low",
        "onnx_max_abs_diff",
    ] {
        assert!(
            bundle.metrics.contains_key(m),
            "{m} missing from {:?}",
            bundle.metrics
        );
    }
    assert!(bundle.metrics["onnx_max_abs_diff"] <= 1e-5);

    // The run record, and the trials' metrics per rung.
    let run = train::tracking::read_run(&store, &run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, "finished");
    assert!(
        run.mlflow
            .as_deref()
            .is_some_and(|m| m.starts_with("experiment")),
        "{:?}",
        run.mlflow
    );
    let trials = train::tracking::read_trials(&store, &run_id).await.unwrap();
    assert_eq!(trials.len(), 12);
    assert!(trials.iter().any(|t| t.rungs.len() == 3));

    // MLflow, read through its own REST API: the run, its metrics, the registered version.
    let exp = mlflow_get(
        &server.uri(),
        "experiments/get-by-name?experiment_name=fraud",
    )
    .await;
    let exp_id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let search = reqwest::Client::new()
        .post(format!("{}/api/2.0/mlflow/runs/search", server.uri()))
        .json(&json!({"experiment_ids": [exp_id]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let runs = search["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{search}");
    let mlflow_run = &runs[0];
    assert_eq!(mlflow_run["info"]["status"], "FINISHED");
    let metrics = mlflow_run["data"]["metrics"].as_array().unwrap();
    let pr_auc = metrics
        .iter()
        .find(|m| m["key"] == "test_pr_auc")
        .expect("test_pr_auc logged");
    assert!((pr_auc["value"].as_f64().unwrap() - run.test_metrics["pr_auc"]).abs() < 1e-9);
    let params = mlflow_run["data"]["params"].as_array().unwrap();
    assert!(params.iter().any(|p| p["key"] == "family"));
    let mlflow_run_id = mlflow_run["info"]["run_id"].as_str().unwrap();
    let history = mlflow_get(
        &server.uri(),
        &format!("metrics/get-history?run_id={mlflow_run_id}&metric_key=trial_000_valid_pr_auc"),
    )
    .await;
    assert!(
        !history["metrics"].as_array().unwrap().is_empty(),
        "{history}"
    );
    let versions = mlflow_get(
        &server.uri(),
        "model-versions/search?filter=name%3D%27fraud%27",
    )
    .await;
    let mv = &versions["model_versions"][0];
    assert_eq!(mv["run_id"], mlflow_run_id, "{versions}");
    let artifacts = mlflow_get(
        &server.uri(),
        &format!("artifacts/list?run_id={mlflow_run_id}&path=model"),
    )
    .await;
    assert!(
        artifacts["files"].to_string().contains("model.onnx"),
        "{artifacts}"
    );

    // Redelivery of the manifest: nothing new anywhere.
    let key = trained.key.clone();
    let again = train::job::handle(&store, &key, &job).await.unwrap();
    assert!(
        matches!(
            again[0],
            TrainOutcome::AlreadyDone {
                version: Some(1),
                ..
            }
        ),
        "{again:?}"
    );
    let search = reqwest::Client::new()
        .post(format!("{}/api/2.0/mlflow/runs/search", server.uri()))
        .json(&json!({"experiment_ids": [exp_id]}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(search["runs"].as_array().unwrap().len(), 1);

    // A second version from a different configuration; it is compared with the champion on
    // the same test rows and promoted only by the rule.
    let mut project = sample_project();
    let (_, text) = &mut project.training_files[0];
    *text = text
        .replace(
            r#"families = ["gbm", "linear", "mlp"]"#,
            r#"families = ["linear"]"#,
        )
        .replace("min_improvement = 0.0", "min_improvement = 10.0");
    pipeline::push_project(&store, &project).await.unwrap();
    let req = train::job::RetrainRequest {
        model: "fraud".into(),
        snapshot: None,
        reason: None,
    };
    let second = train::job::retrain(&store, &req, "test", &JobConfig::default())
        .await
        .unwrap();
    let TrainOutcome::Trained {
        version,
        promoted,
        reason,
        ..
    } = second
    else {
        panic!("{second:?}")
    };
    assert_eq!((version, promoted), (2, false), "{reason}");
    assert!(reason.contains("champion v1"), "{reason}");
    let run2 = train::tracking::list_runs(&store).await.unwrap();
    let cmp = run2
        .iter()
        .find(|r| r.registration.as_ref().is_some_and(|g| g.version == 2))
        .unwrap();
    let champ = cmp.champion.as_ref().unwrap();
    assert_eq!(champ.version, 1);
    assert!(
        champ.champion.is_some() && champ.not_comparable.is_none(),
        "{champ:?}"
    );
    assert_eq!(
        registry::alias(&store, "fraud", "challenger")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );

    // Manual promotion, then rollback; the history keeps every move.
    mlpipe::train_ops::promote(&store, "fraud", 2, Some("canary looked good".into()))
        .await
        .unwrap();
    assert_eq!(
        registry::alias(&store, "fraud", "champion")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    let back = mlpipe::train_ops::rollback(&store, "fraud").await.unwrap();
    assert_eq!((back.version, back.rollback_of), (1, Some(2)));
    let history = registry::history(&store, "fraud", "champion")
        .await
        .unwrap();
    let moves: Vec<(u64, Option<u64>)> = history.iter().map(|a| (a.version, a.previous)).collect();
    assert_eq!(moves, vec![(1, None), (2, Some(1)), (1, Some(2))]);
    assert!(history[0].by.starts_with("train:"));
    assert_eq!(history[1].reason, "canary looked good");
    // The server and everything it started (uvicorn, its job runner, huey workers) stop
    // with it: nothing is left running, orphaned, after the tests.
    assert!(
        server.stop(),
        "MLflow left processes running after it was stopped"
    );
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
