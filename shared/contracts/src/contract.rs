//! The data contract: what one dataset's rows must look like.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::values::TimestampParser;
use crate::{ContractError, Result, short_hash};

/// One dataset's contract, as written in `contracts/<dataset>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// Dataset name: the `<dataset>` segment of `raw/<dataset>/...` keys.
    pub dataset: String,
    /// The author's version number, recorded in manifests; the content hash is the identity.
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub description: String,
    /// Set when a breaking change is intended: the contract starts a new lineage instead of
    /// being refused.
    #[serde(default)]
    pub new_lineage: bool,
    #[serde(default)]
    pub format: FileFormat,
    /// Column that identifies the entity (card, user, ...). Optional: plain tabular data has none.
    #[serde(default)]
    pub entity_key: Option<String>,
    /// Column holding each row's event time. Optional; must be a `timestamp` column.
    #[serde(default)]
    pub event_time: Option<String>,
    /// Columns whose combined value identifies a row; checked for duplicates within a batch
    /// and against earlier versions of the dataset.
    #[serde(default)]
    pub primary_key: Vec<String>,
    #[serde(default)]
    pub extra_columns: ExtraColumns,
    #[serde(default)]
    pub csv: CsvOptions,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub rules: DatasetRules,
    pub columns: Vec<ColumnSpec>,
}

fn one() -> u32 {
    1
}

/// How a raw object is decoded. `auto` picks by the key's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Auto,
    Csv,
    #[serde(alias = "ndjson", alias = "json")]
    Jsonl,
    Parquet,
}

impl FileFormat {
    /// Resolves `auto` from an object key; `None` when the extension says nothing we read.
    pub fn resolve(self, key: &str) -> Option<FileFormat> {
        if self != FileFormat::Auto {
            return Some(self);
        }
        let lower = key.to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "csv" | "tsv" | "txt" => Some(FileFormat::Csv),
            "jsonl" | "ndjson" | "json" => Some(FileFormat::Jsonl),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// What to do with columns present in a file but absent from the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExtraColumns {
    /// Drop them and list them in the manifest.
    #[default]
    Drop,
    /// Refuse the file.
    Reject,
}

/// CSV dialect. Defaults read RFC 4180 files with a header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsvOptions {
    /// Field separator; `"\t"` for TSV. `.tsv` keys default to tab when this is left at `,`.
    pub delimiter: char,
    pub quote: char,
    pub has_header: bool,
    /// Spellings that mean "missing", compared after trimming, case-sensitively.
    pub null_values: Vec<String>,
    /// Lines starting with this prefix are skipped.
    pub comment_prefix: Option<String>,
    /// Lines to skip before the header.
    pub skip_rows: usize,
    /// Trim surrounding whitespace from every value before it is checked.
    pub trim: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            quote: '"',
            has_header: true,
            null_values: [
                "", "NA", "N/A", "n/a", "na", "NaN", "nan", "null", "NULL", "Null", "None", "none",
                "-", "?", "#N/A",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            comment_prefix: None,
            skip_rows: 0,
            trim: true,
        }
    }
}

/// Limits that protect the stage from objects it cannot handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Larger raw objects are refused whole (a file error, not a row error).
    pub max_file_bytes: u64,
    /// A value longer than this (in bytes) breaks the `max_field_bytes` rule for its row.
    pub max_field_bytes: u64,
    /// Files with more columns than this are refused (CSV: counted in the header line before
    /// parsing; JSON Lines: distinct keys, counted before parsing; Parquet: its schema).
    pub max_columns: usize,
    /// Files with more rows are refused (Parquet: from its footer, before decoding; JSON
    /// Lines: counted before parsing; CSV: as chunks are read).
    #[serde(skip_serializing_if = "Limits::is_default_max_rows")]
    pub max_rows: u64,
    /// A Parquet file whose footer declares more row groups is refused before decoding.
    #[serde(skip_serializing_if = "Limits::is_default_max_row_groups")]
    pub max_row_groups: u64,
    /// A Parquet file whose footer declares more uncompressed data than this is refused before
    /// decoding (a small, highly compressed file can expand beyond the function's memory).
    #[serde(skip_serializing_if = "Limits::is_default_max_decoded_bytes")]
    pub max_decoded_bytes: u64,
    /// JSON Lines values nested deeper than this (objects and arrays) refuse the file before
    /// parsing.
    #[serde(skip_serializing_if = "Limits::is_default_max_nesting_depth")]
    pub max_nesting_depth: usize,
}

// The limits added after the first release are left out of a contract's canonical form
// while at their defaults, so existing contracts keep their hash (and their versions).
impl Limits {
    const DEFAULT_MAX_ROWS: u64 = 100_000_000;
    const DEFAULT_MAX_ROW_GROUPS: u64 = 100_000;
    const DEFAULT_MAX_DECODED_BYTES: u64 = 1024 * 1024 * 1024;
    const DEFAULT_MAX_NESTING_DEPTH: usize = 16;

