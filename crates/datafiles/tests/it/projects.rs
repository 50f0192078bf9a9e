//! Whole projects: the example loads; each kind of mistake is reported with file and line.

use std::path::{Path, PathBuf};

use datafiles::{ChType, EngineKind, Error, NodeKind, PathStep, Project, Severity, SourceFile};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/web-analytics")
}

fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
    list.iter().map(|(p, t)| SourceFile { path: PathBuf::from(p), text: t.to_string() }).collect()
}

/// The error lines of a project that must not load, as `path:line: error: message`.
fn errors(list: &[(&str, &str)]) -> Vec<String> {
    match Project::from_files(files(list)) {
        Ok(_) => panic!("the project loaded"),
        Err(Error::Invalid(d)) => d.iter().filter(|d| d.severity == Severity::Error).map(|d| d.to_string()).collect(),
        Err(e) => panic!("{e}"),
    }
}

const EVENTS: &str = "SCHEMA >\n    `timestamp` DateTime `json:$.timestamp`,\n    `org` String `json:$.org`\n\nENGINE_SORTING_KEY org, timestamp\nTENANT_KEY org\n";

#[test]
fn the_example_project_loads() {
    let p = Project::load(&example()).unwrap();
    let events = p.datasource("events").unwrap();
    assert_eq!(events.columns.len(), 8);
    assert_eq!(events.tenant_key.as_deref(), Some("org"));
    assert_eq!(events.engine.kind, EngineKind::MergeTree);
    assert_eq!(events.engine.sorting_key, "org, timestamp");
    assert_eq!(events.engine.partition_key.as_deref(), Some("toYYYYMM(timestamp)"));
    assert_eq!(events.column("timestamp").unwrap().ty, ChType::DateTime64 { precision: 3, tz: None });
    assert_eq!(
        events.column("tags").unwrap().json_path.as_ref().unwrap().steps,
        [PathStep::Key("tags".into()), PathStep::Each]
    );
    assert_eq!(events.tokens[0].name, "ingest");
    let top = p.pipe("top_pages").unwrap();
    assert_eq!(top.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["scoped", "endpoint"]);
    assert_eq!(top.endpoint().unwrap().kind, NodeKind::Endpoint);
    assert!(top.nodes[0].template.is_some());
    assert_eq!(top.tokens, ["dashboard"]);
    assert_eq!(p.pipes.len(), 4);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn every_problem_is_reported_with_file_and_line() {
    let errs = errors(&[
        ("datasources/events.datasource", EVENTS),
        (
            "datasources/bad.datasource",
            "SCHEMA >\n    `a` String,\n    `b` Strng\n\nENGINE ReplacingMergeTree\nSETTINGS x=1\nFOO bar\n",
        ),
        ("pipes/p.pipe", "NODE p\nSQL >\n    SELECT * FROM missing\n"),
        ("pipes/q.pipe", "NODE a\nSQL >\n    SELECT * FROM b\n\nNODE b\nSQL >\n    SELECT {{x}} FROM events\n"),
    ]);
    let expected = [
        "datasources/bad.datasource:3: error: error parsing schema (line 2): column 'b': unknown type Strng",
        "datasources/bad.datasource:6: error: SETTINGS option is not allowed, use ENGINE_SETTINGS instead. See https://www.tinybird.co/docs/cli/datafiles#data-source for more information.",
        "datasources/bad.datasource:7: error: FOO is not a valid option",
        "pipes/p.pipe:1: error: Error in node 'p'. The Pipe is already using that name. Nodes can't have the same exact name as the Pipe they belong to.",
        "pipes/q.pipe:6: error: Node 'b' uses template syntax but does not start with %",
        "pipes/p.pipe:2: error: Resource 'missing' not found",
        "pipes/q.pipe:2: error: node 'a' reads 'b', which is defined later in the pipe",
    ];
    for e in expected {
        assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
    }
}

#[test]
fn engine_keys_and_tenant_key_must_name_columns() {
    let errs = errors(&[(
        "events.datasource",
        "SCHEMA >\n    `ts` DateTime `json:$.ts`,\n    `n` Float64 `json:$.n`\n\nENGINE_SORTING_KEY org, ts\nENGINE_PARTITION_KEY toYYYYMM(when)\nTENANT_KEY n\n",
    )]);
    assert_eq!(
        errs,
        [
            "events.datasource:5: error: ENGINE_SORTING_KEY refers to 'org', which is not a column of 'events'",
            "events.datasource:6: error: ENGINE_PARTITION_KEY refers to 'when', which is not a column of 'events'",
            "events.datasource:7: error: TENANT_KEY column 'n' must be a String, UUID or integer column",
        ]
    );
}

#[test]
fn names_are_unique_and_pipes_may_not_form_cycles() {
    let errs = errors(&[
        ("a/x.datasource", EVENTS),
        ("b/x.pipe", "NODE n\nSQL >\n    SELECT 1\n"),
        ("one.pipe", "NODE n\nSQL >\n    SELECT * FROM two\n"),
        ("two.pipe", "NODE n\nSQL >\n    SELECT * FROM one\n"),
    ]);
    assert!(
        errs.iter().any(|e| e.starts_with("b/x.pipe") && e.contains("'x' is already defined by a/x.datasource")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("is part of a cycle of pipes reading each other")), "{errs:?}");
}

#[test]
fn pipes_come_after_the_pipes_they_read() {
    let p = Project::from_files(files(&[
        ("events.datasource", EVENTS),
        ("a.pipe", "NODE n\nSQL >\n    SELECT * FROM b\n"),
        ("b.pipe", "NODE n\nSQL >\n    SELECT * FROM c\n"),
        ("c.pipe", "NODE n\nSQL >\n    SELECT * FROM events_quarantine\n"),
    ]))
    .unwrap();
    assert_eq!(p.pipes.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["c", "b", "a"]);
}

#[test]
fn unsupported_node_types_and_connectors() {
    let errs = errors(&[
        ("events.datasource", EVENTS),
        ("mv.pipe", "NODE n\nSQL >\n    SELECT org FROM events\nTYPE materialized\nDATASOURCE events\n"),
    ]);
    assert_eq!(
        errs,
        ["mv.pipe:1: error: node 'n' of pipe 'mv' is TYPE materialized, which Aviary does not support yet"]
    );
    let p = Project::from_files(files(&[(
        "k.datasource",
        "SCHEMA >\n    `a` String `json:$.a`\n\nKAFKA_CONNECTION_NAME c\nKAFKA_TOPIC t\n",
    )]))
    .unwrap();
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].message.starts_with("connectors are not supported"));
    assert!(p.warnings[1].message.contains("ENGINE_SORTING_KEY is not set; using 'a'"));
}

