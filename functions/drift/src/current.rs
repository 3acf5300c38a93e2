//! The current side of a drift check: one window of prediction logs (JSON lines written by
//! every edge runtime, `inference-logs/<model>/date=/hour=/<at_us>-<random>.jsonl`), turned back
//! into per-feature values and categories with the feature view's spec.

use std::collections::BTreeMap;

use features::ViewSpec;
use features::definition::{Encoding, FeatureKind};
use records::models::Arm;
use records::serving::PredictionLine;

/// Bucket of categories outside the training vocabulary (and of nulls).
pub const UNKNOWN: &str = "__unknown__";

/// How an encoded feature sits in the model input.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded {
    /// One column per category (`<feature>__<category>`) plus `<feature>__unknown`.
    OneHot(Vec<(String, String)>),
    /// One column holding the category's position in the vocabulary (its length: unknown).
    Index {
        column: String,
        vocabulary: Vec<String>,
    },
}

/// Which model inputs are numeric and which encode a category.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    pub numeric: Vec<String>,
    pub encoded: BTreeMap<String, Encoded>,
}

impl Layout {
    /// The layout of every view a model reads, in view order.
    pub fn from_set(set: &features::FeatureSet) -> Layout {
        let mut layout = Layout::default();
        for spec in &set.views {
            layout.add_view(spec);
        }
        layout
    }

    fn add_view(&mut self, spec: &ViewSpec) {
        let layout = self;
        for f in spec.view.features.iter().filter(|f| f.output) {
            match &f.kind {
                FeatureKind::Encoded { encoding, .. } => {
                    let vocab = spec.vocabulary(&f.name).to_vec();
                    let e = match encoding {
                        Encoding::OneHot => {
                            let mut cols: Vec<(String, String)> = vocab
                                .iter()
                                .map(|c| (features::spec::one_hot_name(&f.name, c), c.clone()))
                                .collect();
                            cols.push((format!("{}__unknown", f.name), UNKNOWN.to_string()));
                            Encoded::OneHot(cols)
                        }
                        Encoding::Index => Encoded::Index {
                            column: f.name.clone(),
                            vocabulary: vocab,
                        },
                    };
                    layout.encoded.insert(f.name.clone(), e);
                }
                _ => layout.numeric.push(f.name.clone()),
            }
        }
    }

    /// The reference's raw category counts of `feature` in the model's buckets: the
    /// vocabulary, everything else (nulls included) under [`UNKNOWN`].
    pub fn bucket_reference(
        &self,
        feature: &str,
        raw: &BTreeMap<String, f64>,
    ) -> BTreeMap<String, f64> {
        let vocab: Vec<&str> = match self.encoded.get(feature) {
            Some(Encoded::OneHot(cols)) => cols
                .iter()
                .map(|(_, c)| c.as_str())
                .filter(|c| *c != UNKNOWN)
                .collect(),
            Some(Encoded::Index { vocabulary, .. }) => {
                vocabulary.iter().map(String::as_str).collect()
            }
            None => Vec::new(),
        };
        let mut out: BTreeMap<String, f64> = vocab.iter().map(|c| (c.to_string(), 0.0)).collect();
        out.insert(UNKNOWN.to_string(), 0.0);
        for (c, n) in raw {
            let bucket = if vocab.contains(&c.as_str()) {
                c.as_str()
            } else {
                UNKNOWN
            };
            *out.entry(bucket.to_string()).or_default() += n;
        }
        out
    }
}

/// The current window's values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    pub start_us: i64,
    pub end_us: i64,
    /// Logged records (rows) in the window.
    pub rows: usize,
    /// Finite values per numeric feature, as f32: the model boundary is f32, so logged
    /// inputs carry no more precision, and a window of millions of rows takes half the memory.
    pub numeric: BTreeMap<String, Vec<f32>>,
    /// Missing (null or non-finite) values per numeric feature.
    pub nulls: BTreeMap<String, usize>,
    /// Category counts per encoded feature, in the model's buckets.
    pub categories: BTreeMap<String, BTreeMap<String, f64>>,
    /// The model's scores (probability of the positive class, or the value).
    pub scores: Vec<f64>,
    /// Lines that were not prediction logs of this model, skipped.
    pub skipped_lines: usize,
    /// Log objects read.
    pub objects: usize,
    /// The window's predictions that have delayed labels (when labels were given).
    pub joined: crate::labels::Joined,
    /// What the challenger scored under a traffic policy (canary or shadow lines): kept
    /// apart, so the window's drift and the champion's live metrics are the champion's.
    pub challenger: ChallengerWindow,
}

/// The challenger's lines of a window (arms `challenger` and `shadow`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChallengerWindow {
    /// The challenger version (the newest seen, should a window span two).
    pub version: Option<u64>,
    pub rows: usize,
    pub joined: crate::labels::Joined,
}

impl Window {
    pub fn new(start_us: i64, end_us: i64) -> Window {
        Window {
            start_us,
            end_us,
            ..Window::default()
        }
    }

    /// Adds the records of one log object (JSON lines) whose time falls in the window.
    pub fn add_lines(&mut self, text: &str, layout: &Layout) {
        self.add_lines_joined(text, layout, None);
    }

    /// [`Window::add_lines`], also joining each record to its label by (request id, index).
    pub fn add_lines_joined(
        &mut self,
        text: &str,
        layout: &Layout,
        labels: Option<&crate::labels::Labels>,
    ) {
        self.objects += 1;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            // A line that is not a prediction record (no time or no features) is skipped.
            let Ok(line) = serde_json::from_str::<PredictionLine>(line) else {
                self.skipped_lines += 1;
                continue;
            };
            if line.at_us < self.start_us || line.at_us >= self.end_us {
                continue;
            }
            if matches!(line.arm, Some(Arm::Challenger | Arm::Shadow)) {
                let c = &mut self.challenger;
                c.rows += 1;
                c.version = c.version.max(Some(line.version));
                if let (Some(s), Some(labels)) = (line.score, labels)
                    && let Some(truth) = labels.rows.get(&(line.request_id.clone(), line.index))
                {
                    c.joined.rows.push((s, line.label.clone(), truth.clone()));
                }
                continue;
            }
            self.rows += 1;
            let features = &line.features;
            if let Some(s) = line.score {
                self.scores.push(s);
                if let Some(labels) = labels
                    && let Some(truth) = labels.rows.get(&(line.request_id.clone(), line.index))
                {
                    self.joined
                        .rows
                        .push((s, line.label.clone(), truth.clone()));
                }
            }
            for name in &layout.numeric {
                match features.get(name).copied().flatten() {
                    Some(x) if x.is_finite() && (x as f32).is_finite() => {
                        self.numeric.entry(name.clone()).or_default().push(x as f32)
                    }
                    _ => *self.nulls.entry(name.clone()).or_default() += 1,
                }
            }
            for (name, e) in &layout.encoded {
                let category = match e {
                    Encoded::OneHot(cols) => cols
                        .iter()
                        .find(|(c, _)| features.get(c).copied().flatten() == Some(1.0))
                        .map_or(UNKNOWN, |(_, cat)| cat.as_str()),
                    Encoded::Index { column, vocabulary } => features
                        .get(column)
                        .copied()
                        .flatten()
                        .filter(|x| x.fract() == 0.0 && *x >= 0.0)
                        .and_then(|x| vocabulary.get(x as usize))
                        .map_or(UNKNOWN, String::as_str),
                };
                *self
                    .categories
                    .entry(name.clone())
                    .or_default()
                    .entry(category.to_string())
                    .or_default() += 1.0;
            }
        }
    }
}
