//! Row-level validation: raw text columns in, typed valid rows plus quarantined rows out.
//!
//! Works chunk by chunk so a large file is checked in bounded memory; the state that spans
//! chunks (uniqueness sets, null counts, event-time range) lives in [`Validator`]. Every
//! broken rule of every row is recorded, not only the first.

use std::collections::{HashMap, HashSet};

use contracts::{ColumnSpec, ColumnType, Contract, TimestampParser, parse_bool};
use polars::prelude::*;
use serde::Serialize;

/// One broken rule in one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// 1-based data row number in the source (header and skipped lines not counted).
    pub row: u64,
    pub column: String,
    pub rule: &'static str,
    /// The offending value as read (cut to 200 bytes); `None` for a missing value.
    pub value: Option<String>,
    pub message: String,
}

/// The outcome of validating one chunk.
#[derive(Debug)]
pub struct ChunkOutcome {
    /// Valid rows, typed per the contract, in contract column order.
    pub valid: DataFrame,
    /// Rejected rows: every source column as text, plus `__row` and `__reasons`.
    pub rejected: DataFrame,
    pub violations: Vec<Violation>,
    pub rows_read: u64,
}

/// Source row numbers (1-based) of a chunk's rows.
#[derive(Debug, Clone, Copy)]
pub enum RowNumbers<'a> {
    /// Consecutive rows starting at this number.
    From(u64),
    /// One number per row (replayed rows are not consecutive).
    Given(&'a [u64]),
}

impl RowNumbers<'_> {
    pub fn get(&self, i: usize) -> u64 {
        match self {
            RowNumbers::From(first) => first + i as u64,
            RowNumbers::Given(rows) => rows.get(i).copied().unwrap_or(0),
        }
    }
}

/// Compiled per-column checks.
struct ColumnCheck {
    spec: ColumnSpec,
    /// Index into the source frame's columns; `None` when a nullable column is absent.
    source: Option<String>,
    pattern: Option<regex::Regex>,
    /// Lower-cased value -> canonical spelling (case-insensitive), or exact set.
    values: Option<HashMap<String, String>>,
    timestamp: Option<TimestampParser>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    seen: Option<HashSet<String>>,
    nulls: u64,
}

/// Validation state for one batch (one source object), shared by its chunks.
pub struct Validator {
    columns: Vec<ColumnCheck>,
    null_values: HashSet<String>,
    trim: bool,
    max_field_bytes: usize,
    primary_key: Vec<usize>,
    seen_keys: HashSet<String>,
    /// Keys already admitted in earlier versions of the dataset.
    prior_keys: HashSet<String>,
    unique_primary_key: bool,
    event_time: Option<usize>,
    pub event_time_min: Option<i64>,
    pub event_time_max: Option<i64>,
    pub valid_rows: u64,
}

