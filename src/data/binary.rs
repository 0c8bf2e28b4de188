//! Our compact binary task format (`.kds`): random access by index, a checksum, about 350 bytes
//! per task (a tenth of the standard JSON).
//!
//! ```text
//! header   "KARELDS\0"  version: u32 = 1  flags: u32 = 0
//! records  per task: length: u32, then the record (below)
//! index    count: u64, then count × offset: u64 (of each length field)
//! footer   crc32 of everything before it: u32, index offset: u64, "KDSINDEX"
//! ```
//!
//! All integers are little-endian. A record: guid (u8 length + bytes), program (u16 token count +
//! one vocabulary id per token), examples (u8 count), each an input world and its output. A world
//! is rows, cols, hero row, hero col, hero direction (u8 each; array coordinates), then the
//! interior cells row-major two per byte (low nibble first): 0–10 markers, 15 a wall. An output is
//! stored as changes to its input: the hero (3 bytes), a change count (u16), then (interior cell
//! index: u8, new nibble value: u8) pairs.
//!
//! [`BinaryWriter`] streams records and writes the index on [`BinaryWriter::finish`]; a file
//! without its footer (an interrupted run) can still be read record by record with
//! [`scan_records`], which is how interrupted generation resumes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::task::{Example, Task};
use super::DataError;
use crate::lang::{self, ParseOptions, Token};
use crate::world::{Dir, Pos, World};

const MAGIC: &[u8; 8] = b"KARELDS\0";
const FOOTER_MAGIC: &[u8; 8] = b"KDSINDEX";
const VERSION: u32 = 1;
const HEADER_LEN: u64 = 16;
const FOOTER_LEN: usize = 4 + 8 + 8;
const WALL_NIBBLE: u8 = 15;

/// Encodes one task record.
pub fn encode_task(task: &Task, out: &mut Vec<u8>) {
    let guid = task.guid.as_bytes();
    out.push(guid.len().min(255) as u8);
    out.extend_from_slice(&guid[..guid.len().min(255)]);
    let tokens = task.program.tokens();
    out.extend_from_slice(&(tokens.len() as u16).to_le_bytes());
    out.extend(tokens.iter().map(|t| t.id()));
    out.push(task.examples.len() as u8);
    for example in &task.examples {
        encode_world(&example.input, out);
        encode_changes(&example.input, &example.output, out);
    }
}

fn nibble(world: &World, pos: Pos) -> u8 {
    if world.is_wall(pos) {
        WALL_NIBBLE
    } else {
        world.markers(pos)
    }
}

fn encode_world(world: &World, out: &mut Vec<u8>) {
    let hero = world.hero();
    out.extend_from_slice(&[
        world.rows(),
        world.cols(),
        hero.row,
        hero.col,
        world.dir().index(),
    ]);
    let cells: Vec<u8> = world.interior().map(|p| nibble(world, p)).collect();
    out.extend(
        cells
            .chunks(2)
            .map(|pair| pair[0] | pair.get(1).copied().unwrap_or(0) << 4),
    );
}

fn encode_changes(input: &World, output: &World, out: &mut Vec<u8>) {
    let hero = output.hero();
    out.extend_from_slice(&[hero.row, hero.col, output.dir().index()]);
    let changes: Vec<(u8, u8)> = input
        .interior()
        .enumerate()
        .filter(|&(_, p)| nibble(input, p) != nibble(output, p))
        .map(|(i, p)| (i as u8, nibble(output, p)))
        .collect();
    out.extend_from_slice(&(changes.len() as u16).to_le_bytes());
    for (cell, value) in changes {
        out.extend_from_slice(&[cell, value]);
    }
}

/// A cursor over a record's bytes that fails cleanly on truncation.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("record truncated at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}

fn set_nibble(world: &mut World, pos: Pos, value: u8) -> Result<(), String> {
    match value {
        WALL_NIBBLE => world.set_wall(pos, true),
        n => world
            .set_wall(pos, false)
            .and_then(|_| world.set_markers(pos, n)),
    }
    .map_err(|e| e.to_string())
}

fn decode_world(c: &mut Cursor) -> Result<World, String> {
    let head = c.take(5)?;
    let (rows, cols) = (head[0], head[1]);
    if head[4] > 3 {
        return Err(format!("bad direction {}", head[4]));
    }
    let cells = rows as usize * cols as usize;
    let packed = c.take(cells.div_ceil(2))?;
    let nibbles = (0..cells).map(|i| (packed[i / 2] >> (4 * (i % 2))) & 0xf);
    World::from_interior(
        rows,
        cols,
        Pos::new(head[2], head[3]),
        Dir::from_index(head[4]),
        nibbles,
        WALL_NIBBLE,
    )
    .map_err(|e| e.to_string())
}

