//! The in-process half of `cargo xtask bench edge`: one model served the way every runtime
//! serves it (`inference::Model`, tract), timed without any transport. Built natively and
//! for wasm32-wasip2 (run under a wasm host), so both print comparable figures.
//!
//! usage: edge_bench ROOT MODEL VERSION [ITERATIONS [INPUTS_JSON]]
//!   ROOT is a registry folder as `mlpipe publish --objects` lays it out (the bundle at
//!   `models/MODEL/VERSION/bundle.json`, the ONNX and feature spec where it says).
//!   INPUTS_JSON (an imported model's): a document whose `inputs` are Open Inference
//!   Protocol tensors; the first row of each is the row timed.
//! Prints one JSON object: cold start (bundle checks and tract plan, best and median of
//! several loads) and single-row predict latency percentiles, in microseconds.

use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The first row of each of an imported model's inputs in `doc` (`{"inputs": [...]}`).
fn first_row(
    model: &inference::Model,
    doc: &[u8],
) -> Result<Vec<inference::Column>, Box<dyn std::error::Error>> {
    let doc: serde_json::Value = serde_json::from_slice(doc)?;
    let inference::Layout::Named(graph) = &model.layout else {
        return Err("INPUTS_JSON is for imported models".into());
    };
    let mut out = Vec::new();
    for g in graph {
        let input = doc["inputs"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["name"] == g.name.as_str()))
            .ok_or_else(|| format!("no input {}", g.name))?;
        let data = input["data"].as_array().ok_or("no data")?;
        let first = &data[..g.width.min(data.len())];
        out.push(match g.ty {
            inference::Elem::F32 => inference::Column::F32(
                first
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN) as f32)
                    .collect(),
            ),
            inference::Elem::I64 => {
                inference::Column::I64(first.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
            }
            inference::Elem::Str => inference::Column::Str(
                first
                    .iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect(),
            ),
        });
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: edge_bench ROOT MODEL VERSION [ITERATIONS [INPUTS_JSON]]";
    let root = std::path::PathBuf::from(args.get(1).ok_or(usage)?);
    let (model, version) = (args.get(2).ok_or(usage)?, args.get(3).ok_or(usage)?);
    let iterations: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(5000);
    let bundle = std::fs::read(root.join(format!("models/{model}/{version}/bundle.json")))?;
    let b: serde_json::Value = serde_json::from_slice(&bundle)?;
    let key = |v: &serde_json::Value| v.as_str().map(|k| root.join(k));
    let onnx = std::fs::read(key(&b["model_key"]).ok_or("the bundle has no model_key")?)?;
    let spec = key(&b["feature_spec"]["key"]).and_then(|p| std::fs::read(p).ok());

    // Cold start: what a fresh instance does before its first answer.
    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..7 {
        let t = Instant::now();
        let m = inference::Model::load(&bundle, &onnx, spec.as_deref())?;
        loads.push(t.elapsed().as_secs_f64() * 1e6);
        model = Some(m);
    }
    let model = model.ok_or("no model")?;
    loads.sort_by(f64::total_cmp);

    // One row, as a single /v2 request carries it: values spread over the inputs' range,
    // or an imported model's first row of the given inputs.
    let f = model.n_inputs();
    let row: Vec<f32> = (0..f).map(|j| ((j * 7 % 11) as f32) * 0.5).collect();
    let columns = match args.get(5) {
        Some(path) => Some(first_row(&model, &std::fs::read(path)?)?),
        None => None,
    };
    let predict = || match &columns {
        Some(c) => model.predict_columns(c.clone(), 1),
        None => model.predict(row.clone(), 1),
    };
    for _ in 0..200 {
        predict()?;
    }
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let p = predict()?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(p);
    }
    times.sort_by(f64::total_cmp);
    // The same loop without a clock read per call: under a wasm host a clock read goes
    // through the host's WASI shim and costs more than a prediction, so the mean per call
    // comes from one clock read around the whole loop.
    let untimed = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(predict()?);
    }
    let mean_us = untimed.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    let probe = predict()?;
    println!(
        "{{\"inputs\":{f},\"iterations\":{iterations},\"cold_start_us_best\":{:.1},\"cold_start_us_median\":{:.1},\"predict_us_p50\":{:.2},\"predict_us_p99\":{:.2},\"predict_us_mean\":{:.2},\"predictions_per_s\":{:.0},\"score\":{}}}",
        loads[0],
        percentile(&loads, 0.5),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        mean_us,
        1e6 / mean_us,
        probe.first().map_or(f32::NAN, |p| p.score),
    );
    Ok(())
}