impl Validator {
    /// `sources` maps each contract column to the source column it is read from (`None`:
    /// absent from the file).
    pub fn new(
        contract: &Contract,
        sources: &[Option<String>],
        prior_keys: HashSet<String>,
    ) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(contract.columns.len());
        for (spec, source) in contract.columns.iter().zip(sources) {
            let pattern = match &spec.pattern {
                // Anchored so the whole value must match.
                Some(p) => {
                    Some(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string())?)
                }
                None => None,
            };
            let values = spec.values.as_ref().map(|vals| {
                vals.iter()
                    .map(|v| {
                        (
                            if spec.case_insensitive {
                                v.to_lowercase()
                            } else {
                                v.clone()
                            },
                            v.clone(),
                        )
                    })
                    .collect()
            });
            let timestamp = if spec.ty == ColumnType::Timestamp {
                Some(spec.timestamp_parser()?)
            } else {
                None
            };
            let bound = |s: &Option<String>| -> Result<Option<i64>, String> {
                s.as_deref()
                    .map(|v| {
                        chrono::DateTime::parse_from_rfc3339(v)
                            .map(|d| d.timestamp_micros())
                            .map_err(|e| e.to_string())
                    })
                    .transpose()
            };
            columns.push(ColumnCheck {
                pattern,
                values,
                timestamp,
                not_before: bound(&spec.not_before)?,
                not_after: bound(&spec.not_after)?,
                seen: spec.unique.then(HashSet::new),
                source: source.clone(),
                spec: spec.clone(),
                nulls: 0,
            });
        }
        let index_of = |name: &str| contract.columns.iter().position(|c| c.name == name);
        Ok(Validator {
            primary_key: contract
                .primary_key
                .iter()
                .filter_map(|k| index_of(k))
                .collect(),
            event_time: contract.event_time.as_deref().and_then(index_of),
            columns,
            null_values: contract.csv.null_values.iter().cloned().collect(),
            trim: contract.csv.trim,
            max_field_bytes: contract.limits.max_field_bytes as usize,
            seen_keys: HashSet::new(),
            prior_keys,
            unique_primary_key: contract.rules.unique_primary_key,
            event_time_min: None,
            event_time_max: None,
            valid_rows: 0,
        })
    }

    /// Null count per contract column over the admitted rows so far.
    pub fn null_counts(&self) -> Vec<(String, u64)> {
        self.columns
            .iter()
            .map(|c| (c.spec.name.clone(), c.nulls))
            .collect()
    }

    /// Primary-key values admitted in this batch (for the next batch's duplicate check).
    pub fn admitted_keys(&self) -> &HashSet<String> {
        &self.seen_keys
    }

    /// Validates one chunk; `rows` gives the source row numbers of its rows.
    pub fn check_chunk(
        &mut self,
        raw: &DataFrame,
        rows: RowNumbers<'_>,
    ) -> PolarsResult<ChunkOutcome> {
        let height = raw.height();
        let row_of = |i: usize| rows.get(i);
        let mut bad = vec![false; height];
        let mut violations = Vec::new();
        let mut typed: Vec<Column> = Vec::with_capacity(self.columns.len());
        // Per-row parsed primary-key parts and event times, filled as columns are checked.
        let mut key_parts: Vec<Vec<Option<String>>> = vec![Vec::new(); self.primary_key.len()];
        let mut event_times: Vec<Option<i64>> = Vec::new();

        let text_columns: Vec<Option<StringChunked>> = self
            .columns
            .iter()
            .map(|c| match &c.source {
                Some(name) => raw
                    .column(name)
                    .and_then(|col| col.cast(&DataType::String))
                    .map(|col| col.str().cloned().ok()),
                None => Ok(None),
            })
            .collect::<PolarsResult<_>>()?;

        for (ci, check) in self.columns.iter_mut().enumerate() {
            let name = PlSmallStr::from(check.spec.name.as_str());
            let text = text_columns[ci].as_ref();
            let value_at = |i: usize| -> Option<&str> {
                let v = text.and_then(|t| t.get(i))?;
                Some(if self.trim { v.trim() } else { v })
            };
            let is_null = |v: Option<&str>| v.is_none_or(|s| self.null_values.contains(s));
            let mut report = |i: usize,
                              rule: &'static str,
                              value: Option<&str>,
                              message: String,
                              bad: &mut Vec<bool>| {
                bad[i] = true;
                violations.push(Violation {
                    row: row_of(i),
                    column: check.spec.name.clone(),
                    rule,
                    value: value.map(cut),
                    message,
                });
            };
            let pk_pos = self.primary_key.iter().position(|&k| k == ci);
            let must_have = !check.spec.nullable || pk_pos.is_some();

            // First pass per value: null, size, parse. Then the type's rules.
            macro_rules! each_value {
                (|$i:ident, $s:ident, $bad:ident| $body:block) => {{
                    let mut out = Vec::with_capacity(height);
                    for i in 0..height {
                        let v = value_at(i);
                        if is_null(v) {
                            if must_have {
                                report(i, "not_null", None, "value is required".into(), &mut bad);
                            }
                            out.push(None);
                            continue;
                        }
                        let s = v.unwrap_or_default();
                        if s.len() > self.max_field_bytes {
                            report(
                                i,
                                "max_field_bytes",
                                Some(s),
                                format!(
                                    "value is {} bytes; the limit is {}",
                                    s.len(),
                                    self.max_field_bytes
                                ),
                                &mut bad,
                            );
                            out.push(None);
                            continue;
                        }
                        let $i = i;
                        let $s = s;
                        let $bad = &mut bad;
                        out.push($body);
                    }
                    out
                }};
            }

            let column: Column = match check.spec.ty {
                ColumnType::Integer => {
                    let (min, max) = (check.spec.min, check.spec.max);
                    let vals: Vec<Option<i64>> = each_value!(|i, s, bad| {
                        match parse_int(s) {
                            None => {
                                report(i, "type", Some(s), "expected an integer".into(), bad);
                                None
                            }
                            Some(n) => {
                                check_range(n as f64, min, max, |m| {
                                    report(i, "range", Some(s), m, bad)
                                });
                                Some(n)
                            }
                        }
                    });
                    if let Some(p) = pk_pos {
                        key_parts[p] = vals.iter().map(|v| v.map(|n| n.to_string())).collect();
                    }
                    Series::new(name, vals).into()
                }
                ColumnType::Float => {
                    let (min, max) = (check.spec.min, check.spec.max);
                    let vals: Vec<Option<f64>> = each_value!(|i, s, bad| {
                        match s.parse::<f64>() {
                            Err(_) => {
                                report(i, "type", Some(s), "expected a number".into(), bad);
                                None
                            }
                            Ok(x) if !x.is_finite() => {
                                report(i, "finite", Some(s), "number must be finite".into(), bad);
                                None
                            }
                            Ok(x) => {
                                check_range(x, min, max, |m| report(i, "range", Some(s), m, bad));
                                Some(x)
                            }
                        }
                    });
                    if let Some(p) = pk_pos {
                        key_parts[p] = vals.iter().map(|v| v.map(|n| n.to_string())).collect();
                    }
                    Series::new(name, vals).into()
                }
                ColumnType::Boolean => {
                    let spelling = check.spec.boolean.clone().unwrap_or_default();
                    let vals: Vec<Option<bool>> = each_value!(|i, s, bad| {
                        let b = parse_bool(s, &spelling.true_values, &spelling.false_values);
                        if b.is_none() {
                            report(
                                i,
                                "type",
                                Some(s),
                                "expected a boolean (true/false, yes/no, 1/0, ...)".into(),
                                bad,
                            );
                        }
                        b
                    });
                    if let Some(p) = pk_pos {
                        key_parts[p] = vals.iter().map(|v| v.map(|n| n.to_string())).collect();
                    }
                    Series::new(name, vals).into()
                }
                ColumnType::Timestamp => {
                    let parser = check.timestamp.clone();
                    let (lo, hi) = (check.not_before, check.not_after);
                    let vals: Vec<Option<i64>> = each_value!(|i, s, bad| {
                        match parser.as_ref().and_then(|p| p.parse_micros(s)) {
                            None => {
                                report(i, "type", Some(s), "expected a timestamp (RFC 3339 / ISO 8601, or the column's format)".into(), bad);
                                None
                            }
                            Some(t) => {
                                if lo.is_some_and(|lo| t < lo) {
                                    report(
                                        i,
                                        "range",
                                        Some(s),
                                        format!(
                                            "before not_before {}",
                                            check.spec.not_before.as_deref().unwrap_or("")
                                        ),
                                        bad,
                                    );
                                }
                                if hi.is_some_and(|hi| t > hi) {
                                    report(
                                        i,
                                        "range",
                                        Some(s),
                                        format!(
                                            "after not_after {}",
                                            check.spec.not_after.as_deref().unwrap_or("")
                                        ),
                                        bad,
                                    );
                                }
                                Some(t)
                            }
                        }
                    });
                    if let Some(p) = pk_pos {
                        key_parts[p] = vals.iter().map(|v| v.map(|n| n.to_string())).collect();
                    }
                    if self.event_time == Some(ci) {
                        event_times = vals.clone();
                    }
                    Int64Chunked::new(name, vals)
                        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                        .into_column()
                }
                ColumnType::String | ColumnType::Categorical => {
                    let spec = &check.spec;
                    let pattern = check.pattern.as_ref();
                    let values = check.values.as_ref();
                    let vals: Vec<Option<&str>> = each_value!(|i, s, bad| {
                        let chars = spec
                            .min_length
                            .or(spec.max_length)
                            .map(|_| s.chars().count());
                        if let (Some(n), Some(lo)) = (chars, spec.min_length)
                            && n < lo
                        {
                            report(
                                i,
                                "length",
                                Some(s),
                                format!("{n} characters; at least {lo} required"),
                                bad,
                            );
                        }
                        if let (Some(n), Some(hi)) = (chars, spec.max_length)
                            && n > hi
                        {
                            report(
                                i,
                                "length",
                                Some(s),
                                format!("{n} characters; at most {hi} allowed"),
                                bad,
                            );
                        }
                        if let Some(p) = pattern
                            && !p.is_match(s)
                        {
                            report(
                                i,
                                "pattern",
                                Some(s),
                                format!(
                                    "does not match pattern {}",
                                    spec.pattern.as_deref().unwrap_or("")
                                ),
                                bad,
                            );
                        }
                        match values {
                            Some(allowed) => {
                                let key = if spec.case_insensitive {
                                    s.to_lowercase()
                                } else {
                                    s.to_string()
                                };
                                match allowed.get(&key) {
                                    Some(canonical) => Some(canonical.as_str()),
                                    None => {
                                        report(
                                            i,
                                            "allowed_values",
                                            Some(s),
                                            format!(
                                                "not one of the {} allowed values",
                                                allowed.len()
                                            ),
                                            bad,
                                        );
                                        None
                                    }
                                }
                            }
                            None => Some(s),
                        }
                    });
                    if let Some(p) = pk_pos {
                        key_parts[p] = vals.iter().map(|v| v.map(str::to_string)).collect();
                    }
                    Series::new(name, vals).into()
                }
            };
            typed.push(column);
        }

        // Column-level uniqueness and primary-key uniqueness, in row order so the first
        // occurrence is admitted and later ones are quarantined.
        for (ci, check) in self.columns.iter_mut().enumerate() {
            let Some(seen) = check.seen.as_mut() else {
                continue;
            };
            let col = typed[ci].cast(&DataType::String)?;
            let ca = col.str()?;
            for (i, is_bad) in bad.iter_mut().enumerate() {
                if *is_bad {
                    continue;
                }
                if let Some(v) = ca.get(i)
                    && !seen.insert(v.to_string())
                {
                    *is_bad = true;
                    violations.push(Violation {
                        row: row_of(i),
                        column: check.spec.name.clone(),
                        rule: "unique",
                        value: Some(cut(v)),
                        message: "value repeats an earlier row".into(),
                    });
                }
            }
        }
        if !self.primary_key.is_empty() && self.unique_primary_key {
            let pk_name = self
                .primary_key
                .iter()
                .map(|&k| self.columns[k].spec.name.as_str())
                .collect::<Vec<_>>()
                .join(",");
            for (i, is_bad) in bad.iter_mut().enumerate() {
                if *is_bad {
                    continue;
                }
                let parts: Option<Vec<&str>> = key_parts
                    .iter()
                    .map(|p| p.get(i).and_then(|v| v.as_deref()))
                    .collect();
                let Some(parts) = parts else { continue };
                let key = parts.join("\u{1f}");
                let duplicate =
                    self.prior_keys.contains(&key) || !self.seen_keys.insert(key.clone());
                if duplicate {
                    *is_bad = true;
                    let earlier = if self.prior_keys.contains(&key) {
                        "an earlier version"
                    } else {
                        "an earlier row"
                    };
                    violations.push(Violation {
                        row: row_of(i),
                        column: pk_name.clone(),
                        rule: "unique_key",
                        value: Some(cut(&parts.join(","))),
                        message: format!("primary key repeats {earlier}"),
                    });
                }
            }
        }

        let keep = BooleanChunked::from_iter_values(PlSmallStr::EMPTY, bad.iter().map(|b| !b));
        let valid = DataFrame::new(height, typed)?.filter(&keep)?;
        for (ci, check) in self.columns.iter_mut().enumerate() {
            check.nulls += valid.columns()[ci].null_count() as u64;
        }
        for (i, t) in event_times.iter().enumerate() {
            if let (false, Some(t)) = (bad[i], t) {
                self.event_time_min = Some(self.event_time_min.map_or(*t, |m| m.min(*t)));
                self.event_time_max = Some(self.event_time_max.map_or(*t, |m| m.max(*t)));
            }
        }
        self.valid_rows += valid.height() as u64;
        let rejected = rejected_rows(raw, &bad, &row_of, &violations)?;
        Ok(ChunkOutcome {
            valid,
            rejected,
            violations,
            rows_read: height as u64,
        })
    }
}

