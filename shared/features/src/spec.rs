//! A materialized view version's specification (definition + vocabularies fixed at training
//! time) and the pure request-time evaluator that turns one raw event plus the entity's
//! online record into the model's input vector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EvalError;
use crate::definition::{Encoding, Feature, FeatureKind, FeatureView, TimePart};
use crate::window::{AggPlan, EntityState};

/// Separates the parts of a multi-column entity key.
pub const KEY_SEPARATOR: char = '\u{1f}';

/// Everything needed to compute a view's features anywhere: the definition, the vocabularies
/// of its encoded features (learned from the training split), and the compiled window plan.
/// Stored as `spec.json` in each feature-view version and shipped in model bundles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewSpec {
    pub view: FeatureView,
    pub definition_hash: String,
    /// The feature-view version this spec belongs to.
    pub version: String,
    /// Encoded feature name -> categories, in output order.
    pub vocabularies: BTreeMap<String, Vec<String>>,
    pub plan: AggPlan,
}

/// The features of one request, in output-column order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assembled {
    pub values: Vec<Option<f64>>,
    /// Output columns without a value (the model sees NaN).
    pub missing: Vec<String>,
    /// The entity has no record in the online store.
    pub unknown_entity: bool,
    /// The entity's record is older than the view's TTL and reads as empty.
    pub expired: bool,
}

impl Assembled {
    /// The model input: f32, NaN for missing values.
    pub fn model_input(&self) -> Vec<f32> {
        self.values
            .iter()
            .map(|v| v.map_or(f32::NAN, |x| x as f32))
            .collect()
    }
}

impl ViewSpec {
    pub fn new(
        view: FeatureView,
        version: String,
        vocabularies: BTreeMap<String, Vec<String>>,
    ) -> ViewSpec {
        let plan = AggPlan::new(&view);
        ViewSpec {
            definition_hash: view.hash(),
            view,
            version,
            vocabularies,
            plan,
        }
    }

