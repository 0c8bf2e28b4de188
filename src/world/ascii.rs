//! A readable ASCII map of a world, for examples, tests and the terminal.
//!
//! The interior is drawn inside a frame, the northern row first. Every cell is two characters:
//! what the cell holds, then the hero if it stands there.
//!
//! ```text
//! +--------+
//! |. # 2 . |
//! |.>. . 9 |
//! |. . # X |
//! +--------+
//! ```
//!
//! - first character: `.` empty, `#` wall, `1`–`9` that many markers, `X` ten markers;
//! - second character: a space, or the hero facing `^` north, `>` east, `v` south, `<` west.
//!
//! So `.>` is the hero facing east on an empty cell and `3^` the hero facing north on three
//! markers. The frame is `+`, then two `-` per column, then `+`. The map above is a 3×4 world with
//! the hero at row 2, column 1 (array coordinates; the bottom-left interior cell is (1, 1)).
//!
//! When reading, blank lines around the map and whitespace before or after each line are ignored;
//! everything between the `|` is significant.

use super::{Dir, Pos, World, WorldError, MAX_MARKERS, MAX_SIZE};

fn cell_char(world: &World, pos: Pos) -> char {
    if world.is_wall(pos) {
        '#'
    } else {
        match world.markers(pos) {
            0 => '.',
            MAX_MARKERS => 'X',
            n => char::from(b'0' + n),
        }
    }
}

impl World {
    /// The ASCII map, with a trailing newline.
    pub fn to_ascii(&self) -> String {
        let frame = format!("+{}+\n", "-".repeat(2 * self.cols as usize));
        let mut out = String::with_capacity((self.rows as usize + 2) * frame.len());
        out.push_str(&frame);
        for row in (1..=self.rows).rev() {
            out.push('|');
            for col in 1..=self.cols {
                let pos = Pos::new(row, col);
                out.push(cell_char(self, pos));
                out.push(if pos == self.hero() {
                    self.dir.arrow()
                } else {
                    ' '
                });
            }
            out.push_str("|\n");
        }
        out.push_str(&frame);
        out
    }

