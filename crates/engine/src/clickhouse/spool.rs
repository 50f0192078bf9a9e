//! The node's insert spool: rows bound for ClickHouse, durable on this node until ClickHouse has
//! them.
//!
//! A write appends its encoded rows to a local write-ahead log (group commit: one `fdatasync`
//! for a batch of concurrent writes) and joins the pending batch of its table. A flusher sends
//! each table's pending rows as **one** `INSERT … FORMAT RowBinary` per batch window, never one
//! per request. When ClickHouse confirms, the writers that asked to wait are answered and the
//! log is truncated past the oldest row still unconfirmed (its LSN is kept in `checkpoint`).
//!
//! If ClickHouse is down or slow, rows stay pending and the flusher retries with back-off; the
//! server refuses new writes with 503 once the pending bytes pass its budget. A node restarted
//! with rows in its spool replays them. So an acknowledged row is never lost to a ClickHouse
//! restart; a crash between ClickHouse's confirmation and the checkpoint can insert a batch
//! twice (at least once, not exactly once — replicated tables deduplicate identical blocks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::client::{ChError, Client, codes};
use crate::wal::{Lsn, Wal, WalOptions};

/// Rows for one table and column list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    table: String,
    columns: Vec<String>,
}

#[derive(Default)]
struct Batch {
    /// When its first rows arrived.
    since: Option<std::time::Instant>,
    rows: Vec<u8>,
    count: u64,
    lsns: Vec<Lsn>,
    waiters: Vec<oneshot::Sender<Result<(), ChError>>>,
}

#[derive(Default)]
struct State {
    pending: BTreeMap<Target, Batch>,
    /// LSNs pending or being sent.
    unconfirmed: BTreeSet<Lsn>,
    /// The highest LSN applied.
    applied: Lsn,
}

/// Rows for one table, encoded as `RowBinary` for `columns`.
#[derive(Debug, Clone)]
pub struct Rows {
    /// The table.
    pub table: String,
    /// Its columns the rows hold, in order.
    pub columns: Vec<String>,
    /// How many rows.
    pub count: u64,
    /// The rows.
    pub bytes: Vec<u8>,
}

/// A write being prepared ([`Spool::arrival`]); it ends when dropped (or spooled).
pub struct Arrival<'a> {
    spool: &'a Spool,
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.spool.arriving.fetch_sub(1, Ordering::AcqRel);
        self.spool.wake.notify_one();
    }
}

/// The spool.
pub struct Spool {
    /// Writes being prepared.
    arriving: Arc<AtomicUsize>,
    dir: PathBuf,
    wal: Arc<Wal>,
    state: Arc<Mutex<State>>,
    /// Bytes pending or being sent.
    bytes: Arc<AtomicUsize>,
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<Notify>,
}

/// Spool settings.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// How long rows wait for others before their batch is sent.
    pub window: Duration,
    /// A batch is sent at once when it reaches this size.
    pub batch_bytes: usize,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions { window: Duration::from_millis(200), batch_bytes: 16 << 20 }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn encode(target: &Target, count: u64, rows: &[u8]) -> Vec<u8> {
    let header = serde_json::json!({"t": target.table, "c": target.columns, "n": count}).to_string();
    let mut out = Vec::with_capacity(4 + header.len() + rows.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(rows);
    out
}

fn decode(payload: &[u8]) -> std::io::Result<(Target, u64, &[u8])> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "damaged spool record");
    let len = u32::from_le_bytes(payload.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let header: serde_json::Value = serde_json::from_slice(payload.get(4..4 + len).ok_or_else(bad)?)?;
    let table = header["t"].as_str().ok_or_else(bad)?.to_string();
    let columns = header["c"]
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|c| c.as_str().map(str::to_string).ok_or_else(bad))
        .collect::<std::io::Result<Vec<_>>>()?;
    let count = header["n"].as_u64().ok_or_else(bad)?;
    Ok((Target { table, columns }, count, &payload[4 + len..]))
}

fn read_checkpoint(path: &Path) -> Lsn {
    std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}

