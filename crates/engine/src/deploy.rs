//! Deploying a whole datafile project onto a workspace: the project becomes the workspace's
//! definition. Data sources it adds are created and the ones it changes altered (compatible
//! changes only, see [`Workspace::alter_datasource`]); pipes are created, replaced or removed
//! to match; a data source missing from the project is dropped only when destructive
//! operations are allowed. Everything is checked before anything changes.

use std::collections::{BTreeSet, HashMap};

use datafiles::{Project, Severity, SourceFile};

use crate::Result;
use crate::workspace::Workspace;

/// What a deployment changes, or why it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeployPlan {
    /// Data sources to create.
    pub new_datasource_names: Vec<String>,
    /// Data sources to alter.
    pub changed_datasource_names: Vec<String>,
    /// Data sources to drop.
    pub deleted_datasource_names: Vec<String>,
    /// Pipes to create.
    pub new_pipe_names: Vec<String>,
    /// Pipes to replace.
    pub changed_pipe_names: Vec<String>,
    /// Pipes to remove.
    pub deleted_pipe_names: Vec<String>,
    /// Problems that stop the deployment: file (or resource) and message.
    pub errors: Vec<(String, String)>,
    /// Warnings: file (or resource) and message.
    pub warnings: Vec<(String, String)>,
}

impl DeployPlan {
    /// Whether the deployment changes nothing.
    pub fn is_empty(&self) -> bool {
        [
            &self.new_datasource_names,
            &self.changed_datasource_names,
            &self.deleted_datasource_names,
            &self.new_pipe_names,
            &self.changed_pipe_names,
            &self.deleted_pipe_names,
        ]
        .iter()
        .all(|v| v.is_empty())
    }
}

/// How to deploy.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeployOptions {
    /// Only check and report; change nothing.
    pub check_only: bool,
    /// Drop data sources that the project no longer has (and their rows).
    pub allow_destructive_operations: bool,
}

impl Workspace {
    /// Deploys `files` (the whole project) with `options`; the plan says what changed, or
    /// holds the errors when nothing could be.
    pub fn deploy(&self, files: Vec<SourceFile>, options: DeployOptions) -> Result<DeployPlan> {
        let mut plan = DeployPlan::default();
        let texts: HashMap<String, String> =
            files.iter().filter_map(|f| Some((f.path.file_stem()?.to_str()?.to_string(), f.text.clone()))).collect();
        let project = match Project::from_files(files) {
            Ok(p) => p,
            Err(datafiles::Error::Invalid(diags)) => {
                for d in diags {
                    let at = match d.line {
                        Some(line) => format!("{}:{line}", d.path.display()),
                        None => d.path.display().to_string(),
                    };
                    let list = if d.severity == Severity::Error { &mut plan.errors } else { &mut plan.warnings };
                    list.push((at, d.message));
                }
                return Ok(plan);
            }
            Err(e) => return Err(crate::Error::Invalid(e.to_string())),
        };
        plan.warnings.extend(project.warnings.iter().map(|d| (d.path.display().to_string(), d.message.clone())));
        let text = |name: &str| texts.get(name).cloned().unwrap_or_default();
        for ds in &project.datasources {
            if self.datasource(&ds.name).is_none() {
                plan.new_datasource_names.push(ds.name.clone());
            } else {
                match self.alter_datasource(&ds.name, &text(&ds.name), true) {
                    Ok(None) => {}
                    Ok(Some(_)) => plan.changed_datasource_names.push(ds.name.clone()),
                    Err(e) => plan.errors.push((format!("{}.datasource", ds.name), e.to_string())),
                }
            }
        }
        for p in &project.pipes {
            match self.pipes().get(&p.name) {
                None => plan.new_pipe_names.push(p.name.clone()),
                Some(old) if old.text != text(&p.name) => plan.changed_pipe_names.push(p.name.clone()),
                Some(_) => {}
            }
        }
        let kept_datasources: BTreeSet<&str> = project.datasources.iter().map(|d| d.name.as_str()).collect();
        let kept_pipes: BTreeSet<&str> = project.pipes.iter().map(|p| p.name.as_str()).collect();
        for name in self.datasources() {
            if !kept_datasources.contains(name.as_str()) {
                if !options.allow_destructive_operations {
                    plan.errors.push((
                        name.clone(),
                        format!(
                            "Data Source '{name}' is not in the project: deleting it (and its rows) needs \
                             allow_destructive_operations=true"
                        ),
                    ));
                }
                plan.deleted_datasource_names.push(name);
            }
        }
        plan.deleted_datasource_names.sort();
        for p in self.pipes().all() {
            if !kept_pipes.contains(p.pipe.name.as_str()) {
                plan.deleted_pipe_names.push(p.pipe.name.clone());
            }
        }
        plan.deleted_pipe_names.sort();
        if options.check_only || !plan.errors.is_empty() {
            return Ok(plan);
        }
        // What leaves goes first: a name may move between a pipe and a data source.
        for name in &plan.deleted_pipe_names {
            self.drop_pipe(name)?;
        }
        for name in &plan.deleted_datasource_names {
            self.drop_datasource(name)?;
        }
        for ds in &project.datasources {
            self.deploy_datasource(&ds.name, &text(&ds.name))?;
        }
        for p in &project.pipes {
            self.deploy_pipe(&p.name, &text(&p.name))?;
        }
        Ok(plan)
    }
}