    fn is_default_max_rows(v: &u64) -> bool {
        *v == Self::DEFAULT_MAX_ROWS
    }
    fn is_default_max_row_groups(v: &u64) -> bool {
        *v == Self::DEFAULT_MAX_ROW_GROUPS
    }
    fn is_default_max_decoded_bytes(v: &u64) -> bool {
        *v == Self::DEFAULT_MAX_DECODED_BYTES
    }
    fn is_default_max_nesting_depth(v: &usize) -> bool {
        *v == Self::DEFAULT_MAX_NESTING_DEPTH
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 2 * 1024 * 1024 * 1024,
            max_field_bytes: 64 * 1024,
            max_columns: 10_000,
            max_rows: Self::DEFAULT_MAX_ROWS,
            max_row_groups: Self::DEFAULT_MAX_ROW_GROUPS,
            max_decoded_bytes: Self::DEFAULT_MAX_DECODED_BYTES,
            max_nesting_depth: Self::DEFAULT_MAX_NESTING_DEPTH,
        }
    }
}

/// What a failed dataset-level rule does to the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFail {
    /// The whole batch goes to quarantine; no version is committed.
    #[default]
    Reject,
    /// The version is committed and the finding recorded in its manifest.
    Warn,
}

/// Maximum fraction of nulls: one number for every column, or per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NullFractionRule {
    All(f64),
    PerColumn(std::collections::BTreeMap<String, f64>),
}

/// Rules over the whole batch rather than single rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetRules {
    /// Fewer valid rows than this fails the batch (a header-only file has zero rows).
    pub min_rows: u64,
    pub max_null_fraction: Option<NullFractionRule>,
    /// Rows whose primary key repeats (within the batch or against earlier versions) are
    /// quarantined under the `unique_key` rule.
    pub unique_primary_key: bool,
    /// Newest event time must be at most this old at ingest time, e.g. `"36h"`, `"7d"`.
    pub freshness: Option<String>,
    pub on_fail: OnFail,
}

impl Default for DatasetRules {
    fn default() -> Self {
        DatasetRules {
            min_rows: 1,
            max_null_fraction: None,
            unique_primary_key: true,
            freshness: None,
            on_fail: OnFail::Reject,
        }
    }
}

/// Logical column types. Parquet types: Int64, Float64, Boolean, Utf8 (string and
/// categorical), Timestamp(µs, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    #[serde(alias = "int", alias = "int64", alias = "long")]
    Integer,
    #[serde(alias = "double", alias = "float64", alias = "number")]
    Float,
    #[serde(alias = "bool")]
    Boolean,
    #[serde(alias = "str", alias = "text", alias = "utf8")]
    String,
    #[serde(alias = "category", alias = "enum")]
    Categorical,
    #[serde(alias = "datetime", alias = "timestamptz")]
    Timestamp,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }
    pub fn is_textual(self) -> bool {
        matches!(self, ColumnType::String | ColumnType::Categorical)
    }
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::String => "string",
            ColumnType::Categorical => "categorical",
            ColumnType::Timestamp => "timestamp",
        }
    }
}

/// Extra spellings of true/false for boolean columns, beyond the built-in ones.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanSpelling {
    pub true_values: Vec<String>,
    pub false_values: Vec<String>,
}

/// One column's type and row-level rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Name of the column in the raw file when it differs from `name`.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Inclusive bounds for integer and float columns.
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    /// Inclusive bounds for timestamp columns, RFC 3339.
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
    /// Length bounds (characters) for string and categorical columns.
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Allowed values (string and categorical columns).
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// Match `values` ignoring case; admitted values are stored in the contract's spelling.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Regular expression the whole value must match (string and categorical columns).
    #[serde(default)]
    pub pattern: Option<String>,
    /// No two rows of a batch may share a value (nulls excepted).
    #[serde(default)]
    pub unique: bool,
    /// Timestamp parsing: a chrono strftime format, `epoch_s`, `epoch_ms`; default: ISO 8601
    /// / RFC 3339 family with or without offset.
    #[serde(default)]
    pub format: Option<String>,
    /// Zone assumed for timestamps written without an offset (IANA name), default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub boolean: Option<BooleanSpelling>,
}

fn yes() -> bool {
    true
}

impl ColumnSpec {
    /// The header name this column is read from.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }

    /// The timestamp parser this column's settings describe.
    pub fn timestamp_parser(&self) -> Result<TimestampParser, String> {
        TimestampParser::new(self.format.as_deref(), self.timezone.as_deref())
    }
}

