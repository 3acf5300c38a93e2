//! Decoding a raw object into chunks of text columns, with file-level checks that explain
//! what is wrong with a file that cannot be read at all.

use std::io::Cursor;

use contracts::{Contract, ExtraColumns, FileFormat, Limits};
use polars::prelude::*;

/// Why a whole file was refused. Each message says what was found and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("empty file (0 bytes)")]
    Empty,
    #[error("file is {size} bytes; the contract's limit is {limit} bytes (limits.max_file_bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "cannot tell the format of '{key}' from its extension; set `format` in the contract (csv, jsonl, parquet)"
    )]
    UnknownFormat { key: String },
    #[error("binary content (a NUL byte at offset {offset}) in a file declared as {format}")]
    Binary { offset: usize, format: &'static str },
    #[error("text is not valid UTF-8 at line {line}, byte offset {offset}")]
    NotUtf8 { line: usize, offset: usize },
    #[error("cannot parse as {format}: {message}")]
    Malformed {
        format: &'static str,
        message: String,
    },
    #[error("missing required column(s) {missing:?}; the file has {found:?}{hint}")]
    MissingColumns {
        missing: Vec<String>,
        found: Vec<String>,
        hint: String,
    },
    #[error("column(s) {extra:?} are not in the contract (extra_columns = \"reject\")")]
    ExtraColumns { extra: Vec<String> },
    #[error("{count} columns; the contract's limit is {limit} (limits.max_columns)")]
    TooManyColumns { count: usize, limit: usize },
    #[error(
        "more than {limit} distinct keys in the JSON Lines objects (the {nth}th new one, {key:?}, on line {line}); the contract's limit is {limit} (limits.max_columns)"
    )]
    TooManyKeys {
        limit: usize,
        nth: usize,
        key: String,
        line: usize,
    },
    #[error("{rows} rows{at_least}; the contract's limit is {limit} (limits.max_rows)", at_least = if *counted_all { "" } else { " or more" })]
    TooManyRows {
        rows: u64,
        limit: u64,
        counted_all: bool,
    },
    #[error(
        "the Parquet footer declares {count} row groups; the contract's limit is {limit} (limits.max_row_groups)"
    )]
    TooManyRowGroups { count: u64, limit: u64 },
    #[error(
        "the Parquet footer declares {size} bytes of uncompressed data; the contract's limit is {limit} bytes (limits.max_decoded_bytes)"
    )]
    TooLargeDecoded { size: u64, limit: u64 },
    #[error(
        "a value nested {depth} levels deep on line {line}; the contract's limit is {limit} (limits.max_nesting_depth)"
    )]
    TooDeep {
        line: usize,
        depth: usize,
        limit: usize,
    },
}

impl FileError {
    /// A stable rule name for reports and counters.
    pub fn rule(&self) -> &'static str {
        match self {
            FileError::Empty => "empty",
            FileError::TooLarge { .. } => "max_file_bytes",
            FileError::UnknownFormat { .. } => "format",
            FileError::Binary { .. } => "binary",
            FileError::NotUtf8 { .. } => "encoding",
            FileError::Malformed { .. } => "malformed",
            FileError::MissingColumns { .. } => "missing_columns",
            FileError::ExtraColumns { .. } => "extra_columns",
            FileError::TooManyColumns { .. } | FileError::TooManyKeys { .. } => "max_columns",
            FileError::TooManyRows { .. } => "max_rows",
            FileError::TooManyRowGroups { .. } => "max_row_groups",
            FileError::TooLargeDecoded { .. } => "max_decoded_bytes",
            FileError::TooDeep { .. } => "max_nesting_depth",
        }
    }
}

/// A decoded file: its chunks of text-or-typed columns (parsed one at a time as they are
/// taken, so only one chunk is in memory) and how its header maps to the contract.
pub struct Decoded<'a> {
    pub format: FileFormat,
    pub chunks: Chunks<'a>,
    /// For each contract column, the source column name it is read from.
    pub sources: Vec<Option<String>>,
    pub dropped: Vec<String>,
    pub missing_nullable: Vec<String>,
}

