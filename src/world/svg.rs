//! SVG pictures of worlds: grid lines, walls as dark squares, markers as discs with their count,
//! the hero as a triangle pointing where it faces.

use std::fmt::Write;

use super::{Dir, Pos, World};

const CELL: usize = 40;
const MARGIN: usize = 10;

impl World {
    /// A standalone SVG document picturing the world (north up).
    pub fn to_svg(&self) -> String {
        let (rows, cols) = (self.rows as usize, self.cols as usize);
        let width = cols * CELL + 2 * MARGIN;
        let height = rows * CELL + 2 * MARGIN;
        let mut svg = String::new();
        // Writing into a String cannot fail.
        let _ = writeln!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"##
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{MARGIN}" y="{MARGIN}" width="{}" height="{}" fill="#fafafa" stroke="#222" stroke-width="3"/>"##,
            cols * CELL,
            rows * CELL
        );
        for row in 1..=self.rows {
            for col in 1..=self.cols {
                let pos = Pos::new(row, col);
                let x = MARGIN + (col as usize - 1) * CELL;
                let y = MARGIN + (rows - row as usize) * CELL;
                if self.is_wall(pos) {
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="#555"/>"##
                    );
                } else {
                    let _ = writeln!(
                        svg,
                        r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="none" stroke="#ccc"/>"##
                    );
                }
                let markers = self.markers(pos);
                if markers > 0 {
                    let (cx, cy) = (x + CELL / 2, y + CELL / 2);
                    let _ = writeln!(
                        svg,
                        r##"<circle cx="{cx}" cy="{cy}" r="{}" fill="#e0a030"/>"##,
                        CELL * 2 / 5
                    );
                    let _ = writeln!(
                        svg,
                        r##"<text x="{cx}" y="{}" font-size="{}" text-anchor="middle" fill="#222">{markers}</text>"##,
                        cy + CELL / 6,
                        CELL / 2
                    );
                }
            }
        }
        let hero = self.hero();
        let cx = (MARGIN + (hero.col as usize - 1) * CELL + CELL / 2) as f64;
        let cy = (MARGIN + (rows - hero.row as usize) * CELL + CELL / 2) as f64;
        let r = CELL as f64 * 0.35;
        // Triangle pointing north, rotated to the hero's direction.
        let angle = match self.dir {
            Dir::North => 0,
            Dir::East => 90,
            Dir::South => 180,
            Dir::West => 270,
        };
        let _ = writeln!(
            svg,
            r##"<polygon points="{cx},{} {},{} {},{}" fill="#2060c0" fill-opacity="0.85" transform="rotate({angle} {cx} {cy})"/>"##,
            cy - r,
            cx - r * 0.8,
            cy + r * 0.7,
            cx + r * 0.8,
            cy + r * 0.7,
        );
        svg.push_str("</svg>\n");
        svg
    }
}