/// The rejected rows with every source column as text, their row number and reasons.
fn rejected_rows(
    raw: &DataFrame,
    bad: &[bool],
    row_of: &dyn Fn(usize) -> u64,
    violations: &[Violation],
) -> PolarsResult<DataFrame> {
    let idx: Vec<IdxSize> = bad
        .iter()
        .enumerate()
        .filter(|(_, b)| **b)
        .map(|(i, _)| i as IdxSize)
        .collect();
    let take = IdxCa::from_vec(PlSmallStr::EMPTY, idx.clone());
    let mut columns: Vec<Column> = Vec::with_capacity(raw.width() + 2);
    for col in raw.columns() {
        columns.push(col.cast(&DataType::String)?.take(&take)?);
    }
    let mut reasons: HashMap<u64, Vec<&Violation>> = HashMap::new();
    for v in violations {
        reasons.entry(v.row).or_default().push(v);
    }
    let rows: Vec<u64> = idx.iter().map(|&i| row_of(i as usize)).collect();
    let reason_text: Vec<String> = rows
        .iter()
        .map(|r| {
            let list: Vec<_> = reasons.get(r).map(|v| v.iter().map(|x| serde_json::json!({"column": x.column, "rule": x.rule, "message": x.message})).collect()).unwrap_or_default();
            serde_json::Value::Array(list).to_string()
        })
        .collect();
    columns.push(Series::new("__row".into(), rows).into());
    columns.push(Series::new("__reasons".into(), reason_text).into());
    DataFrame::new(idx.len(), columns)
}