/// Target size of one CSV chunk. Large enough for polars' parallel parser to be efficient,
/// small enough that a chunk's text plus its typed copy stay a small part of memory.
pub const CHUNK_BYTES: usize = 16 * 1024 * 1024;

/// Decodes `bytes` (the object at `key`) per the contract.
pub fn decode<'a>(
    bytes: &'a [u8],
    key: &str,
    contract: &Contract,
) -> Result<Decoded<'a>, FileError> {
    if bytes.is_empty() {
        return Err(FileError::Empty);
    }
    if bytes.len() as u64 > contract.limits.max_file_bytes {
        return Err(FileError::TooLarge {
            size: bytes.len() as u64,
            limit: contract.limits.max_file_bytes,
        });
    }
    let format = contract
        .format
        .resolve(key)
        .ok_or_else(|| FileError::UnknownFormat {
            key: key.to_string(),
        })?;
    let chunks = match format {
        FileFormat::Csv => read_csv(bytes, key, contract)?,
        FileFormat::Jsonl => Chunks::frame(read_jsonl(bytes, &contract.limits)?),
        FileFormat::Parquet | FileFormat::Auto => {
            Chunks::frame(read_parquet(bytes, &contract.limits)?)
        }
    };
    let header: Vec<String> = chunks
        .first
        .as_ref()
        .map(|df| {
            df.get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .unwrap_or_default();
    if header.len() > contract.limits.max_columns {
        return Err(FileError::TooManyColumns {
            count: header.len(),
            limit: contract.limits.max_columns,
        });
    }
    let (sources, dropped, missing_nullable) = map_header(&header, contract, bytes)?;
    Ok(Decoded {
        format,
        chunks,
        sources,
        dropped,
        missing_nullable,
    })
}

/// For each contract column its source column (`None`: absent), the file columns dropped,
/// and the nullable contract columns the file lacks.
pub(crate) type HeaderMap = (Vec<Option<String>>, Vec<String>, Vec<String>);

/// Matches contract columns to the file's header: exact name first, then ignoring case and
/// surrounding spaces.
pub(crate) fn map_header(
    header: &[String],
    contract: &Contract,
    bytes: &[u8],
) -> Result<HeaderMap, FileError> {
    let mut sources = Vec::new();
    let mut used = vec![false; header.len()];
    let mut missing = Vec::new();
    let mut missing_nullable = Vec::new();
    for spec in &contract.columns {
        let want = spec.source_name();
        let found = header.iter().position(|h| h == want).or_else(|| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(want.trim()))
        });
        match found {
            Some(i) if !used[i] => {
                used[i] = true;
                sources.push(Some(header[i].clone()));
            }
            _ if spec.nullable => {
                missing_nullable.push(spec.name.clone());
                sources.push(None);
            }
            _ => {
                missing.push(want.to_string());
                sources.push(None);
            }
        }
    }
    let dropped: Vec<String> = header
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(h, _)| h.clone())
        .collect();
    if !missing.is_empty() {
        return Err(FileError::MissingColumns {
            missing,
            found: header.iter().take(20).cloned().collect(),
            hint: delimiter_hint(header, contract, bytes),
        });
    }
    if contract.extra_columns == ExtraColumns::Reject && !dropped.is_empty() {
        return Err(FileError::ExtraColumns { extra: dropped });
    }
    Ok((sources, dropped, missing_nullable))
}

/// When a CSV header came out as one column, the delimiter is probably wrong: say which one
/// the file seems to use.
fn delimiter_hint(header: &[String], contract: &Contract, bytes: &[u8]) -> String {
    if header.len() != 1 {
        return String::new();
    }
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let best = [b';', b'\t', b'|', b',']
        .into_iter()
        .filter(|d| *d as char != contract.csv.delimiter)
        .max_by_key(|d| first_line.iter().filter(|b| *b == d).count());
    match best {
        Some(d) if first_line.contains(&d) => format!(
            " (one column: the contract's delimiter is {:?} but the header seems to use {:?}; set csv.delimiter)",
            contract.csv.delimiter, d as char
        ),
        _ => String::new(),
    }
}

