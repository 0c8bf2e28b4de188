//! The dataset's `inpgrid_json` / `outgrid_json` objects.
//!
//! Bunel et al.'s format (`karel/world.py`, `toJson` / `parseJson`):
//!
//! ```json
//! {"rows": 6, "cols": 15, "crashed": false, "hero": "2:4:east",
//!  "blocked": "5:14 3:6", "markers": "5:0:1 2:3:6"}
//! ```
//!
//! Coordinates are 0-based interior coordinates `row:col` (row 0 is the southern interior row), so
//! interior cell `r:c` is position `(r + 1, c + 1)` of the 18×18 array. `toJson` lists cells row by
//! row from the north, each row from the west; [`World::to_grid_json`] writes that same order so
//! that files round-trip byte for byte. A crashed grid (`"crashed": true`) holds no state and
//! cannot be read as a world.

use serde::{Deserialize, Serialize};

use super::{Dir, Pos, World, WorldError, MAX_MARKERS, MAX_SIZE};

/// A grid object as stored in the dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridJson {
    pub rows: u32,
    pub cols: u32,
    #[serde(default)]
    pub crashed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hero: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markers: Option<String>,
}

fn bad(message: impl Into<String>) -> WorldError {
    WorldError::Json(message.into())
}

/// Parses `r:c` (or `r:c:x` with `parts == 3`) and returns the fields.
fn fields<'a>(item: &'a str, parts: usize, what: &str) -> Result<Vec<&'a str>, WorldError> {
    let fields: Vec<&str> = item.split(':').collect();
    if fields.len() != parts {
        return Err(bad(format!(
            "{what} `{item}` does not have {parts} `:`-separated fields"
        )));
    }
    Ok(fields)
}

fn coordinate(text: &str, limit: u32, what: &str) -> Result<u8, WorldError> {
    match text.parse::<u32>() {
        Ok(v) if v < limit => Ok(v as u8 + 1),
        _ => Err(bad(format!("{what} `{text}` is not in 0..{limit}"))),
    }
}

impl World {
    /// Reads a dataset grid object.
    pub fn from_grid_json(grid: &GridJson) -> Result<World, WorldError> {
        if grid.crashed {
            return Err(bad("the grid is marked crashed and holds no world"));
        }
        if !(1..=MAX_SIZE as u32).contains(&grid.rows)
            || !(1..=MAX_SIZE as u32).contains(&grid.cols)
        {
            return Err(WorldError::BadSize {
                rows: grid.rows as usize,
                cols: grid.cols as usize,
            });
        }
        let hero = grid.hero.as_deref().ok_or_else(|| bad("no `hero` field"))?;
        let hero_fields = fields(hero, 3, "hero")?;
        let pos = Pos::new(
            coordinate(hero_fields[0], grid.rows, "hero row")?,
            coordinate(hero_fields[1], grid.cols, "hero column")?,
        );
        let dir = Dir::from_name(hero_fields[2]).ok_or_else(|| {
            bad(format!(
                "hero direction `{}` is not north/east/south/west",
                hero_fields[2]
            ))
        })?;
        let mut world = World::new(grid.rows as u8, grid.cols as u8, pos, dir)?;
        // Each cell may be listed once per field, as index lists allow each index once.
        let mut listed = [[false; 2]; (MAX_SIZE as usize + 2) * (MAX_SIZE as usize + 2)];
        let mut once = |cell: Pos, field: usize, what: &str| {
            let slot =
                &mut listed[cell.row as usize * (MAX_SIZE as usize + 2) + cell.col as usize][field];
            if std::mem::replace(slot, true) {
                Err(bad(format!("{what} {cell} is listed twice")))
            } else {
                Ok(())
            }
        };
        for item in grid.blocked.as_deref().unwrap_or("").split_whitespace() {
            let f = fields(item, 2, "blocked cell")?;
            let cell = Pos::new(
                coordinate(f[0], grid.rows, "blocked row")?,
                coordinate(f[1], grid.cols, "blocked column")?,
            );
            once(cell, 0, "blocked cell")?;
            world.set_wall(cell, true)?;
        }
        for item in grid.markers.as_deref().unwrap_or("").split_whitespace() {
            let f = fields(item, 3, "marker cell")?;
            let cell = Pos::new(
                coordinate(f[0], grid.rows, "marker row")?,
                coordinate(f[1], grid.cols, "marker column")?,
            );
            once(cell, 1, "marker cell")?;
            let count: u8 = match f[2].parse::<u32>() {
                Ok(n) if n <= MAX_MARKERS as u32 => n as u8,
                _ => {
                    return Err(bad(format!(
                        "marker count `{}` is not in 0..={MAX_MARKERS}",
                        f[2]
                    )))
                }
            };
            world.set_markers(cell, count)?;
        }
        Ok(world)
    }

    /// Writes the dataset grid object, in the reference's cell order.
    pub fn to_grid_json(&self) -> GridJson {
        let mut blocked = Vec::new();
        let mut markers = Vec::new();
        for row in (1..=self.rows).rev() {
            for col in 1..=self.cols {
                let pos = Pos::new(row, col);
                let (r, c) = (row - 1, col - 1);
                if self.is_wall(pos) {
                    blocked.push(format!("{r}:{c}"));
                }
                let n = self.markers(pos);
                if n > 0 {
                    markers.push(format!("{r}:{c}:{n}"));
                }
            }
        }
        let hero = self.hero();
        GridJson {
            rows: self.rows as u32,
            cols: self.cols as u32,
            crashed: false,
            hero: Some(format!(
                "{}:{}:{}",
                hero.row - 1,
                hero.col - 1,
                self.dir.name()
            )),
            blocked: Some(blocked.join(" ")),
            markers: Some(markers.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dataset_example() {
        let text = r#"{"rows": 6, "cols": 15, "crashed": false, "hero": "2:4:east",
            "blocked": "5:14 3:6 2:8 0:2 0:14", "markers": "5:0:1 2:3:6 0:13:1"}"#;
        let grid: GridJson = serde_json::from_str(text).unwrap();
        let world = World::from_grid_json(&grid).unwrap();
        assert_eq!(world.hero(), Pos::new(3, 5));
        assert_eq!(world.dir(), Dir::East);
        assert!(world.is_wall(Pos::new(6, 15)));
        assert_eq!(world.markers(Pos::new(3, 4)), 6);
        assert_eq!(world.to_grid_json(), grid);
    }

    #[test]
    fn rejects_bad_objects() {
        let base = GridJson {
            rows: 3,
            cols: 3,
            crashed: false,
            hero: Some("0:0:north".into()),
            blocked: Some(String::new()),
            markers: Some(String::new()),
        };
        assert!(World::from_grid_json(&base).is_ok());
        let cases = [
            GridJson {
                crashed: true,
                ..base.clone()
            },
            GridJson {
                hero: None,
                ..base.clone()
            },
            GridJson {
                hero: Some("0:3:north".into()),
                ..base.clone()
            },
            GridJson {
                hero: Some("0:0:up".into()),
                ..base.clone()
            },
            GridJson {
                blocked: Some("0:0".into()),
                ..base.clone()
            },
            GridJson {
                blocked: Some("1".into()),
                ..base.clone()
            },
            GridJson {
                markers: Some("1:1:11".into()),
                ..base.clone()
            },
            GridJson {
                rows: 17,
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(World::from_grid_json(&case).is_err(), "{case:?}");
        }
    }
}
