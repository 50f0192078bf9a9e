//! The data directory: appends are durable and visible, flushes write sorted parts per
//! partition, a reopen replays exactly what was not yet in Parquet.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use datafiles::{Project, SourceFile};
use engine::embedded::store::{Store, TableDef};
use engine::ingest::arrow::batch;
use engine::ingest::rows::RowConverter;
use engine::wal::WalOptions;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("aviary-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn events() -> (TableDef, RowConverter) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/web-analytics/datasources/events.datasource"
    ))
    .unwrap();
    let p = Project::from_files(vec![SourceFile { path: "events.datasource".into(), text }]).unwrap();
    let ds = &p.datasources[0];
    let def = TableDef {
        name: "events".into(),
        columns: ds.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect(),
        sorting_key: vec!["org".into(), "timestamp".into()],
        partition_key: ds.engine.partition_key.clone(),
        ttl: ds.engine.ttl.clone(),
    };
    (def, RowConverter::new(ds).unwrap())
}

fn rows(conv: &RowConverter, def: &TableDef, lines: &[String]) -> RecordBatch {
    let cells: Vec<_> = lines.iter().map(|l| conv.convert(l, 0).unwrap()).collect();
    batch(&def.columns, &cells).unwrap()
}

fn event(org: &str, i: usize, month: u32) -> String {
    format!(
        r#"{{"timestamp":"2026-{month:02}-01 10:00:{:02}.000","org":"{org}","user":"u{i}","event":"page_view","path":"/p{i}","country":"ES","duration_ms":{i},"tags":["t{i}"]}}"#,
        i % 60
    )
}

fn count(store: &Store) -> usize {
    store.scan("events").unwrap().iter().map(RecordBatch::num_rows).sum()
}

