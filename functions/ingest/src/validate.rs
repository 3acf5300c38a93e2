//! Row-level validation: raw text columns in, typed valid rows plus quarantined rows out.
//!
//! Works chunk by chunk so a large file is checked in bounded memory; the state that spans
//! chunks (uniqueness sets, null counts, event-time range) lives in [`Validator`]. Every
//! broken rule of every row is recorded, not only the first.
//!
//! Columns are checked in parallel (they are independent until uniqueness), and the hot
//! loop allocates only for values it reports: uniqueness and primary keys are tracked as
//! 128-bit hashes of the typed values rather than as strings.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use contracts::{ColumnSpec, ColumnType, Contract, TimestampParser, parse_bool};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

/// A 128-bit hash of a typed value or of a whole primary key. Two independent 64-bit SipHash
/// runs make accidental collisions negligible (about 1e-20 for a billion keys), and a
/// collision could only quarantine a row, never admit one twice.
pub type KeyHash = u128;

fn hash128(tag: u8, bytes: &[u8]) -> KeyHash {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    a.write_u8(tag);
    a.write(bytes);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    b.write_u8(!tag);
    b.write(bytes);
    b.write_u8(tag);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

fn hash_i64(tag: u8, v: i64) -> KeyHash {
    hash128(tag, &v.to_le_bytes())
}

fn hash_f64(v: f64) -> KeyHash {
    // -0.0 and 0.0 are the same key.
    hash128(2, &(v + 0.0).to_bits().to_le_bytes())
}

fn hash_str(v: &str) -> KeyHash {
    hash128(5, v.as_bytes())
}

fn combine(parts: &[KeyHash]) -> KeyHash {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.to_le_bytes()).collect();
    hash128(9, &bytes)
}

/// Per-row hashes of a typed (curated) column, the same as validation computes, so keys of
/// earlier versions can be compared with new rows.
pub fn hash_typed_column(column: &Column, ty: ColumnType) -> PolarsResult<Vec<Option<KeyHash>>> {
    Ok(match ty {
        ColumnType::Integer => column
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.map(|n| hash_i64(1, n)))
            .collect(),
        ColumnType::Float => column
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.map(hash_f64))
            .collect(),
        ColumnType::Boolean => column
            .bool()?
            .iter()
            .map(|v| v.map(|b| hash128(3, &[b as u8])))
            .collect(),
        ColumnType::Timestamp => column
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.map(|n| hash_i64(4, n)))
            .collect(),
        ColumnType::String | ColumnType::Categorical => {
            column.str()?.iter().map(|v| v.map(hash_str)).collect()
        }
    })
}

/// Combines per-column hashes into one key per row; `None` where any part is null.
pub fn row_keys(parts: &[Vec<Option<KeyHash>>], height: usize) -> Vec<Option<KeyHash>> {
    let mut buf = Vec::with_capacity(parts.len());
    (0..height)
        .map(|i| {
            buf.clear();
            for p in parts {
                buf.push(p.get(i).copied().flatten()?);
            }
            Some(if buf.len() == 1 {
                buf[0]
            } else {
                combine(&buf)
            })
        })
        .collect()
}

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
    /// The source column; `None` when a nullable column is absent from the file.
    source: Option<String>,
    pattern: Option<regex::Regex>,
    /// Allowed values: exact spelling -> index into `spec.values`, and (case-insensitive
    /// columns) lower-cased spelling -> index.
    exact: Option<HashMap<String, usize>>,
    folded: Option<HashMap<String, usize>>,
    timestamp: Option<TimestampParser>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    /// Values seen so far, for `unique` columns.
    seen: Option<HashSet<KeyHash>>,
    nulls: u64,
    /// Required: not nullable, or part of the primary key.
    required: bool,
    /// Per-value hashes are needed (unique column or primary-key part).
    wants_hashes: bool,
}

/// Reading settings shared by every column.
struct Reading {
    null_values: NullSpellings,
    trim: bool,
    max_field_bytes: usize,
}