    /// Reads an ASCII map.
    pub fn from_ascii(text: &str) -> Result<World, WorldError> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty())
            .collect();
        let error = |line: usize, message: String| WorldError::Ascii { line, message };
        let (first_line, top) = *lines
            .first()
            .ok_or_else(|| error(1, "the map is empty".into()))?;
        let width = parse_frame(top).ok_or_else(|| {
            error(
                first_line,
                format!("expected a frame line like `+----+`, found `{top}`"),
            )
        })?;
        let (last_line, bottom) = *lines.last().unwrap_or(&(first_line, top));
        if lines.len() < 3 {
            return Err(error(
                last_line,
                "a map needs a frame line, at least one row and a frame line".into(),
            ));
        }
        if parse_frame(bottom) != Some(width) {
            return Err(error(
                last_line,
                format!("expected the closing frame line `{top}`, found `{bottom}`"),
            ));
        }
        let rows = &lines[1..lines.len() - 1];
        let cols = width / 2;
        if width % 2 != 0 || !(1..=MAX_SIZE as usize).contains(&cols) {
            return Err(error(first_line, format!("the frame is {width} characters wide: expected two per column and 1 to 16 columns")));
        }
        if rows.len() > MAX_SIZE as usize {
            return Err(error(
                rows[0].0,
                format!("{} rows: a world has at most 16", rows.len()),
            ));
        }

        let mut walls = Vec::new();
        let mut markers = Vec::new();
        let mut hero: Option<(Pos, Dir, usize)> = None;
        for (index, &(line_number, line)) in rows.iter().enumerate() {
            let row = (rows.len() - index) as u8;
            let inner = line
                .strip_prefix('|')
                .and_then(|l| l.strip_suffix('|'))
                .ok_or_else(|| error(line_number, "a row must start and end with `|`".into()))?;
            let chars: Vec<char> = inner.chars().collect();
            if chars.len() != width {
                return Err(error(
                    line_number,
                    format!(
                        "the row has {} characters between `|`, the frame {width}",
                        chars.len()
                    ),
                ));
            }
            for (c, pair) in chars.chunks(2).enumerate() {
                let pos = Pos::new(row, c as u8 + 1);
                match pair[0] {
                    '.' => {}
                    '#' => walls.push(pos),
                    'X' => markers.push((pos, MAX_MARKERS)),
                    d @ '1'..='9' => markers.push((pos, d as u8 - b'0')),
                    other => {
                        return Err(error(
                            line_number,
                            format!(
                                "`{other}` in column {}: a cell is `.`, `#`, `1`–`9` or `X`",
                                c + 1
                            ),
                        ))
                    }
                }
                if pair[1] != ' ' {
                    let dir = Dir::from_arrow(pair[1]).ok_or_else(|| {
                        error(
                            line_number,
                            format!(
                                "`{}` after column {}: the hero is `^`, `>`, `v` or `<`",
                                pair[1],
                                c + 1
                            ),
                        )
                    })?;
                    if let Some((first, _, first_line)) = hero {
                        return Err(error(
                            line_number,
                            format!("a second hero; the first is at {first} (line {first_line})"),
                        ));
                    }
                    hero = Some((pos, dir, line_number));
                }
            }
        }
        let (hero_pos, dir, hero_line) =
            hero.ok_or_else(|| error(first_line, "there is no hero".into()))?;
        let mut world = World::new(rows.len() as u8, cols as u8, hero_pos, dir)
            .map_err(|e| error(first_line, e.to_string()))?;
        for pos in walls {
            world
                .set_wall(pos, true)
                .map_err(|e| error(hero_line, e.to_string()))?;
        }
        for (pos, count) in markers {
            world
                .set_markers(pos, count)
                .map_err(|e| error(first_line, e.to_string()))?;
        }
        Ok(world)
    }
}

/// The number of `-` of a frame line `+---+`.
fn parse_frame(line: &str) -> Option<usize> {
    let inner = line.strip_prefix('+')?.strip_suffix('+')?;
    (!inner.is_empty() && inner.chars().all(|c| c == '-')).then_some(inner.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
+--------+
|. # 2 . |
|.>. . 9 |
|. . # X |
+--------+
";

    #[test]
    fn reads_and_writes_the_documented_map() {
        let world = World::from_ascii(MAP).unwrap();
        assert_eq!((world.rows(), world.cols()), (3, 4));
        assert_eq!((world.hero(), world.dir()), (Pos::new(2, 1), Dir::East));
        assert!(world.is_wall(Pos::new(3, 2)));
        assert!(world.is_wall(Pos::new(1, 3)));
        assert_eq!(world.markers(Pos::new(3, 3)), 2);
        assert_eq!(world.markers(Pos::new(2, 4)), 9);
        assert_eq!(world.markers(Pos::new(1, 4)), 10);
        assert_eq!(world.to_ascii(), MAP);
    }

    #[test]
    fn hero_on_markers_and_indentation() {
        let text = "\n    +----+\n    |3^. |\n    +----+\n\n";
        let world = World::from_ascii(text).unwrap();
        assert_eq!(world.markers(world.hero()), 3);
        assert_eq!(world.to_ascii(), "+----+\n|3^. |\n+----+\n");
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("", 1),
            ("+--+\n|.>|\n", 2),
            ("+--+\n|.>|\n|.>|\n+--+", 3),
            ("+--+\n|?>|\n+--+", 2),
            ("+--+\n|. |\n+--+", 1),
            ("+--+\n|#>|\n+--+", 2),
            ("+----+\n|.>|\n+----+", 2),
            ("+--+\n|.x|\n+--+", 2),
        ];
        for (text, line) in cases {
            match World::from_ascii(text) {
                Err(WorldError::Ascii { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
