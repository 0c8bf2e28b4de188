//! Karel worlds: a grid with walls, markers and the hero, and the robot's primitive operations.
//!
//! A world is an H×W interior (1 ≤ H, W ≤ 16) placed at rows `1..=H` and columns `1..=W` of an
//! 18×18 array and ringed by border walls, exactly as in the reference's 15×18×18 tensor. Rows grow
//! to the North. Positions ([`Pos`]) are coordinates in that 18×18 array, so the interior starts
//! at (1, 1); the dataset's JSON objects use 0-based interior coordinates and are converted at
//! their boundary ([`json`]).
//!
//! Cells hold 0–9 markers; 10 is accepted because the 16-channel dataset layout can encode it (it
//! cannot be written to the 15-channel tensor). The operations follow the reference runtime: a
//! move into a wall, `pickMarker` on an empty cell and `putMarker` on 9 or more markers fail and
//! leave the world unchanged.
//!
//! Encodings live in the submodules: sparse indices and dense tensors ([`tensor`]), the dataset's
//! `inpgrid_tensor` strings (also [`tensor`]) and `inpgrid_json` objects ([`json`]), a readable
//! ASCII map ([`ascii`]) and SVG pictures ([`svg`]).

pub mod ascii;
pub mod json;
pub mod primitives;
pub mod svg;
pub mod tensor;

use std::fmt;

use thiserror::Error;

pub use primitives::{Action, Atom};

/// Side of the square array that holds a world and its border.
pub const GRID: usize = 18;
/// Number of cells of the array.
pub const CELLS: usize = GRID * GRID;
/// Largest interior height or width.
pub const MAX_SIZE: u8 = 16;
/// Most markers a cell can hold (10 only comes from the 16-channel dataset layout).
pub const MAX_MARKERS: u8 = 10;
/// `putMarker` fails on a cell with this many markers or more.
pub const PUT_MARKER_LIMIT: u8 = 9;

pub(crate) const WALL: u8 = 0x80;
const MARKER_MASK: u8 = 0x7f;

/// Cell offsets of the neighbours to the north, east, south and west.
const NEIGHBOUR: [isize; 4] = [GRID as isize, 1, -(GRID as isize), -1];

/// Per atom (in `Atom` order) and hero direction: the offset of the cell the atom reads.
const PROBE_OFFSET: [[isize; 4]; 5] = [
    // frontIsClear: the cell ahead.
    [NEIGHBOUR[0], NEIGHBOUR[1], NEIGHBOUR[2], NEIGHBOUR[3]],
    // leftIsClear: the cell at (dir - 1) mod 4.
    [NEIGHBOUR[3], NEIGHBOUR[0], NEIGHBOUR[1], NEIGHBOUR[2]],
    // rightIsClear: the cell at (dir + 1) mod 4.
    [NEIGHBOUR[1], NEIGHBOUR[2], NEIGHBOUR[3], NEIGHBOUR[0]],
    // markersPresent, noMarkersPresent: the hero's own cell.
    [0; 4],
    [0; 4],
];
/// Per atom: the bits of the probed cell that matter (walls, or the marker count).
const PROBE_MASK: [u8; 5] = [WALL, WALL, WALL, MARKER_MASK, MARKER_MASK];
/// Per atom: whether the atom holds when those bits are non-zero (markers present) rather than
/// zero (no wall, no markers).
const TRUE_WHEN_NONZERO: [bool; 5] = [false, false, false, true, false];

/// The direction the hero faces. The discriminant is the reference's direction index and the
/// hero's tensor channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Dir {
    North = 0,
    East = 1,
    South = 2,
    West = 3,
}

impl Dir {
    pub const ALL: [Dir; 4] = [Dir::North, Dir::East, Dir::South, Dir::West];

    pub const fn from_index(index: u8) -> Dir {
        match index & 3 {
            0 => Dir::North,
            1 => Dir::East,
            2 => Dir::South,
            _ => Dir::West,
        }
    }

    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The direction after `turnLeft`: (dir − 1) mod 4.
    pub const fn left(self) -> Dir {
        Dir::from_index(self as u8 + 3)
    }

    /// The direction after `turnRight`: (dir + 1) mod 4.
    pub const fn right(self) -> Dir {
        Dir::from_index(self as u8 + 1)
    }

    /// Offset of the neighbouring cell in this direction, in cell indices (`row * 18 + col`).
    const fn cell_offset(self) -> isize {
        NEIGHBOUR[self as usize]
    }