/// The contract's spellings of "missing", bucketed by length: every cell is tested, and most
/// cells are longer than any spelling or differ in their first bytes, so this costs a length
/// check and a few short comparisons instead of hashing every value.
struct NullSpellings {
    by_len: Vec<Vec<String>>,
}

impl NullSpellings {
    fn new(spellings: &[String]) -> Self {
        let longest = spellings.iter().map(String::len).max().unwrap_or(0);
        let mut by_len = vec![Vec::new(); longest + 1];
        for s in spellings {
            by_len[s.len()].push(s.clone());
        }
        NullSpellings { by_len }
    }

    fn contains(&self, v: &str) -> bool {
        self.by_len
            .get(v.len())
            .is_some_and(|bucket| bucket.iter().any(|s| s == v))
    }
}

/// What checking one column of one chunk produced.
struct ColumnOutput {
    column: Column,
    violations: Vec<Violation>,
    /// Chunk-relative indices of rows that broke a rule in this column.
    bad: Vec<usize>,
    hashes: Option<Vec<Option<KeyHash>>>,
    times: Option<Vec<Option<i64>>>,
}

/// Validation state for one batch (one source object), shared by its chunks.
pub struct Validator {
    columns: Vec<ColumnCheck>,
    reading: Reading,
    primary_key: Vec<usize>,
    seen_keys: HashSet<KeyHash>,
    /// Keys already admitted in earlier versions of the dataset.
    prior_keys: HashSet<KeyHash>,
    unique_primary_key: bool,
    event_time: Option<usize>,
    pub event_time_min: Option<i64>,
    pub event_time_max: Option<i64>,
    pub valid_rows: u64,
}

