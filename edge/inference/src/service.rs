//! One HTTP API for every runtime: the router and handlers over plain request/response
//! values. Runtimes (the Worker, the Spin component, the native server) convert their own
//! request types, supply the model and the online store, and write the response back.

use std::future::Future;
use std::sync::Arc;

use features::OnlineStore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use records::models::{Arm, Traffic};
use records::serving::{PredictionLine, logged_value};

use crate::auth::Guard;
use crate::error::InferenceError;
use crate::model::{Layout, Model, Prediction, Task};
use crate::oip::{self, HEADER_LENGTH, json_f32};

/// A request as the runtime received it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Header names in any case.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    /// The caller's address as the runtime knows it (the peer address natively,
    /// `CF-Connecting-IP` on the Worker): what failed key attempts are counted against.
    pub client: Option<&'a str>,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The response to write back.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What was predicted, for the runtime's prediction log (drift checks, delayed labels).
    pub log: Option<PredictionLog>,
}

impl Response {
    fn json(status: u16, value: &Value, id: Option<&str>) -> Response {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(id) = id {
            headers.push(("x-request-id".into(), id.into()));
        }
        Response {
            status,
            headers,
            body: value.to_string().into_bytes(),
            log: None,
        }
    }

    pub fn error(e: &InferenceError, id: Option<&str>) -> Response {
        let mut r = Response::json(e.status(), &json!({}), id);
        r.headers.extend(e.headers());
        r.body = e.body();
        r
    }
}

/// One request's predictions, as logged: the request id, and per record its index, the
/// model input and the prediction. `(id, index)` is the key later labels join on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PredictionLog {
    pub id: String,
    pub model: String,
    pub version: u64,
    /// The traffic arm, when a traffic policy was in force.
    pub arm: Option<Arm>,
    pub at_us: i64,
    pub inputs: Vec<String>,
    pub rows: Vec<LoggedRow>,
    /// The challenger's predictions for the same request, scored in shadow: written in the
    /// same log object, each line with its own version and arm `shadow`.
    pub shadow: Option<Box<PredictionLog>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoggedRow {
    pub index: usize,
    /// Model input (null = missing).
    pub features: Vec<Option<f32>>,
    pub label: Option<String>,
    pub score: f32,
}

impl PredictionLog {
    /// JSON lines, one per record, each carrying the request id and record index (then the
    /// shadow's lines, which a label joins by the same id and index).
    pub fn to_json_lines(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for row in &self.rows {
            let line = PredictionLine {
                arm: self.arm,
                at_us: self.at_us,
                features: self
                    .inputs
                    .iter()
                    .zip(&row.features)
                    .map(|(k, v)| (k.clone(), v.and_then(logged_value)))
                    .collect(),
                index: row.index as u64,
                label: row.label.clone(),
                model: self.model.clone(),
                request_id: self.id.clone(),
                score: logged_value(row.score),
                version: self.version,
            };
            if let Ok(bytes) = serde_json::to_vec(&line) {
                out.extend(bytes);
                out.push(b'\n');
            }
        }
        if let Some(shadow) = &self.shadow {
            out.extend(shadow.to_json_lines());
        }
        out
    }
}

/// Whether the request `id` is in the logged `share` (0..=1) of requests. Decided by a
/// hash of the id, so every runtime logs the same requests for the same share.
pub fn sampled(id: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h >> 11) as f64 / (1u64 << 53) as f64 <= share
}

/// Where the service finds models: a runtime's cache of loaded bundles (embedded, R2, the
/// object store). `version: None` is the served (champion) version.
pub trait Models {
    fn model(
        &self,
        name: &str,
        version: Option<u64>,
    ) -> impl Future<Output = Result<Arc<Model>, InferenceError>>;

    /// Names of the models this instance serves (for readiness).
    fn names(&self) -> Vec<String>;

    /// The versions of `name` that hold an alias (champion, challenger): the ones a key may
    /// call by number without being allowed every version. None known by default.
    fn aliased(&self, name: &str) -> impl Future<Output = Result<Vec<u64>, InferenceError>> {
        let _ = name;
        async { Ok(Vec::new()) }
    }

    /// The traffic policy of `name` (canary share, shadow scoring), where one is published.
    /// A policy that cannot be read is no policy: the champion answers.
    fn traffic(&self, name: &str) -> impl Future<Output = Option<Traffic>> {
        let _ = name;
        async { None }
    }
}

