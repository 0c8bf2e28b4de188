//! Line charts written as SVG: panels of labelled curves side by side. Training curves
//! (`karel plot`) and evaluation curves (`karel eval --plot`) are drawn here.

use std::path::Path;

use anyhow::{bail, Context, Result};
use plotters::prelude::*;

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
