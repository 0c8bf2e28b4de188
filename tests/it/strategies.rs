//! proptest strategies for programs and worlds.

use karel::lang::{Action, Atom, Cond, Program, RepeatCount, Stmt};
use karel::world::{Dir, Pos, World};
use proptest::prelude::*;

pub fn action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}

pub fn cond() -> impl Strategy<Value = Cond> {
    (prop::sample::select(Atom::ALL.to_vec()), any::<bool>())
        .prop_map(|(atom, negated)| Cond { atom, negated })
}

pub fn repeat_count() -> impl Strategy<Value = RepeatCount> {
    (RepeatCount::MIN..=RepeatCount::MAX).prop_map(|n| RepeatCount::new(n).unwrap())
}

/// Statements nested up to `depth` blocks deep, bodies of 0 to 3 statements.
pub fn stmt(depth: u32) -> impl Strategy<Value = Stmt> {
    let leaf = action().prop_map(Stmt::Action);
    leaf.prop_recursive(depth, 48, 4, |inner| {
        let body = prop::collection::vec(inner, 0..4);
        prop_oneof![
            2 => action().prop_map(Stmt::Action),
            1 => (cond(), body.clone()).prop_map(|(cond, body)| Stmt::If { cond, body }),
            1 => (cond(), body.clone(), body.clone()).prop_map(|(cond, then_body, else_body)| {
                Stmt::IfElse { cond, then_body, else_body }
            }),
            1 => (cond(), body.clone()).prop_map(|(cond, body)| Stmt::While { cond, body }),
            1 => (repeat_count(), body).prop_map(|(count, body)| Stmt::Repeat { count, body }),
        ]
    })
}

pub fn program() -> impl Strategy<Value = Program> {
    prop::collection::vec(stmt(4), 0..6).prop_map(Program::new)
}

/// What one interior cell holds.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Empty,
    Wall,
    Markers(u8),
}

fn cell(max_markers: u8) -> impl Strategy<Value = Cell> {
    prop_oneof![
        4 => Just(Cell::Empty),
        1 => Just(Cell::Wall),
        2 => (1..=max_markers).prop_map(Cell::Markers),
    ]
}

/// Worlds of any size with walls and markers (up to `max_markers` per cell).
pub fn world_with(max_markers: u8) -> impl Strategy<Value = World> {
    (1..=16u8, 1..=16u8)
        .prop_flat_map(move |(rows, cols)| {
            (
                Just(rows),
                Just(cols),
                1..=rows,
                1..=cols,
                0..4u8,
                prop::collection::vec(cell(max_markers), rows as usize * cols as usize),
                0..=max_markers,
            )
        })
        .prop_map(
            |(rows, cols, hero_row, hero_col, dir, cells, hero_markers)| {
                let hero = Pos::new(hero_row, hero_col);
                let mut world = World::new(rows, cols, hero, Dir::from_index(dir)).unwrap();
                for (i, cell) in cells.into_iter().enumerate() {
                    let pos = Pos::new(i as u8 / cols + 1, i as u8 % cols + 1);
                    let result = match cell {
                        _ if pos == hero => world.set_markers(pos, hero_markers),
                        Cell::Empty => Ok(()),
                        Cell::Wall => world.set_wall(pos, true),
                        Cell::Markers(n) => world.set_markers(pos, n),
                    };
                    result.unwrap();
                }
                world
            },
        )
}

/// Worlds of the 15-channel reference tensor (at most 9 markers per cell).
pub fn world() -> impl Strategy<Value = World> {
    world_with(9)
}
