//! Input files read in chunks: CSV and JSON Lines line by line, Parquet by row slices. Each
//! row becomes a record (field -> JSON value), as `/v1` receives records.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use feature_stage::polars::prelude::*;
use serde_json::{Map, Number, Value};

use crate::{BatchError, RowError};

/// An input file's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Parquet,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, BatchError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" => Ok(Format::JsonLines),
            "parquet" | "pq" => Ok(Format::Parquet),
            other => Err(BatchError::Input {
                path: path.display().to_string(),
                message: format!(
                    "unsupported input format '.{other}' (use .csv, .jsonl (one JSON record per line) or .parquet)"
                ),
            }),
        }
    }
}

/// One input row: its number (1 = the first data row) and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub number: u64,
    pub fields: Map<String, Value>,
    /// Why the row could not be read (it is refused, the others are scored).
    pub problem: Option<String>,
}

impl Row {
    pub fn error(&self, file: &str, column: &str, rule: &str) -> RowError {
        RowError {
            file: file.to_string(),
            row: self.number,
            column: column.to_string(),
            rule: rule.to_string(),
        }
    }
}

/// Counts the bytes read through it (for progress).
struct Counted<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

enum Source {
    Csv(csv::StringRecordsIntoIter<Counted<std::fs::File>>),
    Lines(std::io::Lines<BufReader<Counted<std::fs::File>>>),
    Parquet { height: usize },
}

/// A chunked reader over one input file.
pub struct Reader {
    path: std::path::PathBuf,
    source: Source,
    columns: Vec<String>,
    chunk: usize,
    next_row: u64,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    size: u64,
    /// JSON Lines: the rows read ahead to learn the columns.
    pending: Vec<Row>,
}

fn input_error(path: &Path, message: impl std::fmt::Display) -> BatchError {
    BatchError::Input {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// A CSV cell as JSON: empty is null, numbers and booleans as such, anything else text.
fn cell(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Number(i.into());
    }
    if let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_string()),
    }
}

