//! `World`: a Karel world and its forms in Python: numpy tensors (bool or uint8, 15 or 16
//! channels), sorted index lists, ASCII maps and the dataset's grid objects.

use karel::world::tensor::{CHANNELS, DATASET_CHANNELS};
use karel::world::{self, json::GridJson, WorldError, CELLS, GRID};
use numpy::{PyArray3, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A world error as a Python `ValueError`.
pub fn world_error(error: WorldError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// A Karel world: an interior of up to 16×16 cells ringed by border walls, interior walls,
/// 0–9 markers a cell, and the hero with a direction.
///
/// Build one with `World.from_tensor`, `from_indices`, `from_ascii` or `from_json`; invalid
/// worlds raise `ValueError` with the reason. Worlds compare and hash by value and pickle as
/// their indices. Positions are `(row, col)` of the 18×18 array: the interior is rows 1..rows and
/// columns 1..cols, row numbers grow to the north.
#[pyclass(module = "karel_sed", frozen)]
#[derive(Clone)]
pub struct World {
    pub world: world::World,
}

impl World {
    pub fn new(world: world::World) -> World {
        World { world }
    }
}

/// Checks a tensor's shape (`leading` dimensions before the channels) and dtype and returns its
/// bytes in C order, copying only when the array is not contiguous.
pub fn tensor_bytes<'py>(array: &Bound<'py, PyAny>, what: &str) -> PyResult<TensorBytes<'py>> {
    if let Ok(array) = array.cast::<PyArrayDyn<bool>>() {
        return Ok(TensorBytes::Bool(array.readonly()));
    }
    if let Ok(array) = array.cast::<PyArrayDyn<u8>>() {
        return Ok(TensorBytes::Byte(array.readonly()));
    }
    let dtype = match array.getattr("dtype") {
        Ok(dtype) => format!("an array of dtype {}", dtype.str()?),
        Err(_) => format!("a {}", array.get_type().name()?),
    };
    Err(PyTypeError::new_err(format!(
        "{what} must be a numpy array of dtype bool or uint8, not {dtype} (convert it with \
         .astype(bool))"
    )))
}

/// A read-only borrow of a bool or uint8 array.
pub enum TensorBytes<'py> {
    Bool(numpy::PyReadonlyArrayDyn<'py, bool>),
    Byte(numpy::PyReadonlyArrayDyn<'py, u8>),
}

impl TensorBytes<'_> {
    pub fn shape(&self) -> &[usize] {
        match self {
            TensorBytes::Bool(a) => a.shape(),
            TensorBytes::Byte(a) => a.shape(),
        }
    }

    /// The values in C order: borrowed when contiguous, else copied.
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        use std::borrow::Cow;
        match self {
            TensorBytes::Bool(a) => match a.as_slice() {
                Ok(slice) => Cow::Borrowed(bytemuck::cast_slice(slice)),
                Err(_) => Cow::Owned(a.as_array().iter().map(|&b| u8::from(b)).collect()),
            },
            TensorBytes::Byte(a) => match a.as_slice() {
                Ok(slice) => Cow::Borrowed(slice),
                Err(_) => Cow::Owned(a.as_array().iter().copied().collect()),
            },
        }
    }
}

/// Checks that `shape` is `leading` followed by `(15 or 16, 18, 18)`; returns the channels.
pub fn check_world_shape(shape: &[usize], leading: usize, what: &str) -> PyResult<usize> {
    let expected = if leading == 0 {
        "(15, 18, 18) or (16, 18, 18)"
    } else {
        "(N, 15, 18, 18) or (N, 16, 18, 18)"
    };
    let ok = shape.len() == leading + 3
        && matches!(shape[leading], CHANNELS | DATASET_CHANNELS)
        && shape[leading + 1] == GRID
        && shape[leading + 2] == GRID;
    if !ok {
        return Err(PyValueError::new_err(format!(
            "{what} has shape {shape:?}; expected {expected}"
        )));
    }
    Ok(shape[leading])
}

/// A new bool array (15, 18, 18) holding `world`.
pub fn to_tensor<'py>(
    py: Python<'py>,
    world: &world::World,
) -> PyResult<Bound<'py, PyArray3<bool>>> {
    world.check_fits_reference_tensor().map_err(world_error)?;
    let array = PyArray3::<bool>::zeros(py, [CHANNELS, GRID, GRID], false);
    {
        let mut view = array.readwrite();
        let out = view.as_slice_mut()?;
        write_world(world, out);
    }
    Ok(array)
}

/// Sets the cells of `world` in a zeroed 15-channel bool buffer. The world must fit the tensor
/// (no cell with 10 markers), as every world that a run starts from a 15-channel tensor does.
pub fn write_world(world: &world::World, out: &mut [bool]) {
    world.for_each_index(|index| out[index] = true);
}

