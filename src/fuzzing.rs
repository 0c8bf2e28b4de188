//! Oracles of the fuzz targets in `fuzz/`, kept in the library so that the regression tests
//! (`tests/it/regressions.rs`) replay saved inputs through exactly the same checks.
//!
//! Each check panics when it finds a bug and returns `false` for inputs outside its scope (the
//! fuzzer then drops them from its corpus).

use arbitrary::Arbitrary;

use crate::lang::{self, diag, lexer, ParseOptions, Program};
use crate::vm::{self, OnFailure, RunConfig, Trace, TraceRecorder, Vm};
use crate::world::World;

/// Lexes and parses `source`: no panic, every lexeme's bytes spell its token, an accepted
/// program prints back to its token list, and errors render.
pub fn check_source(source: &str) {
    if let Ok(lexemes) = lexer::lex(source) {
        for lexeme in &lexemes {
            assert_eq!(&source[lexeme.bytes.clone()], lexeme.token.text());
        }
        if let Ok(parsed) = lang::parse_with(source, &ParseOptions::default()) {
            let tokens: Vec<_> = lexemes.iter().map(|l| l.token).collect();
            assert_eq!(parsed.program.tokens(), tokens);
            return;
        }
    }
    if let Err(error) = lang::parse(source) {
        assert!(!error.errors.is_empty());
        let rendered = diag::render("fuzz", source, &error);
        assert!(rendered.contains("error"));
    }
}

/// Prints `program` in both forms and parses them back. Returns `false` for programs nested
/// deeper than the parser accepts.
pub fn check_round_trip(program: &Program) -> bool {
    if program.depth() > lang::DEFAULT_MAX_DEPTH {
        return false;
    }
    assert_eq!(lang::parse(&program.to_string()).as_ref(), Ok(program));
    assert_eq!(lang::parse(&program.pretty()).as_ref(), Ok(program));
    true
}

/// A program, a world and run settings.
#[derive(Clone, Debug, Arbitrary)]
pub struct RunCase {
    pub program: Program,
    pub world: World,
    pub max_steps: u16,
    pub continue_after_failure: bool,
}

/// Runs the case on the VM and on the AST interpreter and compares everything. Returns `false`
/// for programs too deep or too long to be interesting.
pub fn check_run(case: &RunCase) -> bool {
    let program = &case.program;
    if program.depth() > 32 || program.token_len() > 4096 {
        return false;
    }
    let config = RunConfig {
        max_steps: u32::from(case.max_steps % 2000) + 1,
        on_failure: if case.continue_after_failure {
            OnFailure::Continue
        } else {
            OnFailure::Stop
        },
    };
    let chunk = vm::compile(program);
    let mut vm_world = case.world.clone();
    let mut vm_trace = TraceRecorder::new(&case.world);
    let vm_run = Vm::new().run_traced(&chunk, &mut vm_world, &config, &mut vm_trace);
    let mut ast_world = case.world.clone();
    let mut ast_trace = TraceRecorder::new(&case.world);
    let ast_run = vm::interpret(program, &mut ast_world, &config, &mut ast_trace);
    assert_eq!(vm_run, ast_run);
    assert_eq!(vm_world, ast_world);
    let (vm_trace, ast_trace) = (
        Trace::from_run(vm_trace, &vm_run).expect("an unlimited trace is never too long"),
        Trace::from_run(ast_trace, &ast_run).expect("an unlimited trace is never too long"),
    );
    assert_eq!(vm_trace, ast_trace);
    // A recorder with an event limit gives the same trace, or refuses one longer than its limit.
    let limit = usize::from(case.max_steps % 64);
    let mut limited = TraceRecorder::with_event_limit(&case.world, limit);
    let mut limited_world = case.world.clone();
    let limited_run = Vm::new().run_traced(&chunk, &mut limited_world, &config, &mut limited);
    match Trace::from_run(limited, &limited_run) {
        Ok(trace) => assert_eq!(trace, vm_trace),
        Err(too_long) => {
            assert!(vm_trace.events().len() > limit);
            assert_eq!(too_long.events, vm_trace.events().len());
        }
    }
    assert!(vm_run.steps <= config.max_steps);
    let states: Vec<World> = vm_trace.states().collect();
    assert_eq!(states.len(), vm_trace.state_count());
    true
}