#[test]
fn appends_are_visible_flushed_and_replayed() {
    let dir = temp("cycle");
    let (def, conv) = events();
    {
        let store = Store::open(&dir, WalOptions::default()).unwrap();
        store.create_table(&def).unwrap();
        store.create_table(&def).unwrap(); // the same definition again is a no-op
        let lines: Vec<String> =
            (0..100).map(|i| event(if i % 2 == 0 { "b" } else { "a" }, i, 10 + (i % 2) as u32)).collect();
        store.append("events", rows(&conv, &def, &lines)).unwrap();
        assert_eq!(count(&store), 100);
        assert_eq!(store.flush().unwrap(), 100);
        let parts = store.parts("events").unwrap();
        assert_eq!(parts.iter().map(|p| p.partition.as_str()).collect::<Vec<_>>(), ["202610", "202611"]);
        assert_eq!(count(&store), 100);
        // More rows after the flush stay in the WAL only.
        store.append("events", rows(&conv, &def, &[event("c", 1, 12)])).unwrap();
        assert_eq!(store.stats("events").unwrap().rows, 101);
    }
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(count(&store), 101, "parts plus the replayed WAL, each row once");
    // Parts are sorted by the sorting key.
    let first =
        engine::embedded::part::read(&dir.join("tables/events").join(&store.parts("events").unwrap()[0].file)).unwrap();
    let orgs = arrow_cast_strings(&first[0], "org");
    let mut sorted = orgs.clone();
    sorted.sort();
    assert_eq!(orgs, sorted);
    store.truncate("events").unwrap();
    assert_eq!(count(&store), 0);
    drop(store);
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(count(&store), 0, "a truncate survives a reopen");
    assert!(store.parts("events").unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flush_of_many_batches_writes_one_sorted_part_per_partition() {
    let dir = temp("many-batches");
    let (def, conv) = events();
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    store.create_table(&def).unwrap();
    let orgs = ["d", "b", "a", "c"];
    for b in 0..5 {
        let lines: Vec<String> =
            (0..40).map(|i| event(orgs[(i + b) % 4], (59 - i) + b, 10 + ((i + b) % 2) as u32)).collect();
        store.append("events", rows(&conv, &def, &lines)).unwrap();
    }
    assert_eq!(store.flush().unwrap(), 200);
    let parts = store.parts("events").unwrap();
    assert_eq!(
        parts.iter().map(|p| (p.partition.as_str(), p.rows)).collect::<Vec<_>>(),
        [("202610", 100), ("202611", 100)]
    );
    for p in &parts {
        let batches = engine::embedded::part::read(&dir.join("tables/events").join(&p.file)).unwrap();
        let b = &batches[0];
        let orgs = arrow_cast_strings(b, "org");
        let ts = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::TimestampMillisecondType>(
            b.column_by_name("timestamp").unwrap().as_ref(),
        );
        let keys: Vec<(String, i64)> = orgs.into_iter().zip(ts.values().iter().copied()).collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted by (org, timestamp): {keys:?}");
        let month = &p.partition[4..];
        let stamps = arrow_cast::display::ArrayFormatter::try_new(ts, &Default::default()).unwrap();
        assert!((0..b.num_rows()).all(|i| stamps.value(i).to_string()[5..7] == *month), "rows in their partition");
    }
    assert_eq!(count(&store), 200);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn arrow_cast_strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let c = b.column_by_name(col).unwrap();
    let d = arrow_array::cast::AsArray::as_dictionary::<arrow_array::types::Int32Type>(c.as_ref());
    let values = arrow_array::cast::AsArray::as_string::<i32>(d.values().as_ref());
    d.keys().iter().map(|k| values.value(k.unwrap() as usize).to_string()).collect()
}

#[test]
fn concurrent_appends_survive_reopen_exactly_once() {
    let dir = temp("concurrent");
    let (def, conv) = events();
    let def = Arc::new(def);
    let conv = Arc::new(conv);
    {
        let store = Arc::new(Store::open(&dir, WalOptions::default()).unwrap());
        store.create_table(&def).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (store, def, conv) = (store.clone(), def.clone(), conv.clone());
                std::thread::spawn(move || {
                    for b in 0..25 {
                        let lines: Vec<String> = (0..10).map(|i| event(&format!("org{t}"), b * 10 + i, 11)).collect();
                        store.append("events", rows(&conv, &def, &lines)).unwrap();
                        if t == 0 && b == 12 {
                            store.flush().unwrap();
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count(&store), 1000);
        let wal = store.wal().stats();
        let syncs = wal.syncs.load(std::sync::atomic::Ordering::Relaxed);
        assert!(syncs <= 100, "{syncs} syncs for 100 appends");
    }
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    let all = store.scan("events").unwrap();
    let mut users: Vec<String> = Vec::new();
    for b in &all {
        let orgs = arrow_cast_strings(b, "org");
        let u = arrow_array::cast::AsArray::as_string::<i32>(b.column_by_name("user").unwrap().as_ref());
        for (i, o) in orgs.iter().enumerate() {
            users.push(format!("{o}/{}", u.value(i)));
        }
    }
    users.sort();
    let before = users.len();
    users.dedup();
    assert_eq!((before, users.len()), (1000, 1000), "every acknowledged row exactly once");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn row_groups_let_one_tenant_skip_the_others() {
    let dir = temp("stats");
    let (def, conv) = events();
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    store.create_table(&def).unwrap();
    let lines: Vec<String> = (0..200_000).map(|i| event(&format!("org{:02}", i % 10), i, 11)).collect();
    store.append("events", rows(&conv, &def, &lines)).unwrap();
    store.flush().unwrap();
    let part = &store.parts("events").unwrap()[0];
    let file = std::fs::File::open(dir.join("tables/events").join(&part.file)).unwrap();
    let meta = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(&meta);
    assert!(meta.num_row_groups() >= 3);
    let org_col = meta.file_metadata().schema_descr().columns().iter().position(|c| c.name() == "org").unwrap();
    // A query for one tenant only needs the row groups whose [min, max] of `org` holds it.
    let tenant = b"org05".to_vec();
    let may_hold = meta
        .row_groups()
        .iter()
        .filter(|rg| {
            let stats = rg.column(org_col).statistics().expect("statistics");
            let (min, max) = (stats.min_bytes_opt().unwrap(), stats.max_bytes_opt().unwrap());
            min <= tenant.as_slice() && tenant.as_slice() <= max
        })
        .count();
    assert!(may_hold <= 2, "{may_hold} of {} row groups may hold org05", meta.num_row_groups());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Regression (found by the kill -9 crash test): while a flush wrote the buffers to Parquet,
/// the rows were neither in the buffer nor yet in the manifest, so a query saw them vanish.
#[test]
fn rows_stay_visible_while_a_flush_writes_them() {
    let dir = temp("visible");
    let (def, conv) = events();
    let store = Arc::new(Store::open(&dir, WalOptions::default()).unwrap());
    store.create_table(&def).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.flush().unwrap();
            }
        })
    };
    let mut expected = 0;
    for b in 0..40 {
        let lines: Vec<String> = (0..25).map(|i| event("a", b * 25 + i, 11)).collect();
        store.append("events", rows(&conv, &def, &lines)).unwrap();
        expected += 25;
        for _ in 0..3 {
            assert_eq!(count(&store), expected, "a query during a flush lost rows");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flusher.join().unwrap();
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dropped_table_never_comes_back_on_replay() {
    let dir = temp("drop");
    let (def, conv) = events();
    {
        let store = Store::open(&dir, WalOptions::default()).unwrap();
        store.create_table(&def).unwrap();
        store.append("events", rows(&conv, &def, &[event("a", 1, 11), event("a", 2, 11)])).unwrap();
        store.flush().unwrap();
        store.append("events", rows(&conv, &def, &[event("a", 3, 11)])).unwrap();
        store.drop_table("events").unwrap();
        assert!(store.scan("events").is_err());
        store.create_table(&def).unwrap();
        store.append("events", rows(&conv, &def, &[event("b", 4, 11)])).unwrap();
        assert_eq!(count(&store), 1);
    }
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(count(&store), 1, "only the rows appended after the drop");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn maintenance_merges_small_parts_and_applies_the_ttl() {
    let dir = temp("maintain");
    let (def, conv) = events();
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    store.create_table(&def).unwrap();
    for b in 0..6 {
        let lines: Vec<String> = (0..10).map(|i| event(if i % 2 == 0 { "a" } else { "b" }, b * 10 + i, 11)).collect();
        store.append("events", rows(&conv, &def, &lines)).unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.parts("events").unwrap().len(), 6);
    // 2026-11-02: nothing is older than the 365-day TTL yet; six parts of one partition merge.
    let now = 1_793_577_600;
    assert_eq!(store.maintain(now, 4).unwrap(), 6);
    let parts = store.parts("events").unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].rows, 60);
    assert_eq!(count(&store), 60);
    let merged = engine::embedded::part::read(&dir.join("tables/events").join(&parts[0].file)).unwrap();
    let orgs = arrow_cast_strings(&merged[0], "org");
    assert!(orgs.windows(2).all(|w| w[0] <= w[1]), "the merged part is sorted");
    // A year and a day later every row has expired: the part goes away.
    assert_eq!(store.maintain(now + 366 * 86_400, 4).unwrap(), 1);
    assert!(store.parts("events").unwrap().is_empty());
    assert_eq!(count(&store), 0);
    drop(store);
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    assert_eq!(count(&store), 0, "expired rows stay gone after a reopen");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merges_stream_parts_larger_than_a_batch_and_keep_the_order() {
    let dir = temp("stream-merge");
    let (def, conv) = events();
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    store.create_table(&def).unwrap();
    // Four parts of 20,000 rows, every org in each: the merge interleaves them, across the
    // readers' 8,192-row batches and into more than one 65,536-row group.
    for part in 0..4 {
        let lines: Vec<String> = (0..20_000).map(|i| event(&format!("o{}", i % 7), part * 20_000 + i, 11)).collect();
        store.append("events", rows(&conv, &def, &lines)).unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.parts("events").unwrap().len(), 4);
    assert_eq!(store.maintain(1_793_577_600, 0).unwrap(), 4);
    let parts = store.parts("events").unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].rows, 80_000);
    let merged = engine::embedded::part::read(&dir.join("tables/events").join(&parts[0].file)).unwrap();
    let mut keys: Vec<(String, i64)> = Vec::new();
    let mut users = std::collections::HashSet::new();
    for b in &merged {
        let times = arrow_cast::cast(b.column_by_name("timestamp").unwrap(), &arrow_schema::DataType::Int64).unwrap();
        let times = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(times.as_ref());
        let users_col = arrow_array::cast::AsArray::as_string::<i32>(b.column_by_name("user").unwrap().as_ref());
        for (i, org) in arrow_cast_strings(b, "org").into_iter().enumerate() {
            keys.push((org, times.value(i)));
            users.insert(users_col.value(i).to_string());
        }
    }
    assert_eq!(keys.len(), 80_000);
    assert_eq!(users.len(), 80_000, "every row once");
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "sorted by (org, timestamp) across the whole part");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn renamed_tables_keep_their_rows_across_replays() {
    let dir = temp("rename");
    let (def, conv) = events();
    {
        let store = Store::open(&dir, WalOptions::default()).unwrap();
        store.create_table(&def).unwrap();
        store.append("events", rows(&conv, &def, &[event("a", 1, 11), event("a", 2, 11)])).unwrap();
        store.flush().unwrap();
        store.append("events", rows(&conv, &def, &[event("a", 3, 11)])).unwrap(); // only in the WAL
        store.rename_tables(&[("events".into(), "visits".into())]).unwrap();
        assert!(store.scan("events").is_err());
        store.append("visits", rows(&conv, &def, &[event("b", 4, 11)])).unwrap();
        // A new table takes the old name; records of both names follow.
        store.create_table(&def).unwrap();
        store.append("events", rows(&conv, &def, &[event("c", 5, 11)])).unwrap();
        assert!(store.rename_tables(&[("visits".into(), "events".into())]).is_err(), "the name is taken");
        assert_eq!(store.scan("visits").unwrap().iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
        // Renamed before any flush: its create and appends are replayed under the old name.
        let early = TableDef { name: "early".into(), ..def.clone() };
        store.create_table(&early).unwrap();
        store.append("early", rows(&conv, &def, &[event("d", 6, 11), event("d", 7, 11)])).unwrap();
        store.rename_tables(&[("early".into(), "late".into())]).unwrap();
        store.append("late", rows(&conv, &def, &[event("d", 8, 11)])).unwrap();
    }
    for round in 0..2 {
        let store = Store::open(&dir, WalOptions::default()).unwrap();
        let n = |t: &str| store.scan(t).unwrap().iter().map(RecordBatch::num_rows).sum::<usize>();
        assert_eq!(n("visits"), 4, "round {round}: the parts and every logged row moved with the rename");
        assert_eq!(n("events"), 1, "round {round}: the new table has only its own row");
        assert!(dir.join("tables/visits").exists());
        assert_eq!(n("late"), 3, "round {round}: rows logged before and after the rename");
        assert!(store.scan("early").is_err(), "round {round}: no table comes back under the old name");
        store.flush().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_data_directory_is_opened_by_one_process_at_a_time() {
    let dir = temp("lock");
    let store = Store::open(&dir, WalOptions::default()).unwrap();
    let Err(err) = Store::open(&dir, WalOptions::default()) else { panic!("opened twice") };
    assert!(err.to_string().contains("is in use by another process"), "{err}");
    drop(store);
    Store::open(&dir, WalOptions::default()).expect("free again once closed");
    std::fs::remove_dir_all(&dir).unwrap();
}
