//! The offline feature table: for every label event, the view's features as of that event.
//!
//! Window aggregates and time since previous come from the shared bucket kernel
//! ([`features::entity_pass`]), run per entity over the events sorted by time: for each label
//! event only events strictly before its timestamp are folded in, so no row can see its own
//! event or a later one. That backward as-of pass is the point-in-time join, and its final
//! per-entity state is the online record, so offline and online agree by construction.
//! Request-time features (the event's own fields, ratios, differences, clips, encodings) are
//! polars expressions over the resulting frame, evaluated in definition order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use features::definition::{Encoding, FeatureKind, SplitMethod};
use features::spec::{one_hot_name, time_part};
use features::window::{hash_bool, hash_number, hash_text};
use features::{AggPlan, EntityState, FeatureView, LabelSource, SlotValue, entity_pass};
use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::FeatureStageError;

pub const SPLIT: &str = "__split";
pub const TRAIN: &str = "train";
pub const VALIDATION: &str = "validation";
pub const TEST: &str = "test";

/// The offline result of one view over one event history.
#[derive(Debug)]
pub struct OfflineTable {
    /// Entity columns, event time, model input columns, label, `__split`; sorted by time.
    pub table: DataFrame,
    /// Model input columns, in order.
    pub columns: Vec<String>,
    /// Every entity's state after its last event: the online records.
    pub states: Vec<(String, EntityState)>,
    pub vocabularies: BTreeMap<String, Vec<String>>,
    /// Encoded feature -> category counts of its source column over the training rows
    /// (`__null__` for nulls), for the reference profile.
    pub categories: BTreeMap<String, BTreeMap<String, u64>>,
    pub counts: SplitCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitCounts {
    pub train: u64,
    pub validation: u64,
    pub test: u64,
}

fn invalid(message: String) -> FeatureStageError {
    FeatureStageError::Data(message)
}

/// Entity keys of a frame: columns cast to text, joined by U+001F (nulls read as empty).
pub fn entity_keys(df: &DataFrame, columns: &[String]) -> Result<Vec<String>, FeatureStageError> {
    let mut parts = Vec::new();
    for c in columns {
        let col = df
            .column(c)
            .map_err(|_| invalid(format!("column '{c}' (entity key) is missing")))?
            .cast(&DataType::String)?;
        parts.push(col.str()?.clone());
    }
    let sep = features::KEY_SEPARATOR.to_string();
    Ok((0..df.height())
        .map(|i| {
            parts
                .iter()
                .map(|p| p.get(i).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep)
        })
        .collect())
}

/// Event times in microseconds since the epoch. Accepts Datetime of any unit and text (RFC
/// 3339 or naive UTC, parsed exactly as the edge parses request times).
pub fn micros(df: &DataFrame, column: &str) -> Result<Vec<Option<i64>>, FeatureStageError> {
    let col = df
        .column(column)
        .map_err(|_| invalid(format!("column '{column}' (event time) is missing")))?;
    match col.dtype() {
        DataType::Datetime(_, tz) => {
            let c = col.cast(&DataType::Datetime(TimeUnit::Microseconds, tz.clone()))?;
            let c = c.cast(&DataType::Int64)?;
            Ok(c.i64()?.iter().collect())
        }
        DataType::String => Ok(col
            .str()?
            .iter()
            .map(|s| s.and_then(features::spec::parse_time_us))
            .collect()),
        other => Err(invalid(format!(
            "column '{column}' is {other}, not a timestamp"
        ))),
    }
}

/// Per-slot values of the events, read once from the frame.
enum SlotColumn {
    Events,
    Number(Vec<Option<f64>>),
    Hash(Vec<Option<u64>>),
}

impl SlotColumn {
    fn read(
        df: &DataFrame,
        column: Option<&str>,
        distinct: bool,
    ) -> Result<SlotColumn, FeatureStageError> {
        let Some(name) = column else {
            return Ok(SlotColumn::Events);
        };
        let col = df
            .column(name)
            .map_err(|_| invalid(format!("column '{name}' is missing")))?;
        if !distinct {
            let c = col.cast(&DataType::Float64)?;
            return Ok(SlotColumn::Number(c.f64()?.iter().collect()));
        }
        Ok(SlotColumn::Hash(match col.dtype() {
            DataType::String => col.str()?.iter().map(|v| v.map(hash_text)).collect(),
            DataType::Boolean => col.bool()?.iter().map(|v| v.map(hash_bool)).collect(),
            dt if dt.is_primitive_numeric() => col
                .cast(&DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.map(hash_number))
                .collect(),
            _ => col
                .cast(&DataType::String)?
                .str()?
                .iter()
                .map(|v| v.map(hash_text))
                .collect(),
        }))
    }

