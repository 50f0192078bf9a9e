//! `aviary deploy DIR` against a running server: the project becomes the workspace's
//! definition; changes, removals and refusals are reported, and `--check` changes nothing.

use std::path::Path;
use std::process::{Command, Output};

use crate::process::start;

const TOKEN: &str = "p.deploy-admin";

fn deploy(url: &str, dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_aviary"))
        .arg("deploy")
        .arg(dir)
        .args(["--host", url, "--token", TOKEN])
        .args(extra)
        .output()
        .unwrap();
    (status.code(), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr)))
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::Client::new().get(url).bearer_auth(TOKEN).send().unwrap();
    (r.status().as_u16(), r.json().unwrap_or_default())
}

#[test]
fn deploys_a_project_and_its_changes() {
    let dir = std::env::temp_dir().join(format!("aviary-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = dir.join("project");
    copy(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/web-analytics")), &project);
    let server = start(&dir.join("data"), TOKEN, &[]);
    let url = server.url.clone();

    let (code, out) = deploy(&url, &project, &["--check"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("data source events would be created"), "{out}");
    assert_eq!(get(&format!("{url}/v0/pipes/kpis.json")).0, 404, "a check changes nothing");

    let (code, out) = deploy(&url, &project, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("data source events created") && out.contains("pipe top_pages created"), "{out}");
    let fixture = std::fs::read_to_string(project.join("fixtures/events.ndjson")).unwrap();
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/v0/events?name=events&wait=true"))
        .bearer_auth(TOKEN)
        .body(fixture)
        .send()
        .unwrap();
    assert!(r.status().is_success());
    let (status, kpis) = get(&format!("{url}/v0/pipes/kpis.json?org=acme"));
    assert_eq!((status, kpis["data"][0]["events"].as_u64()), (200, Some(3)), "{kpis}");

    let (code, out) = deploy(&url, &project, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no changes"), "{out}");

    // Change one pipe, remove another.
    let kpis_file = project.join("pipes/kpis.pipe");
    let text = std::fs::read_to_string(&kpis_file).unwrap().replace("count() AS events", "count() AS all_events");
    std::fs::write(&kpis_file, text).unwrap();
    std::fs::remove_file(project.join("pipes/user_activity.pipe")).unwrap();
    let (code, out) = deploy(&url, &project, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("pipe kpis changed") && out.contains("pipe user_activity deleted"), "{out}");
    let (_, kpis) = get(&format!("{url}/v0/pipes/kpis.json?org=acme"));
    assert_eq!(kpis["data"][0]["all_events"].as_u64(), Some(3), "rows survive a pipe change: {kpis}");
    assert_eq!(get(&format!("{url}/v0/pipes/user_activity.json?user=x")).0, 404);

    // An invalid project changes nothing and names the file.
    std::fs::write(project.join("pipes/broken.pipe"), "NODE n\nSQL >\n    SELECT * FROM nowhere\n").unwrap();
    let (code, out) = deploy(&url, &project, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("broken.pipe") && out.contains("nowhere"), "{out}");
    std::fs::remove_file(project.join("pipes/broken.pipe")).unwrap();

    // Dropping a data source needs the flag; without the pipes that read it.
    std::fs::remove_dir_all(project.join("pipes")).unwrap();
    std::fs::remove_dir_all(project.join("datasources")).unwrap();
    std::fs::create_dir_all(project.join("datasources")).unwrap();
    std::fs::write(project.join("datasources/other.datasource"), "SCHEMA >\n    `x` Int32 `json:$.x`\n").unwrap();
    let (code, out) = deploy(&url, &project, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("allow_destructive_operations"), "{out}");
    let (_, count) = get(&format!("{url}/v0/sql?q=SELECT+count()+AS+c+FROM+events+FORMAT+JSON"));
    assert_eq!(count["data"][0]["c"].as_u64(), Some(5), "a refused deployment keeps the rows: {count}");
    let (code, out) = deploy(&url, &project, &["--allow-destructive-operations"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("data source events deleted") && out.contains("data source other created"), "{out}");
    assert!(out.contains("pipe kpis deleted"), "{out}");

    // The deployment API: the history, and a staged deployment set live.
    let (status, list) = get(&format!("{url}/v1/deployments"));
    assert_eq!(status, 200);
    let statuses: Vec<&str> =
        list["deployments"].as_array().unwrap().iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.first(), Some(&"live"), "{list}");
    let client = reqwest::blocking::Client::new();
    let form = reqwest::blocking::multipart::Form::new().part(
        "data_project://",
        reqwest::blocking::multipart::Part::text("SCHEMA >\n    `y` String `json:$.y`\n")
            .file_name("datasources/third.datasource"),
    );
    let staged: serde_json::Value = client
        .post(format!("{url}/v1/deploy?allow_destructive_operations=true"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(staged["deployment"]["status"], "data_ready", "{staged}");
    assert_eq!(staged["deployment"]["new_datasource_names"][0], "third");
    assert_eq!(get(&format!("{url}/v0/datasources/third")).0, 404, "staged, not live yet");
    let id = staged["deployment"]["id"].as_str().unwrap().to_string();
    let live: serde_json::Value =
        client.post(format!("{url}/v1/deployments/{id}/set-live")).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    assert_eq!(live["deployment"]["status"], "live", "{live}");
    assert_eq!(get(&format!("{url}/v0/datasources/third")).0, 200);
    assert_eq!(get(&format!("{url}/v0/datasources/other")).0, 404, "the project replaced the workspace");
    let forbidden = client.get(format!("{url}/v1/deployments")).bearer_auth("p.wrong").send().unwrap();
    assert_eq!(forbidden.status().as_u16(), 403);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
