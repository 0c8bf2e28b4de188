//! The tensor encodings of a world: sparse index lists, dense arrays and the dataset's tensor
//! strings.
//!
//! The reference state is a boolean `15×18×18` array, channel-major; the sparse index of a set
//! cell is `channel * 324 + row * 18 + col`. Channels: 0–3 hero facing N/E/S/W, 4 interior wall,
//! 5 border wall, `6 + k − 1` exactly k markers (k = 1..9). The 16-channel dataset layout adds
//! channel 15 for 10 markers; index lists accept and produce it, the 15-channel dense tensor
//! refuses it.
//!
//! The dataset's `inpgrid_tensor` / `outgrid_tensor` strings are the same indices written
//! `"idx:1.0 idx:1.0 …"`.

use super::{Dir, Pos, World, WorldError, CELLS, GRID, MAX_MARKERS, MAX_SIZE};

/// Channels of the reference tensor.
pub const CHANNELS: usize = 15;
/// Channels of the 16-channel dataset layout (channel 15: 10 markers).
pub const DATASET_CHANNELS: usize = 16;
/// Channel of the interior walls.
pub const WALL_CHANNEL: usize = 4;
/// Channel of the border walls.
pub const BORDER_CHANNEL: usize = 5;
/// Channel of "exactly 1 marker"; k markers are at `MARKER_CHANNEL + k - 1`.
pub const MARKER_CHANNEL: usize = 6;
/// Length of the dense 15-channel tensor.
pub const DENSE_LEN: usize = CHANNELS * CELLS;

impl World {
    /// Builds a world from the sorted or unsorted indices of its set cells (16-channel layout;
    /// duplicates are ignored). Runs in time linear in the number of indices.
    pub fn from_indices<I>(indices: I) -> Result<World, WorldError>
    where
        I: IntoIterator,
        I::Item: Into<u64>,
    {
        // Pass 1: range, the border's extent (as the reference's `init_from_array` finds the
        // size), and the hero.
        let mut cells: Vec<(usize, usize)> = Vec::new();
        let (mut max_row, mut max_col) = (None::<usize>, None::<usize>);
        let mut hero: Option<(usize, usize)> = None;
        let mut strictly_increasing = true;
        let mut previous = None;
        for index in indices {
            let index: u64 = index.into();
            strictly_increasing &= previous < Some(index);
            previous = Some(index);
            if index >= (DATASET_CHANNELS * CELLS) as u64 {
                return Err(WorldError::IndexOutOfRange(index));
            }
            let (channel, cell) = (index as usize / CELLS, index as usize % CELLS);
            match channel {
                0..=3 => match hero {
                    Some(first) if first != (channel, cell) => {
                        let describe = |(channel, cell): (usize, usize)| {
                            format!(
                                "{} facing {}",
                                Pos::from_cell(cell),
                                Dir::from_index(channel as u8).name()
                            )
                        };
                        return Err(WorldError::TwoHeroes {
                            first: describe(first),
                            second: describe((channel, cell)),
                        });
                    }
                    _ => hero = Some((channel, cell)),
                },
                BORDER_CHANNEL => {
                    max_row = max_row.max(Some(cell / GRID));
                    max_col = max_col.max(Some(cell % GRID));
                }
                _ => {}
            }
            cells.push((channel, cell));
        }
        let (Some(max_row), Some(max_col)) = (max_row, max_col) else {
            return Err(WorldError::NoBorder);
        };
        let (rows, cols) = (max_row.saturating_sub(1), max_col.saturating_sub(1));
        if !(1..=MAX_SIZE as usize).contains(&rows) || !(1..=MAX_SIZE as usize).contains(&cols) {
            return Err(WorldError::BadSize { rows, cols });
        }
        let (hero_channel, hero_cell) = hero.ok_or(WorldError::NoHero)?;
        let mut world = World::new(
            rows as u8,
            cols as u8,
            Pos::from_cell(hero_cell),
            Dir::from_index(hero_channel as u8),
        )?;

        // Pass 2: the border must be exactly the ring; then walls, then markers. Indices that
        // arrive strictly increasing (the usual, sorted form) cannot repeat a ring cell, so
        // counting them suffices; otherwise repeats are discounted.
        let mut ring_cells = 0;
        let mut seen = if strictly_increasing {
            None
        } else {
            Some([false; CELLS])
        };
        for &(channel, cell) in &cells {
            if channel == BORDER_CHANNEL {
                if !world.is_border(Pos::from_cell(cell)) {
                    return Err(WorldError::BadBorder { rows, cols });
                }
                match &mut seen {
                    Some(seen) if seen[cell] => {}
                    Some(seen) => {
                        seen[cell] = true;
                        ring_cells += 1;
                    }
                    None => ring_cells += 1,
                }
            }
        }
        if ring_cells != 2 * (rows + cols) + 4 {
            return Err(WorldError::BadBorder { rows, cols });
        }
        for &(channel, cell) in &cells {
            if channel == WALL_CHANNEL {
                world.set_wall(Pos::from_cell(cell), true)?;
            }
        }
        for &(channel, cell) in &cells {
            if channel >= MARKER_CHANNEL {
                let pos = Pos::from_cell(cell);
                let count = (channel - MARKER_CHANNEL + 1) as u8;
                let current = world.markers(pos);
                if current != 0 && current != count {
                    return Err(WorldError::AmbiguousMarkers(pos));
                }
                world.set_markers(pos, count)?;
            }
        }
        Ok(world)
    }