    fn value(&self, row: usize) -> SlotValue {
        match self {
            SlotColumn::Events => SlotValue::Missing,
            SlotColumn::Number(v) => v[row].map_or(SlotValue::Missing, SlotValue::Number),
            SlotColumn::Hash(v) => v[row].map_or(SlotValue::Missing, SlotValue::Hash),
        }
    }
}

/// Rows grouped by entity (first-seen order), each group sorted by time (ties keep input
/// order); rows without a time are left out. Returns the entity keys and the groups.
fn group_rows(
    df: &DataFrame,
    columns: &[String],
    times: &[Option<i64>],
) -> Result<(Vec<String>, Vec<Vec<u32>>), FeatureStageError> {
    if let [column] = columns {
        // One key column: group on borrowed strings, no per-row key allocation.
        let c = df
            .column(column)
            .map_err(|_| invalid(format!("column '{column}' (entity key) is missing")))?
            .cast(&DataType::String)?;
        let ca = c.str()?;
        Ok(group_by_key(ca.iter().map(|v| v.unwrap_or("")), times))
    } else {
        let keys = entity_keys(df, columns)?;
        Ok(group_by_key(keys.iter().map(String::as_str), times))
    }
}

fn group_by_key<'a>(
    keys: impl Iterator<Item = &'a str>,
    times: &[Option<i64>],
) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names = Vec::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for (row, key) in keys.enumerate() {
        if times[row].is_none() {
            continue;
        }
        let id = *ids.entry(key).or_insert_with(|| {
            names.push(key.to_string());
            groups.push(Vec::new());
            names.len() - 1
        });
        groups[id].push(row as u32);
    }
    for g in &mut groups {
        g.sort_by_key(|&r| times[r as usize]);
    }
    (names, groups)
}

/// Computes the view's state features for each query row (label events) from the events.
/// Returns one column of values per state feature, aligned with the query rows, and every
/// entity's final state.
#[allow(clippy::type_complexity)]
fn state_features(
    view: &FeatureView,
    plan: &AggPlan,
    events: &DataFrame,
    queries: Option<(&DataFrame, &[String], &str)>,
) -> Result<(Vec<Vec<f64>>, Vec<(String, EntityState)>), FeatureStageError> {
    let time_col = view
        .event_time
        .as_deref()
        .ok_or_else(|| invalid("state features need an event time".into()))?;
    let times = micros(events, time_col)?;
    // One read per (column, distinct): slots that differ only in bucket width share it.
    let mut read: HashMap<(Option<&str>, bool), Arc<SlotColumn>> = HashMap::new();
    let mut slots: Vec<Arc<SlotColumn>> = Vec::new();
    for s in &plan.slots {
        let key = (s.column.as_deref(), s.distinct);
        let column = match read.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(SlotColumn::read(events, key.0, key.1)?);
                read.insert(key, c.clone());
                c
            }
        };
        slots.push(column);
    }
    let (names, groups) = group_rows(events, &view.entity, &times)?;

    // The queries: the events themselves, or separate label events joined per entity.
    let Some((labels, entity, time)) = queries else {
        return run_groups(plan, &slots, &times, &groups, &names, &groups, &times);
    };
    let q_times = micros(labels, time)?;
    let (q_names, q_rows) = group_rows(labels, entity, &q_times)?;
    let by_name: HashMap<&str, usize> = q_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut aligned: Vec<Vec<u32>> = names
        .iter()
        .map(|n| {
            by_name
                .get(n.as_str())
                .map(|&i| q_rows[i].clone())
                .unwrap_or_default()
        })
        .collect();
    // Label events of entities without any event still get (empty-state) rows.
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();
    let orphans = q_names
        .iter()
        .zip(&q_rows)
        .filter(|(n, _)| !known.contains(n.as_str()))
        .flat_map(|(_, rows)| rows.iter().copied())
        .collect();
    aligned.push(orphans);
    run_groups(plan, &slots, &times, &groups, &names, &aligned, &q_times)
}