fn decode_changes(input: &World, c: &mut Cursor) -> Result<World, String> {
    let head = c.take(3)?;
    if head[2] > 3 {
        return Err(format!("bad direction {}", head[2]));
    }
    let mut output = input.clone();
    output
        .set_hero(Pos::new(head[0], head[1]), Dir::from_index(head[2]))
        .map_err(|e| e.to_string())?;
    let cols = input.cols() as usize;
    let changes = c.u16()?;
    for _ in 0..changes {
        let pair = c.take(2)?;
        let cell = pair[0] as usize;
        if cell >= input.rows() as usize * cols {
            return Err(format!("changed cell {cell} is outside the world"));
        }
        let pos = Pos::new((cell / cols) as u8 + 1, (cell % cols) as u8 + 1);
        set_nibble(&mut output, pos, pair[1])?;
    }
    Ok(output)
}

/// Decodes one task record.
pub fn decode_task(bytes: &[u8]) -> Result<Task, String> {
    let mut c = Cursor { bytes, at: 0 };
    let guid_len = c.u8()? as usize;
    let guid = String::from_utf8(c.take(guid_len)?.to_vec()).map_err(|_| "guid is not UTF-8")?;
    let token_count = c.u16()? as usize;
    let tokens = c
        .take(token_count)?
        .iter()
        .map(|&id| Token::from_id(id).ok_or_else(|| format!("bad token id {id}")))
        .collect::<Result<Vec<_>, _>>()?;
    let program = lang::parse_tokens(&tokens, &ParseOptions::default())
        .map_err(|e| format!("program: {e}"))?;
    let count = c.u8()?;
    let mut examples = Vec::with_capacity(count as usize);
    for i in 0..count {
        let input = decode_world(&mut c).map_err(|e| format!("example {i} input: {e}"))?;
        let output =
            decode_changes(&input, &mut c).map_err(|e| format!("example {i} output: {e}"))?;
        examples.push(Example { input, output });
    }
    if c.at != bytes.len() {
        return Err(format!(
            "{} unexpected bytes after the record",
            bytes.len() - c.at
        ));
    }
    Ok(Task {
        guid,
        program,
        examples,
    })
}

/// Streams tasks into a `.kds` file.
pub struct BinaryWriter {
    path: PathBuf,
    out: BufWriter<File>,
    offsets: Vec<u64>,
    position: u64,
    crc: crc32fast::Hasher,
    buffer: Vec<u8>,
}

impl BinaryWriter {
    /// Creates `path` and writes the header.
    pub fn create(path: &Path) -> Result<BinaryWriter, DataError> {
        let file = File::create(path).map_err(|e| DataError::io(path, e))?;
        let mut writer = BinaryWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            offsets: Vec::new(),
            position: 0,
            crc: crc32fast::Hasher::new(),
            buffer: Vec::with_capacity(4096),
        };
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        writer.write_raw(&header)?;
        Ok(writer)
    }

    /// Reopens a file whose records end at byte `valid_len` (its footer missing or to be
    /// rewritten), to append more records. `offsets` are the existing records' offsets.
    pub fn append_after(
        path: &Path,
        valid_len: u64,
        offsets: Vec<u64>,
    ) -> Result<BinaryWriter, DataError> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| DataError::io(path, e))?;
        file.set_len(valid_len)
            .map_err(|e| DataError::io(path, e))?;
        let mut crc = crc32fast::Hasher::new();
        let mut existing = Vec::with_capacity(valid_len as usize);
        (&mut file)
            .take(valid_len)
            .read_to_end(&mut existing)
            .map_err(|e| DataError::io(path, e))?;
        crc.update(&existing);
        file.seek(io::SeekFrom::End(0))
            .map_err(|e| DataError::io(path, e))?;
        Ok(BinaryWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            offsets,
            position: valid_len,
            crc,
            buffer: Vec::with_capacity(4096),
        })
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), DataError> {
        self.crc.update(bytes);
        self.position += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| DataError::io(&self.path, e))
    }

    /// Appends a task.
    pub fn write(&mut self, task: &Task) -> Result<(), DataError> {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        encode_task(task, &mut buffer);
        self.offsets.push(self.position);
        self.write_raw(&(buffer.len() as u32).to_le_bytes())?;
        self.write_raw(&buffer)?;
        self.buffer = buffer;
        Ok(())
    }

    /// Bytes written so far (the end of the last record).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Number of records written.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Flushes the records written so far to disk (for checkpoints).
    pub fn flush(&mut self) -> Result<(), DataError> {
        self.out.flush().map_err(|e| DataError::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| DataError::io(&self.path, e))
    }

    /// Writes the index and the footer and closes the file.
    pub fn finish(mut self) -> Result<(), DataError> {
        let index_offset = self.position;
        let mut index = Vec::with_capacity(8 + 8 * self.offsets.len());
        index.extend_from_slice(&(self.offsets.len() as u64).to_le_bytes());
        for offset in &self.offsets {
            index.extend_from_slice(&offset.to_le_bytes());
        }
        self.write_raw(&index)?;
        let crc = self.crc.clone().finalize();
        let mut footer = crc.to_le_bytes().to_vec();
        footer.extend_from_slice(&index_offset.to_le_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        self.out
            .write_all(&footer)
            .map_err(|e| DataError::io(&self.path, e))?;
        self.flush()
    }
}

