//! Continuing an evaluation: the report an evaluation starts from, checked against the one it
//! would start afresh, and a changed task limit.

use std::path::Path;

use anyhow::{bail, Result};

use crate::search::report::Report;

/// The report an evaluation starts from, with the notes to show the user: `fresh`, or with
/// `resume` the unfinished report in `json`, which must have been made with the same split,
/// shard and settings. Without `resume` an existing `json` file is not overwritten.
pub fn open_report(
    json: Option<&Path>,
    resume: bool,
    fresh: Report,
) -> Result<(Report, Vec<String>)> {
    let mut notes = Vec::new();
    let Some(path) = json else {
        if resume {
            bail!("--resume continues the report in --json FILE: give --json");
        }
        return Ok((fresh, notes));
    };
    if !path.exists() {
        if resume {
            notes.push(format!(
                "{} does not exist: starting afresh",
                path.display()
            ));
        }
        return Ok((fresh, notes));
    }
    if !resume {
        bail!(
            "{} exists: continue that evaluation with --resume, or remove the file",
            path.display()
        );
    }
    let mut report = Report::load(path)?;
    if report.data == fresh.data && report.split_tasks != fresh.split_tasks {
        notes.push(change_limit(path, &mut report, fresh.split_tasks)?);
    }
    if report.data != fresh.data || report.split_tasks != fresh.split_tasks {
        bail!(
            "{} evaluates {} ({} tasks), not {} ({} tasks)",
            path.display(),
            report.data,
            report.split_tasks,
            fresh.data,
            fresh.split_tasks
        );
    }
    if report.shards != fresh.shards {
        bail!(
            "{} is a report of shard(s) {:?}, not {:?}",
            path.display(),
            report.shards,
            fresh.shards
        );
    }
    if report.settings != fresh.settings || report.curve_steps != fresh.curve_steps {
        bail!(
            "{} was made with other settings: {}",
            path.display(),
            report.settings
        );
    }
    let done = report.coverage().0;
    notes.push(format!(
        "resuming {}: {done} task(s) evaluated in every configuration{}",
        path.display(),
        if report.complete {
            " (the report is complete)"
        } else {
            ""
        }
    ));
    Ok((report, notes))
}

/// Resuming with another task limit: the unfinished evaluation in `path` is cut to its first
/// `tasks` tasks or extended to them. Refused if it has records beyond them (they would be lost)
/// or has started the plain-beam comparison, whose widths depend on the tasks covered.
fn change_limit(path: &Path, report: &mut Report, tasks: usize) -> Result<String> {
    let last = report
        .configs
        .iter()
        .flat_map(|c| &c.records)
        .map(|r| r.index)
        .max();
    if let Some(last) = last.filter(|&i| i >= tasks) {
        bail!(
            "{} has records of tasks up to #{last}: resume it with --limit {} or more, or without --limit",
            path.display(),
            last + 1
        );
    }
    if report.configs.iter().any(|c| c.is_beam_comparison()) {
        bail!(
            "{} has started its plain-beam comparison, whose beam widths depend on the tasks \
             covered: resume it with its own --limit ({} tasks)",
            path.display(),
            report.split_tasks
        );
    }
    let note = format!(
        "{}: the evaluation now covers {tasks} tasks instead of {}",
        path.display(),
        report.split_tasks
    );
    report.split_tasks = tasks;
    Ok(note)
}