#[pymethods]
impl World {
    /// A world from a numpy array of dtype bool or uint8 (values 0 and 1) and shape (15, 18, 18)
    /// or (16, 18, 18), channel-major: 0–3 hero facing N/E/S/W, 4 interior wall, 5 border wall,
    /// 6 + k − 1 exactly k markers (k = 1..9; channel 15, 10 markers, must be empty).
    #[staticmethod]
    fn from_tensor(py: Python<'_>, array: &Bound<'_, PyAny>) -> PyResult<World> {
        let tensor = tensor_bytes(array, "the tensor")?;
        check_world_shape(tensor.shape(), 0, "the tensor")?;
        let bytes = tensor.bytes();
        let world = py
            .detach(|| world::World::from_bytes(&bytes))
            .map_err(world_error)?;
        world.check_fits_reference_tensor().map_err(world_error)?;
        Ok(World::new(world))
    }

    /// A world from the indices of its set cells, `channel * 324 + row * 18 + col` (any order).
    #[staticmethod]
    fn from_indices(indices: Vec<u64>) -> PyResult<World> {
        world::World::from_indices(indices)
            .map(World::new)
            .map_err(world_error)
    }

    /// A world from an ASCII map (the form `to_ascii` writes and `karel run` reads).
    #[staticmethod]
    fn from_ascii(text: &str) -> PyResult<World> {
        world::World::from_ascii(text)
            .map(World::new)
            .map_err(world_error)
    }

    /// A world from the dataset's grid object (`inpgrid_json`): a dict with `rows`, `cols`,
    /// `hero` ("row:col:direction"), `blocked` and `markers`.
    #[staticmethod]
    fn from_json(py: Python<'_>, grid: &Bound<'_, PyDict>) -> PyResult<World> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (grid,))?
            .extract()?;
        let grid: GridJson = serde_json::from_str(&text)
            .map_err(|e| PyValueError::new_err(format!("bad grid object: {e}")))?;
        world::World::from_grid_json(&grid)
            .map(World::new)
            .map_err(world_error)
    }

    /// The world as a new bool array of shape (15, 18, 18).
    fn to_tensor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<bool>>> {
        to_tensor(py, &self.world)
    }

    /// The sorted indices of the set cells.
    fn to_indices(&self) -> Vec<u32> {
        self.world.to_indices()
    }

    /// The ASCII map of the world.
    fn to_ascii(&self) -> String {
        self.world.to_ascii()
    }

    /// The dataset's grid object (a dict).
    fn to_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = serde_json::to_string(&self.world.to_grid_json())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Interior rows.
    #[getter]
    fn rows(&self) -> u8 {
        self.world.rows()
    }

    /// Interior columns.
    #[getter]
    fn cols(&self) -> u8 {
        self.world.cols()
    }

    /// The hero's position, `(row, col)`.
    #[getter]
    fn hero(&self) -> (u8, u8) {
        let pos = self.world.hero();
        (pos.row, pos.col)
    }

    /// The hero's direction: "north", "east", "south" or "west".
    #[getter]
    fn direction(&self) -> &'static str {
        self.world.dir().name()
    }

    /// Markers at `(row, col)` (0 outside the interior).
    fn markers(&self, row: u8, col: u8) -> u8 {
        let pos = world::Pos::new(row, col);
        if usize::from(row) >= GRID || usize::from(col) >= GRID {
            return 0;
        }
        self.world.markers(pos)
    }

    /// Whether `(row, col)` is a wall (interior or border; cells outside the array are walls).
    fn is_wall(&self, row: u8, col: u8) -> bool {
        if usize::from(row) >= GRID || usize::from(col) >= GRID {
            return true;
        }
        let pos = world::Pos::new(row, col);
        self.world.is_wall(pos) || self.world.is_border(pos)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<World>() {
            Ok(other) => self.world == other.get().world,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.world.hash(&mut hasher);
        hasher.finish()
    }

    fn __str__(&self) -> String {
        self.world.to_ascii()
    }

    fn __repr__(&self) -> String {
        let pos = self.world.hero();
        format!(
            "World({}x{}, hero at ({}, {}) facing {}, {} markers)",
            self.world.rows(),
            self.world.cols(),
            pos.row,
            pos.col,
            self.world.dir().name(),
            self.world.total_markers()
        )
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let indices = slf.get().world.to_indices();
        Ok((
            slf.get_type().getattr("from_indices")?,
            PyTuple::new(py, [indices])?,
        ))
    }
}

/// Cells of one world in a tensor.
pub const WORLD_CELLS: usize = CHANNELS * CELLS;