    /// The sorted indices of the set cells (16-channel layout: a cell with 10 markers uses
    /// channel 15, which never happens in worlds of the 15-channel reference).
    pub fn to_indices(&self) -> Vec<u32> {
        // Sorted means channel-major: the hero (channels 0–3), interior walls (4), the border
        // (5), then markers by count (6–15); cells ascend within a channel. One pass collects
        // each channel in cell order.
        let (rows, cols) = (self.rows as usize, self.cols as usize);
        let mut walls = Vec::new();
        let mut border = Vec::with_capacity(2 * (rows + cols) + 4);
        let mut markers: [Vec<u32>; MAX_MARKERS as usize] = Default::default();
        for row in 0..=rows + 1 {
            for col in 0..=cols + 1 {
                let cell = row * GRID + col;
                if row == 0 || col == 0 || row == rows + 1 || col == cols + 1 {
                    border.push((BORDER_CHANNEL * CELLS + cell) as u32);
                } else if self.cells[cell] & super::WALL != 0 {
                    walls.push((WALL_CHANNEL * CELLS + cell) as u32);
                } else if self.cells[cell] > 0 {
                    let count = self.cells[cell] as usize;
                    markers[count - 1].push(((MARKER_CHANNEL + count - 1) * CELLS + cell) as u32);
                }
            }
        }
        let total = 1 + walls.len() + border.len() + markers.iter().map(Vec::len).sum::<usize>();
        let mut indices = Vec::with_capacity(total);
        indices.push((self.dir.index() as usize * CELLS + self.hero as usize) as u32);
        indices.extend_from_slice(&walls);
        indices.extend_from_slice(&border);
        for channel in &markers {
            indices.extend_from_slice(channel);
        }
        indices
    }

    /// Fails if a cell holds 10 markers, which the 15-channel tensor cannot hold.
    pub fn check_fits_reference_tensor(&self) -> Result<(), WorldError> {
        match self.interior().find(|&p| self.markers(p) == MAX_MARKERS) {
            Some(pos) => Err(WorldError::TenMarkers(pos)),
            None => Ok(()),
        }
    }

    /// Writes the dense 15×18×18 tensor (channel-major, 1.0 for set cells) into `out`, which must
    /// hold [`DENSE_LEN`] values; it is cleared first.
    pub fn write_dense(&self, out: &mut [f32]) -> Result<(), WorldError> {
        if out.len() != DENSE_LEN {
            return Err(WorldError::DenseLength(out.len()));
        }
        self.check_fits_reference_tensor()?;
        out.fill(0.0);
        for index in self.to_indices() {
            out[index as usize] = 1.0;
        }
        Ok(())
    }

