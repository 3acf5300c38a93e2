//! Several feature views on one set of label events: the training table of a model that
//! reads more than one view (a point-in-time join, as Feast's `get_historical_features`
//! joins several feature views onto one entity frame).
//!
//! The first view provides the label events (its `label` column or its `[labels]` dataset),
//! their split and its own features. Every other view is evaluated as of each label event,
//! for the entity the event names in that view's entity columns, from that view's own
//! dataset: exactly [`build_table`] with the label events as the view's labels, so each
//! view sees only its events strictly before the label's time, within its TTL, with the
//! vocabularies of its version. Request-time fields of every view are read from the label
//! event, as online they are read from the request.

use std::collections::BTreeMap;

use features::{FeatureSet, FeatureView, LabelSource, ViewSpec};
use polars::prelude::*;
use records::pipeline::{FeatureManifest, Snapshot, SnapshotRef};
use storage::Store;

use crate::{
    FeatureStageError, build_table, event_columns, label_columns, load_snapshot, load_spec,
};

/// The joined table of a model over several views.
#[derive(Debug)]
pub struct JoinedTable {
    /// The label view's table (keys, time, its features, label, `__split`) with every other
    /// view's model inputs after its own, one row per label event.
    pub table: DataFrame,
    /// Every model input, in view order.
    pub columns: Vec<String>,
    /// Encoded feature -> category counts over the training rows (for the profile).
    pub categories: BTreeMap<String, BTreeMap<String, u64>>,
    /// What serving evaluates: the views' specs, label view first.
    pub set: FeatureSet,
}

fn data(message: String) -> FeatureStageError {
    FeatureStageError::Data(message)
}

fn snapshot_of(r: &SnapshotRef) -> Snapshot {
    Snapshot {
        format: 1,
        dataset: r.dataset.clone(),
        hash: r.hash.clone(),
        versions: r.versions.clone(),
        contract_lineage: 0,
        created_at: String::new(),
    }
}

/// `view` evaluated at other label events: its labels replaced by the events (whose columns
/// carry the view's entity names), at their time column `time`, label `label`.
pub fn as_of_label_events(
    view: &FeatureView,
    source: &str,
    time: &str,
    label: &str,
) -> FeatureView {
    let mut view = view.clone();
    view.label = Some(LabelSource::Dataset {
        dataset: source.to_string(),
        entity: view.entity.clone(),
        time: time.to_string(),
        column: label.to_string(),
    });
    view
}

/// The training table of the label view version `label` joined with the view versions
/// `joined` (each evaluated from its own version's snapshot and spec).
pub async fn joined_table(
    store: &Store,
    label: &FeatureManifest,
    joined: &[FeatureManifest],
) -> Result<JoinedTable, FeatureStageError> {
    let primary = load_spec(store, label).await?;
    let mut others: Vec<ViewSpec> = Vec::with_capacity(joined.len());
    for m in joined {
        others.push(load_spec(store, m).await?);
    }
    let set = FeatureSet {
        views: std::iter::once(primary.clone())
            .chain(others.iter().cloned())
            .collect(),
    };
    set.check().map_err(data)?;
    let view = &primary.view;
    let (time, label_column) = match &view.label {
        Some(LabelSource::Dataset { time, column, .. }) => (Some(time.clone()), column.clone()),
        Some(LabelSource::Column { column }) => (view.event_time.clone(), column.clone()),
        None => {
            return Err(data(format!(
                "view '{}' has no label: the first view a model reads provides its label events",
                view.name
            )));
        }
    };
    let time = time.ok_or_else(|| {
        data(format!(
            "view '{}' has no event time: joining other views onto its label events needs the time of each",
            view.name
        ))
    })?;
    // What the other views read from each label event: their entity keys and request fields.
    let mut carried: Vec<String> = Vec::new();
    for o in &others {
        carried.extend(o.view.entity.iter().cloned());
        carried.extend(o.view.inputs.keys().cloned());
    }
    let with_carried = |mut cols: Vec<String>| {
        for c in &carried {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
        cols
    };
    let carried_error = |e: FeatureStageError| {
        data(format!(
            "the label events of view '{}' must carry the entity and request columns of every view joined onto them: {e}",
            view.name
        ))
    };
    let events = load_snapshot(
        store,
        &snapshot_of(&label.snapshot),
        &match (&view.label, &label.labels_snapshot) {
            (Some(LabelSource::Dataset { .. }), Some(_)) => event_columns(view),
            _ => with_carried(event_columns(view)),
        },
    )
    .await
    .map_err(carried_error)?;
    let labels = match (&view.label, &label.labels_snapshot) {
        (Some(LabelSource::Dataset { .. }), Some(s)) => Some(
            load_snapshot(store, &snapshot_of(s), &with_carried(label_columns(view)))
                .await
                .map_err(carried_error)?,
        ),
        _ => None,
    };
    let mut histories = Vec::with_capacity(others.len());
    for (o, m) in others.iter().zip(joined) {
        let as_of = as_of_label_events(&o.view, &view.name, &time, &label_column);
        histories.push((
            as_of.clone(),
            load_snapshot(store, &snapshot_of(&m.snapshot), &event_columns(&as_of)).await?,
        ));
    }
    let vocabularies: Vec<BTreeMap<String, Vec<String>>> =
        others.iter().map(|o| o.vocabularies.clone()).collect();
    let primary_view = view.clone();
    let primary_vocab = primary.vocabularies.clone();
    let (table, columns, categories) = tokio::task::spawn_blocking(move || {
        let base = build_table(
            &primary_view,
            &events,
            labels.as_ref(),
            Some(&primary_vocab),
        )?;
        let label_events = labels.as_ref().unwrap_or(&events);
        let mut table = base.table;
        let mut columns = base.columns;
        let mut categories = base.categories;
        let times = table.column(&time)?.clone();
        for ((as_of, history), vocab) in histories.iter().zip(&vocabularies) {
            let t = build_table(as_of, history, Some(label_events), Some(vocab))?;
            // Both tables put the same label events in the same (stable time) order.
            if t.table.height() != table.height() || !t.table.column(&time)?.equals_missing(&times)
            {
                return Err(data(format!(
                    "view '{}' evaluated at the label events of '{}' did not keep their order",
                    as_of.name, primary_view.name
                )));
            }
            for c in &t.columns {
                table.with_column(t.table.column(c)?.clone())?;
                columns.push(c.clone());
            }
            categories.extend(t.categories);
        }
        Ok::<_, FeatureStageError>((table, columns, categories))
    })
    .await
    .map_err(|e| data(format!("feature computation panicked: {e}")))??;
    Ok(JoinedTable {
        table,
        columns,
        categories,
        set,
    })
}
