//! Logging a training run to an MLflow tracking server through its REST API (reqwest):
//! experiment (named after the model), run with params, per-step metrics and tags, the
//! ONNX model and bundle as run artifacts (when the server proxies artifacts), and a model
//! version in MLflow's registry. A run already logged for the same mlpipe run id is not
//! logged again, so a redelivered event does not duplicate it.

use serde_json::{Value, json};

use crate::TrainError;

/// What to log; built by the job from its run record.
#[derive(Debug, Clone, Default)]
pub struct MlflowRun {
    pub experiment: String,
    pub run_name: String,
    /// mlpipe's run id, stored as the tag `mlpipe.run_id`.
    pub mlpipe_run: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub params: Vec<(String, String)>,
    /// `(key, value, step)`.
    pub metrics: Vec<(String, f64, i64)>,
    pub tags: Vec<(String, String)>,
    /// `(artifact path, bytes)`, under the run's artifact root.
    pub artifacts: Vec<(String, Vec<u8>)>,
    /// Registered model name and the mlpipe version number (kept as a tag).
    pub register: Option<(String, u64)>,
}

/// Ids MLflow assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub experiment_id: String,
    pub run_id: String,
    pub model_version: Option<String>,
    /// The run had been logged before; nothing new was written.
    pub existing: bool,
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

fn err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Mlflow(e.to_string())
}

impl Client {
    /// `uri`: the tracking server, e.g. `http://127.0.0.1:5000`.
    pub fn new(uri: &str) -> Result<Client, TrainError> {
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            return Err(TrainError::Mlflow(format!(
                "MLFLOW_TRACKING_URI '{uri}' is not an http(s) URL (only tracking servers are supported)"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(err)?;
        Ok(Client {
            base: uri.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// From `MLFLOW_TRACKING_URI`, when it is set.
    pub fn from_env() -> Option<Result<Client, TrainError>> {
        stage::env::var("MLFLOW_TRACKING_URI").map(|u| Client::new(&u))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), TrainError> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| TrainError::Mlflow(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(err)?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, TrainError> {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(&body)).await?;
        if status >= 300 {
            return Err(TrainError::Mlflow(format!(
                "POST {path}: HTTP {status}: {v}"
            )));
        }
        Ok(v)
    }

    pub async fn get(&self, path_and_query: &str) -> Result<Value, TrainError> {
        let (status, v) = self
            .call(reqwest::Method::GET, path_and_query, None)
            .await?;
        if status >= 300 {
            return Err(TrainError::Mlflow(format!(
                "GET {path_and_query}: HTTP {status}: {v}"
            )));
        }
        Ok(v)
    }

    async fn experiment_id(&self, name: &str) -> Result<String, TrainError> {
        let path = format!(
            "experiments/get-by-name?experiment_name={}",
            url_escape(name)
        );
        let (status, v) = self.call(reqwest::Method::GET, &path, None).await?;
        if status < 300
            && let Some(id) = v["experiment"]["experiment_id"].as_str()
        {
            return Ok(id.to_string());
        }
        match self
            .post("experiments/create", json!({ "name": name }))
            .await
        {
            Ok(v) => v["experiment_id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| err(format!("experiments/create answered {v}"))),
            // Created concurrently: read it again.
            Err(_) => {
                let v = self.get(&path).await?;
                v["experiment"]["experiment_id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(format!("experiment '{name}' cannot be created or read")))
            }
        }
    }

    async fn find_run(
        &self,
        experiment_id: &str,
        mlpipe_run: &str,
    ) -> Result<Option<Value>, TrainError> {
        let v = self
            .post(
                "runs/search",
                json!({
                    "experiment_ids": [experiment_id],
                    "filter": format!("tags.`mlpipe.run_id` = '{mlpipe_run}'"),
                    "max_results": 10,
                }),
            )
            .await?;
        Ok(v["runs"]
            .as_array()
            .and_then(|runs| {
                runs.iter()
                    .find(|r| r["info"]["status"].as_str() == Some("FINISHED"))
            })
            .cloned())
    }

    /// Logs `run`; returns MLflow's ids.
    pub async fn log(&self, run: &MlflowRun) -> Result<Logged, TrainError> {
        let experiment_id = self.experiment_id(&run.experiment).await?;
        if let Some(existing) = self.find_run(&experiment_id, &run.mlpipe_run).await? {
            return Ok(Logged {
                experiment_id,
                run_id: existing["info"]["run_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                model_version: None,
                existing: true,
            });
        }
        let mut tags: Vec<Value> = run
            .tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        tags.push(json!({"key": "mlpipe.run_id", "value": run.mlpipe_run}));
        let created = self
            .post(
                "runs/create",
                json!({
                    "experiment_id": experiment_id,
                    "run_name": run.run_name,
                    "start_time": run.start_ms,
                    "tags": tags,
                }),
            )
            .await?;
        let run_id = created["run"]["info"]["run_id"]
            .as_str()
            .ok_or_else(|| err(format!("runs/create answered {created}")))?
            .to_string();
        let artifact_uri = created["run"]["info"]["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string();

        // log-batch limits: 100 params, 1000 metrics per request.
        for chunk in run.params.chunks(100) {
            let params: Vec<Value> = chunk
                .iter()
                .map(|(k, v)| json!({"key": k, "value": truncate(v, 6000)}))
                .collect();
            self.post(
                "runs/log-batch",
                json!({"run_id": run_id, "params": params}),
            )
            .await?;
        }
        for chunk in run.metrics.chunks(1000) {
            let metrics: Vec<Value> = chunk
                .iter()
                .filter(|(_, v, _)| v.is_finite())
                .map(|(k, v, step)| json!({"key": k, "value": v, "timestamp": run.end_ms, "step": step}))
                .collect();
            self.post(
                "runs/log-batch",
                json!({"run_id": run_id, "metrics": metrics}),
            )
            .await?;
        }
        // Artifacts go through the server's artifact proxy when it offers one.
        if let Some(root) = artifact_uri.strip_prefix("mlflow-artifacts:") {
            let root = root.trim_start_matches('/');
            for (path, bytes) in &run.artifacts {
                let url = format!(
                    "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{path}",
                    self.base
                );
                let resp = self
                    .http
                    .put(&url)
                    .body(bytes.clone())
                    .send()
                    .await
                    .map_err(|e| TrainError::Mlflow(format!("{url}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(TrainError::Mlflow(format!(
                        "PUT {url}: HTTP {}",
                        resp.status()
                    )));
                }
            }
        }
        let mut model_version = None;
        if let Some((name, version)) = &run.register {
            let (status, v) = self
                .call(
                    reqwest::Method::POST,
                    "registered-models/create",
                    Some(&json!({"name": name})),
                )
                .await?;
            if status >= 300 && v["error_code"].as_str() != Some("RESOURCE_ALREADY_EXISTS") {
                return Err(TrainError::Mlflow(format!(
                    "registered-models/create: HTTP {status}: {v}"
                )));
            }
            let mv = self
                .post(
                    "model-versions/create",
                    json!({
                        "name": name,
                        "source": format!("runs:/{run_id}/model"),
                        "run_id": run_id,
                        "tags": [{"key": "mlpipe.version", "value": version.to_string()}],
                        "description": format!("mlpipe {name} version {version}"),
                    }),
                )
                .await?;
            model_version = mv["model_version"]["version"].as_str().map(str::to_string);
        }
        self.post(
            "runs/update",
            json!({"run_id": run_id, "status": "FINISHED", "end_time": run.end_ms}),
        )
        .await?;
        Ok(Logged {
            experiment_id,
            run_id,
            model_version,
            existing: false,
        })
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
