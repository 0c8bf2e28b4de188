//! The compiler and the VM: disassembly, step counting, crashes, traces and token links.

use karel::lang::{self, Action, BlockKind, TokenSpan};
use karel::vm::{self, EventKind, EventValue, Outcome, Stop, TokenStateLinks, TraceEnd};
use karel::world::{Dir, Pos, World};

fn program(source: &str) -> lang::Program {
    lang::parse(source).unwrap_or_else(|e| panic!("{e}"))
}

fn open_world(rows: u8, cols: u8) -> World {
    World::from_ascii(&{
        let mut map = format!("+{}+\n", "-".repeat(2 * cols as usize));
        for row in (1..=rows).rev() {
            map.push('|');
            for col in 1..=cols {
                map.push_str(if row == 1 && col == 1 { ".^" } else { ". " });
            }
            map.push_str("|\n");
        }
        map.push_str(&format!("+{}+\n", "-".repeat(2 * cols as usize)));
        map
    })
    .unwrap()
}

#[test]
fn disassembly_snapshot() {
    let source = "DEF run m( \
        WHILE c( frontIsClear c) w( move IF c( markersPresent c) i( pickMarker i) w) \
        IFELSE c( not c( leftIsClear c) c) i( turnRight i) ELSE e( turnLeft e) \
        REPEAT R=3 r( putMarker REPEAT R=2 r( turnLeft r) r) \
        WHILE c( noMarkersPresent c) w( w) m)";
    let chunk = vm::compile(&program(source));
    insta::assert_snapshot!(format!("{source}\n\n{chunk}"));
    assert_eq!(chunk.repeat_slots(), 2);
}

#[test]
fn the_step_at_the_limit_times_out() {
    // 5 turns: 5 steps. With a limit of 5 the 5th step fails, with 6 the program finishes.
    let chunk = vm::compile(&program(
        "DEF run m( turnLeft turnLeft turnLeft turnLeft turnLeft m)",
    ));
    let world = open_world(2, 2);
    let (run, _) = vm::run(&chunk, &world, 5);
    assert_eq!((run.outcome(), run.steps), (Outcome::Timeout, 5));
    let (run, out) = vm::run(&chunk, &world, 6);
    assert_eq!((run.outcome(), run.steps), (Outcome::Ok, 5));
    assert_eq!(out.dir(), Dir::West);
    // A repeat counts one step per tick, the final 0 tick included: 3 + 1 ticks + 3 actions.
    let chunk = vm::compile(&program("DEF run m( REPEAT R=3 r( turnLeft r) m)"));
    assert_eq!(vm::run(&chunk, &world, 1000).0.steps, 7);
    assert_eq!(vm::run(&chunk, &world, 7).0.outcome(), Outcome::Timeout);
    // An infinite loop hits the default limit on its 1000th step.
    let chunk = vm::compile(&program(
        "DEF run m( WHILE c( frontIsClear c) w( turnLeft turnRight w) m)",
    ));
    let (run, _) = vm::run(&chunk, &world, vm::DEFAULT_MAX_STEPS);
    assert_eq!((run.outcome(), run.steps), (Outcome::Timeout, 1000));
}

#[test]
fn crashes_name_the_action_and_token() {
    let chunk = vm::compile(&program("DEF run m( move move pickMarker m)"));
    let (run, world) = vm::run(&chunk, &open_world(3, 1), 1000);
    let Outcome::Crash(failure) = run.outcome() else {
        panic!("{run:?}")
    };
    assert_eq!(failure.action, Action::PickMarker);
    assert_eq!(failure.at.span, TokenSpan::single(5));
    assert_eq!(run.stop, Stop::Failed);
    assert_eq!(world.hero(), Pos::new(3, 1), "the world stops at the crash");
    let (run, _) = vm::run(
        &vm::compile(&program("DEF run m( move move move m)")),
        &open_world(3, 1),
        1000,
    );
    assert!(
        matches!(run.outcome(), Outcome::Crash(f) if f.action == Action::Move && f.at.span.first == 5)
    );
}

#[test]
fn traces_record_events_states_and_truncation() {
    let source = "DEF run m( REPEAT R=2 r( move r) IF c( markersPresent c) i( pickMarker i) putMarker pickMarker pickMarker turnLeft m)";
    let run = vm::run_with_trace(&vm::compile(&program(source)), &open_world(3, 1), 1000);
    insta::assert_snapshot!(format!("{source}\n\n{}", run.trace));
    let events = run.trace.events();
    // The trace stops at the first failed action (the second pickMarker), whose post-state is
    // dropped; the run itself went on (trace mode) and ended with the turn.
    assert_eq!(run.trace.end(), TraceEnd::Failed);
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind, last.success, last.span.first),
        (EventKind::Action(Action::PickMarker), false, 17)
    );
    assert_eq!(run.trace.state_count(), last.timestep as usize);
    assert_eq!(run.world.dir(), Dir::West);
    assert!(matches!(run.execution.outcome(), Outcome::Crash(_)));
    assert_eq!(events[0].value, Some(EventValue::Remaining(2)));
    assert_eq!(events[0].kind, EventKind::Block(BlockKind::Repeat));
}

