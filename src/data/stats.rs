//! Distribution statistics of programs and tasks (`karel data stats`), and an SVG chart that
//! compares two program distributions (used to fit the generator to the real data).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::task::Task;
use crate::lang::{Program, Token};

/// Statistics of a set of programs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProgramStats {
    pub programs: usize,
    /// Number of programs of each length in tokens.
    pub lengths: BTreeMap<usize, usize>,
    /// Number of programs of each block nesting depth (the run body counts 1).
    pub depths: BTreeMap<usize, usize>,
    /// Occurrences of each token.
    pub tokens: BTreeMap<String, usize>,
}

impl ProgramStats {
    pub fn add(&mut self, program: &Program) {
        self.programs += 1;
        let tokens = program.tokens();
        *self.lengths.entry(tokens.len()).or_default() += 1;
        *self.depths.entry(program.depth()).or_default() += 1;
        for token in tokens {
            *self.tokens.entry(token.text().to_string()).or_default() += 1;
        }
    }

    pub fn of<'a>(programs: impl IntoIterator<Item = &'a Program>) -> ProgramStats {
        let mut stats = ProgramStats::default();
        for program in programs {
            stats.add(program);
        }
        stats
    }

    /// Mean length in tokens.
    pub fn mean_length(&self) -> f64 {
        let total: usize = self.lengths.iter().map(|(l, n)| l * n).sum();
        total as f64 / self.programs.max(1) as f64
    }

    /// Mean occurrences of `token` per program.
    pub fn per_program(&self, token: Token) -> f64 {
        *self.tokens.get(token.text()).unwrap_or(&0) as f64 / self.programs.max(1) as f64
    }

    /// Share of programs of at most `max_len` tokens with each length.
    pub fn length_shares(&self, max_len: usize) -> BTreeMap<usize, f64> {
        let total: usize = self
            .lengths
            .iter()
            .filter(|(l, _)| **l <= max_len)
            .map(|(_, n)| n)
            .sum();
        self.lengths
            .iter()
            .filter(|(l, _)| **l <= max_len)
            .map(|(l, n)| (*l, *n as f64 / total.max(1) as f64))
            .collect()
    }
}

/// Tokens reported in the construct table.
pub const CONSTRUCTS: [Token; 16] = [
    Token::Move,
    Token::TurnLeft,
    Token::TurnRight,
    Token::PickMarker,
    Token::PutMarker,
    Token::If,
    Token::IfElse,
    Token::While,
    Token::Repeat,
    Token::FrontIsClear,
    Token::LeftIsClear,
    Token::RightIsClear,
    Token::MarkersPresent,
    Token::NoMarkersPresent,
    Token::Not,
    Token::R5,
];

/// Statistics of tasks: their programs and their worlds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TaskStats {
    pub programs: ProgramStats,
    pub examples: usize,
    pub mean_rows: f64,
    pub mean_cols: f64,
    /// Share of interior cells that are walls.
    pub wall_share: f64,
    /// Share of free interior cells with markers, and mean markers on those.
    pub marked_share: f64,
    pub mean_markers: f64,
    /// Share of examples whose output equals their input.
    pub unchanged_share: f64,
    /// Statements of each kind (`action`, `if`, `ifElse`, `while`, `repeat`).
    pub statements: BTreeMap<String, usize>,
}

impl TaskStats {
    pub fn of<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> TaskStats {
        let mut stats = TaskStats::default();
        let (
            mut rows,
            mut cols,
            mut cells,
            mut walls,
            mut free,
            mut marked,
            mut markers,
            mut unchanged,
        ) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        for task in tasks {
            stats.programs.add(&task.program);
            for stmt in task.program.statements() {
                let kind = stmt.block_kind().map_or("action", |k| k.event_name());
                *stats.statements.entry(kind.to_string()).or_default() += 1;
            }
            for example in &task.examples {
                stats.examples += 1;
                let w = &example.input;
                rows += w.rows() as u64;
                cols += w.cols() as u64;
                for pos in w.interior() {
                    cells += 1;
                    if w.is_wall(pos) {
                        walls += 1;
                    } else {
                        free += 1;
                        let n = w.markers(pos) as u64;
                        marked += (n > 0) as u64;
                        markers += n;
                    }
                }
                unchanged += (example.input == example.output) as u64;
            }
        }
        let per = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        stats.mean_rows = per(rows, stats.examples as u64);
        stats.mean_cols = per(cols, stats.examples as u64);
        stats.wall_share = per(walls, cells);
        stats.marked_share = per(marked, free);
        stats.mean_markers = per(markers, marked);
        stats.unchanged_share = per(unchanged, stats.examples as u64);
        stats
    }
}