    /// The dense 15×18×18 tensor, channel-major.
    pub fn to_dense(&self) -> Result<Vec<f32>, WorldError> {
        let mut out = vec![0.0; DENSE_LEN];
        self.write_dense(&mut out)?;
        Ok(out)
    }

    /// Reads a dense tensor of 15 or 16 channels whose values are all 0 or 1.
    pub fn from_dense(values: &[f32]) -> Result<World, WorldError> {
        if values.len() != DENSE_LEN && values.len() != DATASET_CHANNELS * CELLS {
            return Err(WorldError::DenseLength(values.len()));
        }
        let mut indices = Vec::new();
        for (index, &value) in values.iter().enumerate() {
            if value == 1.0 {
                indices.push(index as u64);
            } else if value != 0.0 {
                return Err(WorldError::DenseValue { index, value });
            }
        }
        World::from_indices(indices)
    }

    /// Reads a byte tensor (a numpy `bool` or `uint8` array's buffer) of 15 or 16 channels,
    /// channel-major, whose values are all 0 or 1. The buffer is read a word at a time: zero
    /// words are skipped and the set bytes of the others found by bit scans, so the cost is about
    /// one pass over the buffer plus the set cells.
    pub fn from_bytes(values: &[u8]) -> Result<World, WorldError> {
        if values.len() != DENSE_LEN && values.len() != DATASET_CHANNELS * CELLS {
            return Err(WorldError::DenseLength(values.len()));
        }
        const WORD: usize = 8;
        // Bits that are set in a word only if one of its bytes is neither 0 nor 1.
        const HIGH_BITS: u64 = 0xFEFE_FEFE_FEFE_FEFE;
        let bad_value = |base: usize, bytes: &[u8]| {
            let (k, &value) = bytes
                .iter()
                .enumerate()
                .find(|(_, &v)| v > 1)
                .unwrap_or((0, &0));
            WorldError::DenseValue {
                index: base + k,
                value: f32::from(value),
            }
        };
        let mut indices: Vec<u32> = Vec::with_capacity(160);
        let word_at = |offset: usize| {
            let mut word = [0u8; WORD];
            word.copy_from_slice(&values[offset..offset + WORD]);
            u64::from_le_bytes(word)
        };
        // Blocks of eight words are tested at once (most of a world's tensor is zero), so that
        // the scan branches once per 64 bytes and streams through memory.
        const BLOCK: usize = 8 * WORD;
        let words = values.len() / WORD;
        let blocks = values.len() / BLOCK;
        let scan_word = |w: usize, indices: &mut Vec<u32>| -> Result<(), WorldError> {
            let mut word = word_at(w * WORD);
            if word & HIGH_BITS != 0 {
                return Err(bad_value(w * WORD, &values[w * WORD..w * WORD + WORD]));
            }
            // Byte k of the word is bit 8k.
            while word != 0 {
                indices.push((w * WORD) as u32 + word.trailing_zeros() / 8);
                word &= word - 1;
            }
            Ok(())
        };
        for b in 0..blocks {
            let base = b * BLOCK;
            let mut any = 0;
            for k in 0..8 {
                any |= word_at(base + k * WORD);
            }
            if any != 0 {
                for w in b * 8..b * 8 + 8 {
                    scan_word(w, &mut indices)?;
                }
            }
        }
        for w in blocks * 8..words {
            scan_word(w, &mut indices)?;
        }
        let tail = &values[words * WORD..];
        if tail.iter().any(|&v| v > 1) {
            return Err(bad_value(words * WORD, tail));
        }
        for (k, &value) in tail.iter().enumerate() {
            if value == 1 {
                indices.push((words * WORD + k) as u32);
            }
        }
        World::from_indices(indices)
    }

