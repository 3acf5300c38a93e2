//! `mlpipe drift ...`: runs the drift stage's check now (as its schedule would) and reads the
//! reports it wrote.

use anyhow::{Context, Result};
use drift::{ModelRun, Report};
use storage::Store;

/// Checks `model` (or every model) at `at_us`, reading logs from `logs` (a store URL) or the
/// pipeline's store.
pub async fn check(
    store: &Store,
    logs: Option<&str>,
    model: Option<&str>,
    at_us: i64,
) -> Result<Vec<ModelRun>> {
    let logs = match logs {
        Some(url) => Store::open(url)
            .with_context(|| format!("opening logs store {}", storage::redact_url(url)))?,
        None => store.clone(),
    };
    Ok(match model {
        Some(m) => vec![drift::check_model(store, &logs, m, at_us).await?],
        None => drift::check_all(store, &logs, at_us).await?,
    })
}

/// The report of `run` (default: the newest) for `model` (default: every model with one).
pub async fn reports(store: &Store, model: Option<&str>, run: Option<&str>) -> Result<Vec<Report>> {
    let mut out = Vec::new();
    let models = match model {
        Some(m) => vec![m.to_string()],
        None => registry::models(store).await?,
    };
    for m in models {
        let keys: Vec<String> = store
            .list(&format!("{}{m}/", drift::DRIFT))
            .await?
            .into_iter()
            .map(|i| i.key)
            .filter(|k| k.ends_with("/report.json"))
            .collect();
        // Run names sort by time (w=yyyymmddThhmmZ).
        let key = match run {
            Some(r) => keys.into_iter().find(|k| *k == drift::report_key(&m, r)),
            None => keys.into_iter().max(),
        };
        if let Some(key) = key {
            let obj = store.get(&key).await?;
            out.push(
                serde_json::from_slice(&obj.bytes)
                    .with_context(|| format!("{key} is not a drift report"))?,
            );
        }
    }
    Ok(out)
}

/// The drift check `mlpipe run` ends with: one model's held-out test split against its
/// training reference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HoldoutCheck {
    pub model: String,
    pub version: u64,
    pub run: String,
    pub report: String,
    pub rows: usize,
    pub features_tested: usize,
    pub features_drifted: usize,
    pub dataset_drift: bool,
}

/// Checks every champion's held-out test split (rows of its feature version's training table
/// with `__split = "test"`, never seen in fitting) against its reference profile, as the
/// drift stage checks a window. Reports go to `drift/<model>/holdout-<view version>/`.
pub async fn holdout(store: &Store) -> Result<Vec<HoldoutCheck>> {
    use feature_stage::polars::prelude::{ChunkCompareEq, DataType, ParquetReader, SerReader};
    let mut out = Vec::new();
    for model in registry::models(store).await? {
        let Some(alias) = registry::alias(store, &model, "champion").await? else {
            continue;
        };
        let Some(bundle) = registry::bundle(store, &model, alias.version).await? else {
            continue;
        };
        // A model over several views trained on its own joined table; one view's model on
        // the view version's table.
        let key = match &bundle.training_table {
            Some(t) => t.key.clone(),
            None => format!(
                "features/{}/v={}/table.parquet",
                bundle.feature_view, bundle.feature_view_version
            ),
        };
        let bytes = store.get(&key).await?.bytes;
        let df = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
            .finish()
            .map_err(|e| anyhow::anyhow!("reading {key}: {e}"))?;
        let mask = df
            .column("__split")
            .and_then(|c| c.str().cloned())
            .with_context(|| format!("{key} has no __split column"))?
            .equal("test");
        let df = df.filter(&mask)?;
        let inputs: Vec<String> = bundle.inputs.iter().map(|i| i.name.clone()).collect();
        let mut cols = Vec::new();
        for name in &inputs {
            let c = df
                .column(name)
                .with_context(|| format!("{key} has no column {name}"))?
                .cast(&DataType::Float64)?;
            cols.push(c.f64()?.iter().collect::<Vec<Option<f64>>>());
        }
        let rows: Vec<Vec<Option<f64>>> = (0..df.height())
            .map(|i| cols.iter().map(|c| c[i]).collect())
            .collect();
        let run = match &bundle.training_table {
            Some(t) => format!("holdout-{}", &t.sha256[..t.sha256.len().min(16)]),
            None => format!("holdout-{}", bundle.feature_view_version),
        };
        let report = drift::check_table(store, &model, &run, &inputs, &rows).await?;
        out.push(HoldoutCheck {
            model: model.clone(),
            version: alias.version,
            report: drift::report_key(&model, &run),
            run,
            rows: report.verdict.rows,
            features_tested: report.verdict.features_tested,
            features_drifted: report.verdict.features_drifted,
            dataset_drift: report.verdict.dataset_drift,
        });
    }
    Ok(out)
}
