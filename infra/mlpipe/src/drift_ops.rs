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
        Some(url) => Store::open(url).with_context(|| format!("opening logs store {url}"))?,
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