    /// Calls `set` with the tensor index of every set cell (16-channel layout), in no particular
    /// order: what [`World::to_indices`] lists, without sorting or allocating.
    pub fn for_each_index(&self, mut set: impl FnMut(usize)) {
        let (rows, cols) = (self.rows as usize, self.cols as usize);
        set(self.dir.index() as usize * CELLS + self.hero as usize);
        for row in 0..=rows + 1 {
            for col in 0..=cols + 1 {
                let cell = row * GRID + col;
                if row == 0 || col == 0 || row == rows + 1 || col == cols + 1 {
                    set(BORDER_CHANNEL * CELLS + cell);
                } else if self.cells[cell] & super::WALL != 0 {
                    set(WALL_CHANNEL * CELLS + cell);
                } else if self.cells[cell] > 0 {
                    set((MARKER_CHANNEL + self.cells[cell] as usize - 1) * CELLS + cell);
                }
            }
        }
    }

    /// Writes the 15-channel byte tensor (1 for set cells) into `out`, which must hold
    /// [`DENSE_LEN`] bytes; it is cleared first.
    pub fn write_bytes(&self, out: &mut [u8]) -> Result<(), WorldError> {
        if out.len() != DENSE_LEN {
            return Err(WorldError::DenseLength(out.len()));
        }
        self.check_fits_reference_tensor()?;
        out.fill(0);
        self.for_each_index(|index| out[index] = 1);
        Ok(())
    }

    /// The dataset's tensor string: `"idx:1.0 idx:1.0 …"`, indices sorted.
    pub fn to_tensor_string(&self) -> String {
        let indices = self.to_indices();
        let mut out = String::with_capacity(indices.len() * 9);
        for (i, index) in indices.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&index.to_string());
            out.push_str(":1.0");
        }
        out
    }

    /// Reads a dataset tensor string. Every value must be 1 (the dataset only stores set cells).
    pub fn from_tensor_string(text: &str) -> Result<World, WorldError> {
        let mut indices = Vec::new();
        for item in text.split_whitespace() {
            let (index, value) = item.split_once(':').ok_or_else(|| {
                WorldError::TensorString(format!(
                    "`{}` is not of the form index:value",
                    excerpt(item)
                ))
            })?;
            let index: u64 = index.parse().map_err(|_| {
                WorldError::TensorString(format!(
                    "`{}` is not an index (a whole number of at least 0)",
                    excerpt(index)
                ))
            })?;
            let value: f64 = value.parse().map_err(|_| {
                WorldError::TensorString(format!("`{}` is not a number", excerpt(value)))
            })?;
            if value != 1.0 {
                return Err(WorldError::TensorString(format!(
                    "value {value} at index {index}: only 1.0 can be stored"
                )));
            }
            indices.push(index);
        }
        World::from_indices(indices)
    }
}

