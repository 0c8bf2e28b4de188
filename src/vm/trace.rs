//! Execution traces in the reference's shape, stored compactly, and the token ↔ state links of
//! the debugger's TraceEmbed.
//!
//! The reference (`executor.py`, `record_trace=True`) keeps a list of grids and a list of events:
//! `grids[0]` is the input, every action appends the world after it (an unchanged copy when the
//! action failed), and an event's `timestep` is `len(grids)` when it fires, so an action's
//! post-state is `grids[timestep]`. Here the grids are the initial world plus one small
//! [`Delta`] per action (4 bytes instead of a 5 KB tensor); [`Trace::states`] replays them.
//!
//! After the run the reference truncates the trace ([`Trace::from_run`]):
//! - if an action failed, the events stop at the first failure and the grids at its pre-state;
//! - on a timeout, a heuristic blames a loop: the `while` with the longest current run of true
//!   evaluations (ties to the loop seen first) is cut just after the first true evaluation of that
//!   run, which is marked failed; without such a loop, the first `repeat` event, or else the last
//!   event, is marked failed and the rest dropped. A failure before a timeout is not truncated
//!   separately.
//!
//! [`Trace::token_links`] gives the token ↔ state graph of SED's `SumTrace`: every event links the
//! state it was evaluated in (`timestep − 1`: the pre-state for an action) to every token of its
//! span, with weight `1 / span length`.

use std::fmt;

use crate::lang::{Action, BlockKind, TokenSpan};
use crate::world::{Pos, World};

use super::exec::{AfterAction, EventValue, Execution, Stop, Tracer};
use super::instr::Origin;

/// What an event is: an action or the evaluation of a block's condition or repeat counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Action(Action),
    Block(BlockKind),
}

impl EventKind {
    /// The reference's event type: an action name, or `if`, `ifElse`, `while`, `repeat`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Action(action) => action.name(),
            EventKind::Block(kind) => kind.event_name(),
        }
    }
}

/// One execution event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub kind: EventKind,
    /// The tokens reported by the reference: the action, or the whole block.
    pub span: TokenSpan,
    /// The condition's value or the repeat's remaining count; `None` for actions.
    pub value: Option<EventValue>,
    /// `false` for a failed action, or the event the timeout heuristic blames.
    pub success: bool,
    /// Number of states recorded when the event fired; an action's post-state has this index.
    pub timestep: u32,
}

/// How one action changed the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delta {
    /// A failed action: the state is an unchanged copy.
    Unchanged,
    /// The hero is now at this position and direction.
    Hero { pos: Pos, dir: crate::world::Dir },
    /// The hero's cell now holds this many markers.
    Markers { pos: Pos, count: u8 },
}

impl Delta {
    /// Applies the change to `world`.
    pub fn apply(self, world: &mut World) {
        let result = match self {
            Delta::Unchanged => Ok(()),
            Delta::Hero { pos, dir } => world.set_hero(pos, dir),
            Delta::Markers { pos, count } => world.set_markers(pos, count),
        };
        debug_assert!(
            result.is_ok(),
            "a recorded delta always applies to its trace"
        );
    }
}

/// How the traced run ended, before truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEnd {
    /// The program finished and no action failed.
    Finished,
    /// An action failed (and the run did not time out afterwards).
    Failed,
    /// The step limit was reached.
    TimedOut,
}

/// A recorded run, truncated as the reference truncates it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    initial: World,
    events: Vec<Event>,
    deltas: Vec<Delta>,
    end: TraceEnd,
}