    /// The dataset's name: `north`, `east`, `south`, `west`.
    pub const fn name(self) -> &'static str {
        match self {
            Dir::North => "north",
            Dir::East => "east",
            Dir::South => "south",
            Dir::West => "west",
        }
    }

    pub fn from_name(name: &str) -> Option<Dir> {
        Dir::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The arrow used by the ASCII map: `^`, `>`, `v`, `<`.
    pub const fn arrow(self) -> char {
        match self {
            Dir::North => '^',
            Dir::East => '>',
            Dir::South => 'v',
            Dir::West => '<',
        }
    }

    pub fn from_arrow(arrow: char) -> Option<Dir> {
        Dir::ALL.into_iter().find(|d| d.arrow() == arrow)
    }
}

/// A position in the 18×18 array: the interior is rows `1..=H`, columns `1..=W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub row: u8,
    pub col: u8,
}

impl Pos {
    pub const fn new(row: u8, col: u8) -> Pos {
        Pos { row, col }
    }

    /// Index of the cell in the array, `row * 18 + col`.
    pub const fn cell(self) -> usize {
        self.row as usize * GRID + self.col as usize
    }

    pub const fn from_cell(cell: usize) -> Pos {
        Pos {
            row: (cell / GRID) as u8,
            col: (cell % GRID) as u8,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.row, self.col)
    }
}

/// Why a world description is not a valid world.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum WorldError {
    #[error("world size {rows}×{cols} is outside 1×1 … 16×16")]
    BadSize { rows: usize, cols: usize },
    #[error("tensor index {0} is out of range (a world has 16 channels of 18×18 cells)")]
    IndexOutOfRange(u64),
    #[error("the border walls (channel 5) are missing")]
    NoBorder,
    #[error("the border walls (channel 5) do not form the ring around a {rows}×{cols} interior")]
    BadBorder { rows: usize, cols: usize },
    #[error("there is no hero")]
    NoHero,
    #[error("there is more than one hero ({first} and {second})")]
    TwoHeroes { first: String, second: String },
    #[error("the hero at {0} is outside the interior")]
    HeroOutside(Pos),
    #[error("the hero at {0} stands in a wall")]
    HeroInWall(Pos),
    #[error("the wall at {0} is outside the interior")]
    WallOutside(Pos),
    #[error("the markers at {0} are outside the interior")]
    MarkersOutside(Pos),
    #[error("the markers at {0} lie in a wall")]
    MarkersInWall(Pos),
    #[error("the cell {0} has more than one marker count")]
    AmbiguousMarkers(Pos),
    #[error("{count} markers at {pos}: a cell holds at most {max}")]
    TooManyMarkers { pos: Pos, count: usize, max: u8 },
    #[error("the cell {0} holds 10 markers, which the 15-channel tensor cannot encode")]
    TenMarkers(Pos),
    #[error("dense tensor has {0} values, expected 15×18×18 = 4860 or 16×18×18 = 5184")]
    DenseLength(usize),
    #[error("dense tensor value {value} at index {index} is neither 0 nor 1")]
    DenseValue { index: usize, value: f32 },
    #[error("bad tensor string: {0}")]
    TensorString(String),
    #[error("bad grid JSON: {0}")]
    Json(String),
    #[error("bad ASCII map, line {line}: {message}")]
    Ascii { line: usize, message: String },
    #[error("`{0}` starts no world format: an ASCII map starts with `+`, a tensor string with an index, index lists with `[`, grid objects with `{{`")]
    UnknownFormat(String),
}

/// A Karel world. Cheap to copy (≈330 bytes), compared and hashed by value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct World {
    rows: u8,
    cols: u8,
    dir: Dir,
    hero: u16,
    /// Per cell: `WALL` for interior and border walls, otherwise the marker count.
    cells: [u8; CELLS],
}

impl World {
    /// An empty `rows`×`cols` world (no interior walls, no markers) with the hero at `hero`.
    pub fn new(rows: u8, cols: u8, hero: Pos, dir: Dir) -> Result<World, WorldError> {
        if !(1..=MAX_SIZE).contains(&rows) || !(1..=MAX_SIZE).contains(&cols) {
            return Err(WorldError::BadSize {
                rows: rows as usize,
                cols: cols as usize,
            });
        }
        let mut cells = [0u8; CELLS];
        let width = cols as usize + 2;
        let top = (rows as usize + 1) * GRID;
        cells[..width].fill(WALL);
        cells[top..top + width].fill(WALL);
        for row in 1..=rows as usize {
            cells[row * GRID] = WALL;
            cells[row * GRID + cols as usize + 1] = WALL;
        }
        let world = World {
            rows,
            cols,
            dir,
            hero: hero.cell() as u16,
            cells,
        };
        if !world.in_interior(hero) {
            return Err(WorldError::HeroOutside(hero));
        }
        Ok(world)
    }

