//! The Open Inference Protocol (KServe v2) REST dialect: inference requests in JSON or with
//! the binary tensor data extension (`Inference-Header-Content-Length`), turned into the
//! model's feature matrix, and responses in the form the client asked for. See
//! docs/research/open-inference-protocol.md for what clients send.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::InferenceError;
use crate::model::{Column, Elem, Layout, Model, Prediction, Task};

/// The binary extension's header: the length of the JSON part at the start of the body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Debug, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    pub inputs: Vec<InputTensor>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Deserialize)]
pub struct InputTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    #[serde(default)]
    pub data: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
}

/// A decoded input: its name, shape and values as f32 (NaN for JSON `null`); integer
/// datatypes also keep their exact values (`ints`), and `BYTES` its strings (`text`, with
/// `values` empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub ints: Option<Vec<i64>>,
    pub text: Option<Vec<String>>,
}

fn bad(msg: impl Into<String>) -> InferenceError {
    InferenceError::BadRequest(msg.into())
}

fn bool_param(p: &Option<Map<String, Value>>, key: &str) -> Option<bool> {
    p.as_ref()?.get(key)?.as_bool()
}

/// Splits a body into its JSON header and binary part (`header_length` from the header).
pub fn parse_request(
    body: &[u8],
    header_length: Option<&str>,
) -> Result<(InferRequest, Vec<Decoded>), InferenceError> {
    let (head, binary) = match header_length {
        None => (body, &[][..]),
        Some(v) => {
            let n: usize = v.trim().parse().map_err(|_| {
                bad(format!(
                    "Inference-Header-Content-Length must be a byte count, got '{v}'"
                ))
            })?;
            if n > body.len() {
                return Err(bad(format!(
                    "Inference-Header-Content-Length is {n} but the body has {} bytes",
                    body.len()
                )));
            }
            body.split_at(n)
        }
    };
    let request: InferRequest = serde_json::from_slice(head)
        .map_err(|e| bad(format!("the inference request is not valid JSON: {e}")))?;
    if request.inputs.is_empty() {
        return Err(bad("the request has no inputs"));
    }
    let mut rest = binary;
    let mut decoded = Vec::with_capacity(request.inputs.len());
    for input in &request.inputs {
        decoded.push(decode_input(input, &mut rest)?);
    }
    if !rest.is_empty() {
        return Err(bad(format!(
            "{} bytes of binary tensor data are left over after the last input",
            rest.len()
        )));
    }
    Ok((request, decoded))
}

fn shape_of(input: &InputTensor) -> Result<(Vec<usize>, usize), InferenceError> {
    let mut count: usize = 1;
    let mut shape = Vec::with_capacity(input.shape.len());
    for &d in &input.shape {
        let d = usize::try_from(d).map_err(|_| {
            bad(format!(
                "input '{}': shape {:?} has a negative dimension",
                input.name, input.shape
            ))
        })?;
        count = count.checked_mul(d).ok_or_else(|| {
            InferenceError::TooLarge(format!("input '{}': shape is too large", input.name))
        })?;
        shape.push(d);
    }
    Ok((shape, count))
}

/// Element size in bytes of a numeric datatype (`None`: not numeric).
fn element_size(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" | "FP16" => 2,
        "INT32" | "UINT32" | "FP32" => 4,
        "INT64" | "UINT64" | "FP64" => 8,
        _ => return None,
    })
}