/// Records events and deltas during a run; [`Trace::from_run`] finishes the trace.
///
/// A recorder may keep at most a given number of events
/// ([`TraceRecorder::with_event_limit`]): past it, events are only counted, and the timeout
/// heuristic and the first failure are followed as the run goes, so that a run cut early by the
/// reference's truncation rules (a failure, a timeout blamed on an early loop) is recorded
/// exactly in bounded memory whatever its step limit. Only a trace that would keep more events
/// than the limit is refused ([`TraceTooLong`]).
#[derive(Clone, Debug)]
pub struct TraceRecorder {
    initial: World,
    events: Vec<Event>,
    deltas: Vec<Delta>,
    /// Events kept at most; the rest are only counted.
    max_events: usize,
    /// Events seen, kept or not.
    seen: usize,
    /// Index of the first failed action.
    first_failure: Option<usize>,
    blame: TimeoutBlame,
}

/// A trace that would keep more events than its recorder's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceTooLong {
    /// Events the truncated trace would hold.
    pub events: usize,
    /// The recorder's limit.
    pub limit: usize,
}

impl fmt::Display for TraceTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the trace would hold {} events, more than the limit of {}",
            self.events, self.limit
        )
    }
}

impl std::error::Error for TraceTooLong {}

impl TraceRecorder {
    /// A recorder for a run starting from `initial`, keeping every event.
    pub fn new(initial: &World) -> TraceRecorder {
        TraceRecorder::with_event_limit(initial, usize::MAX)
    }

    /// A recorder that keeps at most `max_events` events (see the type's documentation).
    pub fn with_event_limit(initial: &World, max_events: usize) -> TraceRecorder {
        TraceRecorder {
            initial: initial.clone(),
            events: Vec::new(),
            deltas: Vec::new(),
            max_events,
            seen: 0,
            first_failure: None,
            blame: TimeoutBlame::default(),
        }
    }

    fn timestep(&self) -> u32 {
        self.deltas.len() as u32 + 1
    }

    /// Counts an event, follows the truncation rules, and tells whether to keep it.
    fn observe(&mut self, event: &Event) -> bool {
        let index = self.seen;
        self.seen += 1;
        if !event.success && self.first_failure.is_none() {
            self.first_failure = Some(index);
        }
        self.blame.observe(index, event);
        self.events.len() < self.max_events
    }
}

impl Tracer for TraceRecorder {
    fn action(&mut self, at: Origin, action: Action, success: bool, after: AfterAction) {
        let event = Event {
            kind: EventKind::Action(action),
            span: at.span,
            value: None,
            success,
            timestep: self.timestep(),
        };
        if !self.observe(&event) {
            return;
        }
        self.events.push(event);
        let delta = if !success {
            Delta::Unchanged
        } else {
            match action {
                Action::Move | Action::TurnLeft | Action::TurnRight => Delta::Hero {
                    pos: after.pos,
                    dir: after.dir,
                },
                Action::PickMarker | Action::PutMarker => Delta::Markers {
                    pos: after.pos,
                    count: after.markers_here,
                },
            }
        };
        self.deltas.push(delta);
    }

    fn event(&mut self, at: Origin, kind: BlockKind, value: EventValue) {
        let event = Event {
            kind: EventKind::Block(kind),
            span: at.span,
            value: Some(value),
            success: true,
            timestep: self.timestep(),
        };
        if self.observe(&event) {
            self.events.push(event);
        }
    }
}

impl Trace {
    /// Finishes a recording with the reference's truncation rules. The run should have used
    /// [`super::OnFailure::Continue`], as the reference's trace mode does. Fails only when the
    /// recorder had an event limit and the truncated trace would exceed it.
    pub fn from_run(recorder: TraceRecorder, execution: &Execution) -> Result<Trace, TraceTooLong> {
        let TraceRecorder {
            initial,
            mut events,
            mut deltas,
            max_events,
            seen,
            first_failure,
            blame,
        } = recorder;
        let (end, kept) = if execution.stop == Stop::TimedOut {
            (TraceEnd::TimedOut, blame.cut(seen).map_or(0, |cut| cut + 1))
        } else if let Some(first) = first_failure {
            (TraceEnd::Failed, first + 1)
        } else {
            (TraceEnd::Finished, seen)
        };
        if kept > events.len() {
            return Err(TraceTooLong {
                events: kept,
                limit: max_events,
            });
        }
        events.truncate(kept);
        if end == TraceEnd::TimedOut {
            if let Some(last) = events.last_mut() {
                last.success = false;
            }
        }
        if end != TraceEnd::Finished {
            // `del grids[events[-1].timestep:]`: keep `timestep` states, i.e. `timestep - 1` deltas.
            if let Some(last) = events.last() {
                deltas.truncate(last.timestep as usize - 1);
            }
        }
        Ok(Trace {
            initial,
            events,
            deltas,
            end,
        })
    }