    /// The model's input columns, in order.
    pub fn output_columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.view.features.iter().filter(|f| f.output) {
            match &f.kind {
                FeatureKind::Encoded {
                    encoding: Encoding::OneHot,
                    ..
                } => {
                    for c in self.vocabulary(&f.name) {
                        out.push(one_hot_name(&f.name, c));
                    }
                    out.push(format!("{}__unknown", f.name));
                }
                _ => out.push(f.name.clone()),
            }
        }
        out
    }

    pub fn vocabulary(&self, feature: &str) -> &[String] {
        self.vocabularies
            .get(feature)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The entity key of a raw record (string values as-is, integers in decimal, several
    /// columns joined by U+001F) — the same key the offline pass and the online store use.
    pub fn entity_key(&self, record: &Map<String, Value>) -> Result<String, EvalError> {
        let mut parts = Vec::with_capacity(self.view.entity.len());
        for column in &self.view.entity {
            let part = match record.get(column) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                Some(Value::Null) | None => {
                    return Err(EvalError::Field {
                        field: column.clone(),
                        message: "the entity key is required".into(),
                    });
                }
                Some(other) => {
                    return Err(EvalError::Field {
                        field: column.clone(),
                        message: format!("an entity key must be a string or integer, got {other}"),
                    });
                }
            };
            parts.push(part);
        }
        Ok(parts.join(&KEY_SEPARATOR.to_string()))
    }

    /// The record's event time in microseconds, when it carries the view's event-time field.
    pub fn event_time_us(&self, record: &Map<String, Value>) -> Result<Option<i64>, EvalError> {
        // A request stands for a label event: with a separate labels dataset its time is the
        // labels' time column (as offline), and the view's own event-time name still works.
        let labels_time = match &self.view.label {
            Some(crate::LabelSource::Dataset { time, .. }) => Some(time),
            _ => None,
        };
        let Some(column) = labels_time
            .filter(|t| record.get(t.as_str()).is_some_and(|v| !v.is_null()))
            .or(self.view.event_time.as_ref())
        else {
            return Ok(None);
        };
        match record.get(column) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => parse_time_us(s).map(Some).ok_or_else(|| EvalError::Field {
                field: column.clone(),
                message: format!("'{s}' is not an RFC 3339 timestamp"),
            }),
            Some(other) => Err(EvalError::Field {
                field: column.clone(),
                message: format!("expected an RFC 3339 timestamp string, got {other}"),
            }),
        }
    }

    /// Computes the features of one raw record at time `at_us` from the record's own fields
    /// and the entity's online state (`None`: the entity has no record).
    pub fn evaluate(
        &self,
        record: &Map<String, Value>,
        state: Option<&EntityState>,
        at_us: i64,
    ) -> Result<Assembled, EvalError> {
        let mut state_values = Vec::new();
        let empty;
        let state = match state {
            Some(s) => s,
            None => {
                empty = EntityState::new(&self.plan);
                &empty
            }
        };
        let expired = state.last_event_us.is_some() && state.expired_at(&self.plan, at_us);
        if !self.plan.is_empty() {
            state.evaluate(&self.plan, at_us, &mut state_values);
        }
        let mut by_name: BTreeMap<&str, Option<f64>> = BTreeMap::new();
        let mut state_iter = state_values.into_iter();
        let mut values = Vec::new();
        let mut names = Vec::new();
        for f in &self.view.features {
            let value = match &f.kind {
                FeatureKind::Aggregate { .. } | FeatureKind::TimeSincePrevious => {
                    state_iter.next().flatten()
                }
                FeatureKind::Column { column } => numeric_field(record, column)?,
                FeatureKind::TimePart { part } => Some(time_part(*part, at_us)),
                FeatureKind::Ratio { a, b } => {
                    match (
                        by_name.get(a.as_str()).copied().flatten(),
                        by_name.get(b.as_str()).copied().flatten(),
                    ) {
                        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
                        _ => None,
                    }
                }
                FeatureKind::Difference { a, b } => {
                    match (
                        by_name.get(a.as_str()).copied().flatten(),
                        by_name.get(b.as_str()).copied().flatten(),
                    ) {
                        (Some(a), Some(b)) => Some(a - b),
                        _ => None,
                    }
                }
                FeatureKind::Encoded {
                    column, encoding, ..
                } => {
                    let category = category_field(record, column)?;
                    let vocab = self.vocabulary(&f.name);
                    let position = category
                        .as_deref()
                        .and_then(|c| vocab.iter().position(|v| v == c));
                    if f.output {
                        match encoding {
                            Encoding::OneHot => {
                                for (i, c) in vocab.iter().enumerate() {
                                    names.push(one_hot_name(&f.name, c));
                                    values.push(Some(if position == Some(i) { 1.0 } else { 0.0 }));
                                }
                                names.push(format!("{}__unknown", f.name));
                                values.push(Some(if position.is_none() { 1.0 } else { 0.0 }));
                            }
                            Encoding::Index => {
                                names.push(f.name.clone());
                                values.push(Some(position.unwrap_or(vocab.len()) as f64));
                            }
                        }
                    }
                    continue;
                }
            };
            let value = transform(f, value);
            by_name.insert(&f.name, value);
            if f.output {
                names.push(f.name.clone());
                values.push(value);
            }
        }
        let missing = names
            .into_iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n)
            .collect();
        Ok(Assembled {
            values,
            missing,
            unknown_entity: state.last_event_us.is_none(),
            expired,
        })
    }
}

/// Clip, then log1p (missing when the clipped value is at most -1).
pub fn transform(f: &Feature, value: Option<f64>) -> Option<f64> {
    let mut v = value?;
    if let Some((lo, hi)) = f.clip {
        v = v.clamp(lo, hi);
    }
    if f.log1p {
        if v <= -1.0 {
            return None;
        }
        v = v.ln_1p();
    }
    Some(v)
}

pub fn one_hot_name(feature: &str, category: &str) -> String {
    format!("{feature}__{category}")
}

/// Hour (0-23) or day of week (0 = Monday) of a UTC time in microseconds.
pub fn time_part(part: TimePart, at_us: i64) -> f64 {
    let secs = at_us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    match part {
        TimePart::Hour => (secs.rem_euclid(86_400) / 3600) as f64,
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        TimePart::DayOfWeek => (days + 3).rem_euclid(7) as f64,
    }
}

fn numeric_field(record: &Map<String, Value>, column: &str) -> Result<Option<f64>, EvalError> {
    match record.get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::Bool(b)) => Ok(Some(if *b { 1.0 } else { 0.0 })),
        Some(other) => Err(EvalError::Field {
            field: column.into(),
            message: format!("expected a number, got {other}"),
        }),
    }
}

fn category_field(record: &Map<String, Value>, column: &str) -> Result<Option<String>, EvalError> {
    match record.get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(EvalError::Field {
            field: column.into(),
            message: format!("expected a string, got {other}"),
        }),
    }
}

/// RFC 3339, or a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]` read as UTC.
pub fn parse_time_us(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}