    /// Builds a world from its interior cells in row-major order from the south-west: each value
    /// is a marker count (0–10) or `wall`. One pass, with every check of the editing methods.
    pub fn from_interior(
        rows: u8,
        cols: u8,
        hero: Pos,
        dir: Dir,
        cells: impl IntoIterator<Item = u8>,
        wall: u8,
    ) -> Result<World, WorldError> {
        let mut world = World::new(rows, cols, hero, dir)?;
        let mut count = 0;
        for (i, value) in cells.into_iter().enumerate() {
            if i >= rows as usize * cols as usize {
                return Err(WorldError::BadSize {
                    rows: rows as usize,
                    cols: i + 1,
                });
            }
            let pos = Pos::new((i / cols as usize) as u8 + 1, (i % cols as usize) as u8 + 1);
            world.cells[pos.cell()] = match value {
                v if v == wall && pos == hero => return Err(WorldError::HeroInWall(pos)),
                v if v == wall => WALL,
                v if v <= MAX_MARKERS => v,
                v => {
                    return Err(WorldError::TooManyMarkers {
                        pos,
                        count: v as usize,
                        max: MAX_MARKERS,
                    })
                }
            };
            count += 1;
        }
        if count != rows as usize * cols as usize {
            return Err(WorldError::BadSize {
                rows: rows as usize,
                cols: cols as usize,
            });
        }
        Ok(world)
    }

    /// Interior height H.
    pub fn rows(&self) -> u8 {
        self.rows
    }

    /// Interior width W.
    pub fn cols(&self) -> u8 {
        self.cols
    }

    pub fn hero(&self) -> Pos {
        Pos::from_cell(self.hero as usize)
    }

    pub fn dir(&self) -> Dir {
        self.dir
    }

    /// `true` for positions in rows `1..=H`, columns `1..=W`.
    pub fn in_interior(&self, pos: Pos) -> bool {
        (1..=self.rows).contains(&pos.row) && (1..=self.cols).contains(&pos.col)
    }

    /// `true` for interior walls and the border ring.
    pub fn is_wall(&self, pos: Pos) -> bool {
        pos.row < GRID as u8 && pos.col < GRID as u8 && self.cells[pos.cell()] & WALL != 0
    }

    /// `true` for cells of the border ring.
    pub fn is_border(&self, pos: Pos) -> bool {
        let (r, c) = (pos.row, pos.col);
        r <= self.rows + 1
            && c <= self.cols + 1
            && (r == 0 || c == 0 || r == self.rows + 1 || c == self.cols + 1)
    }

    /// Number of markers at `pos` (0 for walls and cells outside the interior).
    pub fn markers(&self, pos: Pos) -> u8 {
        if pos.row >= GRID as u8 || pos.col >= GRID as u8 {
            return 0;
        }
        let cell = self.cells[pos.cell()];
        if cell & WALL != 0 {
            0
        } else {
            cell & MARKER_MASK
        }
    }

    /// Makes an interior cell a wall or clears it.
    pub fn set_wall(&mut self, pos: Pos, wall: bool) -> Result<(), WorldError> {
        if !self.in_interior(pos) {
            return Err(WorldError::WallOutside(pos));
        }
        if wall && pos.cell() == self.hero as usize {
            return Err(WorldError::HeroInWall(pos));
        }
        if wall && self.markers(pos) > 0 {
            return Err(WorldError::MarkersInWall(pos));
        }
        self.cells[pos.cell()] = if wall { WALL } else { 0 };
        Ok(())
    }

    /// Sets the marker count of an interior cell that is not a wall.
    pub fn set_markers(&mut self, pos: Pos, count: u8) -> Result<(), WorldError> {
        if !self.in_interior(pos) {
            return Err(WorldError::MarkersOutside(pos));
        }
        if count > MAX_MARKERS {
            return Err(WorldError::TooManyMarkers {
                pos,
                count: count as usize,
                max: MAX_MARKERS,
            });
        }
        if self.is_wall(pos) {
            return Err(WorldError::MarkersInWall(pos));
        }
        self.cells[pos.cell()] = count;
        Ok(())
    }