/// The start of a piece of input, short enough for a message.
fn excerpt(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}…", text[..end].escape_debug()),
        None => text.escape_debug().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_of_a_small_world() {
        let mut w = World::new(1, 2, Pos::new(1, 1), Dir::East).unwrap();
        w.set_markers(Pos::new(1, 2), 3).unwrap();
        let indices = w.to_indices();
        // Hero facing east at (1,1): channel 1, cell 19.
        assert_eq!(indices[0], 324 + 19);
        // Border ring of a 1×2 interior: 3 rows × 4 columns minus the 2 interior cells.
        let border: Vec<u32> = indices.iter().copied().filter(|&i| i / 324 == 5).collect();
        assert_eq!(border.len(), 10);
        // Three markers at (1,2): channel 8.
        assert_eq!(*indices.last().unwrap(), 8 * 324 + 20);
        assert_eq!(World::from_indices(indices.iter().copied()).unwrap(), w);
    }

    #[test]
    fn rejects_invalid_index_lists() {
        let w = World::new(2, 2, Pos::new(1, 1), Dir::North).unwrap();
        let good = w.to_indices();
        let without_hero: Vec<u32> = good.iter().copied().filter(|&i| i >= 324 * 4).collect();
        assert_eq!(
            World::from_indices(without_hero.iter().copied()),
            Err(WorldError::NoHero)
        );
        let mut two_heroes = good.clone();
        two_heroes.push(324 + 20);
        assert!(matches!(
            World::from_indices(two_heroes.iter().copied()),
            Err(WorldError::TwoHeroes { .. })
        ));
        let mut hero_in_wall = good.clone();
        hero_in_wall.push(4 * 324 + 19);
        assert_eq!(
            World::from_indices(hero_in_wall.iter().copied()),
            Err(WorldError::HeroInWall(Pos::new(1, 1)))
        );
        let mut broken_border = good.clone();
        broken_border.retain(|&i| i != 5 * 324 + 1);
        assert!(matches!(
            World::from_indices(broken_border.iter().copied()),
            Err(WorldError::BadBorder { .. })
        ));
        let mut two_counts = good.clone();
        two_counts.extend([6 * 324 + 20, 7 * 324 + 20]);
        assert_eq!(
            World::from_indices(two_counts.iter().copied()),
            Err(WorldError::AmbiguousMarkers(Pos::new(1, 2)))
        );
        assert_eq!(
            World::from_indices([99_999u32]),
            Err(WorldError::IndexOutOfRange(99_999))
        );
        assert_eq!(
            World::from_indices(Vec::<u32>::new()),
            Err(WorldError::NoBorder)
        );
    }

    #[test]
    fn tensor_strings_and_dense_tensors() {
        let mut w = World::new(3, 3, Pos::new(2, 2), Dir::South).unwrap();
        w.set_wall(Pos::new(1, 3), true).unwrap();
        w.set_markers(Pos::new(2, 2), 9).unwrap();
        let text = w.to_tensor_string();
        assert!(text.starts_with(&format!("{}:1.0 ", 2 * 324 + 2 * 18 + 2)));
        assert_eq!(World::from_tensor_string(&text).unwrap(), w);
        assert!(World::from_tensor_string("12:0.5").is_err());
        assert!(World::from_tensor_string("12").is_err());
        assert!(World::from_tensor_string("x:1.0").is_err());
        let dense = w.to_dense().unwrap();
        assert_eq!(
            dense.iter().filter(|&&v| v == 1.0).count(),
            w.to_indices().len()
        );
        assert_eq!(World::from_dense(&dense).unwrap(), w);
        w.set_markers(Pos::new(2, 2), 10).unwrap();
        assert_eq!(w.to_dense(), Err(WorldError::TenMarkers(Pos::new(2, 2))));
        assert_eq!(World::from_indices(w.to_indices()).unwrap(), w);
    }

    #[test]
    fn byte_tensors() {
        let mut w = World::new(16, 16, Pos::new(16, 16), Dir::West).unwrap();
        w.set_wall(Pos::new(1, 3), true).unwrap();
        w.set_markers(Pos::new(16, 15), 3).unwrap();
        let mut bytes = vec![7u8; DENSE_LEN];
        w.write_bytes(&mut bytes).unwrap();
        assert_eq!(
            bytes.iter().map(|&b| usize::from(b)).sum::<usize>(),
            w.to_indices().len()
        );
        assert_eq!(World::from_bytes(&bytes).unwrap(), w);
        let mut visited = Vec::new();
        w.for_each_index(|i| visited.push(i as u32));
        visited.sort_unstable();
        assert_eq!(visited, w.to_indices());
        let mut sixteen = bytes.clone();
        sixteen.resize(DATASET_CHANNELS * CELLS, 0);
        assert_eq!(World::from_bytes(&sixteen).unwrap(), w);
        *sixteen.last_mut().unwrap() = 2;
        assert!(matches!(
            World::from_bytes(&sixteen),
            Err(WorldError::DenseValue { index, .. }) if index == DATASET_CHANNELS * CELLS - 1
        ));
        // 4860 bytes end with a partial word: its cells are read too.
        bytes[DENSE_LEN - 1] = 1;
        assert!(World::from_bytes(&bytes).is_err(), "a marker on the border");
        assert_eq!(
            World::from_bytes(&bytes[1..]),
            Err(WorldError::DenseLength(DENSE_LEN - 1))
        );
        assert_eq!(w.write_bytes(&mut [0; 3]), Err(WorldError::DenseLength(3)));
    }
}
