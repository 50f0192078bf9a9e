//! `aviary check DIR`: a summary for a good project, every problem and exit 1 for a bad one.

use std::process::Command;

fn run(dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aviary")).arg("check").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_project_checks_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/web-analytics");
    let (code, stdout, stderr) = run(&dir);
    assert_eq!((code, stdout.trim(), stderr.as_str()), (0, "ok: 1 data source(s), 4 pipe(s), 0 warning(s)", ""));
}

#[test]
fn a_broken_project_lists_every_problem() {
    let dir = std::env::temp_dir().join(format!("aviary-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("events.datasource"), "SCHEMA >\n    `a` String `json:$.a`\n\nTENANT_KEY org\n").unwrap();
    std::fs::write(dir.join("p.pipe"), "NODE n\nSQL >\n    %\n    SELECT {{ Int32(x }} FROM nowhere\n").unwrap();
    let (code, stdout, stderr) = run(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("events.datasource:4: error: TENANT_KEY column 'org' does not exist"), "{stderr}");
    assert!(stderr.contains("p.pipe:2: error: Node 'n': Template Syntax Error: invalid syntax, line 2"), "{stderr}");
    assert!(stderr.contains("p.pipe:2: error: Resource 'nowhere' not found"), "{stderr}");
    assert!(stdout.starts_with("3 error(s)"), "{stdout}");
}