fn write_checkpoint(path: &Path, lsn: Lsn) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, lsn.to_string())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Spool {
    /// Opens the spool in `dir`, replaying what ClickHouse has not confirmed, and starts its
    /// flusher on the current Tokio runtime.
    pub fn open(dir: &Path, client: Client, options: SpoolOptions, wal: WalOptions) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let checkpoint = read_checkpoint(&dir.join("checkpoint"));
        let state = Arc::new(Mutex::new(State { applied: checkpoint, ..State::default() }));
        let bytes = Arc::new(AtomicUsize::new(0));
        let replayed = {
            let state = state.clone();
            let bytes = bytes.clone();
            move |lsn: Lsn, payload: &[u8]| {
                let (target, count, rows) = decode(payload)?;
                let mut st = lock(&state);
                add(&mut st, target, count, rows, lsn, None);
                bytes.fetch_add(rows.len(), Ordering::Relaxed);
                Ok(())
            }
        };
        let wal = Arc::new(Wal::open(&dir.join("wal"), wal, checkpoint, replayed)?);
        let spool = Spool {
            arriving: Arc::new(AtomicUsize::new(0)),
            dir: dir.to_path_buf(),
            wal,
            state,
            bytes,
            wake: Arc::new(Notify::new()),
            stopping: Arc::new(AtomicBool::new(false)),
            stopped: Arc::new(Notify::new()),
        };
        let replayed_rows = lock(&spool.state).unconfirmed.len();
        if replayed_rows > 0 {
            tracing::info!(records = replayed_rows, "replaying the ClickHouse insert spool");
        }
        spool.start(client, options);
        Ok(spool)
    }

    fn start(&self, client: Client, options: SpoolOptions) {
        let flusher = Flusher {
            arriving: self.arriving.clone(),
            client,
            options,
            state: self.state.clone(),
            bytes: self.bytes.clone(),
            wake: self.wake.clone(),
            stopping: self.stopping.clone(),
            stopped: self.stopped.clone(),
            checkpoint: self.dir.join("checkpoint"),
            wal: self.wal.clone(),
        };
        tokio::spawn(flusher.run());
    }

    /// Announces a write being prepared (its rows are being converted): while any is, the
    /// flusher does not send early for writers waiting on it, since more rows are coming.
    pub fn arrival(&self) -> Arrival<'_> {
        self.arriving.fetch_add(1, Ordering::AcqRel);
        Arrival { spool: self }
    }

    /// Spools rows for one or more tables. Returns once they are durable on this node — and,
    /// with `wait`, once ClickHouse has all of them. Blocks: call it off the runtime's worker
    /// threads.
    pub fn append(&self, parts: Vec<Rows>, wait: bool, arrival: Arrival<'_>) -> crate::Result<()> {
        let mut answers = Vec::new();
        for part in parts.into_iter().filter(|p| p.count > 0) {
            let target = Target { table: part.table, columns: part.columns };
            let payload = encode(&target, part.count, &part.bytes);
            let (tx, rx) = oneshot::channel();
            let waiter = wait.then_some(tx);
            let state = self.state.clone();
            let size = part.bytes.len();
            let (count, rows) = (part.count, part.bytes);
            self.bytes.fetch_add(size, Ordering::Relaxed);
            let apply: crate::wal::Apply = Box::new(move |lsn| {
                let mut st = lock(&state);
                add(&mut st, target, count, &rows, lsn, waiter);
            });
            if let Err(e) = self.wal.append_then(payload, Some(apply)) {
                self.bytes.fetch_sub(size, Ordering::Relaxed);
                return Err(crate::Error::Wal(e));
            }
            answers.push(rx);
        }
        drop(arrival);
        self.wake.notify_one();
        if wait {
            for rx in answers {
                match tokio::runtime::Handle::current().block_on(rx) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(crate::Error::Query(e.message)),
                    Err(_) => return Err(crate::Error::Query("the insert spool stopped".into())),
                }
            }
        }
        Ok(())
    }

    /// The spool log's counters.
    pub fn wal_stats(&self) -> &crate::wal::WalStats {
        self.wal.stats()
    }

    /// Bytes spooled and not yet confirmed by ClickHouse.
    pub fn pending_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Sends everything pending now and waits (up to `deadline`) until ClickHouse has it.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let started = std::time::Instant::now();
        while self.pending_bytes() > 0 {
            if started.elapsed() > deadline {
                return false;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the flusher after a last drain (rows it could not send stay in the spool).
    pub async fn close(&self, deadline: Duration) {
        let drained = self.drain(deadline).await;
        if !drained {
            tracing::warn!(
                bytes = self.pending_bytes(),
                "ClickHouse has not confirmed every spooled row; they stay in the spool for the next start"
            );
        }
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.stopped.notified()).await;
        self.wal.close();
    }
}

fn add(
    st: &mut State,
    target: Target,
    count: u64,
    rows: &[u8],
    lsn: Lsn,
    waiter: Option<oneshot::Sender<Result<(), ChError>>>,
) {
    let batch = st.pending.entry(target).or_default();
    batch.since.get_or_insert_with(std::time::Instant::now);
    batch.rows.extend_from_slice(rows);
    batch.count += count;
    batch.lsns.push(lsn);
    batch.waiters.extend(waiter);
    st.unconfirmed.insert(lsn);
    st.applied = st.applied.max(lsn);
}

