//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, as KServe's
//! `grpc_predict_v2.proto` and NVIDIA Triton define it), for the native server.
//!
//! The service is a transport adapter, not a second API: each call becomes the request the
//! REST API would get (`GET /v2/models/NAME/ready`, `POST /v2/models/NAME/infer` with the
//! binary tensor extension, ...), handed to the server's one core ([`Core`]), and its
//! response is turned back into protobuf. So gRPC shares every rule of the REST path: API
//! keys (the `authorization` metadata, `Bearer <key>`), rate limits, the in-flight cap and
//! request timeout, traffic policies (canary, shadow) and prediction logs.
//!
//! Inputs may come as typed `contents` or as `raw_input_contents`; both travel to the core
//! as binary tensors. Every output comes back in `raw_output_contents` (Triton's client
//! reads only those for non-BYTES outputs, and reads BYTES from them too). The standard
//! gRPC health service and server reflection (v1 and v1alpha, for grpcurl) are served
//! beside it, open like the REST health endpoints and the OpenAPI document.
//!
//! The `.proto` was written from the published protocol specification (see its header);
//! protox compiles it at build time, so no `protoc` is downloaded.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tonic::{Request, Response, Status};

/// The generated messages and server of `package inference`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("inference");
}

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::model_infer_response::InferOutputTensor;
use pb::{
    InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse,
    infer_parameter::ParameterChoice,
};

/// The encoded `FileDescriptorSet` of the protocol, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/inference_descriptor.bin"));

/// The fully qualified service name clients call.
pub const SERVICE: &str = "inference.GRPCInferenceService";

/// One request for the server's core, as the REST API would receive it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Shared, not copied: the REST path hands over the body it read.
    pub body: bytes::Bytes,
    /// The caller's address: what failed key attempts are counted against.
    pub peer: Option<SocketAddr>,
}

/// The server's one request path (the native server implements it with its REST handler).
pub trait Core: Send + Sync + 'static {
    fn call(&self, call: Call) -> impl Future<Output = inference::Response> + Send;
}

/// The gRPC service over a core.
pub struct Oip<C> {
    core: Arc<C>,
}

impl<C> Oip<C> {
    pub fn new(core: Arc<C>) -> Self {
        Oip { core }
    }
}

/// The Open Inference Protocol service with messages up to `max_message` bytes (the REST
/// body limit), plus the gRPC health service (reporting SERVING for the server and the
/// protocol's service) and reflection, serving on `listener` until `stop` resolves.
pub async fn serve<C: Core>(
    listener: tokio::net::TcpListener,
    core: Arc<C>,
    max_message: usize,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<GrpcInferenceServiceServer<Oip<C>>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (v1, v1alpha) = match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(a), Ok(b)) => (Some(a), Some(b)),
        // The descriptors are compiled in; a failure here is a build defect, and the
        // protocol itself still serves.
        (a, b) => {
            tracing::error!("gRPC reflection is off: {:?} {:?}", a.err(), b.err());
            (None, None)
        }
    };
    let oip = GrpcInferenceServiceServer::new(Oip::new(core))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(usize::MAX);
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(oip)
        .add_optional_service(v1)
        .add_optional_service(v1alpha)
        .serve_with_incoming_shutdown(
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                // tonic sets TCP_NODELAY only on listeners it binds itself. Without it an
                // answer's HTTP/2 frames (headers, data, trailers) wait on Nagle's algorithm
                // for the client's delayed ACK: ~40 ms stalls in the p99 (`cargo xtask soak`).
                |stream| {
                    if let Ok(s) = &stream {
                        let _ = s.set_nodelay(true);
                    }
                    stream
                },
            ),
            stop,
        )
        .await
}

/// A model name as a path segment: refused when it could change the route.
fn model_segment(name: &str) -> Result<&str, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("the model name is empty"));
    }
    if name
        .bytes()
        .any(|b| matches!(b, b'/' | b':' | b'?' | b'#' | b'%') || !b.is_ascii_graphic())
    {
        return Err(Status::not_found(format!("no model named {name:?}")));
    }
    Ok(name)
}

