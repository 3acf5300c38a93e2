//! Every model family on every task: it learns a planted signal, tract running the
//! exported ONNX reproduces the training library's own test-set predictions within 1e-5,
//! and onnxruntime and ONNX's reference evaluator give what tract gives.

#![allow(clippy::unwrap_used)]

use polars::prelude::*;
use rand::{RngExt, SeedableRng};
use train::config::{Family, Task, TrainingConfig};
use train::data::{Dataset, Split, class_weights};
use train::model::{self, Budget, Params};
use train::pipeline::{self, PARITY_TOLERANCE};
use train::search::{self, Selection};

/// `n` rows, 6 features (one often missing, one constant-ish), a label of the task.
fn synthetic(n: usize, task: Task, seed: u64) -> DataFrame {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); 6];
    let mut label_f = Vec::new();
    let mut label_s = Vec::new();
    let mut split = Vec::new();
    for i in 0..n {
        let x: Vec<f64> = (0..6).map(|_| rng.random_range(-2.0..2.0f64)).collect();
        let missing = rng.random_bool(0.1);
        for (j, c) in cols.iter_mut().enumerate() {
            c.push(if j == 2 && missing {
                None
            } else {
                Some(x[j] * 10f64.powi(j as i32 - 2))
            });
        }
        let z = 1.5 * x[0] - x[1] + if missing { 0.8 } else { 0.5 * x[2] } + 0.3 * x[3] * x[0];
        match task {
            Task::BinaryClassification => {
                let p = 1.0 / (1.0 + (-(z - 1.5)).exp());
                label_f.push(f64::from(u8::from(rng.random_bool(p))));
            }
            Task::MulticlassClassification => {
                let noisy = z + rng.random_range(-0.5..0.5);
                label_s.push(if noisy < -1.0 {
                    "low"
                } else if noisy < 1.0 {
                    "mid"
                } else {
                    "high"
                });
            }
            Task::Regression => label_f.push(3.0 * z + rng.random_range(-0.5..0.5) + 10.0),
        }
        split.push(match i * 10 / n {
            0..=5 => "train",
            6 | 7 => "validation",
            _ => "test",
        });
    }
    let mut columns: Vec<Column> = cols
        .into_iter()
        .enumerate()
        .map(|(j, c)| Series::new(format!("x{j}").into(), c).into())
        .collect();
    columns.push(if task == Task::MulticlassClassification {
        Series::new("y".into(), label_s).into()
    } else {
        Series::new("y".into(), label_f).into()
    });
    columns.push(Series::new("__split".into(), split).into());
    DataFrame::new(n, columns).unwrap()
}

fn dataset(n: usize, task: Task) -> Dataset {
    let features: Vec<String> = (0..6).map(|j| format!("x{j}")).collect();
    Dataset::from_frame(
        &synthetic(n, task, 7),
        &features,
        "y",
        Some("__split"),
        Some(task),
        None,
    )
    .unwrap()
}

fn fit(ds: &Dataset, params: &Params) -> model::Fitted {
    let train = ds.rows(Split::Train);
    let w = class_weights(&ds.targets(&train), ds.task, true);
    model::fit(
        ds,
        &train,
        &w,
        params,
        Budget {
            resource: 1.0,
            threads: 2,
            seed: 3,
        },
    )
    .unwrap()
}

fn check_family(ds: &Dataset, params: &Params) -> (f64, f64) {
    let test = ds.rows(Split::Test);
    let fitted = fit(ds, params);
    let own = fitted.predict(ds, &test).unwrap();
    let onnx = fitted.to_onnx().unwrap();
    let tract = pipeline::onnx_outputs(&onnx, ds, &test, ds.task).unwrap();
    assert_eq!(own.len(), tract.len());
    let diff = pipeline::max_difference(&tract, &own);
    assert!(
        diff <= PARITY_TOLERANCE,
        "{params:?} on {:?}: tract differs by {diff:e}",
        ds.task
    );
    let y = ds.targets(&test);
    let o = train::evaluate::Outputs {
        task: ds.task,
        k: ds.n_classes(),
        y: &y,
        p: &own,
    };
    let quality = match ds.task {
        Task::BinaryClassification => {
            train::evaluate::score(train::Metric::RocAuc, o, 0.5).unwrap()
        }
        Task::MulticlassClassification => {
            train::evaluate::score(train::Metric::Accuracy, o, 0.5).unwrap()
        }
        Task::Regression => train::evaluate::score(train::Metric::R2, o, 0.5).unwrap(),
    };
    let imp = fitted.importance(ds, &ds.rows(Split::Validation), 1);
    assert_eq!(imp.len(), ds.n_features());
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{imp:?}");
    // x0 carries the most signal in every task; x5 none.
    assert!(imp[0] > imp[5], "{params:?}: importance {imp:?}");
    (diff, quality)
}

