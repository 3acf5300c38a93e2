//! What a model reads: the specs of one or several feature views, evaluated in order and
//! concatenated into one input vector.
//!
//! A model over several views trains on the label events of its first view; every other
//! view is evaluated as of each label event for the entity the event names in that view's
//! entity columns (a point-in-time join, as Feast's `get_historical_features` joins several
//! feature views onto one entity frame). Online, a request stands for a label event: its time
//! is read as the first view reads it, each view looks up its own entity's record, and the
//! columns follow the views' order, exactly as the training table's do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EvalError;
use crate::online::{FeatureVector, OnlineRecord, OnlineStore};
use crate::spec::{Assembled, ViewSpec};

/// The views a model reads, label view first. Stored as a view's own `spec.json` (one view)
/// or as `{"views": [spec, ...]}` (several); [`FeatureSet::from_json`] reads both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    pub views: Vec<ViewSpec>,
}

impl From<ViewSpec> for FeatureSet {
    fn from(spec: ViewSpec) -> FeatureSet {
        FeatureSet { views: vec![spec] }
    }
}

impl FeatureSet {
    /// Reads a view's `spec.json` or a feature set. Several views must not produce the same
    /// column (the model input names them once).
    pub fn from_json(bytes: &[u8]) -> Result<FeatureSet, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let set = if value.get("views").is_some() {
            serde_json::from_value::<FeatureSet>(value).map_err(|e| e.to_string())?
        } else {
            FeatureSet::from(serde_json::from_value::<ViewSpec>(value).map_err(|e| e.to_string())?)
        };
        set.check()?;
        Ok(set)
    }

    /// At least one view, no view twice, every output column once.
    pub fn check(&self) -> Result<(), String> {
        if self.views.is_empty() {
            return Err("a feature set needs at least one view".into());
        }
        let mut seen = std::collections::BTreeMap::new();
        for spec in &self.views {
            if self
                .views
                .iter()
                .filter(|v| v.view.name == spec.view.name)
                .count()
                > 1
            {
                return Err(format!("view '{}' is listed twice", spec.view.name));
            }
            for c in spec.output_columns() {
                if let Some(other) = seen.insert(c.clone(), spec.view.name.clone()) {
                    return Err(format!(
                        "views '{other}' and '{}' both produce the column '{c}': rename one feature",
                        spec.view.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The label view: its time and first entity key stand for the request's.
    pub fn first(&self) -> &ViewSpec {
        &self.views[0]
    }

    /// Several views, or one.
    pub fn is_joined(&self) -> bool {
        self.views.len() > 1
    }

    /// The model's input columns: each view's, in view order.
    pub fn output_columns(&self) -> Vec<String> {
        self.views.iter().flat_map(|v| v.output_columns()).collect()
    }

    /// The request's time, read as the label view reads it.
    pub fn event_time_us(&self, record: &Map<String, Value>) -> Result<Option<i64>, EvalError> {
        self.first().event_time_us(record)
    }

    /// The request's first entity key (the first view that has an entity): what a canary
    /// hashes on, so an entity stays on one arm.
    pub fn routing_key(&self, record: &Map<String, Value>) -> Option<String> {
        self.views
            .iter()
            .find(|v| !v.view.entity.is_empty())
            .and_then(|v| v.entity_key(record).ok())
    }

    /// Each view's entity key for the request (empty for a view without an entity) and its
    /// online record (none when the view keeps no state or the entity has no record).
    pub async fn lookup<S: OnlineStore>(
        &self,
        store: &S,
        record: &Map<String, Value>,
    ) -> Result<Vec<(String, Option<OnlineRecord>)>, EvalError> {
        let mut out = Vec::with_capacity(self.views.len());
        for spec in &self.views {
            if spec.view.entity.is_empty() {
                out.push((String::new(), None));
                continue;
            }
            let entity = spec.entity_key(record)?;
            let found = if spec.plan.is_empty() {
                None
            } else {
                store.read(&spec.view.name, &entity).await?
            };
            out.push((entity, found));
        }
        Ok(out)
    }

    /// Every view evaluated at `at_us` with the records [`FeatureSet::lookup`] found, the
    /// values concatenated in view order. The entity counts as unknown (or expired) when any
    /// view that keeps state found none (or an expired one).
    pub fn evaluate(
        &self,
        record: &Map<String, Value>,
        found: &[(String, Option<OnlineRecord>)],
        at_us: i64,
    ) -> Result<Assembled, EvalError> {
        let mut all = Assembled {
            values: Vec::new(),
            missing: Vec::new(),
            unknown_entity: false,
            expired: false,
        };
        for (spec, (_, r)) in self.views.iter().zip(found) {
            let a = spec.evaluate(record, r.as_ref().map(|r| &r.state), at_us)?;
            all.values.extend(a.values);
            all.missing.extend(a.missing);
            let keeps_state = !spec.view.entity.is_empty() && !spec.plan.is_empty();
            all.unknown_entity |= keeps_state && a.unknown_entity;
            all.expired |= a.expired;
        }
        Ok(all)
    }

    /// Reads every view's record for `request` from `store` and evaluates the set at the
    /// request's time (or `now_us` when it has none). The vector's entity is the first
    /// entity key; its staleness the oldest record's.
    pub async fn online_features<S: OnlineStore>(
        &self,
        store: &S,
        request: &Map<String, Value>,
        now_us: i64,
    ) -> Result<FeatureVector, EvalError> {
        let at = self.event_time_us(request)?.unwrap_or(now_us);
        let found = self.lookup(store, request).await?;
        let assembled = self.evaluate(request, &found, at)?;
        let records: Vec<&OnlineRecord> = found.iter().filter_map(|(_, r)| r.as_ref()).collect();
        let oldest = records.iter().map(|r| r.materialized_at_us).min();
        let versions: Vec<&str> = records.iter().map(|r| r.version.as_str()).collect();
        Ok(FeatureVector {
            entity: found
                .iter()
                .map(|(e, _)| e.as_str())
                .find(|e| !e.is_empty())
                .unwrap_or_default()
                .to_string(),
            columns: self.output_columns(),
            assembled,
            staleness_s: oldest.map(|t| (now_us - t) as f64 / 1e6),
            record_version: (!versions.is_empty()).then(|| versions.join("+")),
        })
    }
}