fn check_text(bytes: &[u8], format: &'static str) -> Result<(), FileError> {
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if let Some(offset) = head.iter().position(|b| *b == 0) {
        return Err(FileError::Binary { offset, format });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|b| **b == b'\n').count();
        return Err(FileError::NotUtf8 { line, offset });
    }
    Ok(())
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The chunks of a decoded file, yielded in order. CSV chunks are parsed on demand.
pub struct Chunks<'a> {
    first: Option<DataFrame>,
    csv: Option<CsvChunks<'a>>,
}

struct CsvChunks<'a> {
    bytes: &'a [u8],
    ranges: std::vec::IntoIter<std::ops::Range<usize>>,
    schema: SchemaRef,
    parser: CsvParser,
}

impl Chunks<'_> {
    fn frame(df: DataFrame) -> Self {
        Chunks {
            first: Some(df),
            csv: None,
        }
    }
}

impl Iterator for Chunks<'_> {
    type Item = Result<DataFrame, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(df) = self.first.take() {
            return Some(Ok(df));
        }
        let csv = self.csv.as_mut()?;
        let range = csv.ranges.next()?;
        Some(
            csv.parser
                .parse(&csv.bytes[range], false, 0, Some(csv.schema.clone()))
                .map_err(malformed_csv),
        )
    }
}

fn malformed_csv(e: PolarsError) -> FileError {
    FileError::Malformed {
        format: "csv",
        message: e.to_string(),
    }
}

/// The CSV dialect, applied to every chunk alike.
struct CsvParser {
    delimiter: u8,
    quote: u8,
    comment_prefix: Option<String>,
}

impl CsvParser {
    fn parse(
        &self,
        slice: &[u8],
        has_header: bool,
        skip_rows: usize,
        schema: Option<SchemaRef>,
    ) -> PolarsResult<DataFrame> {
        let mut parse_options = CsvParseOptions::default()
            .with_separator(self.delimiter)
            .with_quote_char(Some(self.quote))
            .with_missing_is_null(true);
        if let Some(prefix) = &self.comment_prefix {
            parse_options = parse_options.with_comment_prefix(Some(prefix.as_str()));
        }
        CsvReadOptions::default()
            .with_has_header(has_header)
            .with_skip_rows(skip_rows)
            .with_infer_schema_length(Some(0))
            .with_schema(schema)
            .with_raise_if_empty(false)
            .with_parse_options(parse_options)
            .into_reader_with_file_handle(Cursor::new(slice))
            .finish()
    }
}

fn read_csv<'a>(bytes: &'a [u8], key: &str, contract: &Contract) -> Result<Chunks<'a>, FileError> {
    let bytes = strip_bom(bytes);
    check_text(bytes, "csv")?;
    let opts = &contract.csv;
    // `.tsv` files default to tabs unless the contract chose a delimiter.
    let delimiter = if opts.delimiter == ',' && key.to_ascii_lowercase().ends_with(".tsv") {
        b'\t'
    } else {
        opts.delimiter as u8
    };
    let parser = CsvParser {
        delimiter,
        quote: opts.quote as u8,
        comment_prefix: opts.comment_prefix.clone(),
    };
    let columns = header_columns(bytes, &parser, opts.skip_rows);
    if columns > contract.limits.max_columns {
        return Err(FileError::TooManyColumns {
            count: columns,
            limit: contract.limits.max_columns,
        });
    }
    let mut ranges = split_rows(bytes, parser.quote, CHUNK_BYTES).into_iter();
    let first = ranges.next().unwrap_or(0..bytes.len());
    let head = parser
        .parse(&bytes[first], opts.has_header, opts.skip_rows, None)
        .map_err(malformed_csv)?;
    let schema: SchemaRef = Arc::new(head.schema().as_ref().clone());
    Ok(Chunks {
        first: Some(head),
        csv: Some(CsvChunks {
            bytes,
            ranges,
            schema,
            parser,
        }),
    })
}