/// Where an input's values are: its JSON `data`, or its `binary_data_size` bytes taken from
/// the front of the binary part (`rest` moves past them).
enum Source<'a, 'b> {
    Json(&'a Value),
    Binary(&'b [u8]),
}

fn source_of<'a, 'b>(
    input: &'a InputTensor,
    rest: &mut &'b [u8],
) -> Result<Source<'a, 'b>, InferenceError> {
    let name = &input.name;
    let binary_size = input
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"));
    match (binary_size, &input.data) {
        (Some(_), Some(_)) => Err(bad(format!(
            "input '{name}' has both `data` and `binary_data_size`"
        ))),
        (None, None) => Err(bad(format!("input '{name}' has no data"))),
        (None, Some(data)) => Ok(Source::Json(data)),
        (Some(n), None) => {
            let n = n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "input '{name}': binary_data_size must be a byte count"
                    ))
                })?;
            if n > rest.len() {
                return Err(bad(format!(
                    "input '{name}' declares {n} bytes of binary data, only {} remain",
                    rest.len()
                )));
            }
            let (bytes, tail) = rest.split_at(n);
            *rest = tail;
            Ok(Source::Binary(bytes))
        }
    }
}

/// A `BYTES` input: JSON strings, or binary elements each a 4-byte little-endian length and
/// that many bytes (UTF-8 here: the models take strings).
fn decode_bytes(input: &InputTensor, rest: &mut &[u8]) -> Result<Decoded, InferenceError> {
    let (shape, count) = shape_of(input)?;
    let name = &input.name;
    let mut text: Vec<String> = Vec::with_capacity(count.min(1 << 16));
    match source_of(input, rest)? {
        Source::Binary(mut bytes) => {
            while !bytes.is_empty() {
                if bytes.len() < 4 {
                    return Err(bad(format!(
                        "input '{name}': a BYTES element is cut short in its length prefix"
                    )));
                }
                let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                let Some(element) = bytes[4..].get(..len) else {
                    return Err(bad(format!(
                        "input '{name}': a BYTES element says {len} bytes, fewer remain"
                    )));
                };
                let s = std::str::from_utf8(element).map_err(|_| {
                    bad(format!(
                        "input '{name}': element {} is not UTF-8",
                        text.len()
                    ))
                })?;
                text.push(s.to_string());
                bytes = &bytes[4..][len..];
            }
        }
        Source::Json(data) => flatten_strings(name, data, &mut text)?,
    }
    if text.len() != count {
        return Err(bad(format!(
            "input '{name}': {} values do not fit shape {:?} ({count} elements)",
            text.len(),
            input.shape
        )));
    }
    Ok(Decoded {
        name: name.clone(),
        datatype: input.datatype.clone(),
        shape,
        values: Vec::new(),
        ints: None,
        text: Some(text),
    })
}

fn flatten_strings(name: &str, v: &Value, out: &mut Vec<String>) -> Result<(), InferenceError> {
    match v {
        Value::Array(items) => {
            for item in items {
                flatten_strings(name, item, out)?;
            }
            Ok(())
        }
        Value::String(s) => {
            out.push(s.clone());
            Ok(())
        }
        other => Err(bad(format!(
            "input '{name}': {other} is not a BYTES (string) value"
        ))),
    }
}

/// Exact integer values of an integer datatype's binary data.
fn decode_ints(datatype: &str, bytes: &[u8], size: usize) -> Option<Vec<i64>> {
    if !datatype.starts_with("INT") && !datatype.starts_with("UINT") && datatype != "BOOL" {
        return None;
    }
    Some(
        bytes
            .chunks_exact(size)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(c);
                match datatype {
                    "INT8" => i64::from(c[0] as i8),
                    "INT16" => i64::from(i16::from_le_bytes([c[0], c[1]])),
                    "INT32" => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    "INT64" => i64::from_le_bytes(b),
                    // Unsigned: as read, saturated past i64::MAX.
                    _ => i64::try_from(u64::from_le_bytes(b)).unwrap_or(i64::MAX),
                }
            })
            .collect(),
    )
}

