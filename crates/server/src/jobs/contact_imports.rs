//! Processing contact imports in the background: each queued import is claimed for [`LEASE`] and its CSV
//! read from the database one stored piece at a time (never the whole file), parsed, and written
//! [`BATCH_ROWS`] rows per transaction (`ContactImports::apply_batch`). Rows already written by an earlier
//! owner are skipped, so an import taken over after a crash goes on where it stopped.
//!
//! Parsing is synchronous (the `csv` crate), so it runs on a blocking thread that fetches pieces and writes
//! batches through the runtime's handle.

use std::io::Read;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opensend_store::repos::contact_imports::{ClaimedImport, ImportBatch, ImportRules};
use opensend_store::{Store, StoreError};
use tokio::runtime::Handle;

use crate::contact_import::{self, BATCH_ROWS, ImportOptions};
use crate::jobs::claim_loop::{ClaimLoop, LeasedWork, Pace};
use crate::state::AppState;

/// How long a claimed import is left to its worker (extended by every batch).
pub const LEASE: TimeDelta = TimeDelta::minutes(5);
/// Imports processed at once by one process.
const CONCURRENCY: usize = 2;

pub struct ContactImportWork {
    state: AppState,
}

impl ContactImportWork {
    pub fn new(state: AppState) -> ClaimLoop<Self> {
        ClaimLoop::new(Self { state })
    }
}

impl LeasedWork for ContactImportWork {
    type Item = ClaimedImport;

    fn kind(&self) -> &'static str {
        "contact-imports"
    }

    fn pace(&self) -> Pace {
        Pace::new(
            CONCURRENCY,
            self.state
                .config
                .delivery
                .worker
                .poll_interval
                .max(Duration::from_millis(50)),
        )
    }

    async fn claim(&self, owner: &str, limit: usize) -> Result<Vec<ClaimedImport>, StoreError> {
        self.state
            .store
            .contact_imports()
            .claim(owner, limit as u64, LEASE)
            .await
    }

    async fn process(&self, owner: &str, import: ClaimedImport) {
        let store = self.state.store.clone();
        let owner = owner.to_owned();
        let handle = Handle::current();
        let id = import.id;
        let outcome =
            tokio::task::spawn_blocking(move || run(&handle, &store, &owner, &import)).await;
        match outcome {
            Ok(Ok(())) => {}
            // The lease brings the import back to a worker later.
            Ok(Err(e)) => tracing::warn!(import_id = %id, error = %e, "contact import interrupted"),
            Err(e) => tracing::error!(import_id = %id, error = %e, "contact import panicked"),
        }
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        self.state
            .store
            .contact_imports()
            .next_due()
            .await
            .ok()
            .flatten()
    }
}

/// Runs one pass over every due import (`POST /jobs/import-contacts`, and tests).
pub async fn run_due(state: &AppState, limit: usize) -> Result<usize, StoreError> {
    ClaimLoop::new(ContactImportWork {
        state: state.clone(),
    })
    .run_rounds(limit)
    .await
}

/// The stored pieces of an import's file, read in order as one stream.
struct Pieces<'a> {
    handle: &'a Handle,
    store: &'a Store,
    import_id: uuid::Uuid,
    next: i32,
    piece: Vec<u8>,
    at: usize,
    done: bool,
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.piece.len() {
            if self.done {
                return Ok(0);
            }
            let piece = self
                .handle
                .block_on(
                    self.store
                        .contact_imports()
                        .chunk(self.import_id, self.next),
                )
                .map_err(std::io::Error::other)?;
            match piece {
                Some(piece) => {
                    self.piece = piece;
                    self.at = 0;
                    self.next += 1;
                }
                None => self.done = true,
            }
        }
        let n = out.len().min(self.piece.len() - self.at);
        out[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn run(
    handle: &Handle,
    store: &Store,
    owner: &str,
    import: &ClaimedImport,
) -> Result<(), StoreError> {
    let imports = store.contact_imports();
    let fail = |why: String| handle.block_on(imports.finish(import.id, owner, Some(&why)));
    let options: ImportOptions = match serde_json::from_str(&import.options) {
        Ok(options) => options,
        Err(e) => return fail(format!("the import's options cannot be read: {e}")),
    };
    let rules = ImportRules {
        upsert: options.upsert,
        segments: options.segments.clone(),
        topics: options.topics.clone(),
    };
    let pieces = Pieces {
        handle,
        store,
        import_id: import.id,
        next: 0,
        piece: Vec::new(),
        at: 0,
        done: false,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(pieces);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => return fail(format!("the file is not CSV: {e}")),
    };
    let layout = match contact_import::layout(&options.columns, &header) {
        Ok(layout) => layout,
        Err(why) => return fail(why),
    };
    let mut batch = ImportBatch {
        rows_done: import.rows_done,
        ..ImportBatch::default()
    };
    let mut seen: i64 = 0;
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() as i64;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                seen += 1;
                if seen <= import.rows_done {
                    continue;
                }
                let line = record.position().map_or(line, |p| p.line() as i64);
                match contact_import::row(&layout, &record) {
                    Ok(row) => batch.rows.push(row),
                    Err(why) => batch.errors.push((line, why)),
                }
            }
            Err(e) => {
                if let csv::ErrorKind::Io(io) = e.kind() {
                    return Err(StoreError::Corrupt(format!(
                        "reading the import's file: {io}"
                    )));
                }
                seen += 1;
                if seen <= import.rows_done {
                    continue;
                }
                let line = e.position().map_or(line, |p| p.line() as i64);
                batch.errors.push((line, format!("unreadable row: {e}")));
            }
        }
        batch.rows_done = seen;
        if batch.rows.len() + batch.errors.len() >= BATCH_ROWS {
            if !handle.block_on(imports.apply_batch(import, owner, LEASE, &rules, &batch))? {
                return Ok(());
            }
            batch.rows.clear();
            batch.errors.clear();
        }
    }
    batch.rows_done = seen.max(import.rows_done);
    if !handle.block_on(imports.apply_batch(import, owner, LEASE, &rules, &batch))? {
        return Ok(());
    }
    handle.block_on(imports.finish(import.id, owner, None))
}
