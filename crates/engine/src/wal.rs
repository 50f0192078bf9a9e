//! The write-ahead log: every accepted write is appended here and made durable before it is
//! acknowledged, with **group commit** — concurrent writers share one `fdatasync` (spec
//! `design.md` decision 5).
//!
//! Layout: `wal/<first-seq>.wal` segments of records
//! `[len: u32][crc32(seq ‖ payload): u32][seq: u64][payload]`, little-endian. On open, segments
//! are replayed in order; a torn tail (a record cut by a crash, or whose checksum fails) ends the
//! log and is truncated, so everything acknowledged before it is kept and nothing half-written
//! is ever read.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A log sequence number: the position of a record in the log, starting at 1.
pub type Lsn = u64;

const HEADER: usize = 16;
/// Records larger than this are refused (a request body is far smaller).
const MAX_RECORD: usize = 256 << 20;

/// Tuning of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Start a new segment when the current one passes this size.
    pub segment_bytes: u64,
    /// How long the writer waits for more writers to join a group before syncing.
    pub group_wait: Duration,
    /// Most bytes written in one group.
    pub group_bytes: usize,
    /// Skip `fdatasync` (tests of logic only; never in production).
    pub no_sync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            group_wait: Duration::from_micros(200),
            group_bytes: 16 << 20,
            no_sync: false,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Records appended.
    pub records: AtomicU64,
    /// Group commits (each one `fdatasync`).
    pub syncs: AtomicU64,
    /// Bytes appended.
    pub bytes: AtomicU64,
}

/// What to do with a record once it is durable, run by the writer in LSN order.
pub type Apply = Box<dyn FnOnce(Lsn) + Send>;

struct Request {
    payload: Vec<u8>,
    apply: Option<Apply>,
    done: SyncSender<io::Result<Lsn>>,
}

/// An open write-ahead log.
pub struct Wal {
    tx: Mutex<Option<Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<WalStats>,
    dir: PathBuf,
    last_lsn: Arc<AtomicU64>,
}

fn segment_name(first: Lsn) -> String {
    format!("{first:020}.wal")
}

fn segments(dir: &Path) -> io::Result<Vec<(Lsn, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let Some(stem) = p.file_stem().and_then(|s| s.to_str()) else { continue };
        if p.extension().and_then(|e| e.to_str()) == Some("wal")
            && let Ok(first) = stem.parse::<Lsn>()
        {
            out.push((first, p));
        }
    }
    out.sort();
    Ok(out)
}

/// The whole records of a segment, and the byte length of that valid prefix.
struct Segment {
    records: Vec<(Lsn, Vec<u8>)>,
    valid: u64,
}

/// Reads every whole record of a segment; anything after the valid prefix is a torn tail.
fn read_segment(path: &Path) -> io::Result<Segment> {
    let mut r = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut valid = 0u64;
    loop {
        let mut header = [0u8; HEADER];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap_or_default());
        let seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        if len > MAX_RECORD {
            break;
        }
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).is_err() {
            break;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&header[8..16]);
        h.update(&payload);
        if h.finalize() != crc {
            break;
        }
        out.push((seq, payload));
        valid += (HEADER + len) as u64;
    }
    Ok(Segment { records: out, valid })
}