fn decode_input(input: &InputTensor, rest: &mut &[u8]) -> Result<Decoded, InferenceError> {
    if input.datatype == "BYTES" {
        return decode_bytes(input, rest);
    }
    let (shape, count) = shape_of(input)?;
    let name = &input.name;
    let Some(size) = element_size(&input.datatype) else {
        return Err(bad(format!(
            "input '{name}': datatype '{}' is not supported; inputs are numbers (FP32, FP64, FP16, INT*, UINT*, BOOL) or BYTES (strings)",
            input.datatype
        )));
    };
    let mut ints = None;
    let values = match source_of(input, rest)? {
        Source::Binary(bytes) => {
            let n = bytes.len();
            if n != count.saturating_mul(size) {
                return Err(bad(format!(
                    "input '{name}': {n} bytes of {} do not fit shape {:?} ({count} elements of {size} bytes)",
                    input.datatype, input.shape
                )));
            }
            ints = decode_ints(&input.datatype, bytes, size);
            decode_binary(&input.datatype, bytes, size)
        }
        Source::Json(data) => {
            let mut out = Vec::with_capacity(count.min(1 << 20));
            flatten_json(name, &input.datatype, data, &mut out)?;
            if decode_ints(&input.datatype, &[], size).is_some() {
                let mut exact = Vec::with_capacity(out.len());
                flatten_ints(data, &mut exact);
                ints = (exact.len() == out.len()).then_some(exact);
            }
            if out.len() != count {
                return Err(bad(format!(
                    "input '{name}': {} values do not fit shape {:?} ({count} elements)",
                    out.len(),
                    input.shape
                )));
            }
            out
        }
    };
    Ok(Decoded {
        name: name.clone(),
        datatype: input.datatype.clone(),
        shape,
        values,
        ints,
        text: None,
    })
}

/// Exact JSON integers (a null or fraction leaves the list short: not exact).
fn flatten_ints(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten_ints(i, out)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push(i);
            }
        }
        Value::Bool(b) => out.push(i64::from(*b)),
        _ => {}
    }
}

fn decode_binary(datatype: &str, bytes: &[u8], size: usize) -> Vec<f32> {
    bytes
        .chunks_exact(size)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(c);
            match datatype {
                "BOOL" | "UINT8" => f32::from(c[0]),
                "INT8" => f32::from(c[0] as i8),
                "INT16" => f32::from(i16::from_le_bytes([c[0], c[1]])),
                "UINT16" => f32::from(u16::from_le_bytes([c[0], c[1]])),
                "FP16" => f16_to_f32(u16::from_le_bytes([c[0], c[1]])),
                "INT32" => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
                "UINT32" => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32,
                "FP32" => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                "INT64" => i64::from_le_bytes(b) as f32,
                "UINT64" => u64::from_le_bytes(b) as f32,
                _ => f64::from_le_bytes(b) as f32,
            }
        })
        .collect()
}

/// IEEE half precision to f32.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Row-major flattening of (possibly nested) JSON `data`; `null` is a missing value.
fn flatten_json(
    name: &str,
    datatype: &str,
    v: &Value,
    out: &mut Vec<f32>,
) -> Result<(), InferenceError> {
    match v {
        Value::Array(items) => {
            for item in items {
                flatten_json(name, datatype, item, out)?;
            }
            Ok(())
        }
        Value::Number(n) => {
            let x = n
                .as_f64()
                .ok_or_else(|| bad(format!("input '{name}': {n} is not a representable number")))?;
            if datatype != "FP32" && datatype != "FP64" && datatype != "FP16" && x.fract() != 0.0 {
                return Err(bad(format!(
                    "input '{name}': {x} is not an integer, but the datatype is {datatype}"
                )));
            }
            out.push(x as f32);
            Ok(())
        }
        Value::Bool(b) if datatype == "BOOL" => {
            out.push(f32::from(u8::from(*b)));
            Ok(())
        }
        Value::Null => {
            out.push(f32::NAN);
            Ok(())
        }
        other => Err(bad(format!(
            "input '{name}': {other} is not a {datatype} value"
        ))),
    }
}