#[test]
fn includes_and_environment_variables_from_disk() {
    let dir = std::env::temp_dir().join(format!("aviary-datafiles-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pipes/shared")).unwrap();
    std::fs::write(dir.join("events.datasource"), EVENTS).unwrap();
    std::fs::write(dir.join("pipes/shared/filter.incl"), "NODE f\nSQL >\n    SELECT * FROM $TABLE\n").unwrap();
    std::fs::write(dir.join("pipes/p.pipe"), "INCLUDE \"shared/filter.incl\" \"TABLE=events\"\n\nNODE e\nSQL >\n    SELECT * FROM f WHERE org = '${AVIARY_TEST_ORG}'\nTYPE endpoint\n").unwrap();
    // `${AVIARY_TEST_ORG}` is not set in the environment, so it stays as written.
    let p = Project::load(&dir).unwrap();
    let pipe = p.pipe("p").unwrap();
    assert_eq!(pipe.nodes[0].sql, "SELECT * FROM events");
    assert_eq!(pipe.nodes[1].sql, "SELECT * FROM f WHERE org = '${AVIARY_TEST_ORG}'");
    std::fs::write(dir.join("pipes/broken.pipe"), "INCLUDE \"nope.incl\"\n").unwrap();
    let Err(Error::Invalid(d)) = Project::load(&dir) else { panic!("loaded") };
    assert_eq!(d[0].to_string(), format!("{}:1: error: nope.incl not found", Path::new("pipes/broken.pipe").display()));
    std::fs::remove_dir_all(&dir).unwrap();
}