impl Wal {
    /// Opens (creating) the log in `dir`, calling `replay` for every durable record with an LSN
    /// above `after` in order, then starts the writer.
    pub fn open(
        dir: &Path,
        options: WalOptions,
        after: Lsn,
        mut replay: impl FnMut(Lsn, &[u8]) -> io::Result<()>,
    ) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        let mut last = after;
        let segs = segments(dir)?;
        let count = segs.len();
        for (i, (_, path)) in segs.iter().enumerate() {
            let Segment { records, valid } = read_segment(path)?;
            for (seq, payload) in &records {
                if *seq > after {
                    replay(*seq, payload)?;
                }
                last = last.max(*seq);
            }
            let len = std::fs::metadata(path)?.len();
            if valid < len {
                if i + 1 != count {
                    // A bad record in the middle of the log: later segments cannot be trusted to
                    // follow it. Refuse to guess.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is damaged at byte {valid} and is not the last segment", path.display()),
                    ));
                }
                let f = OpenOptions::new().write(true).open(path)?;
                f.set_len(valid)?;
                f.sync_all()?;
            }
        }
        let stats = Arc::new(WalStats::default());
        let last_lsn = Arc::new(AtomicU64::new(last));
        let (tx, rx) = mpsc::channel::<Request>();
        let writer = Writer::new(
            dir,
            options,
            last,
            segs.last().map(|(first, p)| (*first, p.clone())),
            stats.clone(),
            last_lsn.clone(),
        )?;
        let handle = std::thread::Builder::new().name("aviary-wal".into()).spawn(move || writer.run(rx))?;
        Ok(Wal { tx: Mutex::new(Some(tx)), writer: Mutex::new(Some(handle)), stats, dir: dir.to_path_buf(), last_lsn })
    }

    /// Appends one record and returns once it is durable (fsynced with its group).
    pub fn append(&self, payload: Vec<u8>) -> io::Result<Lsn> {
        self.append_then(payload, None)
    }

    /// Appends one record; once it is durable, `apply(lsn)` runs on the writer thread — in LSN
    /// order across all writers — before this call returns. A reader that takes what was
    /// applied therefore always sees a gap-free prefix of the log.
    pub fn append_then(&self, payload: Vec<u8>, apply: Option<Apply>) -> io::Result<Lsn> {
        if payload.len() > MAX_RECORD {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "WAL record too large"));
        }
        let (done, wait) = mpsc::sync_channel(1);
        {
            let tx = self.tx.lock().map_err(|_| io::Error::other("WAL lock poisoned"))?;
            let tx = tx.as_ref().ok_or_else(|| io::Error::other("WAL is closed"))?;
            tx.send(Request { payload, apply, done }).map_err(|_| io::Error::other("WAL writer stopped"))?;
        }
        wait.recv().map_err(|_| io::Error::other("WAL writer stopped"))?
    }

    /// Counters.
    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// The LSN of the last durable record.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn.load(Ordering::Acquire)
    }

    /// Deletes whole segments whose records are all at or below `lsn` (already in Parquet).
    pub fn truncate_through(&self, lsn: Lsn) -> io::Result<()> {
        let segs = segments(&self.dir)?;
        // A segment can go when the next one starts at or below lsn + 1.
        for pair in segs.windows(2) {
            if pair[1].0 <= lsn + 1 {
                std::fs::remove_file(&pair[0].1)?;
            }
        }
        Ok(())
    }

    /// Stops the writer after every queued record is durable.
    pub fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Ok(mut w) = self.writer.lock()
            && let Some(h) = w.take()
        {
            let _ = h.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

struct Writer {
    dir: PathBuf,
    options: WalOptions,
    file: File,
    size: u64,
    next: Lsn,
    stats: Arc<WalStats>,
    last_lsn: Arc<AtomicU64>,
}

impl Writer {
    fn new(
        dir: &Path,
        options: WalOptions,
        last: Lsn,
        current: Option<(Lsn, PathBuf)>,
        stats: Arc<WalStats>,
        last_lsn: Arc<AtomicU64>,
    ) -> io::Result<Self> {
        let path = match current {
            Some((_, p)) => p,
            None => dir.join(segment_name(last + 1)),
        };
        let mut file = OpenOptions::new().create(true).append(true).read(true).open(&path)?;
        let size = file.seek(SeekFrom::End(0))?;
        sync_dir(dir)?;
        Ok(Writer { dir: dir.to_path_buf(), options, file, size, next: last + 1, stats, last_lsn })
    }

    fn run(mut self, rx: Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            let mut bytes = group[0].payload.len();
            // Let concurrent writers join the group, bounded in time and size.
            let deadline = std::time::Instant::now() + self.options.group_wait;
            while bytes < self.options.group_bytes {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(r) => {
                        bytes += r.payload.len();
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            let result = self.commit(&group);
            for (i, r) in group.into_iter().enumerate() {
                let answer = match &result {
                    Ok(first) => {
                        if let Some(apply) = r.apply {
                            apply(first + i as u64);
                        }
                        Ok(first + i as u64)
                    }
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                let _ = r.done.send(answer);
            }
        }
        let _ = self.file.sync_data();
    }

    /// Writes a group and syncs once; returns the LSN of its first record.
    fn commit(&mut self, group: &[Request]) -> io::Result<Lsn> {
        if self.size >= self.options.segment_bytes {
            self.file.sync_data()?;
            let path = self.dir.join(segment_name(self.next));
            self.file = OpenOptions::new().create(true).append(true).read(true).open(&path)?;
            self.size = 0;
            sync_dir(&self.dir)?;
        }
        let first = self.next;
        let mut buf = Vec::with_capacity(group.iter().map(|r| r.payload.len() + HEADER).sum());
        for (i, r) in group.iter().enumerate() {
            let seq = first + i as u64;
            let seq_bytes = seq.to_le_bytes();
            let mut h = crc32fast::Hasher::new();
            h.update(&seq_bytes);
            h.update(&r.payload);
            buf.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&h.finalize().to_le_bytes());
            buf.extend_from_slice(&seq_bytes);
            buf.extend_from_slice(&r.payload);
        }
        if let Err(e) =
            self.file.write_all(&buf).and_then(|()| if self.options.no_sync { Ok(()) } else { self.file.sync_data() })
        {
            // Nothing of this group is acknowledged; cut back whatever part of it reached the file.
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += buf.len() as u64;
        self.next += group.len() as u64;
        self.stats.records.fetch_add(group.len() as u64, Ordering::Relaxed);
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.last_lsn.store(self.next - 1, Ordering::Release);
        Ok(first)
    }
}

/// Makes a directory's entries (a new segment) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aviary-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let dir = temp("reopen");
        {
            let wal = Wal::open(&dir, WalOptions::default(), 0, |_, _| Ok(())).unwrap();
            for i in 0..10u8 {
                assert_eq!(wal.append(vec![i; 10]).unwrap(), u64::from(i) + 1);
            }
        }
        let mut seen = Vec::new();
        let wal = Wal::open(&dir, WalOptions::default(), 3, |lsn, p| {
            seen.push((lsn, p[0]));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (4..=10).map(|l| (l, (l - 1) as u8)).collect::<Vec<_>>());
        assert_eq!(wal.append(vec![1]).unwrap(), 11);
        drop(wal);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_writers_share_syncs() {
        let dir = temp("group");
        let options = WalOptions { group_wait: Duration::from_millis(2), ..WalOptions::default() };
        let wal = Arc::new(Wal::open(&dir, options, 0, |_, _| Ok(())).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || (0..50).map(|i| wal.append(vec![t, i]).unwrap()).collect::<Vec<_>>())
            })
            .collect();
        let mut lsns: Vec<Lsn> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        lsns.sort();
        assert_eq!(lsns, (1..=400).collect::<Vec<_>>(), "every record has its own LSN");
        let syncs = wal.stats().syncs.load(Ordering::Relaxed);
        assert!(syncs < 400, "group commit: {syncs} syncs for 400 records");
        drop(wal);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_and_never_read() {
        let dir = temp("torn");
        {
            let wal = Wal::open(&dir, WalOptions::default(), 0, |_, _| Ok(())).unwrap();
            wal.append(b"one".to_vec()).unwrap();
            wal.append(b"two".to_vec()).unwrap();
        }
        let (_, seg) = segments(&dir).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap(); // a header cut by a crash
        drop(f);
        let mut seen = Vec::new();
        let wal = Wal::open(&dir, WalOptions::default(), 0, |lsn, p| {
            seen.push((lsn, p.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(1, b"one".to_vec()), (2, b"two".to_vec())]);
        assert_eq!(wal.append(b"three".to_vec()).unwrap(), 3);
        drop(wal);
        let mut again = Vec::new();
        Wal::open(&dir, WalOptions::default(), 0, |lsn, _| {
            again.push(lsn);
            Ok(())
        })
        .unwrap();
        assert_eq!(again, [1, 2, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn segments_rotate_and_old_ones_are_truncated() {
        let dir = temp("rotate");
        let options = WalOptions { segment_bytes: 64, ..WalOptions::default() };
        let wal = Wal::open(&dir, options.clone(), 0, |_, _| Ok(())).unwrap();
        for _ in 0..10 {
            wal.append(vec![0; 40]).unwrap();
        }
        assert!(segments(&dir).unwrap().len() > 3);
        wal.truncate_through(8).unwrap();
        drop(wal);
        let mut seen = Vec::new();
        Wal::open(&dir, options, 8, |lsn, _| {
            seen.push(lsn);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [9, 10]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