/// Arranges decoded inputs as the model's row-major matrix. Two layouts are accepted: one
/// 2-D input `[N, F]` holding every feature in the bundle's order (any name not a feature
/// name, e.g. `features`), or one input per feature, named as in the bundle, each `[N]` or
/// `[N, 1]`. Values must be finite; a missing value is JSON `null`.
pub fn to_matrix(
    model: &Model,
    inputs: &[Decoded],
    max_batch: usize,
) -> Result<(Vec<f32>, usize), InferenceError> {
    if let Some(d) = inputs.iter().find(|d| d.text.is_some()) {
        return Err(bad(format!(
            "input '{}' is BYTES; this model takes numbers",
            d.name
        )));
    }
    let f = model.n_inputs();
    let names: Vec<&str> = model.input_names().collect();
    let single = inputs.len() == 1 && !names.contains(&inputs[0].name.as_str());
    let (x, n) = if single {
        let input = &inputs[0];
        let n = match input.shape.as_slice() {
            [n, w] if *w == f => *n,
            [w] if *w == f => 1,
            other => {
                return Err(bad(format!(
                    "input '{}' has shape {other:?}; a single input must be [N, {f}] with the model's {f} features in order ({})",
                    input.name,
                    preview(&names)
                )));
            }
        };
        check_batch(n, max_batch)?;
        (input.values.clone(), n)
    } else {
        let mut by_name: Vec<Option<&Decoded>> = vec![None; f];
        for input in inputs {
            let Some(i) = names.iter().position(|n| *n == input.name) else {
                return Err(bad(format!(
                    "unknown input '{}'; the model's inputs are {}",
                    input.name,
                    preview(&names)
                )));
            };
            if by_name[i].is_some() {
                return Err(bad(format!("input '{}' is given twice", input.name)));
            }
            by_name[i] = Some(input);
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(&by_name)
            .filter(|(_, d)| d.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "missing inputs: {} (send every model input by name, or one [N, {f}] tensor)",
                preview(&missing)
            )));
        }
        let mut n = None;
        for d in by_name.iter().flatten() {
            let rows = match d.shape.as_slice() {
                [r] | [r, 1] => *r,
                other => {
                    return Err(bad(format!(
                        "input '{}' has shape {other:?}; a per-feature input must be [N] or [N, 1]",
                        d.name
                    )));
                }
            };
            match n {
                None => n = Some(rows),
                Some(m) if m != rows => {
                    return Err(bad(format!(
                        "input '{}' has {rows} rows, other inputs have {m}",
                        d.name
                    )));
                }
                _ => {}
            }
        }
        let n = n.unwrap_or(0);
        check_batch(n, max_batch)?;
        let mut x = vec![0f32; n * f];
        for (j, d) in by_name.iter().flatten().enumerate() {
            for (r, v) in d.values.iter().enumerate() {
                x[r * f + j] = *v;
            }
        }
        (x, n)
    };
    if let Some(i) = x.iter().position(|v| v.is_infinite()) {
        return Err(InferenceError::Unprocessable(format!(
            "row {}, input '{}': {} is not a finite number",
            i / f,
            names[i % f],
            x[i]
        )));
    }
    Ok((x, n))
}

/// Scores decoded inputs with either layout: (the feature values the prediction log
/// records, the predictions). An imported model's log row holds each single-valued numeric
/// input and no value for the others (strings, wide inputs).
pub fn score(
    model: &Model,
    inputs: &[Decoded],
    max_batch: usize,
) -> Result<(Vec<f32>, Vec<Prediction>), InferenceError> {
    if !model.is_imported() {
        let (x, n) = to_matrix(model, inputs, max_batch)?;
        let predictions = model.predict(x.clone(), n)?;
        return Ok((x, predictions));
    }
    let (columns, n) = to_columns(model, inputs, max_batch)?;
    let logged: Vec<f32> = (0..n)
        .flat_map(|r| {
            columns.iter().map(move |c| match c {
                Column::F32(v) if v.len() == n => v[r],
                Column::I64(v) if v.len() == n => v[r] as f32,
                _ => f32::NAN,
            })
        })
        .collect();
    let predictions = model.predict_columns(columns, n)?;
    Ok((logged, predictions))
}