/// Who answers a request and who scores it in shadow.
struct Plan {
    answer: Arc<Model>,
    arm: Option<Arm>,
    shadow: Option<Arc<Model>>,
}

/// The plan for a request to `name`: a version named by number answers alone; otherwise
/// the traffic policy decides between champion and challenger by `key` (the request's
/// first entity key, or its id), computed from the champion. A challenger that cannot be
/// loaded never costs an answer: the champion answers alone.
async fn plan<M: Models>(
    models: &M,
    name: &str,
    version: Option<u64>,
    key: impl FnOnce(&Model) -> String,
) -> Result<Plan, InferenceError> {
    let alone = |answer| Plan {
        answer,
        arm: None,
        shadow: None,
    };
    if version.is_some() {
        return Ok(alone(models.model(name, version).await?));
    }
    let champion = models.model(name, None).await?;
    let Some(traffic) = models.traffic(name).await else {
        return Ok(alone(champion));
    };
    let Some(v) = traffic.active_challenger(champion.version()) else {
        return Ok(alone(champion));
    };
    let Ok(challenger) = models.model(name, Some(v)).await else {
        return Ok(Plan {
            answer: champion,
            arm: Some(Arm::Champion),
            shadow: None,
        });
    };
    if traffic.to_challenger(champion.version(), &key(&champion)) {
        Ok(Plan {
            answer: challenger,
            arm: Some(Arm::Challenger),
            shadow: None,
        })
    } else {
        Ok(Plan {
            answer: champion,
            arm: Some(Arm::Champion),
            shadow: traffic.shadow.then_some(challenger),
        })
    }
}

impl Plan {
    /// `x-model-version` (always) and `x-model-arm` (under a policy): which version answered.
    fn headers(&self) -> Vec<(String, String)> {
        let mut h = vec![(
            "x-model-version".to_string(),
            self.answer.version().to_string(),
        )];
        if let Some(arm) = self.arm {
            h.push(("x-model-arm".into(), arm.as_str().into()));
        }
        h
    }
}

/// Default allowance for `/v1` event times ahead of the server's clock: 5 minutes.
pub const DEFAULT_MAX_FUTURE_SKEW_US: i64 = 300_000_000;

/// Limits and identity of one server.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server_name: String,
    pub server_version: String,
    pub max_body_bytes: usize,
    pub max_batch: usize,
    /// How far in the future a `/v1` record's event time may be (clock skew allowance). A
    /// later time is refused: features evaluated "as of" a far-future time would find every
    /// window expired and answer with missing values.
    pub max_future_skew_us: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            server_name: "mlpipe".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            max_body_bytes: 4 << 20,
            max_batch: 1024,
            max_future_skew_us: DEFAULT_MAX_FUTURE_SKEW_US,
        }
    }
}

/// The routes of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Live,
    Ready,
    Server,
    Model { name: String, version: Option<u64> },
    ModelReady { name: String, version: Option<u64> },
    Infer { name: String, version: Option<u64> },
    Predict { name: String },
}

impl Route {
    /// The model and version a route names by number, if it does.
    pub fn numbered(&self) -> Option<(&str, u64)> {
        match self {
            Route::Model {
                name,
                version: Some(v),
            }
            | Route::ModelReady {
                name,
                version: Some(v),
            }
            | Route::Infer {
                name,
                version: Some(v),
            } => Some((name.as_str(), *v)),
            _ => None,
        }
    }

    /// `None` for the health endpoints (open to every caller, as probes need); otherwise the
    /// model the route names, if any, for the key check.
    pub fn protected(&self) -> Option<Option<&str>> {
        match self {
            Route::Live | Route::Ready => None,
            Route::Server => Some(None),
            Route::Model { name, .. }
            | Route::ModelReady { name, .. }
            | Route::Infer { name, .. }
            | Route::Predict { name } => Some(Some(name.as_str())),
        }
    }
}

/// Every route of the API: its method and path template (`{name}` a model name,
/// `{version}` a version number). [`route`] matches requests against this table alone, so
/// it is the API's whole surface: the OpenAPI document is checked against it. `GET` routes
/// also answer `HEAD`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2"),
    ("GET", "/v2/models/{name}"),
    ("GET", "/v2/models/{name}/versions/{version}"),
    ("GET", "/v2/models/{name}/ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"),
    ("POST", "/v2/models/{name}/infer"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"),
    ("POST", "/v1/models/{name}/predict"),
];

