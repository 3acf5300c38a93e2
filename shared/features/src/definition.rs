//! The feature file: one feature view per TOML file, parsed into typed definitions and
//! checked against the dataset's contract. The full reference is `docs/features.md`.

use std::collections::{BTreeMap, BTreeSet};

use contracts::{ColumnType, Contract, is_identifier, parse_duration, short_hash};
use serde::{Deserialize, Serialize};

use crate::FeatureError;

const MICROS: i64 = 1_000_000;

/// One or several column names (`entity = "card_id"` or `entity = ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewFile {
    view: String,
    dataset: String,
    #[serde(default)]
    description: String,
    entity: Option<OneOrMany>,
    event_time: Option<String>,
    ttl: Option<String>,
    label: Option<String>,
    labels: Option<LabelsFile>,
    #[serde(default)]
    split: SplitFile,
    #[serde(default)]
    features: Vec<FeatureFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelsFile {
    dataset: String,
    entity: Option<OneOrMany>,
    time: Option<String>,
    column: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitFile {
    method: Option<String>,
    validation: Option<f64>,
    test: Option<f64>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureFile {
    name: String,
    #[serde(default)]
    description: String,
    column: Option<String>,
    aggregate: Option<String>,
    window: Option<String>,
    bucket: Option<String>,
    ratio: Option<[String; 2]>,
    difference: Option<[String; 2]>,
    time_part: Option<String>,
    encoding: Option<String>,
    max_categories: Option<usize>,
    min_count: Option<u64>,
    #[serde(default)]
    log1p: bool,
    clip: Option<[f64; 2]>,
    output: Option<bool>,
}

/// A feature view: the features computed for one entity (or for plain rows) of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureView {
    pub name: String,
    pub dataset: String,
    pub description: String,
    /// Join-key columns; empty for plain tabular data.
    pub entity: Vec<String>,
    /// Event-time column; `None` for data without time.
    pub event_time: Option<String>,
    /// An entity's state reads as empty once its last event is older than this.
    pub ttl_us: Option<i64>,
    pub label: Option<LabelSource>,
    pub split: Split,
    pub features: Vec<Feature>,
    /// Dataset columns the request-time features read, with their contract types.
    pub inputs: BTreeMap<String, ColumnType>,
}

/// Where training labels come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum LabelSource {
    /// A column of the view's own dataset: one label event per row, at its event time.
    Column { column: String },
    /// A separate dataset of (entity, time, label) rows.
    Dataset {
        dataset: String,
        entity: Vec<String>,
        time: String,
        column: String,
    },
}