    pub fn initial(&self) -> &World {
        &self.initial
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// One delta per recorded action state: state `k + 1` is state `k` with `deltas()[k]` applied.
    pub fn deltas(&self) -> &[Delta] {
        &self.deltas
    }

    pub fn end(&self) -> TraceEnd {
        self.end
    }

    /// Number of states (`len(grids)` in the reference).
    pub fn state_count(&self) -> usize {
        self.deltas.len() + 1
    }

    /// Every state in order, starting with the input world.
    pub fn states(&self) -> impl Iterator<Item = World> + '_ {
        let mut world = self.initial.clone();
        std::iter::once(world.clone()).chain(self.deltas.iter().map(move |delta| {
            delta.apply(&mut world);
            world.clone()
        }))
    }

    /// State `index` (replays the deltas up to it).
    pub fn state(&self, index: usize) -> Option<World> {
        if index >= self.state_count() {
            return None;
        }
        let mut world = self.initial.clone();
        for delta in &self.deltas[..index] {
            delta.apply(&mut world);
        }
        Some(world)
    }

    /// The token ↔ state links of TraceEmbed's aggregate mode (see the module documentation).
    pub fn token_links(&self) -> impl Iterator<Item = TokenLink> + '_ {
        self.events.iter().flat_map(|event| {
            let weight = 1.0 / event.span.len() as f32;
            let state = event.timestep - 1;
            event.span.positions().map(move |token| TokenLink {
                token,
                state,
                weight,
            })
        })
    }
}

/// A readable listing of a trace, one event per line: event number, token span, event type, and
/// the condition's value or what the action changed (used by `karel run --trace`).
impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (step, event) in self.events.iter().enumerate() {
            let detail = match (event.kind, event.value) {
                (EventKind::Action(action), _) if !event.success => match action {
                    Action::Move => "FAILED: a wall is ahead".to_string(),
                    Action::PickMarker => "FAILED: no marker to pick".to_string(),
                    Action::PutMarker => "FAILED: the cell already holds 9 markers".to_string(),
                    Action::TurnLeft | Action::TurnRight => "FAILED".to_string(),
                },
                (EventKind::Action(_), _) => match self.deltas.get(event.timestep as usize - 1) {
                    Some(Delta::Hero { pos, dir }) => {
                        format!("hero at {pos} facing {}", dir.name())
                    }
                    Some(Delta::Markers { pos, count }) => format!("markers at {pos}: {count}"),
                    Some(Delta::Unchanged) | None => String::new(),
                },
                (EventKind::Block(_), Some(EventValue::Cond(value))) => value.to_string(),
                (EventKind::Block(_), Some(EventValue::Remaining(n))) => format!("{n} left"),
                (EventKind::Block(_), None) => String::new(),
            };
            let blamed = if matches!(event.kind, EventKind::Block(_)) && !event.success {
                "  (blamed for the timeout)"
            } else {
                ""
            };
            writeln!(
                f,
                "{:>5}  {:>8}  {:<11} {detail}{blamed}",
                step + 1,
                event.span.to_string(),
                event.kind.name()
            )?;
        }
        Ok(())
    }
}

