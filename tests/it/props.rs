//! Property tests: printers round-trip through the parser, the VM agrees with the AST
//! interpreter, world encodings round-trip, and no input makes the front end panic.

use karel::lang::{self, Layout, ParseOptions, Program, Token};
use karel::vm::{self, Execution, OnFailure, RunConfig, Trace, TraceRecorder, Vm};
use karel::world::World;
use proptest::prelude::*;

use crate::strategies;

/// Runs `program` on `input` with both engines and returns their runs, final worlds and traces.
fn both_engines(
    program: &Program,
    input: &World,
    config: &RunConfig,
) -> [(Execution, World, Trace); 2] {
    let chunk = vm::compile(program);
    let mut vm_world = input.clone();
    let mut vm_recorder = TraceRecorder::new(input);
    let vm_run = Vm::new().run_traced(&chunk, &mut vm_world, config, &mut vm_recorder);
    let mut ast_world = input.clone();
    let mut ast_recorder = TraceRecorder::new(input);
    let ast_run = vm::interpret(program, &mut ast_world, config, &mut ast_recorder);
    [
        (
            vm_run,
            vm_world,
            Trace::from_run(vm_recorder, &vm_run).unwrap(),
        ),
        (
            ast_run,
            ast_world,
            Trace::from_run(ast_recorder, &ast_run).unwrap(),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn printers_round_trip(program in strategies::program()) {
        let one_line = program.to_string();
        prop_assert_eq!(&lang::parse(&one_line).unwrap(), &program);
        prop_assert_eq!(&lang::parse(&program.pretty()).unwrap(), &program);
        prop_assert_eq!(&lang::parse_tokens(&program.tokens(), &ParseOptions::default()).unwrap(), &program);
        prop_assert_eq!(program.tokens().len(), program.token_len());
        prop_assert_eq!(Layout::of(&program).token_len() as usize, program.token_len());
    }

    #[test]
    fn layout_spans_match_the_printed_tokens(program in strategies::program()) {
        let tokens = program.tokens();
        let layout = Layout::of(&program);
        for (stmt, node) in program.statements().into_iter().zip(layout.nodes()) {
            let mut printed = Vec::new();
            lang::printer::stmt_tokens(stmt, &mut printed);
            prop_assert_eq!(&tokens[node.span.first as usize..=node.span.last as usize], &printed[..]);
            if let Some(cond) = node.cond {
                let expected: Vec<Token> = match (stmt.cond(), stmt) {
                    (Some(c), _) if c.negated => {
                        vec![Token::Not, Token::COpen, c.atom.token(), Token::CClose]
                    }
                    (Some(c), _) => vec![c.atom.token()],
                    (None, lang::Stmt::Repeat { count, .. }) => vec![count.token()],
                    (None, _) => unreachable!("actions have no condition span"),
                };
                prop_assert_eq!(&tokens[cond.first as usize..=cond.last as usize], &expected[..]);
            }
        }
    }

    #[test]
    fn vm_agrees_with_the_ast_interpreter(
        program in strategies::program(),
        input in strategies::world(),
        max_steps in prop_oneof![1..60u32, Just(1000u32)],
        continue_after_failure in any::<bool>(),
    ) {
        let config = RunConfig {
            max_steps,
            on_failure: if continue_after_failure { OnFailure::Continue } else { OnFailure::Stop },
        };
        let [(vm_run, vm_world, vm_trace), (ast_run, ast_world, ast_trace)] =
            both_engines(&program, &input, &config);
        prop_assert_eq!(vm_run, ast_run);
        prop_assert_eq!(&vm_world, &ast_world);
        prop_assert_eq!(vm_trace.events(), ast_trace.events());
        prop_assert_eq!(vm_trace.deltas(), ast_trace.deltas());
        // The untraced run is the same run.
        let untraced = Vm::new().run(&vm::compile(&program), &mut input.clone(), &config);
        prop_assert_eq!(untraced, vm_run);
    }

    #[test]
    fn trace_states_replay_the_run(program in strategies::program(), input in strategies::world()) {
        let run = vm::run_with_trace(&vm::compile(&program), &input, 1000);
        let states: Vec<World> = run.trace.states().collect();
        prop_assert_eq!(states.len(), run.trace.state_count());
        prop_assert_eq!(&states[0], &input);
        for (i, state) in states.iter().enumerate() {
            prop_assert_eq!(Some(state.clone()), run.trace.state(i));
        }
        if run.trace.end() == vm::TraceEnd::Finished {
            prop_assert_eq!(states.last(), Some(&run.world));
        }
        // Every event links to a recorded state.
        for link in run.trace.token_links() {
            prop_assert!((link.state as usize) < states.len());
            prop_assert!((link.token as usize) < program.token_len());
        }
    }

    #[test]
    fn a_trace_event_limit_keeps_the_trace_or_refuses_it(
        program in strategies::program(),
        input in strategies::world(),
        max_steps in prop_oneof![1..60u32, Just(1000u32), Just(100_000u32)],
        limit in 0usize..40,
    ) {
        let chunk = vm::compile(&program);
        let full = vm::run_with_trace(&chunk, &input, max_steps);
        match vm::run_with_trace_limited(&chunk, &input, max_steps, limit) {
            Ok(limited) => {
                prop_assert!(full.trace.events().len() <= limit);
                prop_assert_eq!(&limited.trace, &full.trace);
                prop_assert_eq!(limited.execution, full.execution);
                prop_assert_eq!(&limited.world, &full.world);
            }
            Err(too_long) => {
                prop_assert!(full.trace.events().len() > limit);
                prop_assert_eq!(too_long.events, full.trace.events().len());
            }
        }
    }

    #[test]
    fn world_encodings_round_trip(world in strategies::world_with(10)) {
        let indices = world.to_indices();
        prop_assert!(indices.windows(2).all(|w| w[0] < w[1]), "indices are sorted");
        prop_assert_eq!(&World::from_indices(indices.iter().rev().copied()).unwrap(), &world);
        prop_assert_eq!(&World::from_indices(indices).unwrap(), &world);
        prop_assert_eq!(&World::from_tensor_string(&world.to_tensor_string()).unwrap(), &world);
        prop_assert_eq!(&World::from_grid_json(&world.to_grid_json()).unwrap(), &world);
        prop_assert_eq!(&World::from_ascii(&world.to_ascii()).unwrap(), &world);
        prop_assert_eq!(&World::from_text(&world.to_ascii()).unwrap(), &world);
        let json = serde_json::to_string(&world.to_grid_json()).unwrap();
        prop_assert_eq!(&World::from_text(&json).unwrap(), &world);
        match world.to_dense() {
            Ok(dense) => prop_assert_eq!(&World::from_dense(&dense).unwrap(), &world),
            Err(_) => prop_assert!(world.interior().any(|p| world.markers(p) == 10)),
        }
    }

    #[test]
    fn random_token_sequences_never_panic(ids in prop::collection::vec(0u8..43, 0..60)) {
        let tokens: Vec<Token> = ids.iter().map(|&id| Token::from_id(id).unwrap()).collect();
        let text = karel::lang::token::tokens_to_string(&tokens);
        let from_text = lang::parse(&text);
        let from_tokens = lang::parse_tokens(&tokens, &ParseOptions::default());
        prop_assert_eq!(from_text.is_ok(), from_tokens.is_ok());
        if let Ok(program) = from_text {
            prop_assert_eq!(program.tokens(), tokens);
        }
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,80}") {
        if let Err(error) = lang::parse(&text) {
            let rendered = lang::diag::render("input", &text, &error);
            prop_assert!(rendered.contains("error"));
        }
        let _ = World::from_text(&text);
    }
}