#[test]
fn every_family_learns_and_exports_exactly() {
    for task in [
        Task::BinaryClassification,
        Task::MulticlassClassification,
        Task::Regression,
    ] {
        let ds = dataset(4000, task);
        for family in [Family::Gbm, Family::Linear, Family::Mlp] {
            let (diff, quality) = check_family(&ds, &Params::default_for(family));
            let floor = match task {
                Task::BinaryClassification => 0.75,
                Task::MulticlassClassification => 0.7,
                Task::Regression => 0.8,
            };
            assert!(
                quality > floor,
                "{family:?} on {task:?}: quality {quality} (parity {diff:e})"
            );
        }
    }
}

fn config(families: &str) -> TrainingConfig {
    TrainingConfig::from_toml(
        &format!(
            r#"
model = "m"
view = "v"
families = [{families}]
[search]
trials = 3
seed = 11
reduction_factor = 3
min_resource = 0.34
"#
        ),
        "t.toml",
    )
    .unwrap()
}

#[test]
fn the_search_is_seeded_and_reproducible() {
    // Above the cross-validation limit: train + validation is 80% of the rows.
    let ds = dataset(7000, Task::BinaryClassification);
    assert!(!search::uses_cross_validation(&ds));
    let cfg = config(r#""gbm", "linear""#);
    let a = pipeline::train(&ds, &cfg, &|_| {}).unwrap();
    let b = pipeline::train(&ds, &cfg, &|_| {}).unwrap();
    assert_eq!(a.trials.len(), 6);
    assert_eq!(a.rungs, vec![0.34, 1.0]);
    // Successive halving: 6 trials at the first rung, 2 at the last.
    assert_eq!(a.trials.iter().filter(|t| t.rungs.len() == 2).count(), 2);
    assert_eq!(a.params, b.params);
    let metrics = |c: &pipeline::Candidate| -> Vec<Option<f64>> {
        c.trials
            .iter()
            .flat_map(|t| t.rungs.iter().map(|r| r.metric))
            .collect()
    };
    assert_eq!(metrics(&a), metrics(&b));
    assert!(
        matches!(
            a.selection,
            Selection::Holdout {
                train_rows: 4200,
                validation_rows: 1400
            }
        ),
        "{:?}",
        a.selection
    );
    if a.params.family() == Family::Gbm {
        assert_eq!(a.onnx, b.onnx, "same seed, same trees");
    }
    assert!(a.threshold.is_some_and(|t| (0.0..=1.0).contains(&t)));
    assert!(
        a.interval
            .is_some_and(|i| i.low <= a.main.unwrap() + 1e-9 && a.main.unwrap() <= i.high + 1e-9)
    );
    for key in [
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "f1",
        "precision",
        "recall",
        "tp",
        "fp",
        "tn",
        "fn",
    ] {
        assert!(a.test_metrics.contains_key(key), "{key} missing");
    }
}

#[test]
fn small_data_selects_by_stratified_cross_validation_and_refits_on_all_of_it() {
    let metrics = |c: &pipeline::Candidate| -> Vec<Option<f64>> {
        c.trials
            .iter()
            .flat_map(|t| t.rungs.iter().map(|r| r.metric))
            .collect()
    };
    for task in [
        Task::BinaryClassification,
        Task::MulticlassClassification,
        Task::Regression,
    ] {
        // 600 rows: 480 train + validation, under the limit whatever the dataset.
        let ds = dataset(600, task);
        assert!(search::uses_cross_validation(&ds));
        let cfg = config(r#""gbm", "linear""#);
        let a = pipeline::train(&ds, &cfg, &|_| {}).unwrap();
        let b = pipeline::train(&ds, &cfg, &|_| {}).unwrap();
        assert_eq!(metrics(&a), metrics(&b), "{task:?}: seeded");
        assert_eq!(a.params, b.params);
        let Selection::CrossValidation {
            folds,
            rows,
            stratified,
            rounds,
        } = &a.selection
        else {
            panic!("{task:?}: {:?}", a.selection)
        };
        assert_eq!((*folds, *rows), (5, 480), "{task:?}");
        assert_eq!(*stratified, task != Task::Regression);
        // Every trial judged once, out of fold, on the full resource.
        assert_eq!(a.trials.len(), 6);
        assert!(
            a.trials.iter().all(|t| t.rungs.len() == 1
                && t.rungs[0].resource == 1.0
                && t.rungs[0].metric.is_some()),
            "{task:?}: {:?}",
            a.trials
        );
        // Trees are refitted with the folds' mean early-stopped rounds, and grow exactly those.
        match (&a.params, rounds) {
            (Params::Gbm(p), Some(r)) => {
                assert_eq!(p.max_trees, *r);
                assert_eq!(p.early_stopping_rounds, 0);
                let per_booster = if task == Task::MulticlassClassification {
                    3
                } else {
                    1
                };
                assert_eq!(a.model.describe(), format!("{} trees", r * per_booster));
            }
            (Params::Gbm(_), None) => panic!("{task:?}: trees without rounds"),
            (_, r) => assert!(r.is_none(), "{task:?}"),
        }
        // The run record names the selection.
        assert_eq!(a.summary().selection.as_ref(), Some(&a.selection));
        if task == Task::BinaryClassification {
            assert!(a.threshold.is_some_and(|t| (0.0..=1.0).contains(&t)));
        }
        assert!(
            a.main.is_some(),
            "{task:?}: evaluated on the untouched test split"
        );
    }

    // The folds: seeded, covering every row once, every class in proportion.
    let ds = dataset(600, Task::BinaryClassification);
    let mut rows = ds.rows(Split::Train);
    rows.extend(ds.rows(Split::Validation));
    rows.sort_unstable();
    let folds = search::assign_folds(&ds, &rows, 5, 1);
    assert_eq!(folds, search::assign_folds(&ds, &rows, 5, 1));
    assert_ne!(folds, search::assign_folds(&ds, &rows, 5, 2));
    let positives = rows.iter().filter(|&&r| ds.y[r] == 1.0).count() as f64;
    for f in 0..5 {
        let members: Vec<usize> = (0..rows.len()).filter(|&p| folds[p] == f).collect();
        assert!((members.len() as f64 - rows.len() as f64 / 5.0).abs() <= 1.0);
        let pos = members.iter().filter(|&&p| ds.y[rows[p]] == 1.0).count() as f64;
        assert!(
            (pos - positives / 5.0).abs() <= 1.0,
            "fold {f}: {pos} of {positives}"
        );
    }
}

#[test]
fn a_label_with_one_class_in_training_is_a_clear_error() {
    let mut df = synthetic(500, Task::BinaryClassification, 1);
    let n = df.height();
    let y: Vec<f64> = (0..n)
        .map(|i| if i < n * 6 / 10 { 0.0 } else { (i % 2) as f64 })
        .collect();
    df.with_column(Column::from(Series::new("y".into(), y)))
        .unwrap();
    let features: Vec<String> = (0..6).map(|j| format!("x{j}")).collect();
    let e = Dataset::from_frame(&df, &features, "y", Some("__split"), None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'y'") && e.contains("training split"), "{e}");
}

/// The venv's Python when it imports onnxruntime and the ONNX reference evaluator
/// (`MLPIPE_PYTHON`, else `.venv/bin/python`). Under CI their absence fails the test.
fn python_with_onnxruntime() -> Option<std::path::PathBuf> {
    let python = std::env::var_os("MLPIPE_PYTHON")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = std::process::Command::new(&python)
        .args(["-c", "import onnxruntime, onnx.reference"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let what = "Python with onnxruntime and onnx (MLPIPE_PYTHON or .venv)";
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false") {
        panic!("{what} is missing, and CI is set: `cargo xtask test` installs it");
    }
    eprintln!("SKIPPED: {what} is missing (run `cargo xtask test`, which installs it)");
    None
}

/// Users take `model.onnx` to Triton's ONNX backend, SageMaker and Azure, which all run
/// onnxruntime: every family on every task must give there, and in ONNX's own reference
/// evaluator, what tract gives, on the whole test split.
#[test]
fn every_family_runs_the_same_in_onnxruntime_and_the_onnx_reference() {
    let Some(python) = python_with_onnxruntime() else {
        return;
    };
    // MLPIPE_KEEP_ONNX=DIR keeps the models and inputs there, to look at a difference.
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("MLPIPE_KEEP_ONNX")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let mut tract = std::collections::BTreeMap::new();
    for task in [
        Task::BinaryClassification,
        Task::MulticlassClassification,
        Task::Regression,
    ] {
        let ds = dataset(4000, task);
        let test = ds.rows(Split::Test);
        let f = ds.n_features();
        let x = ds.row_major(&test);
        for family in [Family::Gbm, Family::Linear, Family::Mlp] {
            let onnx = fit(&ds, &Params::default_for(family)).to_onnx().unwrap();
            let out = train::export::run_onnx(&onnx, &x, test.len(), f).unwrap();
            let name = format!("{family:?}-{task:?}");
            std::fs::write(dir.join(format!("{name}.onnx")), &onnx).unwrap();
            let rows: Vec<Vec<Option<f32>>> = x
                .chunks(f)
                .map(|r| r.iter().map(|v| (!v.is_nan()).then_some(*v)).collect())
                .collect();
            assert!(
                rows.iter().flatten().any(Option::is_none),
                "no missing value"
            );
            std::fs::write(
                dir.join(format!("{name}.json")),
                serde_json::to_vec(&rows).unwrap(),
            )
            .unwrap();
            tract.insert(name, out);
        }
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnx_runtimes.py");
    let output = std::process::Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "onnx_runtimes.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let others: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (name, want) in &tract {
        for runtime in ["onnxruntime", "reference"] {
            let got = others[name][runtime]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no {runtime} output"));
            assert_eq!(got.len(), want.len(), "{name} in {runtime}: rows");
            let mut worst = 0f64;
            for (g, w) in got.iter().zip(want) {
                let g = g.as_array().unwrap();
                assert_eq!(g.len(), w.len(), "{name} in {runtime}: columns");
                for (a, b) in g.iter().zip(w) {
                    let (a, b) = (a.as_f64().unwrap(), f64::from(*b));
                    worst = worst.max((a - b).abs() / b.abs().max(1.0));
                }
            }
            assert!(
                worst <= 1e-5,
                "{name}: {runtime} ({}) differs from tract by {worst:e}",
                others[name]["versions"]
            );
        }
    }
}