/// The number of fields in the first record (the header, when there is one) after
/// `skip_rows` lines and any comment lines, counted on the bytes: a header of a million
/// columns is refused before the parser allocates a column for each.
fn header_columns(bytes: &[u8], parser: &CsvParser, skip_rows: usize) -> usize {
    let mut rest = bytes;
    let mut skipped = 0;
    loop {
        let line_end = rest
            .iter()
            .position(|b| *b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let is_comment = parser
            .comment_prefix
            .as_deref()
            .is_some_and(|p| rest.starts_with(p.as_bytes()));
        if skipped < skip_rows || is_comment {
            skipped += usize::from(!is_comment);
            rest = &rest[line_end..];
            if rest.is_empty() {
                return 0;
            }
            continue;
        }
        break;
    }
    let mut fields = 1;
    let mut in_quote = false;
    for &b in rest {
        if b == parser.quote {
            in_quote = !in_quote;
        } else if !in_quote && b == parser.delimiter {
            fields += 1;
        } else if !in_quote && b == b'\n' {
            break;
        }
    }
    fields
}

/// Splits CSV bytes into ranges of whole records of about `target` bytes each, never inside
/// a quoted field (which may hold newlines). Quote parity is enough: an escaped quote (`""`)
/// flips it twice.
pub fn split_rows(bytes: &[u8], quote: u8, target: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        let next_cut = start + target;
        if i < next_cut && !in_quote {
            // Fast path: jump to the next interesting byte.
            match bytes[i..next_cut.min(bytes.len())]
                .iter()
                .position(|b| *b == quote)
            {
                Some(p) => {
                    i += p;
                }
                None => {
                    i = next_cut.min(bytes.len());
                    continue;
                }
            }
        }
        let b = bytes[i];
        if b == quote {
            in_quote = !in_quote;
        } else if b == b'\n' && !in_quote && i + 1 - start >= target {
            ranges.push(start..i + 1);
            start = i + 1;
        }
        i += 1;
    }
    if start < bytes.len() {
        ranges.push(start..bytes.len());
    }
    ranges
}

fn read_jsonl(bytes: &[u8], limits: &Limits) -> Result<DataFrame, FileError> {
    let bytes = strip_bom(bytes);
    check_text(bytes, "jsonl")?;
    scan_jsonl(bytes, limits)?;
    JsonReader::new(Cursor::new(bytes))
        .with_json_format(JsonFormat::JsonLines)
        .infer_schema_len(None)
        .finish()
        .map_err(|e| FileError::Malformed {
            format: "jsonl",
            message: e.to_string(),
        })
}