impl LabelSource {
    pub fn column(&self) -> &str {
        match self {
            LabelSource::Column { column } | LabelSource::Dataset { column, .. } => column,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitMethod {
    /// Oldest rows train, then validation, newest test.
    Time,
    /// Seeded random split, stratified by label when the label is discrete.
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub method: SplitMethod,
    pub validation: f64,
    pub test: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub description: String,
    pub kind: FeatureKind,
    /// Applied to the value in this order: clip, then log1p.
    pub clip: Option<(f64, f64)>,
    pub log1p: bool,
    /// False: computed (e.g. for a ratio) but not part of the model input.
    pub output: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FeatureKind {
    /// A numeric or boolean field of the event itself (request time).
    Column { column: String },
    /// A text field of the event, encoded with a vocabulary fixed at training time.
    Encoded {
        column: String,
        encoding: Encoding,
        max_categories: usize,
        min_count: u64,
    },
    /// A trailing-window aggregate of the entity's earlier events.
    Aggregate {
        agg: Agg,
        column: Option<String>,
        window_us: i64,
        bucket_us: i64,
    },
    /// Seconds since the entity's previous event.
    TimeSincePrevious,
    /// A calendar part of the event time (UTC).
    TimePart { part: TimePart },
    /// `a / b` of two earlier features; missing when `b` is 0.
    Ratio { a: String, b: String },
    /// `a - b` of two earlier features.
    Difference { a: String, b: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// One 0/1 column per vocabulary entry plus one for unknown values.
    OneHot,
    /// The vocabulary position; unknown values get the vocabulary length.
    Index,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Std,
    DistinctCount,
    /// The column's value at the entity's most recent earlier event (null when that event's
    /// value is null), within the window when one is given, else within the TTL.
    Last,
}

/// The bucket width (and window) of a latest-value feature without a window: one bucket
/// that every event after 1970 falls into, so the newest event is always the one read.
pub const UNBOUNDED_US: i64 = i64::MAX;

impl Agg {
    fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "mean" | "avg" => Agg::Mean,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "std" | "stddev" => Agg::Std,
            "distinct_count" | "count_distinct" | "nunique" => Agg::DistinctCount,
            "last" | "latest" | "last_value" => Agg::Last,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimePart {
    Hour,
    /// 0 = Monday ... 6 = Sunday.
    DayOfWeek,
}

/// Most buckets one window may span: keeps an online record small (DynamoDB items are at
/// most 400 KB) and request-time merging cheap.
pub const MAX_BUCKETS_PER_WINDOW: i64 = 1_000;

/// Default bucket width for a window: minutes up to 6 hours, hours up to 7 days, days beyond.
pub fn default_bucket_us(window_us: i64) -> i64 {
    if window_us <= 6 * 3600 * MICROS {
        60 * MICROS
    } else if window_us <= 7 * 86_400 * MICROS {
        3600 * MICROS
    } else {
        86_400 * MICROS
    }
}

impl FeatureView {
    /// Parses a feature file and checks it against the contracts of the datasets it reads
    /// (`contracts` maps dataset name to contract). `file` names the file in errors.
    pub fn from_toml(
        text: &str,
        file: &str,
        contracts: &BTreeMap<String, Contract>,
    ) -> Result<FeatureView, FeatureError> {
        let raw: ViewFile = toml::from_str(text).map_err(|e| FeatureError::Parse {
            file: file.into(),
            message: e.to_string(),
        })?;
        let invalid = |field: &str, message: String| FeatureError::Invalid {
            file: file.into(),
            field: field.into(),
            message,
        };
        if !is_identifier(&raw.view) {
            return Err(invalid(
                "view",
                format!(
                    "'{}' must be 1-64 characters of a-z, 0-9, '_' or '-'",
                    raw.view
                ),
            ));
        }
        let contract = contracts.get(&raw.dataset).ok_or_else(|| {
            invalid(
                "dataset",
                format!("no dataset '{}' in the project", raw.dataset),
            )
        })?;
        let mut check = Check {
            file,
            dataset: &raw.dataset,
            contract,
            contracts,
            request: (&raw.dataset, contract),
        };
        let entity = check.entity(raw.entity)?;
        let event_time = check.event_time(raw.event_time)?;
        let ttl_us = match &raw.ttl {
            Some(s) => Some(parse_duration(s).map_err(|m| invalid("ttl", m))? * MICROS),
            None => None,
        };
        let label = check.label(raw.label, raw.labels, &entity, event_time.as_deref())?;
        if let Some(LabelSource::Dataset { dataset, .. }) = &label
            && let Some((name, c)) = contracts.get_key_value(dataset)
        {
            check.request = (name.as_str(), c);
        }
        let split = check.split(raw.split, event_time.as_deref())?;
        let shape = Shape {
            has_entity: !entity.is_empty(),
            entity: &entity,
            has_event_time: event_time.is_some(),
        };
        let mut features: Vec<Feature> = Vec::new();
        let mut names = BTreeSet::new();
        let mut inputs = BTreeMap::new();
        for (i, f) in raw.features.into_iter().enumerate() {
            let field = format!("features[{i}] ({})", f.name);
            if !is_feature_name(&f.name) {
                return Err(invalid(
                    &field,
                    "a feature name is 1-64 characters of a-z, A-Z, 0-9 and '_'".into(),
                ));
            }
            if !names.insert(f.name.clone()) {
                return Err(invalid(
                    &field,
                    "a feature with this name is defined earlier".into(),
                ));
            }
            let feature = check.feature(&field, f, &shape, &features, &mut inputs)?;
            features.push(feature);
        }
        if !features.iter().any(|f| f.output) {
            return Err(invalid("features", "the view has no output feature".into()));
        }
        if let Some(l) = &label {
            let col = l.column();
            if matches!(l, LabelSource::Column { .. }) && inputs.contains_key(col) {
                return Err(invalid(
                    "label",
                    format!("the label column '{col}' is also a feature input"),
                ));
            }
        }
        Ok(FeatureView {
            name: raw.view,
            dataset: raw.dataset,
            description: raw.description,
            entity,
            event_time,
            ttl_us,
            label,
            split,
            features,
            inputs,
        })
    }

    /// Content hash of the parsed definition (formatting and comments do not change it).
    pub fn hash(&self) -> String {
        short_hash(&[&serde_json::to_vec(self).unwrap_or_default()])
    }

    /// True when the view has per-entity state (aggregates or time since previous).
    pub fn has_state(&self) -> bool {
        self.features.iter().any(|f| {
            matches!(
                f.kind,
                FeatureKind::Aggregate { .. } | FeatureKind::TimeSincePrevious
            )
        })
    }

    /// Datasets whose new snapshots should recompute this view.
    pub fn datasets(&self) -> Vec<&str> {
        let mut out = vec![self.dataset.as_str()];
        if let Some(LabelSource::Dataset { dataset, .. }) = &self.label
            && dataset != &self.dataset
        {
            out.push(dataset);
        }
        out
    }
}

fn is_feature_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What the features of a view may use: its entity key and whether it has an event time.
struct Shape<'a> {
    entity: &'a [String],
    has_entity: bool,
    has_event_time: bool,
}

/// Checks one feature file against the project's contracts; every error names the file and
/// the field. One method per part of the file and per kind of feature.
struct Check<'a> {
    file: &'a str,
    /// The view's dataset and its contract.
    dataset: &'a str,
    contract: &'a Contract,
    contracts: &'a BTreeMap<String, Contract>,
    /// The dataset request-time features read, and its contract: a `[labels]` dataset's
    /// rows are the label events (offline) that requests stand for (online), so its columns
    /// are the request's fields; otherwise the view's own dataset.
    request: (&'a str, &'a Contract),
}

impl Check<'_> {
    fn invalid(&self, field: &str, message: String) -> FeatureError {
        FeatureError::Invalid {
            file: self.file.into(),
            field: field.into(),
            message,
        }
    }

    /// The type of the view dataset's column `name`.
    fn column_type(&self, field: &str, name: &str) -> Result<ColumnType, FeatureError> {
        self.contract.column(name).map(|c| c.ty).ok_or_else(|| {
            self.invalid(
                field,
                format!("dataset '{}' has no column '{name}'", self.dataset),
            )
        })
    }

    /// The type of the request's field `name`: a column of the dataset request-time
    /// features read (see `request`).
    fn request_type(&self, field: &str, name: &str) -> Result<ColumnType, FeatureError> {
        let (dataset, contract) = self.request;
        contract.column(name).map(|c| c.ty).ok_or_else(|| {
            let labels = if dataset == self.dataset {
                String::new()
            } else {
                " (request-time features read the labels dataset, whose rows the requests stand for)"
                    .to_string()
            };
            self.invalid(
                field,
                format!("dataset '{dataset}' has no column '{name}'{labels}"),
            )
        })
    }

    /// The entity key: as given, or the contract's. `entity = ""` (or `[]`) says "no
    /// entity" even when the contract names one.
    fn entity(&self, raw: Option<OneOrMany>) -> Result<Vec<String>, FeatureError> {
        let entity: Vec<String> = match raw {
            Some(e) => e.into_vec().into_iter().filter(|c| !c.is_empty()).collect(),
            None => self.contract.entity_key.iter().cloned().collect(),
        };
        for e in &entity {
            let ty = self.column_type("entity", e)?;
            if !matches!(
                ty,
                ColumnType::String | ColumnType::Categorical | ColumnType::Integer
            ) {
                return Err(self.invalid(
                    "entity",
                    format!(
                        "column '{e}' is {}; an entity key must be string, categorical or integer",
                        ty.name()
                    ),
                ));
            }
        }
        Ok(entity)
    }

    /// The event-time column: as given (`""`: none), or the contract's.
    fn event_time(&self, raw: Option<String>) -> Result<Option<String>, FeatureError> {
        let event_time = match raw {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t),
            None => self.contract.event_time.clone(),
        };
        if let Some(t) = &event_time
            && self.column_type("event_time", t)? != ColumnType::Timestamp
        {
            return Err(self.invalid("event_time", format!("column '{t}' is not a timestamp")));
        }
        Ok(event_time)
    }

    /// Where labels come from: a column of the view's dataset, or a separate labels dataset.
    fn label(
        &self,
        label: Option<String>,
        labels: Option<LabelsFile>,
        entity: &[String],
        event_time: Option<&str>,
    ) -> Result<Option<LabelSource>, FeatureError> {
        match (label, labels) {
            (Some(_), Some(_)) => Err(self.invalid(
                "labels",
                "give either `label` (a column) or a [labels] table, not both".into(),
            )),
            (Some(column), None) => {
                self.column_type("label", &column)?;
                Ok(Some(LabelSource::Column { column }))
            }
            (None, Some(l)) => self.labels_dataset(l, entity, event_time).map(Some),
            (None, None) => Ok(None),
        }
    }

    /// A `[labels]` table: a separate dataset joined by entity and time.
    fn labels_dataset(
        &self,
        l: LabelsFile,
        entity: &[String],
        event_time: Option<&str>,
    ) -> Result<LabelSource, FeatureError> {
        let lc = self.contracts.get(&l.dataset).ok_or_else(|| {
            self.invalid(
                "labels.dataset",
                format!("no dataset '{}' in the project", l.dataset),
            )
        })?;
        let lentity = l
            .entity
            .map(OneOrMany::into_vec)
            .unwrap_or_else(|| entity.to_vec());
        if lentity.len() != entity.len() || entity.is_empty() {
            return Err(self.invalid(
                "labels.entity",
                "a labels dataset needs the same number of entity columns as the view".into(),
            ));
        }
        for e in &lentity {
            if lc.column(e).is_none() {
                return Err(self.invalid(
                    "labels.entity",
                    format!("dataset '{}' has no column '{e}'", l.dataset),
                ));
            }
        }
        let time = l.time.or_else(|| lc.event_time.clone()).ok_or_else(|| {
            self.invalid(
                "labels.time",
                "name the labels' timestamp column (the labels contract has no event_time)".into(),
            )
        })?;
        if lc.column(&time).map(|c| c.ty) != Some(ColumnType::Timestamp) {
            return Err(self.invalid(
                "labels.time",
                format!("'{time}' is not a timestamp column of '{}'", l.dataset),
            ));
        }
        if lc.column(&l.column).is_none() {
            return Err(self.invalid(
                "labels.column",
                format!("dataset '{}' has no column '{}'", l.dataset, l.column),
            ));
        }
        if event_time.is_none() {
            return Err(self.invalid(
                "labels",
                "a separate labels dataset needs a view with an event time".into(),
            ));
        }
        Ok(LabelSource::Dataset {
            dataset: l.dataset,
            entity: lentity,
            time,
            column: l.column,
        })
    }

    /// The train/validation/test split: by time when there is an event time, else random.
    fn split(&self, raw: SplitFile, event_time: Option<&str>) -> Result<Split, FeatureError> {
        let method = match raw.method.as_deref() {
            None if event_time.is_some() => SplitMethod::Time,
            None => SplitMethod::Random,
            Some("time") if event_time.is_none() => {
                return Err(self.invalid("split.method", "a time split needs an event time".into()));
            }
            Some("time") => SplitMethod::Time,
            Some("random") => SplitMethod::Random,
            Some(other) => {
                return Err(self.invalid(
                    "split.method",
                    format!("'{other}' is not one of: time, random"),
                ));
            }
        };
        let split = Split {
            method,
            validation: raw.validation.unwrap_or(0.15),
            test: raw.test.unwrap_or(0.15),
            seed: raw.seed.unwrap_or(42),
        };
        let fraction_ok = |x: f64| (0.0..1.0).contains(&x);
        if !(fraction_ok(split.validation)
            && fraction_ok(split.test)
            && split.validation + split.test < 1.0)
        {
            return Err(self.invalid(
                "split",
                "validation and test must be fractions that leave room for training".into(),
            ));
        }
        Ok(split)
    }

    /// One `[[features]]` entry: its kind (the one of aggregate, ratio, difference,
    /// time_part or column it gives), then the transforms every kind shares. Model inputs it
    /// reads from the request are added to `inputs`.
    fn feature(
        &self,
        field: &str,
        f: FeatureFile,
        shape: &Shape<'_>,
        earlier: &[Feature],
        inputs: &mut BTreeMap<String, ColumnType>,
    ) -> Result<Feature, FeatureError> {
        let bad = |message: String| self.invalid(field, message);
        let given = [
            f.aggregate.is_some(),
            f.ratio.is_some(),
            f.difference.is_some(),
            f.time_part.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            return Err(bad(
                "give at most one of aggregate, ratio, difference, time_part".into(),
            ));
        }
        let kind = if let Some(agg) = &f.aggregate {
            self.aggregate(field, &f, agg, shape)?
        } else if let Some([a, b]) = &f.ratio {
            FeatureKind::Ratio {
                a: self.earlier(field, earlier, a)?,
                b: self.earlier(field, earlier, b)?,
            }
        } else if let Some([a, b]) = &f.difference {
            FeatureKind::Difference {
                a: self.earlier(field, earlier, a)?,
                b: self.earlier(field, earlier, b)?,
            }
        } else if let Some(part) = &f.time_part {
            self.time_part(field, part, shape)?
        } else if let Some(c) = &f.column {
            self.column(field, &f, c, shape, inputs)?
        } else {
            return Err(bad(
                "give one of: column, aggregate, ratio, difference, time_part".into(),
            ));
        };
        if f.encoding.is_some() && !matches!(kind, FeatureKind::Encoded { .. }) {
            return Err(bad(
                "`encoding` applies only to a plain `column` feature".into()
            ));
        }
        if let Some([lo, hi]) = f.clip
            && lo.partial_cmp(&hi).is_none_or(|o| o.is_gt())
        {
            return Err(bad(format!("clip [{lo}, {hi}] is not a range")));
        }
        Ok(Feature {
            name: f.name,
            description: f.description,
            kind,
            clip: f.clip.map(|[a, b]| (a, b)),
            log1p: f.log1p,
            output: f.output.unwrap_or(true),
        })
    }

    fn needs_entity_time(
        &self,
        field: &str,
        shape: &Shape<'_>,
        what: &str,
    ) -> Result<(), FeatureError> {
        if shape.has_entity && shape.has_event_time {
            Ok(())
        } else {
            Err(self.invalid(field, format!("{what} needs an entity and an event time")))
        }
    }

    /// An aggregate over a window of the entity's earlier events (or the time since the
    /// previous one).
    fn aggregate(
        &self,
        field: &str,
        f: &FeatureFile,
        agg: &str,
        shape: &Shape<'_>,
    ) -> Result<FeatureKind, FeatureError> {
        let bad = |message: String| self.invalid(field, message);
        if agg == "time_since_previous" {
            self.needs_entity_time(field, shape, "time_since_previous")?;
            return Ok(FeatureKind::TimeSincePrevious);
        }
        self.needs_entity_time(field, shape, "an aggregate")?;
        let agg = Agg::parse(agg).ok_or_else(|| {
            bad(format!(
                "aggregate '{agg}' is not one of: count, sum, mean, min, max, std, \
                 distinct_count, last, time_since_previous"
            ))
        })?;
        if let Some(c) = &f.column {
            let ty = self.column_type(field, c)?;
            if agg == Agg::Last {
                if !matches!(
                    ty,
                    ColumnType::Integer | ColumnType::Float | ColumnType::Boolean
                ) {
                    return Err(bad(format!(
                        "last needs a numeric or boolean column; '{c}' is {} (encode it in \
                         the data as a number)",
                        ty.name()
                    )));
                }
            } else if agg != Agg::Count
                && agg != Agg::DistinctCount
                && !matches!(ty, ColumnType::Integer | ColumnType::Float)
            {
                return Err(bad(format!(
                    "{agg:?} needs a numeric column; '{c}' is {}",
                    ty.name()
                )));
            }
        } else if agg != Agg::Count {
            return Err(bad(format!("{agg:?} needs a `column`")));
        }
        if agg == Agg::Last && f.window.is_none() {
            if f.bucket.is_some() {
                return Err(bad("`bucket` needs a `window`".into()));
            }
            return Ok(FeatureKind::Aggregate {
                agg,
                column: f.column.clone(),
                window_us: UNBOUNDED_US,
                bucket_us: UNBOUNDED_US,
            });
        }
        let window = f
            .window
            .as_deref()
            .ok_or_else(|| bad("an aggregate needs a `window`".into()))?;
        let window_us = parse_duration(window).map_err(&bad)? * MICROS;
        let bucket_us = match &f.bucket {
            Some(b) => parse_duration(b).map_err(&bad)? * MICROS,
            None => default_bucket_us(window_us),
        };
        if window_us <= 0 || bucket_us <= 0 || window_us % bucket_us != 0 {
            return Err(bad(format!(
                "window {window} must be a positive multiple of its bucket width"
            )));
        }
        if window_us / bucket_us > MAX_BUCKETS_PER_WINDOW {
            return Err(bad(format!(
                "window {window} spans {} buckets; at most {MAX_BUCKETS_PER_WINDOW} \
                 (choose a wider `bucket`)",
                window_us / bucket_us
            )));
        }
        Ok(FeatureKind::Aggregate {
            agg,
            column: f.column.clone(),
            window_us,
            bucket_us,
        })
    }

    /// A numeric feature defined earlier in the file (the operand of a ratio or difference).
    fn earlier(
        &self,
        field: &str,
        earlier: &[Feature],
        name: &str,
    ) -> Result<String, FeatureError> {
        let known = earlier
            .iter()
            .any(|x| x.name == name && !matches!(x.kind, FeatureKind::Encoded { .. }));
        if known {
            Ok(name.to_string())
        } else {
            Err(self.invalid(
                field,
                format!("'{name}' is not a numeric feature defined earlier in this file"),
            ))
        }
    }

    /// A part of the event time (hour, day of week).
    fn time_part(
        &self,
        field: &str,
        part: &str,
        shape: &Shape<'_>,
    ) -> Result<FeatureKind, FeatureError> {
        if !shape.has_event_time {
            return Err(self.invalid(field, "time_part needs an event time".into()));
        }
        let part = match part {
            "hour" => TimePart::Hour,
            "day_of_week" => TimePart::DayOfWeek,
            other => {
                return Err(self.invalid(
                    field,
                    format!("time_part '{other}' is not one of: hour, day_of_week"),
                ));
            }
        };
        Ok(FeatureKind::TimePart { part })
    }

    /// A request column as it is (numeric), or encoded (textual: one-hot or index).
    fn column(
        &self,
        field: &str,
        f: &FeatureFile,
        c: &str,
        shape: &Shape<'_>,
        inputs: &mut BTreeMap<String, ColumnType>,
    ) -> Result<FeatureKind, FeatureError> {
        let bad = |message: String| self.invalid(field, message);
        let ty = self.request_type(field, c)?;
        if shape.entity.iter().any(|e| e == c) && f.encoding.is_none() {
            return Err(bad(format!(
                "'{c}' is the entity key; use it through aggregates, or give an encoding"
            )));
        }
        if ty.is_textual() || f.encoding.is_some() {
            if !ty.is_textual() && ty != ColumnType::Integer {
                return Err(bad(format!(
                    "an encoding needs a string, categorical or integer column; '{c}' is {}",
                    ty.name()
                )));
            }
            let encoding = match f.encoding.as_deref() {
                Some("one-hot") | Some("onehot") | Some("one_hot") => Encoding::OneHot,
                Some("index") | Some("ordinal") => Encoding::Index,
                Some(other) => {
                    return Err(bad(format!(
                        "encoding '{other}' is not one of: one-hot, index"
                    )));
                }
                None => {
                    return Err(bad(format!(
                        "'{c}' is {}; give `encoding = \"one-hot\"` or `\"index\"`",
                        ty.name()
                    )));
                }
            };
            if f.log1p || f.clip.is_some() {
                return Err(bad("an encoded feature takes no numeric transform".into()));
            }
            inputs.insert(c.to_string(), ty);
            return Ok(FeatureKind::Encoded {
                column: c.to_string(),
                encoding,
                max_categories: f.max_categories.unwrap_or(50).clamp(1, 1000),
                min_count: f.min_count.unwrap_or(1),
            });
        }
        if ty == ColumnType::Timestamp {
            return Err(bad(format!(
                "'{c}' is a timestamp; use time_part or time_since_previous"
            )));
        }
        inputs.insert(c.to_string(), ty);
        Ok(FeatureKind::Column {
            column: c.to_string(),
        })
    }
}