/// A `.kds` file loaded in memory.
pub struct BinaryDataset {
    path: PathBuf,
    bytes: Vec<u8>,
    offsets: Vec<u64>,
}

impl BinaryDataset {
    /// Reads and checks a file: magic, version, footer, checksum and index.
    pub fn open(path: &Path) -> Result<BinaryDataset, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let bad = |message: String| DataError::format(path, message);
        check_header(&bytes).map_err(|m| bad(m.to_string()))?;
        if bytes.len() < HEADER_LEN as usize + FOOTER_LEN + 8
            || &bytes[bytes.len() - 8..] != FOOTER_MAGIC
        {
            return Err(bad(
                "the index is missing: the file is truncated or was not finished".into(),
            ));
        }
        let footer = &bytes[bytes.len() - FOOTER_LEN..];
        let stored_crc = u32::from_le_bytes(footer[..4].try_into().unwrap_or_default());
        let index_offset = u64::from_le_bytes(footer[4..12].try_into().unwrap_or_default());
        let body = &bytes[..bytes.len() - FOOTER_LEN];
        if crc32fast::hash(body) != stored_crc {
            return Err(bad("checksum mismatch: the file is corrupted".into()));
        }
        let index = body
            .get(index_offset as usize..)
            .filter(|i| i.len() >= 8)
            .ok_or_else(|| bad(format!("index offset {index_offset} is out of the file")))?;
        let count = u64::from_le_bytes(index[..8].try_into().unwrap_or_default()) as usize;
        if index.len() != 8 + 8 * count {
            return Err(bad(format!(
                "the index of {count} records has the wrong size"
            )));
        }
        let offsets: Vec<u64> = index[8..]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        if let Some(&bad_offset) = offsets
            .iter()
            .find(|&&o| o + 4 > index_offset || o < HEADER_LEN)
        {
            return Err(bad(format!(
                "record offset {bad_offset} is out of the records"
            )));
        }
        Ok(BinaryDataset {
            path: path.to_path_buf(),
            bytes,
            offsets,
        })
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Decodes task `index`.
    pub fn get(&self, index: usize) -> Result<Task, DataError> {
        let location = || format!("{}[{index}]", self.path.display());
        let offset = *self.offsets.get(index).ok_or_else(|| DataError::Record {
            location: location(),
            message: format!("out of range ({} tasks)", self.len()),
        })? as usize;
        record_at(&self.bytes, offset)
            .and_then(decode_task)
            .map_err(|message| DataError::Record {
                location: location(),
                message,
            })
    }

    /// Decodes every task, in parallel.
    pub fn load_all(&self) -> Result<Vec<Task>, DataError> {
        (0..self.len())
            .into_par_iter()
            .map(|i| self.get(i))
            .collect()
    }
}

fn check_header(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return Err("not a karel-sed binary dataset (bad magic)");
    }
    if u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default()) != VERSION {
        return Err("unsupported binary dataset version");
    }
    Ok(())
}

/// The record whose length field is at `offset`.
fn record_at(bytes: &[u8], offset: usize) -> Result<&[u8], String> {
    let length = bytes
        .get(offset..offset + 4)
        .ok_or_else(|| format!("record at byte {offset} is truncated"))?;
    let length = u32::from_le_bytes(length.try_into().unwrap_or_default()) as usize;
    bytes
        .get(offset + 4..offset + 4 + length)
        .ok_or_else(|| format!("record at byte {offset} is truncated"))
}

/// Reads the complete records of a file whose footer may be missing (an interrupted writer):
/// returns the tasks, their offsets, and the end of the last complete record.
pub fn scan_records(path: &Path) -> Result<(Vec<Task>, Vec<u64>, u64), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    check_header(&bytes).map_err(|m| DataError::format(path, m))?;
    let mut offset = HEADER_LEN as usize;
    let (mut tasks, mut offsets) = (Vec::new(), Vec::new());
    while let Ok(record) = record_at(&bytes, offset) {
        match decode_task(record) {
            Ok(task) => tasks.push(task),
            // The footer (index) follows the records: stop at the first thing that is not one.
            Err(_) => break,
        }
        offsets.push(offset as u64);
        offset += 4 + record.len();
    }
    Ok((tasks, offsets, offset as u64))
}