/// The route a template of [`ROUTES`] stands for, given its parameters.
fn build(template: &str, name: Option<&str>, version: Option<u64>) -> Option<Route> {
    let name = || name.map(str::to_string);
    Some(match template {
        "/v2/health/live" => Route::Live,
        "/v2/health/ready" => Route::Ready,
        "/v2" => Route::Server,
        "/v2/models/{name}" | "/v2/models/{name}/versions/{version}" => Route::Model {
            name: name()?,
            version,
        },
        "/v2/models/{name}/ready" | "/v2/models/{name}/versions/{version}/ready" => {
            Route::ModelReady {
                name: name()?,
                version,
            }
        }
        "/v2/models/{name}/infer" | "/v2/models/{name}/versions/{version}/infer" => Route::Infer {
            name: name()?,
            version,
        },
        "/v1/models/{name}/predict" => Route::Predict { name: name()? },
        _ => return None,
    })
}

/// Matches a method and path to a route of [`ROUTES`].
pub fn route(method: &str, path: &str) -> Result<Route, InferenceError> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let not_found = || InferenceError::NotFound(format!("no route for {method} {path}"));
    for (allowed, template) in ROUTES {
        let pattern: Vec<&str> = template.split('/').skip(1).collect();
        if pattern.len() != parts.len() {
            continue;
        }
        let (mut name, mut version) = (None, None);
        let fits = pattern.iter().zip(&parts).all(|(p, part)| match *p {
            "{name}" => {
                name = Some(*part);
                !part.is_empty()
            }
            "{version}" => {
                version = Some(*part);
                !part.is_empty()
            }
            p => p == *part,
        });
        if !fits {
            continue;
        }
        let version = match version {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                InferenceError::NotFound(format!("model version '{v}' is not a version number"))
            })?),
        };
        let route = build(template, name, version).ok_or_else(not_found)?;
        let get = *allowed == "GET";
        return if method.eq_ignore_ascii_case(allowed)
            || (get && method.eq_ignore_ascii_case("HEAD"))
        {
            Ok(route)
        } else {
            Err(InferenceError::MethodNotAllowed(format!(
                "{path} takes {allowed}, not {method}"
            )))
        };
    }
    Err(not_found())
}

/// Longest request id a client may give.
pub const MAX_REQUEST_ID: usize = 256;

/// A request id: the client's, or one derived from the time, a counter and the body. A
/// client's id goes back in the `x-request-id` header and into the prediction log, so it
/// must be visible ASCII (no spaces or control characters, which would break the header)
/// and at most [`MAX_REQUEST_ID`] bytes; anything else is a 400.
pub fn request_id(given: Option<&str>, now_us: i64, body: &[u8]) -> Result<String, InferenceError> {
    match given {
        Some(id) if !id.is_empty() => {
            if id.len() > MAX_REQUEST_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(InferenceError::BadRequest(format!(
                    "the request id must be 1 to {MAX_REQUEST_ID} visible ASCII characters (no spaces or control characters)"
                )));
            }
            Ok(id.to_string())
        }
        _ => {
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut h = Sha256::new();
            h.update(now_us.to_le_bytes());
            h.update(n.to_le_bytes());
            h.update(body);
            let d = hex::encode(h.finalize());
            Ok(format!(
                "{}-{}-{}-{}-{}",
                &d[0..8],
                &d[8..12],
                &d[12..16],
                &d[16..20],
                &d[20..32]
            ))
        }
    }
}

/// Handles one request. Never panics on input; every failure is a JSON error response.
/// `guard` decides who may call what: health endpoints are open, every other endpoint needs
/// a key when the guard holds keys.
pub async fn handle<M: Models, S: OnlineStore>(
    models: &M,
    online: &S,
    settings: &Settings,
    guard: &Guard,
    req: &Request<'_>,
    now_us: i64,
) -> Response {
    // Echoed only when it is a valid id (it goes into a response header).
    let header_id = req
        .header("x-request-id")
        .filter(|id| request_id(Some(id), 0, b"").is_ok())
        .map(str::to_string);
    match dispatch(models, online, settings, guard, req, now_us).await {
        Ok(r) => r,
        Err((e, id)) => Response::error(&e, id.as_deref().or(header_id.as_deref())),
    }
}