struct Flusher {
    arriving: Arc<AtomicUsize>,
    client: Client,
    options: SpoolOptions,
    state: Arc<Mutex<State>>,
    bytes: Arc<AtomicUsize>,
    wake: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    stopped: Arc<Notify>,
    checkpoint: PathBuf,
    wal: Arc<Wal>,
}

/// Inserts the server refuses for good: the rows can never land (their table is gone).
fn permanent(e: &ChError) -> bool {
    matches!(e.code, Some(codes::UNKNOWN_TABLE) | Some(16) | Some(81))
}

impl Flusher {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        let mut last_start = std::time::Instant::now() - self.options.window;
        loop {
            if self.stopping.load(Ordering::Acquire) {
                self.stopped.notify_waiters();
                self.stopped.notify_one();
                return;
            }
            let empty = lock(&self.state).pending.is_empty();
            if empty {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                continue;
            }
            // Rows wait at most one window from the first of them (rows that arrived during the
            // last insert have waited already). They go sooner when a batch is big, or when
            // writers are waiting for them and no other write is being prepared — but never
            // sooner than one window after the last insert began: one insert per window.
            let (big, oldest, waiters) = {
                let st = lock(&self.state);
                let big = st.pending.values().any(|b| b.rows.len() >= self.options.batch_bytes);
                let waiters = st.pending.values().any(|b| !b.waiters.is_empty());
                (big, st.pending.values().filter_map(|b| b.since).min(), waiters)
            };
            let now = std::time::Instant::now();
            let due = oldest.map_or(now, |o| o + self.options.window);
            let early = last_start + self.options.window;
            let idle = waiters && self.arriving.load(Ordering::Acquire) == 0;
            if !(big || now >= due || (idle && now >= early)) {
                let until = if idle { due.min(early) } else { due };
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = self.wake.notified() => {}
                }
                continue;
            }
            last_start = std::time::Instant::now();
            let batches = std::mem::take(&mut lock(&self.state).pending);
            let mut failed = Vec::new();
            for (target, batch) in batches {
                match self.client.insert(&target.table, &target.columns, "RowBinary", batch.rows.clone(), &[]).await {
                    Ok(()) => self.confirmed(batch, Ok(())),
                    Err(e) if permanent(&e) => {
                        tracing::error!(table = %target.table, rows = batch.count, error = %e, "ClickHouse refuses these rows for good; dropped");
                        self.confirmed(batch, Err(e));
                    }
                    Err(e) => {
                        tracing::warn!(table = %target.table, rows = batch.count, error = %e, retry_in = ?backoff, "insert into ClickHouse failed; the rows stay spooled");
                        failed.push((target, batch));
                    }
                }
            }
            if failed.is_empty() {
                backoff = Duration::from_millis(100);
            } else {
                // Failed batches go back in front of what arrived meanwhile.
                {
                    let mut st = lock(&self.state);
                    for (target, mut batch) in failed {
                        if let Some(newer) = st.pending.remove(&target) {
                            batch.since = batch.since.min(newer.since).or(batch.since);
                            batch.rows.extend_from_slice(&newer.rows);
                            batch.count += newer.count;
                            batch.lsns.extend(newer.lsns);
                            batch.waiters.extend(newer.waiters);
                        }
                        st.pending.insert(target, batch);
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    fn confirmed(&self, batch: Batch, outcome: Result<(), ChError>) {
        let through = {
            let mut st = lock(&self.state);
            for lsn in &batch.lsns {
                st.unconfirmed.remove(lsn);
            }
            match st.unconfirmed.first() {
                Some(oldest) => oldest - 1,
                None => st.applied,
            }
        };
        self.bytes.fetch_sub(batch.rows.len(), Ordering::Relaxed);
        for w in batch.waiters {
            let _ = w.send(outcome.clone());
        }
        if let Err(e) = write_checkpoint(&self.checkpoint, through) {
            tracing::error!(error = %e, "spool checkpoint not written; rows may be sent again after a restart");
            return;
        }
        if let Err(e) = self.wal.truncate_through(through) {
            tracing::warn!(error = %e, "spool segments not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = Target { table: "events".into(), columns: vec!["a".into(), "b".into()] };
        let payload = encode(&t, 3, b"xyz");
        let (back, count, rows) = decode(&payload).unwrap();
        assert_eq!((back, count, rows), (t, 3, &b"xyz"[..]));
        assert!(decode(b"\xff\xff\xff\xff").is_err());
    }
}