#[allow(clippy::type_complexity)]
fn run_groups(
    plan: &AggPlan,
    slots: &[Arc<SlotColumn>],
    times: &[Option<i64>],
    groups: &[Vec<u32>],
    names: &[String],
    q_groups: &[Vec<u32>],
    q_times: &[Option<i64>],
) -> Result<(Vec<Vec<f64>>, Vec<(String, EntityState)>), FeatureStageError> {
    let q_height = q_times.len();
    let width = plan.outputs.len();
    let empty: Vec<u32> = Vec::new();
    // One task per entity; an extra trailing query group (label events of unknown entities)
    // runs against no events. Each returns its queries' values row-major.
    let results: Vec<(Vec<Option<f64>>, Option<EntityState>)> =
        (0..q_groups.len().max(groups.len()))
            .into_par_iter()
            .map(|g| {
                let events = groups.get(g).unwrap_or(&empty);
                let queries = q_groups.get(g).unwrap_or(&empty);
                let event_times: Vec<i64> = events
                    .iter()
                    .map(|&r| times[r as usize].unwrap_or(0))
                    .collect();
                let query_times: Vec<i64> = queries
                    .iter()
                    .map(|&r| q_times[r as usize].unwrap_or(0))
                    .collect();
                let mut out = Vec::with_capacity(queries.len() * width);
                let state = entity_pass(
                    plan,
                    &event_times,
                    |i, values| {
                        let row = events[i] as usize;
                        values.extend(slots.iter().map(|s| s.value(row)));
                    },
                    &query_times,
                    &mut out,
                );
                (out, (g < groups.len()).then_some(state))
            })
            .collect();
    // f64 with NaN for "no value" halves the memory of Option<f64>; kernel values are never
    // NaN themselves (finite inputs, guarded divisions).
    let mut columns = vec![vec![f64::NAN; q_height]; width];
    let mut states = Vec::with_capacity(names.len());
    for (g, (values, state)) in results.into_iter().enumerate() {
        if let Some(queries) = q_groups.get(g) {
            for (&q, row) in queries.iter().zip(values.chunks(width.max(1))) {
                for (j, v) in row.iter().enumerate() {
                    if let Some(v) = v {
                        columns[j][q as usize] = *v;
                    }
                }
            }
        }
        if let Some(state) = state {
            states.push((names[g].clone(), state));
        }
    }
    Ok((columns, states))
}

