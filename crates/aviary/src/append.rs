//! `aviary append <datasource> <file>`: streams a local CSV, NDJSON or Parquet file in chunks
//! into a running server, or straight into a data directory no server has open
//! (`--data-dir`), with a progress bar (rows, MB/s, ETA), and reports quarantined rows as it
//! goes — the way history is loaded before going live.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

/// `aviary append` settings.
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The data source to append to.
    pub datasource: String,
    /// A `.csv`, `.ndjson` or `.parquet` file (`.jsonl` and `.json` count as NDJSON).
    pub file: PathBuf,
    /// The server's base URL.
    #[arg(long, env = "AVIARY_HOST", default_value = "http://127.0.0.1:7181")]
    pub host: String,
    /// A token that may append to the data source (required with a server).
    #[arg(long, env = "AVIARY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Write into this data directory instead of a server (no server may have it open; rows
    /// are durable when the command ends).
    #[arg(long, conflicts_with = "host")]
    pub data_dir: Option<PathBuf>,
    /// Bytes per request.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub chunk_bytes: usize,
    /// Retries per chunk on 429/503 or a connection error (with backoff).
    #[arg(long, default_value_t = 8)]
    pub retries: u32,
}

#[derive(Debug, Default)]
struct Totals {
    rows: u64,
    quarantined: u64,
    bytes: u64,
}

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
    Parquet,
}

/// Where chunks go.
enum Target {
    Server { client: reqwest::blocking::Client, host: String, token: String, retries: u32 },
    Dir(engine::workspace::Workspace),
}

impl Target {
    fn new(args: &AppendArgs) -> Result<Target> {
        if let Some(dir) = &args.data_dir {
            if !dir.join("manifest.json").exists() {
                bail!("{} is not an Aviary data directory", dir.display());
            }
            let ws = engine::workspace::Workspace::open(dir, Default::default())?;
            if ws.datasource(&args.datasource).is_none() {
                bail!("Data Source '{}' does not exist in {}", args.datasource, dir.display());
            }
            return Ok(Target::Dir(ws));
        }
        let Some(token) = args.token.clone() else {
            bail!("a token is needed to append through a server (--token or AVIARY_TOKEN)");
        };
        Ok(Target::Server {
            client: http_client()?,
            host: args.host.trim_end_matches('/').to_string(),
            token,
            retries: args.retries,
        })
    }

    /// Loads one chunk; returns (stored rows, quarantined rows).
    fn load(&self, datasource: &str, body: &[u8], format: Format) -> Result<(u64, u64)> {
        match self {
            Target::Server { client, host, token, retries } => {
                let url = match format {
                    Format::Ndjson => format!("{host}/v0/events?name={datasource}&wait=true"),
                    Format::Csv => format!("{host}/v0/datasources?mode=append&format=csv&name={datasource}"),
                    Format::Parquet => format!("{host}/v0/datasources?mode=append&format=parquet&name={datasource}"),
                };
                send(client, &url, token, body, format == Format::Ndjson, *retries)
            }
            Target::Dir(ws) => {
                let id = uuid::Uuid::new_v4().to_string();
                let text = || std::str::from_utf8(body).context("the file is not UTF-8");
                let done = match format {
                    Format::Ndjson => ws.ingest_ndjson(datasource, text()?, &id)?,
                    Format::Csv => ws.ingest_csv(datasource, text()?, b',', &id)?,
                    Format::Parquet => {
                        ws.load_parquet(datasource, body.to_vec(), engine::workspace::LoadMode::Append)?
                    }
                };
                Ok((done.successful_rows, done.quarantined_rows))
            }
        }
    }

    /// Makes everything durable and compact before the command ends.
    fn finish(self) -> Result<()> {
        if let Target::Dir(ws) = self {
            ws.flush()?;
        }
        Ok(())
    }
}

pub fn run(args: &AppendArgs) -> Result<ExitCode> {
    let ext = args.file.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let format = match ext.as_str() {
        "ndjson" | "jsonl" | "json" => Format::Ndjson,
        "csv" => Format::Csv,
        "parquet" => Format::Parquet,
        other => bail!("unsupported file type '.{other}': use .csv, .ndjson or .parquet"),
    };
    let target = Target::new(args)?;
    if format == Format::Parquet {
        return run_parquet(args, target);
    }
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    let reader = BufReader::new(File::open(&args.file)?);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut chunk = String::with_capacity(args.chunk_bytes + 4096);
    let mut lines = reader.lines();
    loop {
        chunk.clear();
        let mut eof = false;
        while chunk.len() < args.chunk_bytes {
            match lines.next() {
                Some(line) => {
                    chunk.push_str(&line?);
                    chunk.push('\n');
                }
                None => {
                    eof = true;
                    break;
                }
            }
        }
        if !chunk.trim().is_empty() {
            let (ok, bad) = target.load(&args.datasource, chunk.as_bytes(), format)?;
            totals.add(ok, bad, chunk.len(), &bar, &args.datasource);
            bar.set_position(totals.bytes.min(size));
            bar.set_message(format!("{} rows, {} quarantined", totals.rows, totals.quarantined));
        }
        if eof {
            break;
        }
    }
    target.finish()?;
    Ok(totals.finish(&bar, started, &args.datasource))
}

