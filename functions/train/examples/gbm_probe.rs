//! Probe: one GBM fit on a table, timing and test AUC (development aid).
#![allow(clippy::unwrap_used)]
use polars::prelude::*;
use train::data::{Dataset, Split};
use train::export::TreeOutput;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let df = ParquetReader::new(std::fs::File::open(&args[1]).unwrap())
        .finish()
        .unwrap();
    let learning_rate: f32 = args[2].parse().unwrap();
    let threads: usize = args[3].parse().unwrap();
    let features: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| c.name() != "y" && c.name() != "__split" && c.dtype().is_primitive_numeric())
        .map(|c| c.name().to_string())
        .collect();
    let ds = Dataset::from_frame(&df, &features, "y", Some("__split"), None, None).unwrap();
    let mut rows = ds.rows(Split::Train);
    rows.extend(ds.rows(Split::Validation));
    let test = ds.rows(Split::Test);
    let w = vec![1.0; rows.len()];
    let t = std::time::Instant::now();
    let g = train::gbm::fit(
        &ds.columns(&rows),
        &ds.targets(&rows),
        &w,
        TreeOutput::Binary,
        &train::gbm::GbmParams {
            learning_rate,
            max_trees: args.get(4).map_or(100, |v| v.parse().unwrap()),
            max_leaves: args.get(5).map_or(31, |v| v.parse().unwrap()),
            min_leaf_weight: args.get(6).map_or(1.0, |v| v.parse().unwrap()),
            ..Default::default()
        },
        threads,
        1,
        None,
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let p = g.predict(&ds.columns(&test));
    eprintln!("predict {:.2}s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let onnx = g.to_onnx().unwrap();
    eprintln!(
        "to_onnx {:.2}s, {} bytes",
        t.elapsed().as_secs_f64(),
        onnx.len()
    );
    let t = std::time::Instant::now();
    let out =
        train::export::run_onnx(&onnx, &ds.row_major(&test), test.len(), ds.n_features()).unwrap();
    eprintln!(
        "tract {:.2}s, {} rows",
        t.elapsed().as_secs_f64(),
        out.len()
    );
    let t = std::time::Instant::now();
    let _ = g.importance();
    eprintln!("importance {:.2}s", t.elapsed().as_secs_f64());
    let y: Vec<bool> = ds.targets(&test).iter().map(|v| *v == 1.0).collect();
    println!(
        "learning rate {learning_rate}: {} trees in {secs:.2}s, test auc {:.4}",
        g.n_trees(),
        train::metrics::roc_auc(&y, &p).unwrap()
    );
}
