//! Oracles of the fuzz targets in `fuzz/`, kept in the library so that the regression tests
//! (`tests/it/regressions.rs`) replay saved inputs through exactly the same checks.
//!
//! Each check panics when it finds a bug and returns `false` for inputs outside its scope (the
//! fuzzer then drops them from its corpus).

use arbitrary::Arbitrary;

use crate::data::generate::{self, GenConfig};
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

/// Answers one `karel exec` request line (step limits up to five million): no panic, one line of JSON with a known status, a
/// short message, an output only when the run succeeded.
pub fn check_exec_line(line: &str) {
    // Step limits beyond a few million only make the run slower.
    let limit = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|request| request.get("max_steps")?.as_u64());
    if limit.is_some_and(|steps| steps > 5_000_000) {
        return;
    }
    let answer = crate::exec::respond(line);
    assert!(!answer.contains('\n'), "an answer is one line");
    let value: serde_json::Value = serde_json::from_str(&answer).expect("answers are JSON");
    let status = value["status"].as_str().expect("every answer has a status");
    assert!(
        matches!(status, "ok" | "error" | "syntax_error" | "invalid_input"),
        "{status}"
    );
    if let Some(message) = value["message"].as_str() {
        assert!(
            message.chars().count() <= crate::exec::MAX_MESSAGE_CHARS + 100,
            "a message of {} characters",
            message.len()
        );
    }
    assert_eq!(value.get("output").is_some(), status == "ok");
}

/// Reads generator settings: no panic; settings that pass validation make candidates in bounded
/// time, and every task made fits the settings. Returns `false` for settings outside the scope
/// (invalid ones, and ones whose candidates may run many VM steps).
pub fn check_generator_config(text: &str) -> bool {
    let Ok(config) = serde_json::from_str::<GenConfig>(text) else {
        return false;
    };
    if config.validate().is_err() {
        return false;
    }
    if config.input_tries as u64 * u64::from(config.max_steps) > 200_000 {
        return false;
    }
    for index in 0..4 {
        if let Some(task) = generate::candidate(&config, 7, index) {
            let chunk = vm::compile(&task.program);
            for example in &task.examples {
                let (run, output) = vm::run(&chunk, &example.input, config.max_steps);
                assert!(run.outcome().is_ok(), "a generated example runs");
                assert_eq!(output, example.output);
            }
            let len = task.program.token_len();
            assert!((config.program.min_tokens..=config.program.max_tokens).contains(&len));
            assert!(task.program.depth() <= config.program.max_depth);
            for example in &task.examples {
                assert!(example.input.rows() >= config.world.min_size);
                assert!(example.input.rows() <= config.world.max_size);
            }
        }
    }
    true
}
