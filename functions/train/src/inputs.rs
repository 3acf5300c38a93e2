//! Which feature versions a training run reads, and for a model over several views, its
//! joined table and the objects serving and monitoring read in place of one view's.
//!
//! A model over several views trains once per combination of view versions: the run is
//! named by every version, and a manifest starts training only when every view is computed
//! from its datasets' newest snapshots. One upload that recomputes two of a model's views
//! therefore trains once: the first manifest finds the other view behind and waits, the
//! second finds both current (and a redelivery finds the finished run).

use std::io::Cursor;

use polars::prelude::*;
use records::pipeline::FeatureManifest;
use storage::Store;

use crate::TrainError;
use crate::config::TrainingConfig;
use crate::data::Dataset;
use crate::job::{SPLIT_COLUMN, feature_versions};

/// The feature versions one training run reads: the label view's, then each joined view's.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    pub label: FeatureManifest,
    pub joined: Vec<FeatureManifest>,
}

impl TrainingSet {
    pub fn single(label: FeatureManifest) -> TrainingSet {
        TrainingSet {
            label,
            joined: Vec::new(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &FeatureManifest> {
        std::iter::once(&self.label).chain(&self.joined)
    }

    /// The combination's name: the label view's version alone, or every version in view
    /// order joined by `+` (what the run id hashes).
    pub fn version(&self) -> String {
        self.all()
            .map(|m| m.version.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// `dataset@snapshot` of every view's data, `+`-joined.
    pub fn snapshots(&self) -> String {
        self.all()
            .map(|m| format!("{}@{}", m.snapshot.dataset, m.snapshot.hash))
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The current combination, or why training waits.
#[derive(Debug)]
pub enum Resolved {
    Ready(Box<TrainingSet>),
    Waiting(String),
}

/// The version of `view` computed from its datasets' newest snapshots, or why there is none
/// yet (the view's feature stage has not run on them; its manifest will start training).
async fn current_version(
    store: &Store,
    view: &str,
) -> Result<Result<FeatureManifest, String>, TrainError> {
    let versions = feature_versions(store, view).await?;
    let Some(newest) = versions.last() else {
        return Ok(Err(format!("view '{view}' has no version yet")));
    };
    let latest = |dataset: String| async move {
        feature_stage::latest_snapshot(store, &dataset)
            .await
            .map(|s| s.map(|s| s.hash))
            .map_err(TrainError::Features)
    };
    let data = latest(newest.snapshot.dataset.clone()).await?;
    let labels = match &newest.labels_snapshot {
        Some(l) => Some(latest(l.dataset.clone()).await?),
        None => None,
    };
    let current = |m: &FeatureManifest| {
        data.as_deref().is_none_or(|h| h == m.snapshot.hash)
            && match (&labels, &m.labels_snapshot) {
                (Some(want), Some(have)) => want.as_deref().is_none_or(|h| h == have.hash),
                _ => true,
            }
    };
    Ok(match versions.iter().rev().find(|m| current(m)) {
        Some(m) => Ok(m.clone()),
        None => Err(format!(
            "waiting for view '{view}' to be computed from the newest snapshot of '{}' (its manifest starts training)",
            newest.snapshot.dataset
        )),
    })
}

/// The current version of every view `cfg` reads, label view first.
pub async fn current_set(store: &Store, cfg: &TrainingConfig) -> Result<Resolved, TrainError> {
    let mut all = Vec::new();
    for view in cfg.views() {
        match current_version(store, view).await? {
            Ok(m) => all.push(m),
            Err(reason) => return Ok(Resolved::Waiting(reason)),
        }
    }
    let mut all = all.into_iter();
    let Some(label) = all.next() else {
        return Ok(Resolved::Waiting("the training file names no view".into()));
    };
    Ok(Resolved::Ready(Box::new(TrainingSet {
        label,
        joined: all.collect(),
    })))
}

/// The newest version of each joined view (a retrain request pins the label view's).
pub async fn joined_versions(
    store: &Store,
    cfg: &TrainingConfig,
) -> Result<Vec<FeatureManifest>, TrainError> {
    let mut out = Vec::new();
    for view in &cfg.join {
        let m = feature_versions(store, view).await?.pop().ok_or_else(|| {
            TrainError::Config(format!("view '{view}' has no feature version yet"))
        })?;
        out.push(m);
    }
    Ok(out)
}

/// Loads the training table of `set`: the label view's own table for one view, the joined
/// table (computed here, point-in-time) for several.
pub async fn load(
    store: &Store,
    cfg: &TrainingConfig,
    set: &TrainingSet,
) -> Result<(Dataset, Option<feature_stage::JoinedTable>), TrainError> {
    let manifest = &set.label;
    let label = manifest.label.clone().ok_or_else(|| {
        TrainError::Config(format!(
            "feature view '{}' has no label, so it cannot train '{}'",
            manifest.view, cfg.model
        ))
    })?;
    if set.joined.is_empty() {
        let obj = store.get(&manifest.table.key).await?;
        let df = ParquetReader::new(Cursor::new(obj.bytes.as_ref()))
            .finish()
            .map_err(|e| TrainError::Record {
                key: manifest.table.key.clone(),
                message: e.to_string(),
            })?;
        let split = df.column(SPLIT_COLUMN).is_ok().then_some(SPLIT_COLUMN);
        let ds = Dataset::from_frame(
            &df,
            &manifest.features,
            &label,
            split,
            cfg.task,
            cfg.positive_class.as_deref(),
        )?;
        return Ok((ds, None));
    }
    let joined = feature_stage::joined_table(store, &set.label, &set.joined)
        .await
        .map_err(TrainError::Features)?;
    let ds = Dataset::from_frame(
        &joined.table,
        &joined.columns,
        &label,
        Some(SPLIT_COLUMN),
        cfg.task,
        cfg.positive_class.as_deref(),
    )?;
    Ok((ds, Some(joined)))
}

/// What a model over several views reads instead of one view's objects.
pub struct JoinedObjects {
    /// The feature set (`{"views": [spec, ...]}`) serving evaluates.
    pub spec: registry::ObjectRef,
    /// The joined table (the holdout check reads its test split).
    pub table: registry::ObjectRef,
    /// The reference profile of its training rows (the drift stage's reference).
    pub profile: registry::ObjectRef,
}

/// Writes the joined table's objects under the model, addressed by content (a retried run
/// writes the same keys).
pub async fn write_joined(
    store: &Store,
    model: &str,
    joined: &feature_stage::JoinedTable,
) -> Result<JoinedObjects, TrainError> {
    let put = |bytes: Vec<u8>, ext: &'static str| async move {
        let sha = contracts::sha256_hex(&bytes);
        let key = records::keys::model_features_object(model, &sha, ext);
        store.put(&key, bytes).await?;
        Ok::<_, TrainError>(registry::ObjectRef { key, sha256: sha })
    };
    let parquet = |df: &mut DataFrame| -> Result<Vec<u8>, TrainError> {
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .map_err(|e| TrainError::Fit(format!("writing the joined table: {e}")))?;
        Ok(buf)
    };
    let spec = serde_json::to_vec_pretty(&joined.set).map_err(|e| TrainError::Record {
        key: format!("models/{model}/features"),
        message: e.to_string(),
    })?;
    let seed = joined.set.first().view.split.seed;
    let mut profile = feature_stage::profile::build_profile(
        &joined.table,
        &joined.columns,
        &joined.categories,
        seed,
    )
    .map_err(TrainError::Features)?;
    let mut table = joined.table.clone();
    Ok(JoinedObjects {
        spec: put(spec, "json").await?,
        table: put(parquet(&mut table)?, "parquet").await?,
        profile: put(parquet(&mut profile)?, "profile.parquet").await?,
    })
}