/// Builds the offline table of `view` from its events and, for a separate labels dataset,
/// the label events. `vocabularies` fixes the encodings (a training-set export for an
/// existing version); `None` learns them from the training split.
pub fn build_table(
    view: &FeatureView,
    events: &DataFrame,
    labels: Option<&DataFrame>,
    vocabularies: Option<&BTreeMap<String, Vec<String>>>,
) -> Result<OfflineTable, FeatureStageError> {
    let plan = AggPlan::new(view);
    let (frame, time_col, label_col) = match (&view.label, labels) {
        (
            Some(LabelSource::Dataset {
                entity,
                time,
                column,
                ..
            }),
            Some(labels),
        ) => {
            // The label frame carries the view's entity names, so outputs read the same.
            let mut df = labels.clone();
            for (from, to) in entity.iter().zip(&view.entity) {
                if from != to {
                    df.rename(from, to.as_str().into())?;
                }
            }
            (df, Some(time.clone()), Some(column.clone()))
        }
        (Some(LabelSource::Dataset { dataset, .. }), None) => {
            return Err(invalid(format!(
                "view '{}' takes labels from dataset '{dataset}', which has no data yet",
                view.name
            )));
        }
        (label, _) => (
            events.clone(),
            view.event_time.clone(),
            label.as_ref().map(|l| l.column().to_string()),
        ),
    };
    if let Some(label) = &label_col
        && frame.column(label).is_err()
    {
        return Err(invalid(format!("label column '{label}' is missing")));
    }
    // Rows in time order from the start (stable: ties keep input order), so every column
    // computed below is already in the table's order and nothing wide is sorted at the end.
    let frame = match &time_col {
        Some(t) => sort_by_time(&frame, t)?,
        None => frame,
    };
    let own_events = matches!(view.label, None | Some(LabelSource::Column { .. }));
    for input in view.inputs.keys() {
        if frame.column(input).is_err() {
            return Err(invalid(format!(
                "column '{input}', read by a request-time feature, is missing from the label events"
            )));
        }
    }

    // Point-in-time state features. Features live in their own namespace (`computed`), apart
    // from the source columns in `frame`, so a feature named like a column (`amount` as the
    // log of the `amount` column) never changes what another feature reads from the source.
    let mut computed: HashMap<String, Column> = HashMap::new();
    let mut states = Vec::new();
    if !plan.is_empty() {
        let queries = match (&view.label, labels) {
            (Some(LabelSource::Dataset { .. }), Some(_)) => Some((
                &frame,
                view.entity.as_slice(),
                time_col.as_deref().unwrap_or(""),
            )),
            _ => None,
        };
        // When the label events are the dataset's own rows, the kernel reads the sorted frame.
        let history = if own_events { &frame } else { events };
        let (columns, s) = state_features(view, &plan, history, queries)?;
        states = s;
        for (output, values) in plan.outputs.iter().zip(columns) {
            let values: Float64Chunked = values
                .into_iter()
                .map(|v| (!v.is_nan()).then_some(v))
                .collect();
            computed.insert(
                output.name().to_string(),
                values.with_name(output.name().into()).into_column(),
            );
        }
    }
    let times = match &time_col {
        Some(t) => Some(micros(&frame, t)?),
        None => None,
    };

    // Split before encodings: vocabularies are learned from training rows only.
    let split = assign_split(view, &frame, times.as_deref(), label_col.as_deref())?;
    let counts = SplitCounts {
        train: split.iter().filter(|s| **s == TRAIN).count() as u64,
        validation: split.iter().filter(|s| **s == VALIDATION).count() as u64,
        test: split.iter().filter(|s| **s == TEST).count() as u64,
    };

    let mut learned = BTreeMap::new();
    let mut categories = BTreeMap::new();
    let mut outputs = Vec::new();
    for f in &view.features {
        let produced: Vec<Column> = match &f.kind {
            FeatureKind::Aggregate { .. } | FeatureKind::TimeSincePrevious => {
                let c = computed
                    .get(&f.name)
                    .cloned()
                    .ok_or_else(|| invalid(format!("state feature '{}' missing", f.name)))?;
                vec![transform(f, c)?]
            }
            FeatureKind::Column { column } => {
                let c = frame
                    .column(column)?
                    .cast(&DataType::Float64)?
                    .with_name(f.name.as_str().into());
                vec![transform(f, c)?]
            }
            FeatureKind::TimePart { part } => {
                let t = times
                    .as_ref()
                    .ok_or_else(|| invalid("time_part needs an event time".into()))?;
                let values: Vec<Option<f64>> =
                    t.iter().map(|t| t.map(|t| time_part(*part, t))).collect();
                vec![transform(f, Column::new(f.name.as_str().into(), values))?]
            }
            FeatureKind::Ratio { a, b } => {
                let pair = operands(&computed, a, b)?;
                let expr = when(col("b").neq(lit(0.0)))
                    .then(col("a") / col("b"))
                    .otherwise(lit(NULL).cast(DataType::Float64))
                    .alias(f.name.as_str());
                vec![transform(f, eval_expr(&pair, expr)?)?]
            }
            FeatureKind::Difference { a, b } => {
                let pair = operands(&computed, a, b)?;
                let expr = (col("a") - col("b")).alias(f.name.as_str());
                vec![transform(f, eval_expr(&pair, expr)?)?]
            }
            FeatureKind::Encoded {
                column,
                encoding,
                max_categories,
                min_count,
            } => {
                let text = frame.column(column)?.cast(&DataType::String)?;
                let vocab = match vocabularies.and_then(|v| v.get(&f.name)) {
                    Some(v) => v.clone(),
                    None => learn_vocabulary(text.str()?, &split, *max_categories, *min_count),
                };
                let mut freq: BTreeMap<String, u64> = BTreeMap::new();
                for (v, s) in text.str()?.iter().zip(&split) {
                    if *s == TRAIN {
                        *freq.entry(v.unwrap_or("__null__").to_string()).or_default() += 1;
                    }
                }
                categories.insert(f.name.clone(), freq);
                let cols = encode(&f.name, &frame, column, *encoding, &vocab)?;
                learned.insert(f.name.clone(), vocab);
                cols
            }
        };
        for c in produced {
            let name = c.name().to_string();
            if f.output {
                outputs.push(c.clone());
            }
            computed.insert(name, c);
        }
    }

    // Final layout: keys, time, features, label, split; sorted by time (then input order).
    let mut columns: Vec<Column> = Vec::new();
    for key in view.entity.iter().chain(time_col.iter()) {
        columns.push(frame.column(key)?.clone());
    }
    let names: Vec<String> = outputs.iter().map(|c| c.name().to_string()).collect();
    columns.extend(outputs);
    if let Some(l) = &label_col {
        columns.push(frame.column(l)?.clone());
    }
    columns.push(Column::new(SPLIT.into(), split));
    let outputs = names;
    let table = DataFrame::new(frame.height(), columns)?;
    Ok(OfflineTable {
        table,
        columns: outputs,
        states,
        vocabularies: learned,
        categories,
        counts,
    })
}

