//! Pipeline projects and data contracts.
//!
//! A project is a folder of declarative files (`mlpipe.toml` plus one contract per dataset).
//! This crate parses and checks them, gives each definition a content hash (computed over the
//! parsed, canonical form, so comments and formatting do not change a version), and decides
//! whether a new contract version may replace the current one.
//!
//! Invariant: this crate knows nothing of storage, events, runtimes or data frames. It
//! describes rules; `functions/ingest` applies them to data.

mod compat;
mod contract;
mod project;
mod values;

pub use compat::{Change, ChangeKind, Compatibility, compare};
pub use contract::{
    BooleanSpelling, ColumnSpec, ColumnType, Contract, CsvOptions, DatasetRules, ExtraColumns,
    FileFormat, Limits, NullFractionRule, OnFail, is_identifier, parse_duration,
};
pub use project::{DatasetEntry, LoadedProject, Project, PullSource};
pub use values::{TimestampParser, parse_bool};

use sha2::{Digest, Sha256};

/// Errors from reading or checking definition files. Every variant names the file and, where
/// it applies, the field, so a user can fix the file without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: invalid TOML: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
    #[error(
        "contract for dataset '{dataset}' makes breaking changes ({changes}); \
         set `new_lineage = true` in the new contract to start a new lineage"
    )]
    Breaking { dataset: String, changes: String },
}

pub type Result<T, E = ContractError> = std::result::Result<T, E>;

/// Hex sha256 of bytes; the project's one notion of a content hash.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A short, stable identifier derived from a content hash: 16 hex digits (64 bits) are enough
/// to make accidental collisions between versions of one dataset negligible while keeping keys
/// readable.
pub fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())[..16].to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_matches_the_fips_180_test_vectors() {
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