type Failed = (InferenceError, Option<String>);

async fn dispatch<M: Models, S: OnlineStore>(
    models: &M,
    online: &S,
    settings: &Settings,
    guard: &Guard,
    req: &Request<'_>,
    now_us: i64,
) -> Result<Response, Failed> {
    let route = route(req.method, req.path).map_err(|e| (e, None))?;
    if let Some(model) = route.protected() {
        let key = guard
            .admit(req.header("authorization"), req.client, model, now_us)
            .map_err(|e| (e, None))?;
        // A version by number: only the aliased ones, unless the key may call any.
        if let (Some(key), Some((name, version))) = (key, route.numbered())
            && !key.any_version
            && !models
                .aliased(name)
                .await
                .map_err(|e| (e, None))?
                .contains(&version)
        {
            return Err((
                InferenceError::Forbidden(format!(
                    "version {version} of '{name}' holds no alias (champion, challenger); calling it by number needs a key created with --any-version"
                )),
                None,
            ));
        }
    }
    if req.body.len() > settings.max_body_bytes {
        return Err((
            InferenceError::TooLarge(format!(
                "the body is {} bytes, over the limit of {}",
                req.body.len(),
                settings.max_body_bytes
            )),
            None,
        ));
    }
    let plain = |e: InferenceError| (e, None);
    match route {
        Route::Live => Ok(Response::json(200, &json!({ "live": true }), None)),
        Route::Ready => {
            let mut ready = !models.names().is_empty();
            for name in models.names() {
                ready &= models.model(&name, None).await.is_ok();
            }
            if ready {
                Ok(Response::json(200, &json!({ "ready": true }), None))
            } else {
                Ok(Response::json(503, &json!({ "ready": false }), None))
            }
        }
        Route::Server => Ok(Response::json(
            200,
            &json!({
                "name": settings.server_name,
                "version": settings.server_version,
                "extensions": ["binary_tensor_data"],
            }),
            None,
        )),
        Route::Model { name, version } => {
            let model = models.model(&name, version).await.map_err(plain)?;
            Ok(Response::json(200, &metadata(&model), None))
        }
        Route::ModelReady { name, version } => match models.model(&name, version).await {
            Ok(_) => Ok(Response::json(
                200,
                &json!({ "name": name, "ready": true }),
                None,
            )),
            Err(e @ InferenceError::NotFound(_)) => Err((e, None)),
            Err(_) => Ok(Response::json(
                503,
                &json!({ "name": name, "ready": false }),
                None,
            )),
        },
        Route::Infer { name, version } => {
            let (request, inputs) =
                oip::parse_request(req.body, req.header(HEADER_LENGTH)).map_err(plain)?;
            let id = request_id(request.id.as_deref(), now_us, req.body).map_err(plain)?;
            let fail = |e: InferenceError| (e, Some(id.clone()));
            let plan = plan(models, &name, version, |_| id.clone())
                .await
                .map_err(fail)?;
            let model = &plan.answer;
            let (features, predictions) =
                oip::score(model, &inputs, settings.max_batch).map_err(fail)?;
            let encoded = oip::response(model, &request, &id, &predictions).map_err(fail)?;
            let mut logged = log(model, &id, now_us, &features, &predictions, plan.arm);
            if let Some(shadow) = &plan.shadow
                && let Ok((x, p)) = oip::score(shadow, &inputs, settings.max_batch)
            {
                logged.shadow = Some(Box::new(log(
                    shadow,
                    &id,
                    now_us,
                    &x,
                    &p,
                    Some(Arm::Shadow),
                )));
            }
            let mut headers = vec![("x-request-id".to_string(), id.clone())];
            headers.extend(plan.headers());
            match encoded.header_length {
                Some(len) => {
                    headers.push((
                        "content-type".into(),
                        "application/octet-stream".to_string(),
                    ));
                    headers.push((HEADER_LENGTH.into(), len.to_string()));
                }
                None => headers.push(("content-type".into(), "application/json".into())),
            }
            Ok(Response {
                status: 200,
                headers,
                body: encoded.body,
                log: Some(logged),
            })
        }
        Route::Predict { name } => predict(models, online, settings, req, now_us, &name).await,
    }
}