/// A two-column frame (`a`, `b`) of two computed features, as f64.
fn operands(
    computed: &HashMap<String, Column>,
    a: &str,
    b: &str,
) -> Result<DataFrame, FeatureStageError> {
    let get = |name: &str, alias: &str| -> Result<Column, FeatureStageError> {
        Ok(computed
            .get(name)
            .ok_or_else(|| invalid(format!("feature '{name}' is not computed before its use")))?
            .cast(&DataType::Float64)?
            .with_name(alias.into()))
    };
    let a = get(a, "a")?;
    let height = a.len();
    Ok(DataFrame::new(height, vec![a, get(b, "b")?])?)
}

fn sort_by_time(frame: &DataFrame, column: &str) -> Result<DataFrame, FeatureStageError> {
    let times = micros(frame, column)?;
    let mut order: Vec<IdxSize> = (0..frame.height() as IdxSize).collect();
    // Rows without a time go last; ties keep input order (stable sort).
    order.sort_by_key(|&i| times[i as usize].unwrap_or(i64::MAX));
    if order.windows(2).all(|w| w[0] < w[1]) {
        return Ok(frame.clone());
    }
    let idx = IdxCa::from_vec("idx".into(), order);
    Ok(frame.take(&idx)?)
}

fn eval_expr(frame: &DataFrame, expr: Expr) -> Result<Column, FeatureStageError> {
    let out = frame.clone().lazy().select([expr]).collect()?;
    Ok(out.columns()[0].clone())
}

/// Clip then log1p, exactly as [`features::spec::transform`] does online.
fn transform(f: &features::Feature, c: Column) -> Result<Column, FeatureStageError> {
    if f.clip.is_none() && !f.log1p {
        return Ok(c);
    }
    let name = c.name().clone();
    let values = c.cast(&DataType::Float64)?;
    let out: Float64Chunked = values
        .f64()?
        .iter()
        .map(|v| features::spec::transform(f, v))
        .collect();
    Ok(out.with_name(name).into_column())
}

fn learn_vocabulary(
    values: &StringChunked,
    split: &[&str],
    max_categories: usize,
    min_count: u64,
) -> Vec<String> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for (v, s) in values.iter().zip(split) {
        if let (Some(v), &TRAIN) = (v, s) {
            *counts.entry(v).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, u64)> = counts
        .into_iter()
        .filter(|(_, n)| *n >= min_count)
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(max_categories)
        .map(|(v, _)| v.to_string())
        .collect()
}