    /// Moves the hero (the new position must be an interior cell that is not a wall).
    pub fn set_hero(&mut self, pos: Pos, dir: Dir) -> Result<(), WorldError> {
        if !self.in_interior(pos) {
            return Err(WorldError::HeroOutside(pos));
        }
        if self.is_wall(pos) {
            return Err(WorldError::HeroInWall(pos));
        }
        self.hero = pos.cell() as u16;
        self.dir = dir;
        Ok(())
    }

    /// Interior positions, row by row from the south, each row from the west.
    pub fn interior(&self) -> impl Iterator<Item = Pos> + '_ {
        (1..=self.rows).flat_map(move |row| (1..=self.cols).map(move |col| Pos::new(row, col)))
    }

    /// Total number of markers in the world.
    pub fn total_markers(&self) -> u32 {
        self.interior().map(|p| self.markers(p) as u32).sum()
    }

    /// Marker count of the hero's cell.
    #[inline(always)]
    pub fn markers_here(&self) -> u8 {
        self.cells[self.hero as usize]
    }

    #[inline(always)]
    fn clear_towards(&self, dir: Dir) -> bool {
        let next = (self.hero as isize + dir.cell_offset()) as usize;
        self.cells[next] & WALL == 0
    }

    #[inline(always)]
    pub fn front_is_clear(&self) -> bool {
        self.clear_towards(self.dir)
    }

    #[inline(always)]
    pub fn left_is_clear(&self) -> bool {
        self.clear_towards(self.dir.left())
    }

    #[inline(always)]
    pub fn right_is_clear(&self) -> bool {
        self.clear_towards(self.dir.right())
    }

    #[inline(always)]
    pub fn markers_present(&self) -> bool {
        self.markers_here() > 0
    }

    /// Evaluates a primitive condition.
    #[inline(always)]
    pub fn atom(&self, atom: Atom) -> bool {
        match atom {
            Atom::FrontIsClear => self.front_is_clear(),
            Atom::LeftIsClear => self.left_is_clear(),
            Atom::RightIsClear => self.right_is_clear(),
            Atom::MarkersPresent => self.markers_present(),
            Atom::NoMarkersPresent => !self.markers_present(),
        }
    }

    /// Senses a percept, negated or not, without branching: every atom reads one cell (the
    /// neighbour in the tested direction, or the hero's own cell), masks it, and compares with
    /// zero.
    #[inline(always)]
    pub fn sense(&self, atom: Atom, negated: bool) -> bool {
        let atom = atom as usize;
        let probe = self.hero as isize + PROBE_OFFSET[atom][self.dir as usize];
        let is_zero = self.cells[probe as usize] & PROBE_MASK[atom] == 0;
        is_zero != (TRUE_WHEN_NONZERO[atom] != negated)
    }

    /// Performs an action; returns `false`, leaving the world unchanged, when it fails.
    /// The updates are written without branches on the world's contents.
    #[inline(always)]
    pub fn act(&mut self, action: Action) -> bool {
        match action {
            Action::Move => {
                let next = (self.hero as isize + self.dir.cell_offset()) as usize;
                let clear = self.cells[next] & WALL == 0;
                self.hero = if clear { next as u16 } else { self.hero };
                clear
            }
            Action::TurnLeft => {
                self.dir = self.dir.left();
                true
            }
            Action::TurnRight => {
                self.dir = self.dir.right();
                true
            }
            Action::PickMarker => {
                let cell = &mut self.cells[self.hero as usize];
                let some = *cell != 0;
                *cell -= some as u8;
                some
            }
            Action::PutMarker => {
                let cell = &mut self.cells[self.hero as usize];
                let room = *cell < PUT_MARKER_LIMIT;
                *cell += room as u8;
                room
            }
        }
    }
}

/// The text formats a world can be read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextFormat {
    /// A JSON array of sparse indices.
    Indices,
    /// A dataset grid object (`inpgrid_json`).
    GridJson,
    /// A dataset tensor string (`idx:1.0 …`).
    TensorString,
    /// An ASCII map.
    Ascii,
    /// Text that starts none of the formats.
    Unknown,
}

impl TextFormat {
    /// Recognises the format of a world's text from its first characters.
    pub fn detect(text: &str) -> TextFormat {
        let text = text.trim_start();
        match text.chars().next() {
            Some('[') => TextFormat::Indices,
            Some('{') => TextFormat::GridJson,
            Some(c) if c.is_ascii_digit() || c == '-' => TextFormat::TensorString,
            Some('+') | None => TextFormat::Ascii,
            Some(_) => TextFormat::Unknown,
        }
    }
}