fn log(
    model: &Model,
    id: &str,
    now_us: i64,
    features: &[f32],
    predictions: &[Prediction],
    arm: Option<Arm>,
) -> PredictionLog {
    let f = model.n_inputs();
    PredictionLog {
        id: id.to_string(),
        model: model.name().to_string(),
        version: model.version(),
        arm,
        shadow: None,
        at_us: now_us,
        inputs: model.input_names().map(str::to_string).collect(),
        rows: predictions
            .iter()
            .enumerate()
            .map(|(i, p)| LoggedRow {
                index: i,
                features: features[i * f..(i + 1) * f]
                    .iter()
                    .map(|v| (!v.is_nan()).then_some(*v))
                    .collect(),
                label: p.label.clone(),
                score: p.score,
            })
            .collect(),
    }
}

/// The model metadata document (`GET /v2/models/{name}`).
pub fn metadata(model: &Model) -> Value {
    let n = -1i64;
    let f = model.n_inputs() as i64;
    let k = model.bundle.classes.len() as i64;
    let outputs: Vec<Value> = oip::output_names(model.task)
        .iter()
        .map(|name| match *name {
            "label" => json!({ "name": name, "datatype": "BYTES", "shape": [n] }),
            "probabilities" => json!({ "name": name, "datatype": "FP32", "shape": [n, k] }),
            _ => json!({ "name": name, "datatype": "FP32", "shape": [n] }),
        })
        .collect();
    let b = &model.bundle;
    let inputs = match &model.layout {
        Layout::Matrix => json!([{ "name": "features", "datatype": "FP32", "shape": [n, f] }]),
        Layout::Named(graph) => Value::Array(
            graph
                .iter()
                .map(|g| json!({ "name": g.name, "datatype": g.ty.datatype(), "shape": [n, g.width] }))
                .collect(),
        ),
    };
    json!({
        "name": b.model,
        "versions": [b.version.to_string()],
        "platform": "onnx_tract",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "task": b.task,
            "family": b.family,
            "feature_names": b.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
            "classes": b.classes,
            "threshold": b.threshold,
            "feature_view": b.feature_view,
            "feature_view_version": b.feature_view_version,
            "feature_views": b.views(),
            "content_hash": b.content_hash,
            "metrics": b.metrics,
        },
    })
}

/// `POST /v1/models/{name}/predict`: raw records (event fields and entity keys) in, one
/// prediction per record out; the features are computed here, as training computed them.
async fn predict<M: Models, S: OnlineStore>(
    models: &M,
    online: &S,
    settings: &Settings,
    req: &Request<'_>,
    now_us: i64,
    name: &str,
) -> Result<Response, Failed> {
    let body: Value = serde_json::from_slice(req.body).map_err(|e| {
        (
            InferenceError::BadRequest(format!("the body is not valid JSON: {e}")),
            None,
        )
    })?;
    let (given_id, records) = match &body {
        Value::Array(items) => (None, items.as_slice()),
        Value::Object(o) => {
            let items = o
                .get("records")
                .or_else(|| o.get("instances"))
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    (
                        InferenceError::BadRequest(
                            "expected {\"records\": [{...}, ...]} or a JSON array of records"
                                .into(),
                        ),
                        None,
                    )
                })?;
            (o.get("id").and_then(Value::as_str), items.as_slice())
        }
        _ => {
            return Err((
                InferenceError::BadRequest(
                    "expected {\"records\": [{...}, ...]} or a JSON array of records".into(),
                ),
                None,
            ));
        }
    };
    let id = request_id(given_id, now_us, req.body).map_err(|e| (e, None))?;
    let fail = |e: InferenceError| (e, Some(id.clone()));
    if records.is_empty() {
        return Err(fail(InferenceError::BadRequest(
            "the request has no records".into(),
        )));
    }
    if records.len() > settings.max_batch {
        return Err(fail(InferenceError::TooLarge(format!(
            "{} records is over the batch limit of {}",
            records.len(),
            settings.max_batch
        ))));
    }
    let plan = plan(models, name, None, |champion| {
        champion
            .spec
            .as_ref()
            .and_then(|spec| spec.routing_key(records.first()?.as_object()?))
            .unwrap_or_else(|| id.clone())
    })
    .await
    .map_err(fail)?;
    let model = &plan.answer;
    let Scored {
        x: features_used,
        predictions,
        facts,
    } = score(online, settings, model, records, now_us)
        .await
        .map_err(fail)?;
    let mut logged = log(model, &id, now_us, &features_used, &predictions, plan.arm);
    if let Some(shadow) = &plan.shadow
        && let Ok(s) = score(online, settings, shadow, records, now_us).await
    {
        logged.shadow = Some(Box::new(log(
            shadow,
            &id,
            now_us,
            &s.x,
            &s.predictions,
            Some(Arm::Shadow),
        )));
    }
    let classes = &model.bundle.classes;
    let out: Vec<Value> = predictions
        .iter()
        .zip(&facts)
        .enumerate()
        .map(|(i, (p, fv))| {
            let mut o = json!({ "index": i });
            match model.task {
                Task::Regression => o["value"] = json_f32(p.score),
                Task::Binary | Task::Multiclass => {
                    o["label"] = json!(p.label);
                    if model.task == Task::Binary {
                        o["probability"] = json_f32(p.score);
                    }
                    o["probabilities"] = Value::Object(
                        classes
                            .iter()
                            .zip(&p.probabilities)
                            .map(|(c, v)| (c.clone(), json_f32(*v)))
                            .collect(),
                    );
                }
            }
            if !fv.entity.is_empty() {
                o["entity"] = json!(fv.entity);
                o["unknown_entity"] = json!(fv.assembled.unknown_entity);
            }
            if !fv.assembled.missing.is_empty() {
                o["missing"] = json!(fv.assembled.missing);
            }
            o
        })
        .collect();
    let mut doc = json!({
        "id": id,
        "model_name": model.name(),
        "model_version": model.version().to_string(),
        "predictions": out,
    });
    if model.task == Task::Binary {
        doc["threshold"] = json_f32(model.threshold);
    }
    if let Some(arm) = plan.arm {
        doc["arm"] = json!(arm.as_str());
    }
    let mut r = Response::json(200, &doc, Some(&id));
    r.headers.extend(plan.headers());
    r.log = Some(logged);
    Ok(r)
}