/// An imported model's graph inputs from the request: every input by name, `[N, width]`
/// (or `[N]` for width 1) of a datatype its type takes: BYTES for strings, integers (or
/// integral numbers) for i64, any number for f32.
pub fn to_columns(
    model: &Model,
    inputs: &[Decoded],
    max_batch: usize,
) -> Result<(Vec<Column>, usize), InferenceError> {
    let Layout::Named(graph) = &model.layout else {
        return Err(InferenceError::Internal("not an imported model".into()));
    };
    let names: Vec<&str> = graph.iter().map(|g| g.name.as_str()).collect();
    for d in inputs {
        if !names.contains(&d.name.as_str()) {
            return Err(bad(format!(
                "unknown input '{}'; the model's inputs are {}",
                d.name,
                preview(&names)
            )));
        }
        if inputs.iter().filter(|o| o.name == d.name).count() > 1 {
            return Err(bad(format!("input '{}' is given twice", d.name)));
        }
    }
    let mut n: Option<usize> = None;
    let mut columns = Vec::with_capacity(graph.len());
    for g in graph {
        let Some(d) = inputs.iter().find(|d| d.name == g.name) else {
            return Err(bad(format!(
                "missing input '{}' ({} [N, {}]); the model's inputs are {}",
                g.name,
                g.ty.datatype(),
                g.width,
                preview(&names)
            )));
        };
        let rows = match d.shape.as_slice() {
            [r] if g.width == 1 => *r,
            [r, w] if *w == g.width => *r,
            other => {
                return Err(bad(format!(
                    "input '{}' has shape {other:?}; it must be [N, {}]",
                    g.name, g.width
                )));
            }
        };
        match n {
            None => n = Some(rows),
            Some(m) if m != rows => {
                return Err(bad(format!(
                    "input '{}' has {rows} rows, other inputs have {m}",
                    g.name
                )));
            }
            _ => {}
        }
        let wrong = |want: &str| {
            bad(format!(
                "input '{}' is {}; the model takes {want}",
                g.name, d.datatype
            ))
        };
        columns.push(match g.ty {
            Elem::Str => Column::Str(d.text.clone().ok_or_else(|| wrong("BYTES (strings)"))?),
            Elem::F32 => {
                if d.text.is_some() {
                    return Err(wrong("numbers (FP32)"));
                }
                if let Some(i) = d.values.iter().position(|v| v.is_infinite()) {
                    return Err(InferenceError::Unprocessable(format!(
                        "row {}, input '{}': {} is not a finite number",
                        i / g.width,
                        g.name,
                        d.values[i]
                    )));
                }
                Column::F32(d.values.clone())
            }
            Elem::I64 => match (&d.ints, &d.text) {
                (Some(i), _) => Column::I64(i.clone()),
                (None, None) if d.values.iter().all(|v| v.fract() == 0.0) => {
                    Column::I64(d.values.iter().map(|v| *v as i64).collect())
                }
                _ => return Err(wrong("integers (INT64)")),
            },
        });
    }
    let n = n.unwrap_or(0);
    check_batch(n, max_batch)?;
    Ok((columns, n))
}

fn check_batch(n: usize, max_batch: usize) -> Result<(), InferenceError> {
    if n == 0 {
        return Err(bad("the request has no rows"));
    }
    if n > max_batch {
        return Err(InferenceError::TooLarge(format!(
            "{n} rows is over the batch limit of {max_batch}"
        )));
    }
    Ok(())
}

fn preview(names: &[&str]) -> String {
    if names.len() <= 12 {
        names.join(", ")
    } else {
        format!("{}, ... ({} in all)", names[..12].join(", "), names.len())
    }
}

/// Output tensors of a task, by name.
pub fn output_names(task: Task) -> &'static [&'static str] {
    match task {
        Task::Binary => &["label", "probability", "probabilities"],
        Task::Multiclass => &["label", "probabilities"],
        Task::Regression => &["value"],
    }
}