/// `/v2/models/NAME[/versions/V]` (the version a number, or empty for the served one).
fn model_path(name: &str, version: &str) -> Result<String, Status> {
    let name = model_segment(name)?;
    match version {
        "" => Ok(format!("/v2/models/{name}")),
        v if v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 20 => {
            Ok(format!("/v2/models/{name}/versions/{v}"))
        }
        v => Err(Status::not_found(format!(
            "model version {v:?} is not a version number"
        ))),
    }
}

impl<C: Core> Oip<C> {
    async fn get<T>(&self, request: &Request<T>, path: String) -> inference::Response {
        self.core
            .call(Call {
                method: "GET".into(),
                path,
                headers: forwarded(request),
                body: bytes::Bytes::new(),
                peer: request.remote_addr(),
            })
            .await
    }
}

/// The metadata the core reads: the API key and the request id.
fn forwarded<T>(request: &Request<T>) -> Vec<(String, String)> {
    ["authorization", "x-request-id"]
        .iter()
        .filter_map(|k| {
            let v = request.metadata().get(*k)?.to_str().ok()?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The gRPC status of a REST error response, with the API's error message.
pub fn status_of(response: &inference::Response) -> Status {
    let message = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP status {}", response.status));
    let code = match response.status {
        400 | 422 => tonic::Code::InvalidArgument,
        401 => tonic::Code::Unauthenticated,
        403 => tonic::Code::PermissionDenied,
        404 | 405 => tonic::Code::NotFound,
        408 | 504 => tonic::Code::DeadlineExceeded,
        413 | 429 => tonic::Code::ResourceExhausted,
        503 => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    };
    let mut status = Status::new(code, message);
    if let Some((_, v)) = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        && let Ok(v) = v.parse()
    {
        status.metadata_mut().insert("retry-after", v);
    }
    status
}

fn json_of(response: &inference::Response) -> Result<Value, Status> {
    serde_json::from_slice(&response.body)
        .map_err(|e| Status::internal(format!("the server's answer is not JSON: {e}")))
}

/// A ready endpoint's answer: 200 is ready, 503 or 404 not ready; anything else (a key
/// refused, a rate limit) is the call's error.
fn ready_of(response: &inference::Response) -> Result<bool, Status> {
    match response.status {
        200 => Ok(true),
        404 | 503 => Ok(false),
        _ => Err(status_of(response)),
    }
}

#[tonic::async_trait]
impl<C: Core> GrpcInferenceService for Oip<C> {
    async fn server_live(
        &self,
        request: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        let r = self.get(&request, "/v2/health/live".into()).await;
        Ok(Response::new(pb::ServerLiveResponse {
            live: ready_of(&r)?,
        }))
    }

    async fn server_ready(
        &self,
        request: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        let r = self.get(&request, "/v2/health/ready".into()).await;
        Ok(Response::new(pb::ServerReadyResponse {
            ready: ready_of(&r)?,
        }))
    }

    async fn model_ready(
        &self,
        request: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let m = request.get_ref();
        let path = format!("{}/ready", model_path(&m.name, &m.version)?);
        let r = self.get(&request, path).await;
        Ok(Response::new(pb::ModelReadyResponse {
            ready: ready_of(&r)?,
        }))
    }

    async fn server_metadata(
        &self,
        request: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        let r = self.get(&request, "/v2".into()).await;
        if r.status != 200 {
            return Err(status_of(&r));
        }
        let v = json_of(&r)?;
        Ok(Response::new(pb::ServerMetadataResponse {
            name: str_of(&v["name"]),
            version: str_of(&v["version"]),
            extensions: strings_of(&v["extensions"]),
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let m = request.get_ref();
        let path = model_path(&m.name, &m.version)?;
        let r = self.get(&request, path).await;
        if r.status != 200 {
            return Err(status_of(&r));
        }
        Ok(Response::new(metadata_of(&json_of(&r)?)))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let m = request.get_ref();
        let path = format!("{}/infer", model_path(&m.model_name, &m.model_version)?);
        let (body, header_length) = infer_body(m)?;
        let mut headers = forwarded(&request);
        headers.push(("content-type".into(), "application/octet-stream".into()));
        headers.push((
            inference::oip::HEADER_LENGTH.to_string(),
            header_length.to_string(),
        ));
        let r = self
            .core
            .call(Call {
                method: "POST".into(),
                path,
                headers,
                body: body.into(),
                peer: request.remote_addr(),
            })
            .await;
        if r.status != 200 {
            return Err(status_of(&r));
        }
        let header_length = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(inference::oip::HEADER_LENGTH))
            .and_then(|(_, v)| v.parse().ok());
        Ok(Response::new(infer_response(&r.body, header_length)?))
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn strings_of(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn tensors_of(v: &Value) -> Vec<pb::model_metadata_response::TensorMetadata> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| pb::model_metadata_response::TensorMetadata {
            name: str_of(&t["name"]),
            datatype: str_of(&t["datatype"]),
            shape: t["shape"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect(),
        })
        .collect()
}

/// The REST model metadata as the gRPC message.
pub fn metadata_of(v: &Value) -> pb::ModelMetadataResponse {
    pb::ModelMetadataResponse {
        name: str_of(&v["name"]),
        versions: strings_of(&v["versions"]),
        platform: str_of(&v["platform"]),
        inputs: tensors_of(&v["inputs"]),
        outputs: tensors_of(&v["outputs"]),
    }
}

/// A gRPC parameter as JSON.
fn parameter_json(p: &InferParameter) -> Value {
    match &p.parameter_choice {
        Some(ParameterChoice::BoolParam(b)) => json!(b),
        Some(ParameterChoice::Int64Param(i)) => json!(i),
        Some(ParameterChoice::StringParam(s)) => json!(s),
        Some(ParameterChoice::DoubleParam(d)) => json!(d),
        Some(ParameterChoice::Uint64Param(u)) => json!(u),
        None => Value::Null,
    }
}

fn parameters_json(p: &std::collections::HashMap<String, InferParameter>) -> Map<String, Value> {
    p.iter()
        .map(|(k, v)| (k.clone(), parameter_json(v)))
        .collect()
}

/// A JSON parameter as gRPC's (numbers: int64 when whole, else double).
fn parameter_of(v: &Value) -> Option<InferParameter> {
    let choice = match v {
        Value::Bool(b) => ParameterChoice::BoolParam(*b),
        Value::String(s) => ParameterChoice::StringParam(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ParameterChoice::Int64Param(i),
            (None, Some(u), _) => ParameterChoice::Uint64Param(u),
            (None, None, Some(d)) => ParameterChoice::DoubleParam(d),
            _ => return None,
        },
        _ => return None,
    };
    Some(InferParameter {
        parameter_choice: Some(choice),
    })
}

/// The typed contents of one input as raw little-endian bytes in its datatype (BYTES as
/// 4-byte-length-prefixed elements), the form of `raw_input_contents`.
fn raw_of(name: &str, datatype: &str, c: &InferTensorContents) -> Result<Vec<u8>, Status> {
    fn ints<T: Copy>(
        name: &str,
        values: &[T],
        out: &mut Vec<u8>,
        put: impl Fn(T, &mut Vec<u8>) -> bool,
    ) -> Result<(), Status> {
        for &v in values {
            if !put(v, out) {
                return Err(Status::invalid_argument(format!(
                    "input '{name}': a value is out of its datatype's range"
                )));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    match datatype {
        "FP32" => c
            .fp32_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "FP64" => c
            .fp64_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "BOOL" => c.bool_contents.iter().for_each(|v| out.push(u8::from(*v))),
        "INT8" => ints(name, &c.int_contents, &mut out, |v, o| {
            i8::try_from(v).is_ok_and(|v| {
                o.extend(v.to_le_bytes());
                true
            })
        })?,
        "INT16" => ints(name, &c.int_contents, &mut out, |v, o| {
            i16::try_from(v).is_ok_and(|v| {
                o.extend(v.to_le_bytes());
                true
            })
        })?,
        "INT32" => c
            .int_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "INT64" => c
            .int64_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "UINT8" => ints(name, &c.uint_contents, &mut out, |v, o| {
            u8::try_from(v).is_ok_and(|v| {
                o.push(v);
                true
            })
        })?,
        "UINT16" => ints(name, &c.uint_contents, &mut out, |v, o| {
            u16::try_from(v).is_ok_and(|v| {
                o.extend(v.to_le_bytes());
                true
            })
        })?,
        "UINT32" => c
            .uint_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "UINT64" => c
            .uint64_contents
            .iter()
            .for_each(|v| out.extend(v.to_le_bytes())),
        "BYTES" => c.bytes_contents.iter().for_each(|v| {
            out.extend((v.len() as u32).to_le_bytes());
            out.extend(v);
        }),
        other => {
            return Err(Status::invalid_argument(format!(
                "input '{name}': datatype '{other}' has no typed contents (FP16 travels in raw_input_contents)"
            )));
        }
    }
    Ok(out)
}

/// The REST body (binary tensor extension) for a gRPC inference request and the length of
/// its JSON part. Every output is asked for as binary, to go back in
/// `raw_output_contents`.
pub fn infer_body(m: &ModelInferRequest) -> Result<(Vec<u8>, usize), Status> {
    if !m.raw_input_contents.is_empty() && m.raw_input_contents.len() != m.inputs.len() {
        return Err(Status::invalid_argument(format!(
            "{} raw_input_contents for {} inputs: send one per input, in order, or none",
            m.raw_input_contents.len(),
            m.inputs.len()
        )));
    }
    let mut binary = Vec::new();
    let mut inputs = Vec::with_capacity(m.inputs.len());
    for (i, input) in m.inputs.iter().enumerate() {
        let raw = match (m.raw_input_contents.get(i), &input.contents) {
            (Some(_), Some(c)) if *c != InferTensorContents::default() => {
                return Err(Status::invalid_argument(format!(
                    "input '{}' has both contents and raw_input_contents",
                    input.name
                )));
            }
            (Some(raw), _) => raw.clone(),
            (None, Some(c)) => raw_of(&input.name, &input.datatype, c)?,
            (None, None) => {
                return Err(Status::invalid_argument(format!(
                    "input '{}' has no data (contents or raw_input_contents)",
                    input.name
                )));
            }
        };
        let mut parameters = parameters_json(&input.parameters);
        parameters.insert("binary_data_size".into(), json!(raw.len()));
        inputs.push(json!({
            "name": input.name,
            "datatype": input.datatype,
            "shape": input.shape,
            "parameters": parameters,
        }));
        binary.extend(raw);
    }
    let mut parameters = parameters_json(&m.parameters);
    parameters.insert("binary_data_output".into(), json!(true));
    let mut head = json!({ "inputs": inputs, "parameters": parameters });
    if !m.id.is_empty() {
        head["id"] = json!(m.id);
    }
    if !m.outputs.is_empty() {
        head["outputs"] = m
            .outputs
            .iter()
            .map(|o| {
                let mut p = parameters_json(&o.parameters);
                p.insert("binary_data".into(), json!(true));
                json!({ "name": o.name, "parameters": p })
            })
            .collect();
    }
    let mut body = head.to_string().into_bytes();
    let header_length = body.len();
    body.extend(binary);
    Ok((body, header_length))
}

/// The gRPC response for a REST inference response (`header_length`: the JSON part's
/// length when the body carries binary tensors).
pub fn infer_response(
    body: &[u8],
    header_length: Option<usize>,
) -> Result<ModelInferResponse, Status> {
    let bad = |m: String| Status::internal(format!("the server's inference answer: {m}"));
    let (head, mut binary) = match header_length {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => return Err(bad(format!("header length {n} is past the body"))),
        None => (body, &[][..]),
    };
    let v: Value = serde_json::from_slice(head).map_err(|e| bad(e.to_string()))?;
    let mut outputs = Vec::new();
    let mut raw = Vec::new();
    for o in v["outputs"].as_array().into_iter().flatten() {
        let datatype = str_of(&o["datatype"]);
        let mut parameters = std::collections::HashMap::new();
        let bytes = match o["parameters"]["binary_data_size"].as_u64() {
            Some(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= binary.len())
                    .ok_or_else(|| bad("binary_data_size is past the body".into()))?;
                let (this, rest) = binary.split_at(n);
                binary = rest;
                this.to_vec()
            }
            None => json_raw(&datatype, &o["data"]).map_err(bad)?,
        };
        for (k, p) in o["parameters"].as_object().into_iter().flatten() {
            if k != "binary_data_size"
                && let Some(p) = parameter_of(p)
            {
                parameters.insert(k.clone(), p);
            }
        }
        outputs.push(InferOutputTensor {
            name: str_of(&o["name"]),
            datatype,
            shape: o["shape"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect(),
            parameters,
            contents: None,
        });
        raw.push(bytes);
    }
    Ok(ModelInferResponse {
        model_name: str_of(&v["model_name"]),
        model_version: str_of(&v["model_version"]),
        id: str_of(&v["id"]),
        parameters: v["parameters"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, p)| Some((k.clone(), parameter_of(p)?)))
            .collect(),
        outputs,
        raw_output_contents: raw,
    })
}

/// A JSON output's `data` as raw bytes (the server answers binary when asked, so this is a
/// fallback for outputs it always sends as JSON).
fn json_raw(datatype: &str, data: &Value) -> Result<Vec<u8>, String> {
    let items = data
        .as_array()
        .ok_or_else(|| format!("{datatype} output without data"))?;
    let mut out = Vec::new();
    for item in items {
        match datatype {
            "FP32" => out.extend((item.as_f64().unwrap_or(f64::NAN) as f32).to_le_bytes()),
            "FP64" => out.extend(item.as_f64().unwrap_or(f64::NAN).to_le_bytes()),
            "INT64" => out.extend(item.as_i64().unwrap_or_default().to_le_bytes()),
            "BYTES" => {
                let s = item.as_str().unwrap_or_default();
                out.extend((s.len() as u32).to_le_bytes());
                out.extend(s.as_bytes());
            }
            other => return Err(format!("output datatype {other} in JSON")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};

    fn input(name: &str, datatype: &str, shape: Vec<i64>) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            ..Default::default()
        }
    }

    fn split(body: &[u8], n: usize) -> (Value, &[u8]) {
        (serde_json::from_slice(&body[..n]).unwrap(), &body[n..])
    }

    #[test]
    fn typed_and_raw_inputs_become_the_same_binary_tensors() {
        let x = [1.5f32, f32::NAN, -2.0, 0.25];
        let mut typed = input("features", "FP32", vec![2, 2]);
        typed.contents = Some(InferTensorContents {
            fp32_contents: x.to_vec(),
            ..Default::default()
        });
        let typed = ModelInferRequest {
            model_name: "fraud".into(),
            id: "r1".into(),
            inputs: vec![typed],
            ..Default::default()
        };
        let raw = ModelInferRequest {
            model_name: "fraud".into(),
            id: "r1".into(),
            inputs: vec![input("features", "FP32", vec![2, 2])],
            raw_input_contents: vec![x.iter().flat_map(|v| v.to_le_bytes()).collect()],
            ..Default::default()
        };
        let (a, na) = infer_body(&typed).unwrap();
        let (b, nb) = infer_body(&raw).unwrap();
        assert_eq!(a, b);
        let (head, bin) = split(&a, na);
        assert_eq!(na, nb);
        assert_eq!(head["id"], "r1");
        assert_eq!(head["parameters"]["binary_data_output"], true);
        assert_eq!(head["inputs"][0]["parameters"]["binary_data_size"], 16);
        assert_eq!(bin.len(), 16);
        // And the core parses it as the REST API does.
        let (_, decoded) = inference::oip::parse_request(&a, Some(&na.to_string())).unwrap();
        assert_eq!(decoded[0].shape, vec![2, 2]);
        assert!(decoded[0].values[1].is_nan());
        assert_eq!(decoded[0].values[3], 0.25);
    }

    #[test]
    fn integer_contents_keep_their_width_and_refuse_overflow() {
        let mut i = input("a", "INT8", vec![3]);
        i.contents = Some(InferTensorContents {
            int_contents: vec![-1, 2, 127],
            ..Default::default()
        });
        let mut m = ModelInferRequest {
            model_name: "m".into(),
            inputs: vec![i],
            outputs: vec![InferRequestedOutputTensor {
                name: "label".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (body, n) = infer_body(&m).unwrap();
        let (head, bin) = split(&body, n);
        assert_eq!(bin, &[0xff, 2, 127]);
        assert_eq!(head["outputs"][0]["parameters"]["binary_data"], true);
        if let Some(c) = m.inputs[0].contents.as_mut() {
            c.int_contents[0] = 300;
        }
        let e = infer_body(&m).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("range"), "{e}");
    }

    #[test]
    fn mismatched_or_doubled_data_is_refused() {
        let m = ModelInferRequest {
            inputs: vec![input("a", "FP32", vec![1]), input("b", "FP32", vec![1])],
            raw_input_contents: vec![vec![0; 4]],
            ..Default::default()
        };
        assert!(
            infer_body(&m)
                .unwrap_err()
                .message()
                .contains("one per input")
        );
        let mut both = input("a", "FP32", vec![1]);
        both.contents = Some(InferTensorContents {
            fp32_contents: vec![1.0],
            ..Default::default()
        });
        let m = ModelInferRequest {
            inputs: vec![both],
            raw_input_contents: vec![vec![0; 4]],
            ..Default::default()
        };
        assert!(infer_body(&m).unwrap_err().message().contains("both"));
        let m = ModelInferRequest {
            inputs: vec![input("a", "FP32", vec![1])],
            ..Default::default()
        };
        assert!(infer_body(&m).unwrap_err().message().contains("no data"));
    }

    #[test]
    fn names_that_would_change_the_route_are_refused() {
        assert!(model_path("fraud", "").is_ok());
        assert_eq!(
            model_path("fraud", "3").unwrap(),
            "/v2/models/fraud/versions/3"
        );
        for bad in ["", "a/b", "a:predict", "a?x", "a b", "%2F"] {
            assert!(model_path(bad, "").is_err(), "{bad}");
        }
        assert!(model_path("fraud", "champion").is_err());
    }

    #[test]
    fn binary_outputs_go_to_raw_output_contents_in_order() {
        let head = json!({
            "model_name": "fraud", "model_version": "2", "id": "x",
            "parameters": {"threshold": 0.5},
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 5}},
                {"name": "probability", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}},
                {"name": "value", "datatype": "FP32", "shape": [1], "data": [2.5]},
            ]
        })
        .to_string();
        let mut body = head.clone().into_bytes();
        body.extend([1, 0, 0, 0, b'1']);
        body.extend(0.75f32.to_le_bytes());
        let r = infer_response(&body, Some(head.len())).unwrap();
        assert_eq!(r.model_version, "2");
        assert_eq!(r.outputs.len(), 3);
        assert_eq!(r.raw_output_contents[0], vec![1, 0, 0, 0, b'1']);
        assert_eq!(r.raw_output_contents[1], 0.75f32.to_le_bytes().to_vec());
        assert_eq!(r.raw_output_contents[2], 2.5f32.to_le_bytes().to_vec());
        assert_eq!(
            r.parameters["threshold"].parameter_choice,
            Some(ParameterChoice::DoubleParam(0.5))
        );
        assert!(infer_response(&body, Some(body.len() + 1)).is_err());
    }

    #[test]
    fn rest_errors_keep_their_meaning() {
        let e = |status: u16, headers: Vec<(String, String)>| inference::Response {
            status,
            headers,
            body: br#"{"error":"why"}"#.to_vec(),
            log: None,
        };
        let s = status_of(&e(401, vec![]));
        assert_eq!(
            (s.code(), s.message()),
            (tonic::Code::Unauthenticated, "why")
        );
        assert_eq!(
            status_of(&e(403, vec![])).code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(status_of(&e(404, vec![])).code(), tonic::Code::NotFound);
        let s = status_of(&e(429, vec![("Retry-After".into(), "2".into())]));
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert_eq!(s.metadata().get("retry-after").unwrap(), "2");
        assert_eq!(status_of(&e(503, vec![])).code(), tonic::Code::Unavailable);
        assert_eq!(
            status_of(&e(400, vec![])).code(),
            tonic::Code::InvalidArgument
        );
    }
}
