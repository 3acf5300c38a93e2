//! The embedded online store: one redb file on local disk, the default for a laptop and the
//! local stack. Reads are a B-tree lookup plus a postcard decode (p50/p99 in the README).

use std::path::{Path, PathBuf};

use features::online::supersedes;
use features::{OnlineError, OnlineRecord, OnlineStore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

fn backend(e: impl std::fmt::Display) -> OnlineError {
    OnlineError::Backend(e.to_string())
}

pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store file. One process holds it at a time.
    pub fn open(path: &Path) -> Result<EmbeddedStore, OnlineError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| backend(format!("{}: {e}", path.display())))?;
        Ok(EmbeddedStore {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Synchronous read: what the async trait method does, without a runtime.
    pub fn get(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        let key = OnlineRecord::key(view, entity);
        match table.get(key.as_str()).map_err(backend)? {
            Some(bytes) => OnlineRecord::decode(bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Writes all records in one transaction, keeping newer existing ones.
    pub fn put(&self, records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        let txn = self.db.begin_write().map_err(backend)?;
        let mut written = 0;
        {
            let mut table = txn.open_table(RECORDS).map_err(backend)?;
            for record in records {
                let key = OnlineRecord::key(&record.view, &record.entity);
                let keep_old = match table.get(key.as_str()).map_err(backend)? {
                    Some(old) => match OnlineRecord::decode(old.value()) {
                        Ok(old) => !supersedes(record, &old),
                        Err(_) => false,
                    },
                    None => false,
                };
                if keep_old {
                    continue;
                }
                let bytes = record.encode()?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(backend)?;
                written += 1;
            }
        }
        txn.commit().map_err(backend)?;
        Ok(written)
    }

    /// Number of records of `view`.
    pub fn count(&self, view: &str) -> Result<usize, OnlineError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(backend(e)),
        };
        let prefix = format!("{view}#");
        let mut n = 0;
        for item in table.range(prefix.as_str()..).map_err(backend)? {
            let (k, _) = item.map_err(backend)?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }
}

impl OnlineStore for EmbeddedStore {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        self.get(view, entity)
    }

    async fn write(&self, records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        self.put(records)
    }
}