fn check_range(x: f64, min: Option<f64>, max: Option<f64>, mut fail: impl FnMut(String)) {
    if let Some(lo) = min
        && x < lo
    {
        fail(format!("{x} is below the minimum {lo}"));
    }
    if let Some(hi) = max
        && x > hi
    {
        fail(format!("{x} is above the maximum {hi}"));
    }
}

/// Integers as files write them: `42`, `-7`, `+3`, and `12.0` (a float with no fraction, as
/// spreadsheet exports produce).
fn parse_int(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let x: f64 = s.parse().ok()?;
    (x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64)
}

/// Cuts a reported value to at most 200 bytes on a character boundary.
fn cut(s: &str) -> String {
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONTRACT: &str = r#"
dataset = "t"
primary_key = ["id"]
[[columns]]
name = "id"
type = "integer"
nullable = false
min = 0
max = 50
[[columns]]
name = "colour"
type = "categorical"
values = ["red", "green"]
case_insensitive = true
"#;

    fn text_frame(ids: &[Option<String>], colours: &[Option<String>]) -> DataFrame {
        let a: Column = Series::new("id".into(), ids.to_vec()).into();
        let b: Column = Series::new("colour".into(), colours.to_vec()).into();
        DataFrame::new(ids.len(), vec![a, b]).unwrap()
    }

    proptest! {
        /// Every row is admitted or quarantined, never both or neither, and exactly the rows a
        /// brute-force reading of the rules rejects are rejected.
        #[test]
        fn rows_are_admitted_exactly_when_every_rule_holds(
            ids in prop::collection::vec(prop::option::of("(-?[0-9]{1,3}|x|NA| 7 )"), 1..60),
            colour_pick in prop::collection::vec(0usize..6, 60),
            split in 0usize..60,
        ) {
            const COLOURS: [&str; 6] = ["red", "GREEN", "blue", "", "Red ", "purple"];
            let colours: Vec<Option<String>> = (0..ids.len()).map(|i| Some(COLOURS[colour_pick[i]].to_string())).collect();
            let contract = Contract::from_toml(CONTRACT, "t.toml").unwrap();
            let sources = vec![Some("id".to_string()), Some("colour".to_string())];
            let mut v = Validator::new(&contract, &sources, HashSet::new()).unwrap();
            // Two chunks, to exercise state that spans chunks.
            let cut = split.min(ids.len());
            let first = v.check_chunk(&text_frame(&ids[..cut], &colours[..cut]), RowNumbers::From(1)).unwrap();
            let second = v.check_chunk(&text_frame(&ids[cut..], &colours[cut..]), RowNumbers::From(1 + cut as u64)).unwrap();

            let mut seen = HashSet::new();
            let mut expected_rejected = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let id = id.as_deref().map(str::trim).filter(|s| !s.is_empty() && *s != "NA");
                let parsed = id.and_then(|s| s.parse::<i64>().ok());
                let colour = colours[i].as_deref().map(str::trim).unwrap_or("");
                let colour_ok = colour.is_empty() || ["red", "green"].contains(&colour.to_lowercase().as_str());
                let id_ok = parsed.is_some_and(|n| (0..=50).contains(&n));
                let ok = id_ok && colour_ok && parsed.is_some_and(|n| !seen.contains(&n));
                if ok {
                    seen.insert(parsed.unwrap_or_default());
                } else {
                    expected_rejected.push(i as u64 + 1);
                }
            }
            let mut rejected: Vec<u64> = Vec::new();
            for out in [&first, &second] {
                rejected.extend(out.rejected.column("__row").unwrap().u64().unwrap().into_no_null_iter());
            }
            prop_assert_eq!(&rejected, &expected_rejected);
            prop_assert_eq!(first.valid.height() + second.valid.height() + rejected.len(), ids.len());
            prop_assert_eq!(v.valid_rows as usize, ids.len() - rejected.len());
            let mut violation_rows: Vec<u64> = first.violations.iter().chain(&second.violations).map(|x| x.row).collect();
            violation_rows.sort_unstable();
            violation_rows.dedup();
            prop_assert_eq!(violation_rows, expected_rejected);
        }
    }
}