/// A Markdown table comparing constructs per program of two program sets.
pub fn comparison_table(a: (&str, &ProgramStats), b: (&str, &ProgramStats)) -> String {
    let mut out = format!("| per program | {} | {} |\n|---|---|---|\n", a.0, b.0);
    out.push_str(&format!(
        "| programs | {} | {} |\n",
        a.1.programs, b.1.programs
    ));
    out.push_str(&format!(
        "| mean length (tokens) | {:.2} | {:.2} |\n",
        a.1.mean_length(),
        b.1.mean_length()
    ));
    for token in CONSTRUCTS {
        out.push_str(&format!(
            "| `{token}` | {:.3} | {:.3} |\n",
            a.1.per_program(token),
            b.1.per_program(token)
        ));
    }
    let depth_mean = |s: &ProgramStats| {
        s.depths.iter().map(|(d, n)| d * n).sum::<usize>() as f64 / s.programs.max(1) as f64
    };
    out.push_str(&format!(
        "| mean nesting depth | {:.2} | {:.2} |\n",
        depth_mean(a.1),
        depth_mean(b.1)
    ));
    out
}

/// Draws the length distributions (as shares, up to `max_len` tokens) and the constructs per
/// program of two program sets side by side into an SVG file (written atomically).
pub fn comparison_svg(
    path: &Path,
    a: (&str, &ProgramStats),
    b: (&str, &ProgramStats),
    max_len: usize,
) -> Result<(), String> {
    let mut svg = String::new();
    draw_comparison(&mut svg, a, b, max_len)?;
    crate::fsutil::write_atomic(path, svg.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn draw_comparison(
    svg: &mut String,
    a: (&str, &ProgramStats),
    b: (&str, &ProgramStats),
    max_len: usize,
) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(520);
    let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

    let shares = [a.1.length_shares(max_len), b.1.length_shares(max_len)];
    let top = shares
        .iter()
        .flat_map(|s| s.values())
        .fold(0.0f64, |m, &v| m.max(v))
        * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("program length (≤ {max_len} tokens)"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..(max_len as f64 + 1.0), 0f64..top.max(0.01))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("tokens")
        .y_desc("share of programs")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, series)) in [(a.0, &shares[0]), (b.0, &shares[1])]
        .into_iter()
        .enumerate()
    {
        let color = colors[i];
        let offset = i as f64 * 0.4;
        chart
            .draw_series(series.iter().map(|(&len, &share)| {
                let x = len as f64 - 0.4 + offset;
                Rectangle::new([(x, 0.0), (x + 0.4, share)], color.mix(0.8).filled())
            }))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;

    let constructs = CONSTRUCTS;
    let top = constructs
        .iter()
        .flat_map(|&t| [a.1.per_program(t), b.1.per_program(t)])
        .fold(0.0f64, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("occurrences per program", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..constructs.len() as f64, 0f64..top.max(0.01))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(constructs.len())
        .x_label_formatter(&|x| {
            constructs
                .get(x.floor() as usize)
                .map(|t| abbreviation(*t).to_string())
                .unwrap_or_default()
        })
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, stats) in [a.1, b.1].into_iter().enumerate() {
        let color = colors[i];
        chart
            .draw_series(constructs.iter().enumerate().map(|(j, &t)| {
                let x = j as f64 + 0.1 + 0.4 * i as f64;
                Rectangle::new(
                    [(x, 0.0), (x + 0.4, stats.per_program(t))],
                    color.mix(0.8).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

fn abbreviation(token: Token) -> &'static str {
    match token {
        Token::Move => "mv",
        Token::TurnLeft => "tL",
        Token::TurnRight => "tR",
        Token::PickMarker => "pk",
        Token::PutMarker => "pt",
        Token::If => "IF",
        Token::IfElse => "IFE",
        Token::While => "WH",
        Token::Repeat => "REP",
        Token::FrontIsClear => "fC",
        Token::LeftIsClear => "lC",
        Token::RightIsClear => "rC",
        Token::MarkersPresent => "mP",
        Token::NoMarkersPresent => "nMP",
        Token::Not => "not",
        _ => "R=5",
    }
}