/// Checks JSON Lines text against the limits without building any value: nesting depth,
/// distinct top-level keys (the columns the parser would create) and rows. One pass over
/// the bytes; memory bounded by the distinct keys it allows.
pub(crate) fn scan_jsonl(bytes: &[u8], limits: &Limits) -> Result<(), FileError> {
    let mut keys: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    let (mut depth, mut line, mut rows) = (0usize, 1usize, 0u64);
    let mut line_has_value = false;
    let mut i = 0;
    // The last string closed at depth 1 (a key if a ':' follows it).
    let mut last_string: Option<&[u8]> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(bytes.len());
                last_string = (depth == 1).then(|| &bytes[start..end]);
                line_has_value = true;
                i = end + 1;
                continue;
            }
            b':' => {
                if let Some(key) = last_string.take()
                    && keys.insert(key)
                    && keys.len() > limits.max_columns
                {
                    return Err(FileError::TooManyKeys {
                        limit: limits.max_columns,
                        nth: keys.len(),
                        key: String::from_utf8_lossy(&key[..key.len().min(80)]).into_owned(),
                        line,
                    });
                }
            }
            b'{' | b'[' => {
                depth += 1;
                line_has_value = true;
                if depth > limits.max_nesting_depth {
                    return Err(FileError::TooDeep {
                        line,
                        depth,
                        limit: limits.max_nesting_depth,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'\n' => {
                if line_has_value {
                    rows += 1;
                    if rows > limits.max_rows {
                        return Err(FileError::TooManyRows {
                            rows,
                            limit: limits.max_rows,
                            counted_all: false,
                        });
                    }
                }
                line += 1;
                line_has_value = false;
                // A broken line does not carry its depth into the next (the parser reports it).
                depth = 0;
            }
            b' ' | b'\t' | b'\r' | b',' => {}
            _ => line_has_value = true,
        }
        if b != b'"' && !b.is_ascii_whitespace() && b != b':' {
            last_string = None;
        }
        i += 1;
    }
    if line_has_value && rows + 1 > limits.max_rows {
        return Err(FileError::TooManyRows {
            rows: rows + 1,
            limit: limits.max_rows,
            counted_all: true,
        });
    }
    Ok(())
}

/// Reads a Parquet file after checking its footer (columns, rows, row groups and declared
/// uncompressed size) against the limits, so a file that would expand past them is refused
/// before a page is decoded.
fn read_parquet(bytes: &[u8], limits: &Limits) -> Result<DataFrame, FileError> {
    let malformed = |e: PolarsError| FileError::Malformed {
        format: "parquet",
        message: e.to_string(),
    };
    let mut reader = ParquetReader::new(Cursor::new(bytes));
    let columns = reader.schema().map_err(malformed)?.len();
    if columns > limits.max_columns {
        return Err(FileError::TooManyColumns {
            count: columns,
            limit: limits.max_columns,
        });
    }
    let metadata = reader.get_metadata().map_err(malformed)?;
    let rows = metadata.num_rows as u64;
    if rows > limits.max_rows {
        return Err(FileError::TooManyRows {
            rows,
            limit: limits.max_rows,
            counted_all: true,
        });
    }
    let groups = metadata.row_groups.len() as u64;
    if groups > limits.max_row_groups {
        return Err(FileError::TooManyRowGroups {
            count: groups,
            limit: limits.max_row_groups,
        });
    }
    // Both the row groups' totals and their column chunks' sizes, as a file may declare
    // either inconsistently.
    let declared: u64 = metadata
        .row_groups
        .iter()
        .map(|g| {
            let columns: u64 = g
                .parquet_columns()
                .iter()
                .map(|c| c.uncompressed_size().max(0) as u64)
                .sum();
            columns.max(g.total_byte_size() as u64)
        })
        .sum();
    if declared > limits.max_decoded_bytes {
        return Err(FileError::TooLargeDecoded {
            size: declared,
            limit: limits.max_decoded_bytes,
        });
    }
    reader.finish().map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the fields hold (delimiters, quotes, newlines), chunks are whole records:
        /// they concatenate to the input and each parses to the rows it should.
        #[test]
        fn split_rows_never_cuts_a_record(rows in prop::collection::vec(prop::collection::vec("[a-z,\"\n ]{0,6}", 2..=2), 1..40), target in 1usize..80) {
            let mut csv = String::new();
            for row in &rows {
                let line: Vec<String> = row.iter().map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
                csv.push_str(&line.join(","));
                csv.push('\n');
            }
            let ranges = split_rows(csv.as_bytes(), b'"', target);
            let joined: Vec<u8> = ranges.iter().flat_map(|r| csv.as_bytes()[r.clone()].to_vec()).collect();
            prop_assert_eq!(&joined, csv.as_bytes());
            let mut parsed = 0;
            for r in &ranges {
                let df = CsvReadOptions::default()
                    .with_has_header(false)
                    .with_infer_schema_length(Some(0))
                    .into_reader_with_file_handle(Cursor::new(&csv.as_bytes()[r.clone()]))
                    .finish()
                    .unwrap();
                parsed += df.height();
            }
            prop_assert_eq!(parsed, rows.len());
        }
    }

    fn limits() -> Limits {
        Limits {
            max_columns: 3,
            max_rows: 4,
            max_nesting_depth: 3,
            ..Limits::default()
        }
    }

    #[test]
    fn json_lines_are_checked_for_depth_keys_and_rows_before_parsing() {
        let ok = b"{\"a\": 1, \"b\": [1, {\"x\": \"}\"}]}\n{\"a\": \"q:\\\"\", \"c\": null}\n";
        // `x` is nested (not a column), the string "}" and the escaped quote do not count.
        assert_eq!(scan_jsonl(ok, &limits()), Ok(()));
        let deep = b"{\"a\": 1}\n{\"a\": [[[1]]]}\n";
        assert_eq!(
            scan_jsonl(deep, &limits()),
            Err(FileError::TooDeep {
                line: 2,
                depth: 4,
                limit: 3
            })
        );
        let keys = b"{\"a\": 1, \"b\": 2}\n{\"c\": 1, \"d\": 2}\n";
        let err = scan_jsonl(keys, &limits()).unwrap_err();
        assert_eq!(err.rule(), "max_columns");
        assert!(
            err.to_string().contains("\"d\"") && err.to_string().contains("line 2"),
            "{err}"
        );
        let rows = b"{}\n{}\n\n{}\n{}\n{}";
        assert_eq!(
            scan_jsonl(rows, &limits()),
            Err(FileError::TooManyRows {
                rows: 5,
                limit: 4,
                counted_all: true
            })
        );
        assert_eq!(scan_jsonl(b"{}\n{}\n\n{}\n{}\n", &limits()), Ok(()));
    }

    #[test]
    fn csv_header_fields_are_counted_before_parsing() {
        let parser = CsvParser {
            delimiter: b',',
            quote: b'"',
            comment_prefix: Some("#".into()),
        };
        assert_eq!(header_columns(b"a,b,c\n1,2,3\n", &parser, 0), 3);
        assert_eq!(header_columns(b"\"a,b\",c\n1,2\n", &parser, 0), 2);
        assert_eq!(header_columns(b"junk\n# note,x,y,z\na,b\n", &parser, 1), 2);
        assert_eq!(header_columns(b"", &parser, 0), 1);
    }

    #[test]
    fn parquet_footers_are_checked_before_decoding() {
        let mut df =
            df!("a" => (0..10i64).collect::<Vec<_>>(), "b" => vec!["xxxxxxxxxxxxxxxx"; 10])
                .unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .with_row_group_size(Some(2))
            .finish(&mut df)
            .unwrap();
        let ok = read_parquet(&bytes, &Limits::default()).unwrap();
        assert_eq!(ok.height(), 10);
        let rule = |limits: Limits| read_parquet(&bytes, &limits).unwrap_err().rule();
        assert_eq!(
            rule(Limits {
                max_rows: 9,
                ..Limits::default()
            }),
            "max_rows"
        );
        assert_eq!(
            rule(Limits {
                max_row_groups: 4,
                ..Limits::default()
            }),
            "max_row_groups"
        );
        assert_eq!(
            rule(Limits {
                max_decoded_bytes: 16,
                ..Limits::default()
            }),
            "max_decoded_bytes"
        );
        assert_eq!(
            rule(Limits {
                max_columns: 1,
                ..Limits::default()
            }),
            "max_columns"
        );
    }

    #[test]
    fn splits_only_between_records() {
        let data = b"a,b\n1,\"x\ny\"\n2,z\n3,\"\"\"q\"\"\"\n4,w\n";
        for target in 1..data.len() + 2 {
            let ranges = split_rows(data, b'"', target);
            let mut joined = Vec::new();
            for r in &ranges {
                let part = &data[r.clone()];
                // Every piece ends at a record boundary: even quote count.
                assert_eq!(
                    part.iter().filter(|b| **b == b'"').count() % 2,
                    0,
                    "target {target}: {:?}",
                    String::from_utf8_lossy(part)
                );
                joined.extend_from_slice(part);
            }
            assert_eq!(joined, data);
        }
    }
}