/// The reference's timeout heuristic, followed one event at a time: it blames the `while` loop
/// with the longest current run of true evaluations (ties to the loop seen first), cutting the
/// trace just after the first true evaluation of that run; without such a loop, the first
/// `repeat` event, or else the last event.
#[derive(Clone, Debug, Default)]
struct TimeoutBlame {
    /// Per while loop, in order of first appearance: its span, the length of its current run of
    /// true evaluations and the index of the run's first event.
    loops: Vec<(TokenSpan, u32, Option<usize>)>,
    /// Index of the first `repeat` event.
    first_repeat: Option<usize>,
}

impl TimeoutBlame {
    fn observe(&mut self, index: usize, event: &Event) {
        match event.kind {
            EventKind::Block(BlockKind::While) => {}
            EventKind::Block(BlockKind::Repeat) => {
                self.first_repeat.get_or_insert(index);
                return;
            }
            _ => return,
        }
        let slot = match self
            .loops
            .iter()
            .position(|(span, _, _)| *span == event.span)
        {
            Some(slot) => slot,
            None => {
                self.loops.push((event.span, 0, None));
                self.loops.len() - 1
            }
        };
        let (_, count, start) = &mut self.loops[slot];
        if event.value == Some(EventValue::Cond(true)) {
            if *count == 0 {
                *start = Some(index);
            }
            *count += 1;
        } else {
            *count = 0;
        }
    }

    /// The index of the blamed event among `events` events (`None` when there are none).
    fn cut(&self, events: usize) -> Option<usize> {
        // `max` keeps the first of equal maxima.
        let longest = self.loops.iter().fold(
            None::<&(TokenSpan, u32, Option<usize>)>,
            |best, l| match best {
                Some(b) if b.1 >= l.1 => Some(b),
                _ => Some(l),
            },
        );
        match longest {
            Some(&(_, count, Some(start))) if count > 0 => Some(start),
            _ => self.first_repeat.or(events.checked_sub(1)),
        }
    }
}

/// One edge of the token ↔ state graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLink {
    /// Token position in the program.
    pub token: u32,
    /// State index in the trace.
    pub state: u32,
    /// `1 / (number of tokens of the event's span)`.
    pub weight: f32,
}

/// The token ↔ state links of several traces of one program (one per IO example), grouped by
/// token: the sparse matrix that sums state embeddings into token features.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenStateLinks {
    /// `offsets[t]..offsets[t + 1]` are the entries of token `t`.
    offsets: Vec<u32>,
    entries: Vec<LinkEntry>,
}

/// One link of [`TokenStateLinks`]: a state of one trace and its weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkEntry {
    pub trace: u32,
    pub state: u32,
    pub weight: f32,
}

impl TokenStateLinks {
    /// Groups the links of `traces` by token, for a program of `token_count` tokens (links to
    /// positions beyond it are dropped). Entries of a token are ordered by trace, then by event.
    pub fn new(traces: &[Trace], token_count: usize) -> TokenStateLinks {
        let mut counts = vec![0u32; token_count + 1];
        for trace in traces {
            for link in trace.token_links() {
                if (link.token as usize) < token_count {
                    counts[link.token as usize + 1] += 1;
                }
            }
        }
        for t in 0..token_count {
            counts[t + 1] += counts[t];
        }
        let offsets = counts.clone();
        let mut cursor = counts;
        let mut entries = vec![
            LinkEntry {
                trace: 0,
                state: 0,
                weight: 0.0
            };
            offsets[token_count] as usize
        ];
        for (trace_index, trace) in traces.iter().enumerate() {
            for link in trace.token_links() {
                let t = link.token as usize;
                if t < token_count {
                    entries[cursor[t] as usize] = LinkEntry {
                        trace: trace_index as u32,
                        state: link.state,
                        weight: link.weight,
                    };
                    cursor[t] += 1;
                }
            }
        }
        TokenStateLinks { offsets, entries }
    }

    pub fn token_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The links of token `token`.
    pub fn of_token(&self, token: usize) -> &[LinkEntry] {
        &self.entries[self.offsets[token] as usize..self.offsets[token + 1] as usize]
    }

    /// Total number of links.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