impl Reader {
    pub fn open(path: &Path, chunk: usize) -> Result<Reader, BatchError> {
        let format = Format::of(path)?;
        let file = std::fs::File::open(path).map_err(|e| input_error(path, e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = Counted {
            inner: file,
            read: read.clone(),
        };
        let mut reader = Reader {
            path: path.to_path_buf(),
            source: Source::Parquet { height: 0 },
            columns: Vec::new(),
            chunk,
            next_row: 1,
            read,
            size,
            pending: Vec::new(),
        };
        match format {
            Format::Csv => {
                let mut csv = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(counted);
                reader.columns = csv
                    .headers()
                    .map_err(|e| input_error(path, format!("the CSV header: {e}")))?
                    .iter()
                    .map(str::to_string)
                    .collect();
                reader.source = Source::Csv(csv.into_records());
            }
            Format::JsonLines => {
                reader.source = Source::Lines(BufReader::new(counted).lines());
                // The first record's fields name the columns.
                // The first readable record's fields name the columns.
                let mut ahead = Vec::new();
                while let Some(row) = reader.next_json()? {
                    let readable = row.problem.is_none();
                    if readable {
                        reader.columns = row.fields.keys().cloned().collect();
                    }
                    ahead.push(row);
                    if readable {
                        break;
                    }
                }
                reader.pending = ahead;
            }
            Format::Parquet => {
                let meta = ParquetReader::new(
                    std::fs::File::open(path).map_err(|e| input_error(path, e))?,
                )
                .get_metadata()
                .map_err(|e| input_error(path, e))?
                .clone();
                let height = meta.num_rows;
                let schema = ParquetReader::new(
                    std::fs::File::open(path).map_err(|e| input_error(path, e))?,
                )
                .schema()
                .map_err(|e| input_error(path, e))?;
                reader.columns = schema.iter_names().map(|n| n.to_string()).collect();
                reader.source = Source::Parquet { height };
            }
        }
        Ok(reader)
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Bytes of the input consumed so far (Parquet: in proportion to the rows read).
    pub fn bytes_read(&self) -> u64 {
        match self.source {
            Source::Parquet { height } if height > 0 => {
                self.size * (self.next_row - 1).min(height as u64) / height as u64
            }
            _ => self.read.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// One JSON Lines record (blank lines skipped); a line that is not a JSON object is an
    /// input error naming its row.
    fn next_json(&mut self) -> Result<Option<Row>, BatchError> {
        let Source::Lines(lines) = &mut self.source else {
            return Ok(None);
        };
        for line in lines.by_ref() {
            let line = line.map_err(|e| input_error(&self.path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let number = self.next_row;
            self.next_row += 1;
            let (fields, problem) = match serde_json::from_str::<Value>(&line) {
                Ok(Value::Object(fields)) => (fields, None),
                Ok(_) => (
                    Map::new(),
                    Some("is not a JSON object (one record per line)".to_string()),
                ),
                Err(e) => (Map::new(), Some(format!("is not JSON: {e}"))),
            };
            return Ok(Some(Row {
                number,
                fields,
                problem,
            }));
        }
        Ok(None)
    }

    /// The next chunk of rows, or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Row>>, BatchError> {
        let mut rows = Vec::with_capacity(self.chunk.min(1 << 16));
        match &mut self.source {
            Source::Csv(records) => {
                for record in records.by_ref().take(self.chunk) {
                    let number = self.next_row;
                    self.next_row += 1;
                    let row = match record {
                        Ok(record) => Row {
                            number,
                            fields: self
                                .columns
                                .iter()
                                .zip(record.iter())
                                .map(|(k, v)| (k.clone(), cell(v)))
                                .collect(),
                            problem: None,
                        },
                        // A malformed line (wrong field count, bad quoting) is refused alone.
                        Err(e) => Row {
                            number,
                            fields: Map::new(),
                            problem: Some(format!(
                                "is not a CSV record of the header's columns: {e}"
                            )),
                        },
                    };
                    rows.push(row);
                }
            }
            Source::Lines(_) => {
                rows.append(&mut self.pending);
                while rows.len() < self.chunk {
                    match self.next_json()? {
                        Some(r) => rows.push(r),
                        None => break,
                    }
                }
            }
            Source::Parquet { height } => {
                let offset = (self.next_row - 1) as usize;
                if offset >= *height {
                    return Ok(None);
                }
                let n = self.chunk.min(*height - offset);
                let file =
                    std::fs::File::open(&self.path).map_err(|e| input_error(&self.path, e))?;
                let df = ParquetReader::new(file)
                    .with_slice(Some((offset, n)))
                    .finish()
                    .map_err(|e| input_error(&self.path, e))?;
                rows = rows_of(&df, self.next_row).map_err(|e| input_error(&self.path, e))?;
                self.next_row += df.height() as u64;
            }
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

fn json_of(v: AnyValue<'_>) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(i) => Value::from(i),
        AnyValue::Int16(i) => Value::from(i),
        AnyValue::Int32(i) => Value::from(i),
        AnyValue::Int64(i) => Value::from(i),
        AnyValue::UInt8(i) => Value::from(i),
        AnyValue::UInt16(i) => Value::from(i),
        AnyValue::UInt32(i) => Value::from(i),
        AnyValue::UInt64(i) => Value::from(i),
        AnyValue::Float32(f) => Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number),
        AnyValue::Float64(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        // Timestamps as RFC 3339 text, as /v1 takes them.
        AnyValue::Datetime(v, unit, tz) => {
            let us = match unit {
                TimeUnit::Nanoseconds => v / 1000,
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v * 1000,
            };
            let _ = tz;
            chrono::DateTime::from_timestamp_micros(us).map_or(Value::Null, |t| {
                Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            })
        }
        other => Value::String(other.to_string()),
    }
}

/// The rows of a frame as records, numbered from `first`.
fn rows_of(df: &DataFrame, first: u64) -> PolarsResult<Vec<Row>> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut rows: Vec<Row> = (0..df.height())
        .map(|i| Row {
            number: first + i as u64,
            fields: Map::new(),
            problem: None,
        })
        .collect();
    for (name, column) in names.iter().zip(df.columns()) {
        let series = column.as_materialized_series();
        for (i, row) in rows.iter_mut().enumerate() {
            row.fields.insert(name.clone(), json_of(series.get(i)?));
        }
    }
    Ok(rows)
}

/// Records as a frame (for the training join): a column per field seen, typed from its
/// values (all whole numbers Int64, numbers Float64, booleans Boolean, else text), plus the
/// `extra` columns as nulls of Float64.
pub fn frame(rows: &[Row], extra: &[&str]) -> PolarsResult<DataFrame> {
    let mut names: Vec<&String> = Vec::new();
    for row in rows {
        for k in row.fields.keys() {
            if !names.contains(&k) {
                names.push(k);
            }
        }
    }
    let mut columns = Vec::new();
    for name in names {
        let values: Vec<&Value> = rows
            .iter()
            .map(|r| r.fields.get(name.as_str()).unwrap_or(&Value::Null))
            .collect();
        let present = || values.iter().filter(|v| !v.is_null());
        let column = if present().all(|v| v.as_i64().is_some()) {
            Column::new(
                name.as_str().into(),
                values.iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
            )
        } else if present().all(|v| v.is_number()) {
            Column::new(
                name.as_str().into(),
                values.iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
            )
        } else if present().all(|v| v.is_boolean()) {
            Column::new(
                name.as_str().into(),
                values.iter().map(|v| v.as_bool()).collect::<Vec<_>>(),
            )
        } else {
            Column::new(
                name.as_str().into(),
                values
                    .iter()
                    .map(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    })
                    .collect::<Vec<_>>(),
            )
        };
        columns.push(column);
    }
    for name in extra {
        columns.push(Column::full_null(
            (*name).into(),
            rows.len(),
            &DataType::Float64,
        ));
    }
    DataFrame::new(rows.len(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_become_the_json_values_v1_takes() {
        assert_eq!(cell(""), Value::Null);
        assert_eq!(cell("12"), Value::from(12));
        assert_eq!(cell("1.5"), Value::from(1.5));
        assert_eq!(cell("true"), Value::Bool(true));
        assert_eq!(cell("c_01"), Value::from("c_01"));
        assert_eq!(
            cell("2024-01-01T00:00:00Z"),
            Value::from("2024-01-01T00:00:00Z")
        );
    }

    #[test]
    fn every_format_reads_in_chunks_with_row_numbers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "x,y\n1,a\n2,b\n3,\n").unwrap_or_else(|e| panic!("{e}"));
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(
            &jsonl,
            "{\"x\":1,\"y\":\"a\"}\n\n{\"x\":2,\"y\":\"b\"}\n{\"x\":3,\"y\":null}\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let pq = dir.path().join("a.parquet");
        let mut df = df!("x" => [1i64, 2, 3], "y" => [Some("a"), Some("b"), None])
            .unwrap_or_else(|e| panic!("{e}"));
        ParquetWriter::new(std::fs::File::create(&pq).unwrap_or_else(|e| panic!("{e}")))
            .finish(&mut df)
            .unwrap_or_else(|e| panic!("{e}"));
        for path in [csv, jsonl, pq] {
            let mut r = Reader::open(&path, 2).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.columns(), ["x", "y"], "{}", path.display());
            let a = r
                .next_chunk()
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default();
            let b = r
                .next_chunk()
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default();
            assert!(r.next_chunk().unwrap_or_else(|e| panic!("{e}")).is_none());
            assert_eq!((a.len(), b.len()), (2, 1), "{}", path.display());
            assert_eq!(b[0].number, 3);
            assert_eq!(b[0].fields["x"], Value::from(3));
            assert_eq!(b[0].fields["y"], Value::Null);
            assert_eq!(a[1].fields["y"], Value::from("b"));
        }
    }

    #[test]
    fn a_row_that_cannot_be_read_is_marked_and_the_others_read() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(&jsonl, "[1,2]\n{\"x\":1}\n{oops\n{\"x\":2}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "x\n1\n1,2\n2\n").unwrap_or_else(|e| panic!("{e}"));
        for path in [jsonl, csv] {
            let mut r = Reader::open(&path, 10).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.columns(), ["x"]);
            let rows = r
                .next_chunk()
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_default();
            let bad: Vec<u64> = rows
                .iter()
                .filter(|r| r.problem.is_some())
                .map(|r| r.number)
                .collect();
            let good: Vec<u64> = rows
                .iter()
                .filter(|r| r.problem.is_none())
                .map(|r| r.number)
                .collect();
            if path.extension().is_some_and(|e| e == "csv") {
                assert_eq!((bad, good), (vec![2], vec![1, 3]));
            } else {
                assert_eq!((bad, good), (vec![1, 3], vec![2, 4]));
            }
        }
    }
}
