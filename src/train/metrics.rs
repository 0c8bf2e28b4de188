//! The metrics log of a run (`metrics.jsonl`: one JSON object per line with `step`, `split`
//! (`train` or `val`) and the values) and `karel plot`, which draws its curves to SVG.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use serde_json::Value;

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

/// One curve: `(x, y)` points with a legend label.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One panel of a figure: a title, the x axis label and its curves.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub curves: Vec<Curve>,
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

/// Draws `panels` side by side to an SVG file.
pub fn draw_panels(panels: &[Panel], out: &Path) -> Result<()> {
    if out.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!(
            "{}: plots are written as SVG (name the file *.svg)",
            out.display()
        );
    }
    let count = panels.len().max(1);
    let mut svg = String::new();
    draw_panels_to(panels, &mut svg, count)?;
    crate::fsutil::write_atomic(out, svg.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Draws `count` panels into an SVG text.
fn draw_panels_to(panels: &[Panel], svg: &mut String, count: usize) -> Result<()> {
    let root = SVGBackend::with_string(svg, (640 * count as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let areas = root.split_evenly((1, count));
    for (area, panel) in areas.iter().zip(panels) {
        let curves = &panel.curves;
        let points = curves.iter().flat_map(|c| c.points.iter());
        let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in points {
            x_max = x_max.max(x);
            y_min = y_min.min(y);
            y_max = y_max.max(y);
        }
        if !y_min.is_finite() {
            (y_min, y_max) = (0.0, 1.0);
        }
        let pad = ((y_max - y_min) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(panel.x_label.as_str())
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, curve) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(curve.points.iter().copied(), color))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