impl Contract {
    /// Parses and checks a contract file. `file` names the file in every error.
    pub fn from_toml(text: &str, file: &str) -> Result<Contract> {
        let contract: Contract = toml::from_str(text).map_err(|e| ContractError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        contract.check(file)?;
        Ok(contract)
    }

    /// The contract's version id: a hash of its canonical form, so formatting and comments
    /// do not make a new version.
    pub fn hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        short_hash(&[b"contract/v1", &canonical])
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn check(&self, file: &str) -> Result<()> {
        let invalid = |field: String, message: String| ContractError::Invalid {
            file: file.to_string(),
            field,
            message,
        };
        if !is_identifier(&self.dataset) {
            return Err(invalid(
                "dataset".into(),
                format!(
                    "'{}' must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter",
                    self.dataset
                ),
            ));
        }
        if self.columns.is_empty() {
            return Err(invalid(
                "columns".into(),
                "at least one column is required".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut sources = BTreeSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let field = format!("columns[{i}] ({})", c.name);
            if c.name.is_empty() || c.name.starts_with("__") {
                return Err(invalid(
                    field,
                    "column names must be non-empty and must not start with '__' (reserved)".into(),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(invalid(field, "duplicate column name".into()));
            }
            if !sources.insert(c.source_name()) {
                return Err(invalid(
                    field,
                    format!("source column '{}' is used twice", c.source_name()),
                ));
            }
            check_column(c).map_err(|m| invalid(field, m))?;
        }
        let must_exist = |field: &str, name: &str| -> Result<&ColumnSpec> {
            self.column(name).ok_or_else(|| {
                invalid(
                    field.to_string(),
                    format!("'{name}' is not a declared column"),
                )
            })
        };
        if let Some(k) = &self.entity_key {
            must_exist("entity_key", k)?;
        }
        if let Some(t) = &self.event_time {
            let col = must_exist("event_time", t)?;
            if col.ty != ColumnType::Timestamp {
                return Err(invalid(
                    "event_time".into(),
                    format!("'{t}' must be a timestamp column, not {}", col.ty.name()),
                ));
            }
        }
        for k in &self.primary_key {
            must_exist("primary_key", k)?;
        }
        if let Some(NullFractionRule::PerColumn(map)) = &self.rules.max_null_fraction {
            for (name, v) in map {
                must_exist("rules.max_null_fraction", name)?;
                check_fraction(*v)
                    .map_err(|m| invalid(format!("rules.max_null_fraction.{name}"), m))?;
            }
        }
        if let Some(NullFractionRule::All(v)) = &self.rules.max_null_fraction {
            check_fraction(*v).map_err(|m| invalid("rules.max_null_fraction".into(), m))?;
        }
        if let Some(f) = &self.rules.freshness {
            parse_duration(f).map_err(|m| invalid("rules.freshness".into(), m))?;
        }
        if self.csv.delimiter == self.csv.quote {
            return Err(invalid(
                "csv".into(),
                "delimiter and quote must differ".into(),
            ));
        }
        if !self.csv.delimiter.is_ascii() || !self.csv.quote.is_ascii() {
            return Err(invalid(
                "csv".into(),
                "delimiter and quote must be single ASCII characters".into(),
            ));
        }
        Ok(())
    }
}

fn check_fraction(v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{v} is not a fraction between 0 and 1"))
    }
}

fn check_column(c: &ColumnSpec) -> Result<(), String> {
    let only = |present: bool, what: &str, allowed: &str| {
        if present {
            Err(format!(
                "`{what}` applies only to {allowed} columns, not {}",
                c.ty.name()
            ))
        } else {
            Ok(())
        }
    };
    only(
        !c.ty.is_numeric() && (c.min.is_some() || c.max.is_some()),
        "min/max",
        "integer and float",
    )?;
    only(
        !c.ty.is_textual()
            && (c.values.is_some()
                || c.pattern.is_some()
                || c.min_length.is_some()
                || c.max_length.is_some()),
        "values/pattern/min_length/max_length",
        "string and categorical",
    )?;
    only(
        c.ty != ColumnType::Timestamp
            && (c.format.is_some()
                || c.timezone.is_some()
                || c.not_before.is_some()
                || c.not_after.is_some()),
        "format/timezone/not_before/not_after",
        "timestamp",
    )?;
    only(
        c.ty != ColumnType::Boolean && c.boolean.is_some(),
        "boolean",
        "boolean",
    )?;
    if let (Some(lo), Some(hi)) = (c.min, c.max)
        && lo > hi
    {
        return Err(format!("min {lo} is greater than max {hi}"));
    }
    if c.min.is_some_and(|v| !v.is_finite()) || c.max.is_some_and(|v| !v.is_finite()) {
        return Err("min/max must be finite".into());
    }
    if let (Some(lo), Some(hi)) = (c.min_length, c.max_length)
        && lo > hi
    {
        return Err(format!("min_length {lo} is greater than max_length {hi}"));
    }
    if let Some(p) = &c.pattern {
        regex::Regex::new(p).map_err(|e| format!("pattern does not compile: {e}"))?;
    }
    if let Some(values) = &c.values {
        if values.is_empty() {
            return Err("`values` is empty: no value could pass".into());
        }
        let mut seen = BTreeSet::new();
        for v in values {
            let key = if c.case_insensitive {
                v.to_lowercase()
            } else {
                v.clone()
            };
            if !seen.insert(key) {
                return Err(format!("value '{v}' is listed twice"));
            }
        }
    }
    if c.ty == ColumnType::Timestamp {
        c.timestamp_parser()?;
        for (what, v) in [("not_before", &c.not_before), ("not_after", &c.not_after)] {
            if let Some(v) = v {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map_err(|e| format!("{what} '{v}' is not RFC 3339: {e}"))?;
            }
        }
    }
    Ok(())
}

/// True for names safe in object keys and on every platform.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses `"90s"`, `"15m"`, `"36h"`, `"7d"`, `"2w"` into seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{s}' has no unit (use s, m, h, d or w)"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("'{s}' does not start with a number"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "'{s}': unknown unit '{unit}' (use s, m, h, d or w)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
dataset = "tx"
[[columns]]
name = "id"
type = "string"
nullable = false
"#;

    #[test]
    fn parses_minimal_with_defaults() {
        let c = Contract::from_toml(MINIMAL, "tx.toml").unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.format, FileFormat::Auto);
        assert_eq!(c.rules.min_rows, 1);
        assert!(c.csv.null_values.contains(&"NA".to_string()));
        assert!(!c.columns[0].nullable);
    }

    #[test]
    fn hash_ignores_formatting_and_comments() {
        let a = Contract::from_toml(MINIMAL, "a").unwrap();
        let b = Contract::from_toml(&format!("# comment\n{MINIMAL}\n\n"), "b").unwrap();
        assert_eq!(a.hash(), b.hash());
        let c = Contract::from_toml(&MINIMAL.replace("nullable = false", ""), "c").unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    fn err(text: &str) -> String {
        Contract::from_toml(text, "bad.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn rejects_bad_contracts_with_file_and_field() {
        let e = err("dataset = \"tx\"\ncolumns = []\n");
        assert!(e.contains("bad.toml") && e.contains("columns"), "{e}");
        let e = err(
            "dataset = \"tx\"\nentity_key = \"nope\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\n",
        );
        assert!(e.contains("entity_key") && e.contains("nope"), "{e}");
        let e = err("dataset = \"tx\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\nmin = 3\n");
        assert!(e.contains("min/max"), "{e}");
        let e = err(
            "dataset = \"tx\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\npattern = \"(\"\n",
        );
        assert!(e.contains("pattern"), "{e}");
        let e = err("dataset = \"tx\"\n[[columns]]\nname = \"a\"\ntype = \"nope\"\n");
        assert!(e.contains("invalid TOML") && e.contains("nope"), "{e}");
        let e = err("dataset = \"Tx!\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\n");
        assert!(e.contains("dataset"), "{e}");
        let e = err(
            "dataset = \"tx\"\nevent_time = \"a\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\n",
        );
        assert!(e.contains("must be a timestamp"), "{e}");
        let e = err(
            "dataset = \"tx\"\n[[columns]]\nname = \"a\"\ntype = \"timestamp\"\ntimezone = \"Mars/Olympus\"\n",
        );
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = err(
            "dataset = \"tx\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\n[[columns]]\nname = \"a\"\ntype = \"string\"\n",
        );
        assert!(e.contains("duplicate"), "{e}");
        let e =
            err("dataset = \"tx\"\nsurprise = 1\n[[columns]]\nname = \"a\"\ntype = \"string\"\n");
        assert!(e.contains("surprise"), "{e}");
    }

    #[test]
    fn resolves_formats_by_extension() {
        assert_eq!(
            FileFormat::Auto.resolve("raw/a/b.CSV"),
            Some(FileFormat::Csv)
        );
        assert_eq!(
            FileFormat::Auto.resolve("raw/a/b.ndjson"),
            Some(FileFormat::Jsonl)
        );
        assert_eq!(
            FileFormat::Auto.resolve("raw/a/b.parquet"),
            Some(FileFormat::Parquet)
        );
        assert_eq!(FileFormat::Auto.resolve("raw/a/b.bin"), None);
        assert_eq!(
            FileFormat::Csv.resolve("raw/a/b.bin"),
            Some(FileFormat::Csv)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("36h"), Ok(36 * 3600));
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("7y").is_err());
    }
}