#[test]
fn timeout_blames_the_longest_running_while() {
    // The outer loop runs once; the inner loop spins forever: it is blamed at the first true
    // evaluation of its current run.
    let source = "DEF run m( WHILE c( frontIsClear c) w( move WHILE c( noMarkersPresent c) w( turnLeft w) w) m)";
    let run = vm::run_with_trace(&vm::compile(&program(source)), &open_world(3, 3), 1000);
    assert_eq!(run.execution.stop, Stop::TimedOut);
    assert_eq!(run.trace.end(), TraceEnd::TimedOut);
    let events = run.trace.events();
    assert_eq!(events.len(), 3);
    let blamed = events.last().unwrap();
    assert_eq!(blamed.kind, EventKind::Block(BlockKind::While));
    assert_eq!(blamed.span, TokenSpan::new(9, 15));
    assert!(!blamed.success);
    assert_eq!(run.trace.state_count(), 2);

    // Without a while loop the first repeat event is blamed.
    let source =
        "DEF run m( turnLeft REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( turnLeft r) r) r) m)";
    let run = vm::run_with_trace(&vm::compile(&program(source)), &open_world(2, 2), 1000);
    assert_eq!(run.trace.end(), TraceEnd::TimedOut);
    let events = run.trace.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[1].kind, events[1].success),
        (EventKind::Block(BlockKind::Repeat), false)
    );

    // Without loops at all (a tiny step limit), the last event is blamed.
    let chunk = vm::compile(&program("DEF run m( turnLeft turnLeft turnLeft m)"));
    let run = vm::run_with_trace(&chunk, &open_world(2, 2), 2);
    assert_eq!(run.trace.events().len(), 2);
    assert!(!run.trace.events()[1].success);
}

#[test]
fn token_links_follow_sum_trace() {
    let source = "DEF run m( move IF c( frontIsClear c) i( turnLeft i) m)";
    let prog = program(source);
    let chunk = vm::compile(&prog);
    let traces: Vec<vm::Trace> = [open_world(3, 1), open_world(1, 2)]
        .iter()
        .map(|w| vm::run_with_trace(&chunk, w, 1000).trace)
        .collect();
    // World 1: move (state 0), if true at state 1 over tokens 4..10 (7 tokens), turnLeft at
    // state 1. World 2: move fails, the trace stops there.
    let links: Vec<(u32, u32, f32)> = traces[0]
        .token_links()
        .map(|l| (l.token, l.state, l.weight))
        .collect();
    assert_eq!(links[0], (3, 0, 1.0));
    assert_eq!(links.len(), 1 + 7 + 1);
    assert!(links[1..8]
        .iter()
        .all(|&(t, s, w)| (4..=10).contains(&t) && s == 1 && w == 1.0 / 7.0));
    assert_eq!(links[8], (9, 1, 1.0));
    assert_eq!(traces[1].events().len(), 1);

    let matrix = TokenStateLinks::new(&traces, prog.token_len());
    assert_eq!(matrix.len(), links.len() + 1);
    // Token 3 (move) is linked to state 0 of both traces; DEF run m( and m) to nothing.
    let move_links: Vec<(u32, u32)> = matrix
        .of_token(3)
        .iter()
        .map(|e| (e.trace, e.state))
        .collect();
    assert_eq!(move_links, [(0, 0), (1, 0)]);
    assert!(matrix.of_token(0).is_empty() && matrix.of_token(11).is_empty());
    // turnLeft: the if's 1/7 and its own 1.
    let weights: Vec<f32> = matrix.of_token(9).iter().map(|e| e.weight).collect();
    assert_eq!(weights, [1.0 / 7.0, 1.0]);
}

#[test]
fn execute_helper_runs_strictly() {
    let (outcome, world) = vm::execute(
        &program("DEF run m( putMarker move putMarker m)"),
        &open_world(2, 1),
    );
    assert_eq!(outcome, Outcome::Ok);
    assert_eq!(world.markers(Pos::new(1, 1)), 1);
    assert_eq!(world.markers(Pos::new(2, 1)), 1);
}