impl Validator {
    /// `sources` maps each contract column to the source column it is read from (`None`:
    /// absent from the file); `prior_keys` are primary keys admitted by earlier versions.
    pub fn new(
        contract: &Contract,
        sources: &[Option<String>],
        prior_keys: HashSet<KeyHash>,
    ) -> Result<Self, String> {
        let index_of = |name: &str| contract.columns.iter().position(|c| c.name == name);
        let primary_key: Vec<usize> = contract
            .primary_key
            .iter()
            .filter_map(|k| index_of(k))
            .collect();
        let mut columns = Vec::with_capacity(contract.columns.len());
        for (ci, (spec, source)) in contract.columns.iter().zip(sources).enumerate() {
            let pattern = match &spec.pattern {
                // Anchored so the whole value must match.
                Some(p) => {
                    Some(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string())?)
                }
                None => None,
            };
            let exact = spec.values.as_ref().map(|vals| {
                vals.iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i))
                    .collect()
            });
            let folded = spec
                .values
                .as_ref()
                .filter(|_| spec.case_insensitive)
                .map(|vals| {
                    vals.iter()
                        .enumerate()
                        .map(|(i, v)| (v.to_lowercase(), i))
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
            let in_key = primary_key.contains(&ci);
            columns.push(ColumnCheck {
                pattern,
                exact,
                folded,
                timestamp,
                not_before: bound(&spec.not_before)?,
                not_after: bound(&spec.not_after)?,
                seen: spec.unique.then(HashSet::new),
                source: source.clone(),
                required: !spec.nullable || in_key,
                wants_hashes: spec.unique || in_key,
                spec: spec.clone(),
                nulls: 0,
            });
        }
        Ok(Validator {
            primary_key,
            event_time: contract.event_time.as_deref().and_then(index_of),
            columns,
            reading: Reading {
                null_values: NullSpellings::new(&contract.csv.null_values),
                trim: contract.csv.trim,
                max_field_bytes: contract.limits.max_field_bytes as usize,
            },
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

    /// Validates one chunk; `rows` gives the source row numbers of its rows.
    pub fn check_chunk(
        &mut self,
        raw: &DataFrame,
        rows: RowNumbers<'_>,
    ) -> PolarsResult<ChunkOutcome> {
        let height = raw.height();
        let text_columns: Vec<Option<StringChunked>> = self
            .columns
            .iter()
            .map(|c| match &c.source {
                Some(name) => raw
                    .column(name)
                    .and_then(|col| col.cast(&DataType::String))
                    .and_then(|col| col.str().cloned())
                    .map(Some),
                None => Ok(None),
            })
            .collect::<PolarsResult<_>>()?;

        let event_time = self.event_time;
        let reading = &self.reading;
        let outputs: Vec<ColumnOutput> = self
            .columns
            .par_iter()
            .zip(text_columns.par_iter())
            .enumerate()
            .map(|(ci, (check, text))| {
                check.check(text.as_ref(), height, reading, rows, event_time == Some(ci))
            })
            .collect();

        let mut bad = vec![false; height];
        let mut violations = Vec::new();
        let mut typed = Vec::with_capacity(outputs.len());
        let mut hashes: Vec<Option<Vec<Option<KeyHash>>>> = Vec::with_capacity(outputs.len());
        let mut event_times = None;
        for out in outputs {
            for i in out.bad {
                bad[i] = true;
            }
            violations.extend(out.violations);
            typed.push(out.column);
            hashes.push(out.hashes);
            if out.times.is_some() {
                event_times = out.times;
            }
        }

        // Column-level uniqueness, then the primary key, over rows that passed everything
        // else, in row order: the first occurrence is admitted, later ones quarantined.
        for (ci, check) in self.columns.iter_mut().enumerate() {
            let (Some(seen), Some(col_hashes)) = (check.seen.as_mut(), hashes[ci].as_ref()) else {
                continue;
            };
            for (i, is_bad) in bad.iter_mut().enumerate() {
                if *is_bad {
                    continue;
                }
                if let Some(h) = col_hashes[i]
                    && !seen.insert(h)
                {
                    *is_bad = true;
                    violations.push(Violation {
                        row: rows.get(i),
                        column: check.spec.name.clone(),
                        rule: "unique",
                        value: typed[ci].get(i).ok().map(|v| cut(&any_to_string(&v))),
                        message: "value repeats an earlier row".into(),
                    });
                }
            }
        }
        if !self.primary_key.is_empty() && self.unique_primary_key {
            let parts: Vec<Vec<Option<KeyHash>>> = self
                .primary_key
                .iter()
                .map(|&k| hashes[k].clone().unwrap_or_default())
                .collect();
            let keys = row_keys(&parts, height);
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
                let Some(key) = keys[i] else { continue };
                let earlier = if self.prior_keys.contains(&key) {
                    Some("an earlier version")
                } else if !self.seen_keys.insert(key) {
                    Some("an earlier row")
                } else {
                    None
                };
                if let Some(earlier) = earlier {
                    *is_bad = true;
                    let value = self
                        .primary_key
                        .iter()
                        .map(|&k| {
                            typed[k]
                                .get(i)
                                .map(|v| any_to_string(&v))
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    violations.push(Violation {
                        row: rows.get(i),
                        column: pk_name.clone(),
                        rule: "unique_key",
                        value: Some(cut(&value)),
                        message: format!("primary key repeats {earlier}"),
                    });
                }
            }
        }

        let all = DataFrame::new(height, typed)?;
        // Filtering copies every column; most chunks have no bad row at all.
        let valid = if bad.iter().any(|b| *b) {
            let keep = BooleanChunked::from_iter_values(PlSmallStr::EMPTY, bad.iter().map(|b| !b));
            all.filter(&keep)?
        } else {
            all
        };
        for (ci, check) in self.columns.iter_mut().enumerate() {
            check.nulls += valid.columns()[ci].null_count() as u64;
        }
        if let Some(times) = event_times {
            for (t, is_bad) in times.iter().zip(&bad) {
                if let (false, Some(t)) = (is_bad, t) {
                    self.event_time_min = Some(self.event_time_min.map_or(*t, |m| m.min(*t)));
                    self.event_time_max = Some(self.event_time_max.map_or(*t, |m| m.max(*t)));
                }
            }
        }
        self.valid_rows += valid.height() as u64;
        let row_of = |i: usize| rows.get(i);
        let rejected = rejected_rows(raw, &bad, &row_of, &violations)?;
        Ok(ChunkOutcome {
            valid,
            rejected,
            violations,
            rows_read: height as u64,
        })
    }
}

/// Records one broken rule: row index in the chunk, rule, value, message.
type Report<'r> = dyn FnMut(usize, &'static str, Option<&str>, String) + 'r;

/// One cell before parsing.
enum Cell<'t> {
    Null,
    TooLong(&'t str),
    Text(&'t str),
}

impl ColumnCheck {
    fn cell<'t>(&self, value: Option<&'t str>, reading: &Reading) -> Cell<'t> {
        let Some(v) = value else {
            return Cell::Null;
        };
        let v = if reading.trim { v.trim() } else { v };
        if reading.null_values.contains(v) {
            Cell::Null
        } else if v.len() > reading.max_field_bytes {
            Cell::TooLong(v)
        } else {
            Cell::Text(v)
        }
    }

    /// Parses and checks one column of a chunk. Pure with respect to the validator's state,
    /// so columns run in parallel.
    fn check(
        &self,
        text: Option<&StringChunked>,
        height: usize,
        reading: &Reading,
        rows: RowNumbers<'_>,
        want_times: bool,
    ) -> ColumnOutput {
        let name = PlSmallStr::from(self.spec.name.as_str());
        let mut violations = Vec::new();
        let mut bad = Vec::new();
        let mut report = |i: usize, rule: &'static str, value: Option<&str>, message: String| {
            if bad.last() != Some(&i) {
                bad.push(i);
            }
            violations.push(Violation {
                row: rows.get(i),
                column: self.spec.name.clone(),
                rule,
                value: value.map(cut),
                message,
            });
        };
        // Runs `parse` on every present value after the null and size checks.
        macro_rules! each {
            ($parse:expr) => {{
                let mut out = Vec::with_capacity(height);
                // Sequential iteration: indexing a chunked array per row costs a chunk lookup.
                let values: Box<dyn Iterator<Item = Option<&str>>> = match text {
                    Some(t) => Box::new(t.iter()),
                    None => Box::new(std::iter::repeat_n(None, height)),
                };
                for (i, value) in values.enumerate() {
                    out.push(match self.cell(value, reading) {
                        Cell::Null => {
                            if self.required {
                                report(i, "not_null", None, "value is required".into());
                            }
                            None
                        }
                        Cell::TooLong(s) => {
                            report(
                                i,
                                "max_field_bytes",
                                Some(s),
                                format!(
                                    "value is {} bytes; the limit is {}",
                                    s.len(),
                                    reading.max_field_bytes
                                ),
                            );
                            None
                        }
                        Cell::Text(s) => $parse(i, s, &mut report),
                    });
                }
                out
            }};
        }
        let spec = &self.spec;
        let mut hashes = None;
        let mut times = None;
        let column: Column = match spec.ty {
            ColumnType::Integer => {
                let vals: Vec<Option<i64>> =
                    each!(|i, s: &str, report: &mut Report<'_>| match parse_int(s) {
                        None => {
                            report(i, "type", Some(s), "expected an integer".into());
                            None
                        }
                        Some(n) => {
                            check_range(n as f64, spec.min, spec.max, |m| {
                                report(i, "range", Some(s), m)
                            });
                            Some(n)
                        }
                    });
                if self.wants_hashes {
                    hashes = Some(vals.iter().map(|v| v.map(|n| hash_i64(1, n))).collect());
                }
                Series::new(name, vals).into()
            }
            ColumnType::Float => {
                let vals: Vec<Option<f64>> = each!(|i, s: &str, report: &mut Report<'_>| match s
                    .parse::<f64>()
                {
                    Err(_) => {
                        report(i, "type", Some(s), "expected a number".into());
                        None
                    }
                    Ok(x) if !x.is_finite() => {
                        report(i, "finite", Some(s), "number must be finite".into());
                        None
                    }
                    Ok(x) => {
                        check_range(x, spec.min, spec.max, |m| report(i, "range", Some(s), m));
                        Some(x)
                    }
                });
                if self.wants_hashes {
                    hashes = Some(vals.iter().map(|v| v.map(hash_f64)).collect());
                }
                Series::new(name, vals).into()
            }
            ColumnType::Boolean => {
                let spelling = spec.boolean.clone().unwrap_or_default();
                let vals: Vec<Option<bool>> = each!(|i, s: &str, report: &mut Report<'_>| {
                    let b = parse_bool(s, &spelling.true_values, &spelling.false_values);
                    if b.is_none() {
                        report(
                            i,
                            "type",
                            Some(s),
                            "expected a boolean (true/false, yes/no, 1/0, ...)".into(),
                        );
                    }
                    b
                });
                if self.wants_hashes {
                    hashes = Some(
                        vals.iter()
                            .map(|v| v.map(|b| hash128(3, &[b as u8])))
                            .collect(),
                    );
                }
                Series::new(name, vals).into()
            }
            ColumnType::Timestamp => {
                let parser = self.timestamp.as_ref();
                let vals: Vec<Option<i64>> = each!(|i, s: &str, report: &mut Report<'_>| {
                    match parser.and_then(|p| p.parse_micros(s)) {
                        None => {
                            report(i, "type", Some(s), "expected a timestamp (RFC 3339 / ISO 8601, or the column's format)".into());
                            None
                        }
                        Some(t) => {
                            if self.not_before.is_some_and(|lo| t < lo) {
                                report(
                                    i,
                                    "range",
                                    Some(s),
                                    format!(
                                        "before not_before {}",
                                        spec.not_before.as_deref().unwrap_or("")
                                    ),
                                );
                            }
                            if self.not_after.is_some_and(|hi| t > hi) {
                                report(
                                    i,
                                    "range",
                                    Some(s),
                                    format!(
                                        "after not_after {}",
                                        spec.not_after.as_deref().unwrap_or("")
                                    ),
                                );
                            }
                            Some(t)
                        }
                    }
                });
                if self.wants_hashes {
                    hashes = Some(vals.iter().map(|v| v.map(|n| hash_i64(4, n))).collect());
                }
                if want_times {
                    times = Some(vals.clone());
                }
                Int64Chunked::new(name, vals)
                    .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                    .into_column()
            }
            ColumnType::String | ColumnType::Categorical => {
                let values = spec.values.as_deref().unwrap_or_default();
                let vals: Vec<Option<&str>> =
                    each!(|i, s, report: &mut Report<'_>| self.check_text(i, s, values, report));
                if self.wants_hashes {
                    hashes = Some(vals.iter().map(|v| v.map(hash_str)).collect());
                }
                Series::new(name, vals).into()
            }
        };
        ColumnOutput {
            column,
            violations,
            bad,
            hashes,
            times,
        }
    }

    /// Checks a textual value; returns the value to store (the contract's spelling for
    /// allowed values matched ignoring case).
    fn check_text<'v>(
        &self,
        i: usize,
        s: &'v str,
        values: &'v [String],
        report: &mut Report<'_>,
    ) -> Option<&'v str> {
        let spec = &self.spec;
        if spec.min_length.is_some() || spec.max_length.is_some() {
            let n = s.chars().count();
            if let Some(lo) = spec.min_length
                && n < lo
            {
                report(
                    i,
                    "length",
                    Some(s),
                    format!("{n} characters; at least {lo} required"),
                );
            }
            if let Some(hi) = spec.max_length
                && n > hi
            {
                report(
                    i,
                    "length",
                    Some(s),
                    format!("{n} characters; at most {hi} allowed"),
                );
            }
        }
        if let Some(p) = &self.pattern
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
            );
        }
        let Some(exact) = &self.exact else {
            return Some(s);
        };
        let found = exact
            .get(s)
            .or_else(|| self.folded.as_ref().and_then(|f| f.get(&s.to_lowercase())));
        match found {
            Some(&idx) => values.get(idx).map(String::as_str),
            None => {
                report(
                    i,
                    "allowed_values",
                    Some(s),
                    format!("not one of the {} allowed values", values.len()),
                );
                None
            }
        }
    }
}

/// A value as text, for reports.
fn any_to_string(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
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