impl World {
    /// Reads a world in any of the [`TextFormat`]s, recognised from the text.
    pub fn from_text(text: &str) -> Result<World, WorldError> {
        match TextFormat::detect(text) {
            TextFormat::Indices => {
                let indices: Vec<u64> = serde_json::from_str(text)
                    .map_err(|e| WorldError::Json(format!("expected an array of indices: {e}")))?;
                World::from_indices(indices)
            }
            TextFormat::GridJson => {
                let grid: json::GridJson =
                    serde_json::from_str(text).map_err(|e| WorldError::Json(e.to_string()))?;
                World::from_grid_json(&grid)
            }
            TextFormat::TensorString => World::from_tensor_string(text),
            TextFormat::Ascii => World::from_ascii(text),
            TextFormat::Unknown => {
                let start: String = text.trim().chars().take(20).collect();
                Err(WorldError::UnknownFormat(start.escape_debug().to_string()))
            }
        }
    }
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "World {{\n{}}}", self.to_ascii())
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ascii())
    }
}

impl<'a> arbitrary::Arbitrary<'a> for World {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let rows = u.int_in_range(1..=MAX_SIZE)?;
        let cols = u.int_in_range(1..=MAX_SIZE)?;
        let hero = Pos::new(u.int_in_range(1..=rows)?, u.int_in_range(1..=cols)?);
        let dir = Dir::from_index(u.int_in_range(0..=3)?);
        let mut world =
            World::new(rows, cols, hero, dir).map_err(|_| arbitrary::Error::IncorrectFormat)?;
        for pos in world.interior().collect::<Vec<_>>() {
            if pos == hero {
                world
                    .set_markers(pos, u.int_in_range(0..=MAX_MARKERS)?)
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?;
                continue;
            }
            match u.int_in_range(0..=7u8)? {
                0 => world.set_wall(pos, true),
                1 => world.set_markers(pos, u.int_in_range(1..=MAX_MARKERS)?),
                _ => Ok(()),
            }
            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        }
        Ok(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(3, 4, Pos::new(1, 1), Dir::North).unwrap()
    }

    #[test]
    fn moves_and_walls() {
        let mut w = world();
        assert!(w.front_is_clear());
        assert!(!w.left_is_clear(), "west of column 1 is the border");
        assert!(w.right_is_clear());
        assert!(w.act(Action::Move));
        assert_eq!(w.hero(), Pos::new(2, 1));
        w.set_wall(Pos::new(3, 1), true).unwrap();
        assert!(!w.front_is_clear());
        assert!(!w.act(Action::Move));
        assert_eq!(w.hero(), Pos::new(2, 1));
        assert!(w.act(Action::TurnRight));
        assert_eq!(w.dir(), Dir::East);
        assert!(w.act(Action::TurnLeft) && w.act(Action::TurnLeft));
        assert_eq!(w.dir(), Dir::West);
    }

    #[test]
    fn markers_follow_the_reference_limits() {
        let mut w = world();
        assert!(!w.act(Action::PickMarker));
        for n in 1..=9 {
            assert!(w.act(Action::PutMarker));
            assert_eq!(w.markers(w.hero()), n);
        }
        assert!(!w.act(Action::PutMarker), "putMarker fails on 9 markers");
        assert_eq!(w.markers(w.hero()), 9);
        w.set_markers(w.hero(), 10).unwrap();
        assert!(!w.act(Action::PutMarker));
        assert!(w.act(Action::PickMarker));
        assert_eq!(w.markers(w.hero()), 9);
    }

    #[test]
    fn invalid_edits_are_errors() {
        let mut w = world();
        assert_eq!(
            w.set_wall(Pos::new(1, 1), true),
            Err(WorldError::HeroInWall(Pos::new(1, 1)))
        );
        assert!(w.set_wall(Pos::new(0, 1), true).is_err());
        assert!(w.set_markers(Pos::new(4, 1), 1).is_err());
        assert!(w.set_markers(Pos::new(2, 2), 11).is_err());
        assert!(World::new(0, 3, Pos::new(1, 1), Dir::North).is_err());
        assert!(World::new(17, 3, Pos::new(1, 1), Dir::North).is_err());
        assert!(World::new(3, 3, Pos::new(4, 1), Dir::North).is_err());
    }
}