fn encode(
    name: &str,
    frame: &DataFrame,
    column: &str,
    encoding: Encoding,
    vocab: &[String],
) -> Result<Vec<Column>, FeatureStageError> {
    let text = || col(column).cast(DataType::String);
    match encoding {
        Encoding::OneHot => {
            let mut exprs: Vec<Expr> = vocab
                .iter()
                .map(|c| {
                    when(text().eq(lit(c.as_str())))
                        .then(lit(1.0))
                        .otherwise(lit(0.0))
                        .alias(one_hot_name(name, c).as_str())
                })
                .collect();
            let known = Series::new("vocab".into(), vocab.to_vec());
            exprs.push(
                when(text().is_in(lit(known).implode(false), false))
                    .then(lit(0.0))
                    .otherwise(lit(1.0))
                    .alias(format!("{name}__unknown").as_str()),
            );
            let out = frame.clone().lazy().select(exprs).collect()?;
            Ok(out.columns().to_vec())
        }
        Encoding::Index => {
            let positions: HashMap<&str, f64> = vocab
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), i as f64))
                .collect();
            let unknown = vocab.len() as f64;
            let c = frame.column(column)?.cast(&DataType::String)?;
            let out: Float64Chunked = c
                .str()?
                .iter()
                .map(|v| Some(v.and_then(|v| positions.get(v).copied()).unwrap_or(unknown)))
                .collect();
            Ok(vec![out.with_name(name.into()).into_column()])
        }
    }
}

/// Train/validation/test assignment per row: by time when the view has an event time (the
/// newest rows test), else a seeded random split stratified by a discrete label.
fn assign_split(
    view: &FeatureView,
    frame: &DataFrame,
    times: Option<&[Option<i64>]>,
    label: Option<&str>,
) -> Result<Vec<&'static str>, FeatureStageError> {
    let n = frame.height();
    let (v, t) = (view.split.validation, view.split.test);
    let train_frac = 1.0 - v - t;
    match (view.split.method, times) {
        (SplitMethod::Time, Some(times)) => {
            let mut sorted: Vec<i64> = times.iter().flatten().copied().collect();
            sorted.sort_unstable();
            if sorted.is_empty() {
                return Ok(vec![TRAIN; n]);
            }
            let at = |frac: f64| {
                let i = ((sorted.len() as f64) * frac).floor() as usize;
                sorted[i.min(sorted.len() - 1)]
            };
            let t1 = at(train_frac);
            let t2 = at(train_frac + v);
            Ok(times
                .iter()
                .map(|time| match time {
                    Some(x) if *x < t1 => TRAIN,
                    Some(x) if *x < t2 || t == 0.0 => VALIDATION,
                    Some(_) => TEST,
                    None => TRAIN,
                })
                .map(|s| if v == 0.0 && s == VALIDATION { TEST } else { s })
                .collect())
        }
        _ => {
            // Strata: the label's value when it looks discrete, else one stratum.
            let strata: Vec<String> = match label.and_then(|l| frame.column(l).ok()) {
                Some(c) if is_discrete(c)? => c
                    .cast(&DataType::String)?
                    .str()?
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect(),
                _ => vec![String::new(); n],
            };
            let mut by_stratum: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, s) in strata.iter().enumerate() {
                by_stratum.entry(s.as_str()).or_default().push(i);
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(view.split.seed);
            let mut out = vec![TRAIN; n];
            for rows in by_stratum.values_mut() {
                rows.shuffle(&mut rng);
                let len = rows.len() as f64;
                let n_test = (len * t).round() as usize;
                let n_val = (len * v).round() as usize;
                for (k, &row) in rows.iter().enumerate() {
                    out[row] = if k < n_test {
                        TEST
                    } else if k < n_test + n_val {
                        VALIDATION
                    } else {
                        TRAIN
                    };
                }
            }
            Ok(out)
        }
    }
}

fn is_discrete(c: &Column) -> Result<bool, FeatureStageError> {
    Ok(match c.dtype() {
        DataType::Boolean | DataType::String => true,
        dt if dt.is_integer() => c.n_unique()? <= 100,
        _ => false,
    })
}