/// One model's predictions for `/v1` records: features evaluated with the model's own
/// feature-view spec (a challenger may read another view version than the champion).
struct Scored {
    x: Vec<f32>,
    predictions: Vec<Prediction>,
    facts: Vec<features::FeatureVector>,
}

async fn score<S: OnlineStore>(
    online: &S,
    settings: &Settings,
    model: &Model,
    records: &[Value],
    now_us: i64,
) -> Result<Scored, InferenceError> {
    if model.is_imported() {
        return Err(InferenceError::BadRequest(format!(
            "model '{}' was imported with no feature view, so it cannot compute features from raw records: send its inputs to /v2/models/{}/infer",
            model.name(),
            model.name()
        )));
    }
    let Some(spec) = &model.spec else {
        return Err(InferenceError::Unavailable(format!(
            "model '{}' was loaded without its feature-view spec; use /v2/models/{}/infer with feature values",
            model.name(),
            model.name()
        )));
    };
    let f = model.n_inputs();
    let mut x = Vec::with_capacity(records.len() * f);
    let mut facts = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let Value::Object(record) = record else {
            return Err(InferenceError::BadRequest(format!(
                "record {i} is not a JSON object"
            )));
        };
        if let Ok(Some(at)) = spec.event_time_us(record)
            && at > now_us.saturating_add(settings.max_future_skew_us)
        {
            return Err(InferenceError::Unprocessable(format!(
                "record {i}: its event time is {} s ahead of the server's clock (at most {} s allowed)",
                (at - now_us) / 1_000_000,
                settings.max_future_skew_us / 1_000_000
            )));
        }
        let fv = spec
            .online_features(online, record, now_us)
            .await
            .map_err(|e| match e {
                features::EvalError::Field { .. } => {
                    InferenceError::Unprocessable(format!("record {i}: {e}"))
                }
                features::EvalError::Online(o) => {
                    InferenceError::Unavailable(format!("record {i}: the online store failed: {o}"))
                }
            })?;
        let input = fv.assembled.model_input();
        if let Some(j) = input.iter().position(|v| v.is_infinite()) {
            return Err(InferenceError::Unprocessable(format!(
                "record {i}: feature '{}' is not finite",
                fv.columns.get(j).cloned().unwrap_or_default()
            )));
        }
        x.extend(input);
        facts.push(fv);
    }
    let predictions = model.predict(x.clone(), records.len())?;
    Ok(Scored {
        x,
        predictions,
        facts,
    })
}