/// One response tensor before encoding.
enum Data {
    Fp32(Vec<f32>),
    Bytes(Vec<String>),
}

/// An encoded response: body bytes and, for a binary response, the JSON part's length.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub body: Vec<u8>,
    pub header_length: Option<usize>,
}

/// Builds the inference response. Outputs are those requested (all of the task's by
/// default); an output is binary when it asks for `binary_data`, else when the request asks
/// for `binary_data_output`.
pub fn response(
    model: &Model,
    request: &InferRequest,
    id: &str,
    predictions: &[Prediction],
) -> Result<Encoded, InferenceError> {
    let n = predictions.len();
    let available = output_names(model.task);
    let default_binary = bool_param(&request.parameters, "binary_data_output").unwrap_or(false);
    let wanted: Vec<(String, bool)> = match &request.outputs {
        None => available
            .iter()
            .map(|s| (s.to_string(), default_binary))
            .collect(),
        Some(list) => {
            let mut out = Vec::new();
            for o in list {
                if !available.contains(&o.name.as_str()) {
                    return Err(bad(format!(
                        "unknown output '{}'; this model has {}",
                        o.name,
                        available.join(", ")
                    )));
                }
                out.push((
                    o.name.clone(),
                    bool_param(&o.parameters, "binary_data").unwrap_or(default_binary),
                ));
            }
            out
        }
    };
    let k = model.bundle.classes.len();
    let mut json_outputs = Vec::new();
    let mut binary = Vec::new();
    for (name, as_binary) in wanted {
        let (shape, data): (Vec<usize>, Data) = match name.as_str() {
            "label" => (
                vec![n],
                Data::Bytes(
                    predictions
                        .iter()
                        .map(|p| p.label.clone().unwrap_or_default())
                        .collect(),
                ),
            ),
            "probability" | "value" => (
                vec![n],
                Data::Fp32(predictions.iter().map(|p| p.score).collect()),
            ),
            _ => (
                vec![n, k],
                Data::Fp32(
                    predictions
                        .iter()
                        .flat_map(|p| p.probabilities.iter().copied())
                        .collect(),
                ),
            ),
        };
        let datatype = match data {
            Data::Fp32(_) => "FP32",
            Data::Bytes(_) => "BYTES",
        };
        let mut out = json!({ "name": name, "datatype": datatype, "shape": shape });
        if as_binary {
            let start = binary.len();
            match &data {
                Data::Fp32(v) => v.iter().for_each(|x| binary.extend(x.to_le_bytes())),
                Data::Bytes(v) => v.iter().for_each(|s| {
                    binary.extend((s.len() as u32).to_le_bytes());
                    binary.extend(s.as_bytes());
                }),
            }
            out["parameters"] = json!({ "binary_data_size": binary.len() - start });
        } else {
            out["data"] = match data {
                Data::Fp32(v) => json!(v.iter().map(|x| json_f32(*x)).collect::<Vec<_>>()),
                Data::Bytes(v) => json!(v),
            };
        }
        json_outputs.push(out);
    }
    let mut parameters = json!({});
    if model.task == Task::Binary {
        parameters["threshold"] = json_f32(model.threshold);
    }
    let head = json!({
        "model_name": model.name(),
        "model_version": model.version().to_string(),
        "id": id,
        "parameters": parameters,
        "outputs": json_outputs,
    })
    .to_string()
    .into_bytes();
    if binary.is_empty() {
        return Ok(Encoded {
            body: head,
            header_length: None,
        });
    }
    let header_length = head.len();
    let mut body = head;
    body.extend(binary);
    Ok(Encoded {
        body,
        header_length: Some(header_length),
    })
}

/// An f32 as a JSON number with its shortest f32 decimal form (no f64 widening noise).
pub fn json_f32(x: f32) -> Value {
    if x.is_finite() {
        x.to_string()
            .parse::<serde_json::Number>()
            .map_or(Value::Null, Value::Number)
    } else {
        Value::Null
    }
}
