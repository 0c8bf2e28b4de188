//! The metrics log of a run (`metrics.jsonl`: one JSON object per line with `step`, `split`
//! (`train` or `val`) and the values) and `karel plot`, which draws its curves to SVG.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::plot::{draw_panels, Curve, Panel};

/// An append-only metrics log.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens the log of a run that starts (or resumes) at step `start`: lines of later steps,
    /// written by a run that was stopped after its last checkpoint, are dropped so that the log
    /// matches the resumed run.
    pub fn open(path: &Path, start: u64) -> Result<MetricsLog> {
        if path.exists() {
            let kept: Vec<String> = read_lines(path)?
                .into_iter()
                .filter(|(record, _)| record["step"].as_u64().unwrap_or(0) <= start)
                .map(|(_, line)| line)
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            crate::fsutil::write_atomic(path, text.as_bytes())
                .with_context(|| format!("cannot rewrite {}", path.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn write(&mut self, record: Value) -> Result<()> {
        writeln!(self.file, "{record}")
            .and_then(|_| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// The records of a metrics log with their lines; a malformed line is an error naming it.
fn read_lines(path: &Path) -> Result<Vec<(Value, String)>> {
    let text = crate::fsutil::read_text(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line)
            .ok()
            .filter(Value::is_object)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), number + 1))?;
        records.push((record, line.to_string()));
    }
    Ok(records)
}

/// Reads a metrics log.
pub fn read_metrics(path: &Path) -> Result<Vec<Value>> {
    Ok(read_lines(path)?.into_iter().map(|(r, _)| r).collect())
}

fn curves(runs: &[(String, Vec<Value>)], metric: &str) -> Vec<Curve> {
    let mut out = Vec::new();
    for (name, records) in runs {
        for split in ["train", "val"] {
            let points: Vec<(f64, f64)> = records
                .iter()
                .filter(|r| r["split"] == split)
                .filter_map(|r| Some((r["step"].as_f64()?, r[metric].as_f64()?)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            if !points.is_empty() {
                out.push(Curve {
                    label: format!("{name} {split}"),
                    points,
                });
            }
        }
    }
    out
}

/// Draws `metrics` (e.g. `loss`, `accuracy`) of the runs' logs against the step, one panel per
/// metric, to an SVG file.
pub fn plot(logs: &[PathBuf], metrics: &[String], out: &Path) -> Result<()> {
    let runs: Vec<(String, Vec<Value>)> = logs
        .iter()
        .map(|path| {
            let name = path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            let records = read_metrics(path)?;
            if records.is_empty() {
                bail!("{} holds no metrics records", path.display());
            }
            Ok((name, records))
        })
        .collect::<Result<_>>()?;
    let panels: Vec<Panel> = metrics
        .iter()
        .map(|metric| Panel {
            title: metric.clone(),
            x_label: "step".into(),
            curves: curves(&runs, metric),
        })
        .collect();
    draw_panels(&panels, out)
}