/// Parquet: read in batches of about `chunk_bytes` (by the file's average row size), each sent as
/// a Parquet file of its own to `/v0/datasources?mode=append&format=parquet`.
fn run_parquet(args: &AppendArgs, target: Target) -> Result<ExitCode> {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::WriterProperties;

    let file = File::open(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let size = file.metadata()?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).context("not a Parquet file")?;
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let row_bytes = (size / rows.max(1)).max(1);
    let batch_rows = usize::try_from((args.chunk_bytes as u64 / row_bytes).max(1)).unwrap_or(usize::MAX);
    let reader = builder.with_batch_size(batch_rows).build()?;
    let bar = ProgressBar::new(rows);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut totals = Totals::default();
    let props = WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    for batch in reader {
        let batch = batch.context("reading the Parquet file")?;
        let mut body = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut body, batch.schema(), Some(props.clone()))?;
        writer.write(&batch)?;
        writer.close()?;
        let (ok, bad) = target.load(&args.datasource, &body, Format::Parquet)?;
        totals.add(ok, bad, body.len(), &bar, &args.datasource);
        bar.set_position(totals.rows + totals.quarantined);
    }
    target.finish()?;
    Ok(totals.finish(&bar, started, &args.datasource))
}

fn http_client() -> Result<reqwest::blocking::Client> {
    Ok(reqwest::blocking::Client::builder().timeout(Duration::from_secs(300)).build()?)
}

impl Totals {
    /// Counts one acknowledged chunk and reports its quarantined rows.
    fn add(&mut self, ok: u64, bad: u64, bytes: usize, bar: &ProgressBar, datasource: &str) {
        self.rows += ok;
        self.quarantined += bad;
        self.bytes += bytes as u64;
        if bad > 0 {
            bar.println(format!(
                "{bad} row(s) of this chunk went to {datasource}_quarantine (SELECT * FROM {datasource}_quarantine to see why)"
            ));
        }
        bar.set_message(format!("{} rows, {} quarantined", self.rows, self.quarantined));
    }

    /// Prints the summary; exit code 3 when rows were quarantined.
    fn finish(self, bar: &ProgressBar, started: Instant, datasource: &str) -> ExitCode {
        let totals = self;
        bar.finish_and_clear();
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        println!(
            "{} rows appended to {}, {} quarantined, {:.1} MB in {:.1} s ({:.1} MB/s, {:.0} rows/s)",
            totals.rows,
            datasource,
            totals.quarantined,
            totals.bytes as f64 / 1e6,
            secs,
            totals.bytes as f64 / 1e6 / secs,
            (totals.rows + totals.quarantined) as f64 / secs
        );
        if totals.quarantined > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS }
    }
}

/// Sends one chunk; returns (stored rows, quarantined rows). Retries 429/503 and connection
/// errors with exponential backoff; any other error stops the load.
fn send(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    body: &[u8],
    ndjson: bool,
    retries: u32,
) -> Result<(u64, u64)> {
    let mut delay = Duration::from_millis(200);
    for attempt in 0..=retries {
        let result = client.post(url).bearer_auth(token).body(body.to_vec()).send();
        match result {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().context("the server's answer is not JSON")?;
                return Ok(if ndjson {
                    (v["successful_rows"].as_u64().unwrap_or(0), v["quarantined_rows"].as_u64().unwrap_or(0))
                } else {
                    let lines = v["blocks"][0]["process_return"][0]["lines"].as_u64().unwrap_or(0);
                    let bad = v["quarantine_rows"].as_u64().unwrap_or(0);
                    (lines.saturating_sub(bad), bad)
                });
            }
            Ok(r) if (r.status().as_u16() == 429 || r.status().as_u16() == 503) && attempt < retries => {}
            Ok(r) => {
                let status = r.status();
                bail!("the server refused a chunk: {status} {}", r.text().unwrap_or_default().trim());
            }
            Err(e) if attempt < retries => eprintln!("retrying after: {e}"),
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    bail!("gave up after {retries} retries")
}
