//! The grammar automaton against the parser, beam search, and the SED search on hand-made tasks.

use karel::lang::{parse_tokens, ParseOptions, ProgramPda, Token};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::strategies;

/// Whether the parser's first complaint about `tokens` is at position `at`.
fn first_error_at(tokens: &[Token], at: usize, options: &ParseOptions) -> bool {
    match parse_tokens(tokens, options) {
        Ok(_) => false,
        Err(e) => e.errors[0].token == Some(at as u32),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Along every program the automaton accepts each token, and after a prefix it allows
    /// exactly the tokens the parser does not reject at that position.
    #[test]
    fn pda_agrees_with_the_parser(program in strategies::program(), cut in 0usize..200) {
        let options = ParseOptions::default();
        let tokens = program.tokens();
        let mut pda = ProgramPda::new(&options);
        prop_assert!(pda.push_all(&tokens));
        prop_assert!(pda.is_complete());
        prop_assert_eq!(pda.next_tokens().tokens().collect::<Vec<_>>(), vec![Token::End]);

        let prefix = &tokens[..cut % (tokens.len() + 1)];
        let mut pda = ProgramPda::new(&options);
        prop_assert!(pda.push_all(prefix));
        let allowed = pda.next_tokens();
        for token in Token::ALL {
            if token == Token::End {
                prop_assert_eq!(allowed.contains(token), pda.is_complete());
                continue;
            }
            let mut extended = prefix.to_vec();
            extended.push(token);
            let rejected = first_error_at(&extended, prefix.len(), &options);
            prop_assert_eq!(
                allowed.contains(token),
                !rejected,
                "after {:?}: {:?}",
                prefix,
                token
            );
            let mut next = pda.clone();
            prop_assert_eq!(next.push(token), allowed.contains(token));
            if !allowed.contains(token) {
                prop_assert_eq!(&next, &pda, "a rejected token changes nothing");
            }
        }
    }
}

/// Random walks under the length-limited mask always end in a program within the limit that
/// the parser accepts, in both parser modes, and never reach a state with nothing allowed.
#[test]
fn masked_random_walks_always_parse() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for options in [ParseOptions::default(), ParseOptions::strict()] {
        for walk in 0..2000 {
            let limit = 8 + walk % 40;
            let mut pda = ProgramPda::new(&options);
            let mut tokens = Vec::new();
            loop {
                let allowed: Vec<Token> = pda.allowed(Some(limit)).tokens().collect();
                assert!(!allowed.is_empty(), "stuck after {tokens:?}");
                // Prefer continuing, so that walks reach the limit.
                let token = allowed[rng.random_range(0..allowed.len())];
                if token == Token::End {
                    break;
                }
                assert!(pda.push(token));
                tokens.push(token);
            }
            assert!(tokens.len() <= limit, "{} > {limit}", tokens.len());
            if let Err(e) = parse_tokens(&tokens, &options) {
                panic!("{tokens:?} does not parse: {e}");
            }
        }
    }
}

/// Strict mode forbids empty bodies; the nesting limit forbids deeper openers.
#[test]
fn pda_follows_strictness_and_depth() {
    let strict = ParseOptions::strict();
    let mut pda = ProgramPda::new(&strict);
    assert!(pda.push_all(&[Token::Def, Token::Run, Token::MOpen]));
    assert!(!pda.next_tokens().contains(Token::MClose));
    assert!(ProgramPda::default().push_all(&[Token::Def, Token::Run, Token::MOpen, Token::MClose]));

    let shallow = ParseOptions {
        max_depth: 2,
        ..ParseOptions::default()
    };
    let mut pda = ProgramPda::new(&shallow);
    let prefix = [
        Token::Def,
        Token::Run,
        Token::MOpen,
        Token::Repeat,
        Token::R2,
        Token::ROpen,
        Token::Repeat,
        Token::R3,
    ];
    assert!(pda.push_all(&prefix));
    assert!(!pda.next_tokens().contains(Token::ROpen));
    let mut tokens = prefix.to_vec();
    tokens.push(Token::ROpen);
    assert!(first_error_at(&tokens, prefix.len(), &shallow));
    // A length limit leaves only tokens that can still be closed in time.
    let mut pda = ProgramPda::default();
    assert!(pda.push_all(&[Token::Def, Token::Run, Token::MOpen]));
    let allowed: Vec<Token> = pda.allowed(Some(4)).tokens().collect();
    assert_eq!(allowed, vec![Token::MClose]);
    assert_eq!(pda.min_completion(), 1);
}

// ---------------------------------------------------------------------------------------------
// Beam search.

use karel::data::generate::{candidate, GenConfig};
use karel::data::task::Task;
use karel::model::debugger::{DebugItem, Debugger, DebuggerBatch, DebuggerConfig};
use karel::model::grids::grid_tensor;
use karel::model::synthesizer::{Synthesizer, SynthesizerConfig};
use karel::nn::CpuBackend;
use karel::search::sed::{Ending, SearchResult};
use karel::search::{
    repair, run_searches, synthesis, LikelihoodRanker, Networks, NeuralRepairer, RankRequest,
    Ranker, Ranking, RepairRequest, Repairer, RewriteConfig, SearchConfig, SearchMethod, Strategy,
    SynthesisConfig, TaskSearch,
};

/// Generated tasks (deterministic).
fn tasks(count: usize) -> Vec<Task> {
    let config = GenConfig::new();
    (0..)
        .filter_map(|i| candidate(&config, 11, i))
        .take(count)
        .collect()
}

fn small_synthesizer() -> Synthesizer<CpuBackend<f64>> {
    let mut config = SynthesizerConfig::tiny();
    config.io.conv_channels = 2;
    config.io.output = 8;
    config.embedding = 8;
    config.hidden = 8;
    Synthesizer::new(
        &CpuBackend::<f64>::new(),
        config,
        &mut ChaCha8Rng::seed_from_u64(3),
    )
}

fn small_debugger(trace: bool) -> DebuggerConfig {
    let mut config = DebuggerConfig::tiny(trace);
    config.io.conv_channels = 2;
    config.io.output = 8;
    config.embedding = 8;
    config.hidden = 8;
    config
}

/// A beam of width 1 keeps one hypothesis: greedy decoding's program (that it takes the most
/// likely token at every step is `models::synthesizer_greedy_decoding_matches_teacher_forcing`),
/// the same whatever tasks share its batch; a grammar-constrained beam only finishes programs
/// that parse, within the length limit, best first.
#[test]
fn synthesizer_beam_search() {
    let b = CpuBackend::<f64>::new();
    let model = small_synthesizer();
    let tasks = tasks(6);
    let given = || tasks.iter().flat_map(|t| t.given().iter());
    let inputs = grid_tensor(&b, given().map(|e| &e.input));
    let outputs = grid_tensor(&b, given().map(|e| &e.output));
    let max_len = 14;
    let greedy = synthesis::greedy(&b, &model, &inputs, &outputs, max_len);
    let config = SynthesisConfig {
        beam: 1,
        max_len,
        grammar: false,
    };
    let beams = synthesis::beam_search(&b, &model, &inputs, &outputs, &config);
    assert!(beams.iter().all(|b| b.len() == 1));
    assert!(greedy.iter().all(|p| p.len() <= max_len));
    // A task's greedy program does not depend on the tasks decoded beside it.
    let refs: Vec<&Task> = tasks.iter().collect();
    let in_pairs = synthesis::decode_tasks(&b, &model, &refs, &config, 2, |_| {});
    let in_pairs: Vec<Vec<Token>> = in_pairs.into_iter().map(|c| c[0].clone()).collect();
    assert_eq!(in_pairs, greedy);

    let config = SynthesisConfig {
        beam: 5,
        max_len: 30,
        grammar: true,
    };
    let beams = synthesis::beam_search(&b, &model, &inputs, &outputs, &config);
    for beam in &beams {
        assert_eq!(beam.len(), 5);
        let finished: Vec<_> = beam.iter().filter(|h| h.finished).collect();
        assert!(!finished.is_empty(), "the mask forces programs to end");
        for h in &finished {
            assert!(h.hypothesis.len() <= 30);
            assert!(parse_tokens(&h.hypothesis, &ParseOptions::default()).is_ok());
        }
    }
}

/// The debugger's beam of width 1 keeps one hypothesis, and its greedy repair is the same
/// whatever programs share its batch; every hypothesis of a wider beam is a valid op sequence
/// (scores sorted when the beam filled up).
#[test]
fn debugger_beam_search() {
    let b = CpuBackend::<f64>::new();
    let tasks = tasks(5);
    for trace in [false, true] {
        let model = Debugger::new(&b, small_debugger(trace), &mut ChaCha8Rng::seed_from_u64(5));
        let sources: Vec<Vec<Token>> = tasks.iter().map(|t| t.program.tokens()).collect();
        let traces: Vec<_> = tasks
            .iter()
            .map(|t| karel::data::repair::given_traces(&t.program, t, 250))
            .collect();
        let items: Vec<DebugItem> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| DebugItem {
                source: &sources[i],
                examples: t.given(),
                traces: &traces[i],
            })
            .collect();
        let batch = DebuggerBatch::new(&b, &items, 5, trace);
        let beams = repair::beam_search(&b, &model, &batch, 1, 20);
        assert!(beams.iter().all(|b| b.len() == 1));
        // A program's greedy repair does not depend on the programs repaired beside it.
        let greedy = repair::greedy(&b, &model, &batch, repair::MAX_EDIT_OPS);
        let in_pairs =
            repair::repair_programs(&b, &model, &items, repair::RepairDecoding::greedy(2));
        assert_eq!(in_pairs, greedy);
        // Its op limit is the one asked for (the untrained debugger writes more than 3 ops).
        let short = repair::greedy(&b, &model, &batch, 3);
        assert_ne!(short, greedy);
        let decoding = repair::RepairDecoding {
            batch: 2,
            beam: 1,
            max_ops: 3,
        };
        assert_eq!(repair::repair_programs(&b, &model, &items, decoding), short);
        let beams = repair::beam_search(&b, &model, &batch, 8, 20);
        for beam in &beams {
            assert_eq!(beam.len(), 8);
            if beam.iter().all(|h| h.finished) {
                assert!(beam.windows(2).all(|w| w[0].log_prob >= w[1].log_prob));
            }
        }
    }
}

/// The debugger's network batches hold at most `batch` programs and, with TraceEmbed, at most
/// `MAX_BATCH_STATES` trace states unless one program alone has more: programs with long traces
/// are batched a few at a time, in order, and a batch is cut only where the next program would
/// not fit.
#[test]
fn debugger_batches_are_bounded_in_trace_states() {
    let tasks = tasks(6);
    // 1,000 and 10,000 turns, which never fail: traces of 1,001 and 10,001 states.
    let turns = |levels: usize| {
        let text = "REPEAT R=10 r( ".repeat(levels) + "turnLeft " + &"r) ".repeat(levels);
        karel::lang::parse(&format!("DEF run m( {text}m)")).unwrap()
    };
    let (thousand, ten_thousand) = (turns(3), turns(4));
    // Short traces, and traces of about 5,000 states a program (three fit in a batch).
    let mut programs_and_steps = Vec::new();
    for task in &tasks {
        programs_and_steps.push((task.program.clone(), task, 250));
        for _ in 0..4 {
            programs_and_steps.push((thousand.clone(), task, 10_000));
        }
    }
    // One program with more states than a batch holds.
    programs_and_steps.insert(9, (ten_thousand, &tasks[0], 100_000));
    let sources: Vec<Vec<Token>> = programs_and_steps
        .iter()
        .map(|(p, _, _)| p.tokens())
        .collect();
    let traces: Vec<_> = programs_and_steps
        .iter()
        .map(|(p, task, steps)| karel::data::repair::given_traces(p, task, *steps))
        .collect();
    let items: Vec<DebugItem> = programs_and_steps
        .iter()
        .enumerate()
        .map(|(i, (_, task, _))| DebugItem {
            source: &sources[i],
            examples: task.given(),
            traces: &traces[i],
        })
        .collect();
    let states = |range: std::ops::Range<usize>| -> usize {
        items[range]
            .iter()
            .map(|item| {
                item.traces[..5]
                    .iter()
                    .map(|t| t.state_count())
                    .sum::<usize>()
            })
            .sum()
    };
    assert!(states(9..10) > repair::MAX_BATCH_STATES);
    assert_eq!(states(1..2), 5 * 1_001);
    for (batch, with_trace) in [(1024, true), (16, true), (4, true), (16, false), (3, false)] {
        let ranges = repair::network_batches(&items, 5, batch, with_trace);
        // Consecutive, in order, covering every program.
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, items.len());
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
        for (k, range) in ranges.iter().enumerate() {
            assert!(!range.is_empty() && range.len() <= batch);
            let held = states(range.clone());
            if with_trace {
                assert!(held <= repair::MAX_BATCH_STATES || range.len() == 1);
            }
            // Cut only where needed: the next program would pass one of the bounds.
            if let Some(next) = ranges.get(k + 1) {
                let full = range.len() == batch;
                let over = with_trace
                    && held + states(next.start..next.start + 1) > repair::MAX_BATCH_STATES;
                assert!(full || over, "batch {batch}, trace {with_trace}: {range:?}");
            }
        }
        if !with_trace {
            assert_eq!(ranges.len(), items.len().div_ceil(batch));
        }
    }
}

/// The search's debugger keeps each task's IO embedding from its first request: its answers
/// over several rounds, with tasks joining and leaving, equal the beam search of each round's
/// batch computed whole.
#[test]
fn neural_repairer_keeps_io_embeddings_per_task() {
    let b = CpuBackend::<f64>::new();
    let tasks = tasks(4);
    for trace in [false, true] {
        let model = Debugger::new(&b, small_debugger(trace), &mut ChaCha8Rng::seed_from_u64(6));
        let config = SearchConfig {
            debugger_beam: 4,
            max_ops: 20,
            ..SearchConfig::default()
        };
        let repairer = NeuralRepairer::new(&b, &model, &config, 3);
        // Round r asks for tasks r.. with the gold program plus r putMarkers.
        for round in 0..3 {
            let sources: Vec<Vec<Token>> = tasks[round..]
                .iter()
                .map(|t| with_suffix(&t.program.tokens(), &vec![Token::PutMarker; round]))
                .collect();
            let programs: Vec<_> = sources
                .iter()
                .map(|s| parse_tokens(s, &ParseOptions::default()).unwrap())
                .collect();
            let traces: Vec<_> = tasks[round..]
                .iter()
                .zip(&programs)
                .map(|(t, p)| karel::data::repair::given_traces(p, t, 250))
                .collect();
            let requests: Vec<RepairRequest> = tasks[round..]
                .iter()
                .enumerate()
                .map(|(k, task)| RepairRequest {
                    task,
                    task_id: round + k,
                    tokens: &sources[k],
                    traces: &traces[k],
                })
                .collect();
            let answers = repairer.repair(&requests);
            repairer.release(round);
            let mut whole = Vec::new();
            for chunk in requests.chunks(3) {
                let items: Vec<DebugItem> = chunk.iter().map(RepairRequest::item).collect();
                let batch = DebuggerBatch::new(&b, &items, 5, trace);
                whole.extend(
                    repair::beam_search(&b, &model, &batch, 4, 20)
                        .into_iter()
                        .map(|beam| beam.into_iter().map(|h| h.hypothesis).collect::<Vec<_>>()),
                );
            }
            assert_eq!(answers, whole, "round {round}, trace {trace}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SED search, driven by scripted debuggers.

/// Runs `search` to its end, answering each request with `debugger(program)`; returns the result
/// and the programs sent to the debugger.
fn drive(
    mut search: TaskSearch,
    debugger: impl Fn(&[Token]) -> Vec<Vec<Token>>,
) -> (SearchResult, Vec<Vec<Token>>) {
    let mut requests = Vec::new();
    while let Some(program) = search.next_request() {
        let program = program.to_vec();
        let answer = debugger(&program);
        requests.push(program);
        search.receive(&answer);
    }
    (search.result(), requests)
}

fn config(strategy: Strategy, steps: usize, merge: bool) -> SearchConfig {
    SearchConfig {
        strategy,
        steps,
        merge,
        ..SearchConfig::default()
    }
}

/// `tokens` with `extra` inserted before the closing `m)`.
fn with_suffix(tokens: &[Token], extra: &[Token]) -> Vec<Token> {
    let mut out = tokens[..tokens.len() - 1].to_vec();
    out.extend_from_slice(extra);
    out.push(Token::MClose);
    out
}

/// A no-op on every world: four left turns.
const SPIN: [Token; 5] = [
    Token::Repeat,
    Token::R4,
    Token::ROpen,
    Token::TurnLeft,
    Token::RClose,
];

/// A program that fails some given example of `task`: the gold program with a `putMarker`
/// added at the end (it changes every output).
fn broken(task: &Task) -> Vec<Token> {
    with_suffix(&task.program.tokens(), &[Token::PutMarker])
}

/// The scripted debugger of [`run_searches_batches_a_scripted_repairer`]: the broken program
/// becomes a still failing one, which becomes the gold program. Counts its calls.
struct TwoStepScript {
    calls: std::cell::Cell<usize>,
}

impl TwoStepScript {
    fn answer(task: &Task, program: &[Token]) -> Vec<Vec<Token>> {
        let wrong = broken(task);
        if program == wrong.as_slice() {
            vec![with_suffix(&wrong, &SPIN)]
        } else if program == with_suffix(&wrong, &SPIN).as_slice() {
            vec![task.program.tokens()]
        } else {
            vec![]
        }
    }
}

impl Repairer for TwoStepScript {
    fn repair(&self, requests: &[RepairRequest]) -> Vec<Vec<Vec<Token>>> {
        self.calls.set(self.calls.get() + 1);
        requests
            .iter()
            .map(|r| {
                assert_eq!(
                    r.traces.len(),
                    r.task.given().len(),
                    "one trace per given input"
                );
                TwoStepScript::answer(r.task, r.tokens)
            })
            .collect()
    }
}

/// `run_searches` reaches the debugger only through `Repairer`: with a scripted one, each task's
/// result is the result of driving its search alone, and the requests of all tasks in flight go
/// to the debugger together (one call per round).
#[test]
fn run_searches_batches_a_scripted_repairer() {
    let tasks = tasks(6);
    let refs: Vec<&Task> = tasks.iter().collect();
    let initial: Vec<Vec<Vec<Token>>> = tasks.iter().map(|t| vec![broken(t)]).collect();
    for strategy in [Strategy::BestFirst, Strategy::Greedy] {
        let script = TwoStepScript {
            calls: std::cell::Cell::new(0),
        };
        let config = config(strategy, 10, false);
        let mut finished = 0;
        let networks = Networks {
            repairer: Some(&script),
            ranker: None,
        };
        let (results, _) = run_searches(networks, &refs, &initial, &config, 8, |n| finished += n);
        assert_eq!(finished, tasks.len());
        assert_eq!(
            script.calls.get(),
            2,
            "{strategy:?}: two rounds, each one call"
        );
        for ((task, start), result) in tasks.iter().zip(&initial).zip(&results) {
            let (alone, requests) = drive(TaskSearch::new(task, config, start), |p| {
                TwoStepScript::answer(task, p)
            });
            assert_eq!(result, &alone);
            assert_eq!(result.ending, Ending::Solved);
            assert_eq!(result.calls, 2);
            assert_eq!(requests.len(), 2);
        }
    }
}

#[test]
fn search_finds_a_known_repair() {
    let task = &tasks(1)[0];
    let gold = task.program.tokens();
    let wrong = broken(task);
    let other_wrong = with_suffix(&wrong, &[Token::PutMarker]);
    let script = |p: &[Token]| -> Vec<Vec<Token>> {
        if p == wrong.as_slice() {
            vec![vec![Token::Def], other_wrong.clone(), gold.clone()]
        } else {
            vec![]
        }
    };
    for strategy in [Strategy::BestFirst, Strategy::Greedy] {
        let search = TaskSearch::new(
            task,
            config(strategy, 5, false),
            std::slice::from_ref(&wrong),
        );
        let (result, requests) = drive(search, script);
        assert_eq!(result.ending, Ending::Solved);
        assert_eq!(result.program, gold);
        assert!(result.passes_given);
        assert_eq!(result.calls, 1);
        assert_eq!(requests, vec![wrong.clone()]);
        let path: Vec<&Vec<Token>> = result
            .path
            .iter()
            .map(|&i| &result.candidates[i].tokens)
            .collect();
        assert_eq!(path, vec![&wrong, &gold]);
        // The unparsable candidate is skipped; the two valid ones are executed.
        assert_eq!(result.executed, 3);
    }
    // With no budget the first decision is all there is: the failing start is returned.
    let search = TaskSearch::new(
        task,
        config(Strategy::BestFirst, 0, false),
        std::slice::from_ref(&wrong),
    );
    let (result, requests) = drive(search, script);
    assert_eq!(
        (result.ending, result.program, requests.len()),
        (Ending::StepLimit, wrong.clone(), 0)
    );
    // A passing initial candidate is accepted at zero cost, even behind failing ones.
    let search = TaskSearch::new(
        task,
        config(Strategy::BestFirst, 5, false),
        &[wrong.clone(), gold.clone()],
    );
    let (result, requests) = drive(search, script);
    assert_eq!((result.program, requests.len()), (gold.clone(), 0));
}

/// Best-first pops the highest bucket first: a program passing some examples is debugged before
/// one passing none, whatever their order.
#[test]
fn best_first_prefers_more_examples_passed() {
    let conditional = [
        Token::If,
        Token::COpen,
        Token::FrontIsClear,
        Token::CClose,
        Token::IOpen,
        Token::PutMarker,
        Token::IClose,
    ];
    let passed = |task: &Task, tokens: &[Token]| task.score(tokens).unwrap().0;
    // A task whose program with a conditional suffix passes some but not all given examples.
    let (task, partly) = tasks(60)
        .into_iter()
        .find_map(|task| {
            let partly = with_suffix(&task.program.tokens(), &conditional);
            (1..5)
                .contains(&passed(&task, &partly))
                .then_some((task, partly))
        })
        .expect("some generated task");
    let gold = task.program.tokens();
    let wrong = broken(&task);
    assert_eq!(passed(&task, &wrong), 0);
    let script = |p: &[Token]| -> Vec<Vec<Token>> {
        if p == partly.as_slice() {
            vec![gold.clone()]
        } else {
            vec![with_suffix(p, &[Token::TurnLeft])]
        }
    };
    let initial = [wrong.clone(), partly.clone()];
    let (result, requests) = drive(
        TaskSearch::new(&task, config(Strategy::BestFirst, 3, false), &initial),
        script,
    );
    assert_eq!(result.program, gold);
    assert_eq!(requests, vec![partly.clone()]);
}

/// No program is given to the debugger twice: the debugger here cycles between two programs.
#[test]
fn seen_set_prevents_re_expansion() {
    let task = &tasks(3)[2];
    let a = broken(task);
    let b = with_suffix(&a, &[Token::PutMarker]);
    let script = |p: &[Token]| -> Vec<Vec<Token>> {
        if p == a.as_slice() {
            vec![a.clone(), b.clone()]
        } else {
            vec![b.clone(), a.clone()]
        }
    };
    for strategy in [Strategy::BestFirst, Strategy::Greedy] {
        let (result, requests) = drive(
            TaskSearch::new(task, config(strategy, 50, false), std::slice::from_ref(&a)),
            script,
        );
        assert_eq!(result.ending, Ending::Exhausted, "{strategy:?}");
        assert_eq!(requests, vec![a.clone(), b.clone()], "{strategy:?}");
        assert!(!result.passes_given);
    }
}

/// Merging drops failing programs that behave like one already met, and saves their debugger
/// calls; it never drops a passing program, even one that behaves like another passing one.
#[test]
fn observational_merging() {
    let task = &tasks(4)[3];
    let gold = task.program.tokens();
    let gold_spin = with_suffix(&gold, &SPIN);
    let wrong = broken(task);
    let wrong_spin = with_suffix(&wrong, &SPIN);
    let script = |p: &[Token]| -> Vec<Vec<Token>> {
        if p == wrong.as_slice() {
            vec![wrong_spin.clone()]
        } else {
            vec![gold_spin.clone(), gold.clone()]
        }
    };
    for strategy in [Strategy::BestFirst, Strategy::Greedy] {
        let (plain, plain_requests) = drive(
            TaskSearch::new(
                task,
                config(strategy, 10, false),
                std::slice::from_ref(&wrong),
            ),
            script,
        );
        assert_eq!(plain_requests, vec![wrong.clone(), wrong_spin.clone()]);
        assert_eq!(plain.program, gold_spin);
        let (merged, merged_requests) = drive(
            TaskSearch::new(
                task,
                config(strategy, 10, true),
                std::slice::from_ref(&wrong),
            ),
            script,
        );
        assert_eq!(merged_requests, vec![wrong.clone()], "{strategy:?}");
        assert_eq!(merged.merged, 1);
        assert_eq!(merged.ending, Ending::Exhausted);
        // Passing programs are never merged away.
        let initial = [gold_spin.clone(), gold.clone()];
        let search = TaskSearch::new(task, config(strategy, 10, true), &initial);
        let (result, _) = drive(search, script);
        assert_eq!(result.program, gold_spin);
        assert_eq!(result.candidates.len(), 2);
        assert_eq!(result.merged, 0);
    }
}

/// With K = 1 from a single program, best-first and greedy accept the same program (the first
/// passing one of the debugger's list), whatever the debugger proposes.
#[test]
fn best_first_and_greedy_agree_at_one_step() {
    let tasks = tasks(40);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut solved = 0;
    for task in &tasks {
        let gold = task.program.tokens();
        let wrong = broken(task);
        // A list of variants of the program, with the gold program somewhere or absent.
        let mut list: Vec<Vec<Token>> = (0..6)
            .map(|i| {
                let extra = [Token::PutMarker, Token::Move, Token::TurnLeft][i % 3];
                with_suffix(&gold, &vec![extra; 1 + i / 3])
            })
            .collect();
        if rng.random_range(0..3) > 0 {
            let at = rng.random_range(0..=list.len());
            list.insert(at, gold.clone());
            if rng.random_range(0..2) == 0 {
                list.insert(0, with_suffix(&gold, &SPIN));
            }
        }
        let script = |_: &[Token]| list.clone();
        let (best_first, _) = drive(
            TaskSearch::new(
                task,
                config(Strategy::BestFirst, 1, false),
                std::slice::from_ref(&wrong),
            ),
            script,
        );
        let (greedy, _) = drive(
            TaskSearch::new(
                task,
                config(Strategy::Greedy, 1, false),
                std::slice::from_ref(&wrong),
            ),
            script,
        );
        assert_eq!(best_first.passes_given, greedy.passes_given);
        if best_first.passes_given {
            assert_eq!(best_first.program, greedy.program);
            solved += 1;
        }
    }
    assert!(solved > 10 && solved < tasks.len(), "{solved}");
}

// ---------------------------------------------------------------------------------------------
// `karel eval` and `karel synthesize` with the built-in models.

use serde_json::Value;
use std::process::{Command, Output};

fn karel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the karel binary runs")
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes 6 generated tasks (seed `seed`) to `path` in the standard format.
fn six_tasks(path: &str, seed: &str) {
    ok(&karel(&[
        "gen", "--count", "6", "--format", "standard", "-o", path, "--seed", seed,
    ]));
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every number of a report is recomputed from its per-task records; shards merge into exactly
/// the records of the whole run.
#[test]
fn eval_reports_shards_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    six_tasks(&at("val.jsonl"), "5");
    let common = [
        "--data",
        &at("val.jsonl"),
        "--decode",
        "both",
        "--search",
        "both",
        "--steps",
        "1,2",
        "--beam",
        "3",
        "--debugger-beam",
        "3",
        "--max-len",
        "30",
        "--max-ops",
        "30",
        "--batch",
        "4",
    ]
    .map(String::from);
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = vec!["eval"];
        args.extend(common.iter().map(String::as_str));
        args.extend(extra);
        let out = karel(&args);
        ok(&out);
        out
    };
    let full = at("full.json");
    let out = run(&[
        "--json",
        &full,
        "--plot",
        &at("k.svg"),
        "--markdown",
        &at("t.md"),
    ]);
    let report = read_json(std::path::Path::new(&full));
    let configs = report["configs"].as_array().unwrap();
    let names: Vec<&str> = configs
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "greedy",
            "greedy + best-first",
            "greedy + greedy",
            "beam 3",
            "beam 3 + best-first",
            "beam 3 + greedy"
        ]
    );
    let markdown = String::from_utf8(out.stdout).unwrap();
    assert_eq!(std::fs::read_to_string(at("t.md")).unwrap(), markdown);
    for (config, summary) in configs.iter().zip(report["summaries"].as_array().unwrap()) {
        let records = config["records"].as_array().unwrap();
        assert_eq!(records.len(), 6);
        let count = |f: &dyn Fn(&Value) -> bool| records.iter().filter(|r| f(r)).count() as f64;
        let general_error = 1.0 - count(&|r| r["passes_all"] == true) / 6.0;
        let exact_error = 1.0 - count(&|r| r["exact"] == true) / 6.0;
        assert!((summary["generalization_error"].as_f64().unwrap() - general_error).abs() < 1e-12);
        assert!((summary["exact_error"].as_f64().unwrap() - exact_error).abs() < 1e-12);
        let cell = format!(
            "{:.2} % ({:.2} %)",
            100.0 * general_error,
            100.0 * exact_error
        );
        assert!(markdown.contains(&cell), "{cell} not in\n{markdown}");
        for r in records {
            // A program passing all 6 examples passes the 5 given ones; an exact one passes all.
            assert!(r["passes_all"] == false || r["passes_given"] == true);
            assert!(r["calls"].as_u64().unwrap() <= 2);
            if config["search"] != "none" {
                assert!(r["exact"] == false || r["passes_all"] == true);
            }
        }
    }
    assert!(std::fs::read_to_string(at("k.svg"))
        .unwrap()
        .starts_with("<svg"));
    // Two shards, merged, equal the whole run.
    run(&["--shard", "1/2", "--json", &at("s1.json")]);
    run(&["--shard", "0/2", "--json", &at("s0.json")]);
    let out = karel(&[
        "eval",
        "merge",
        &at("s1.json"),
        &at("s0.json"),
        "--json",
        &at("merged.json"),
    ]);
    ok(&out);
    let merged = read_json(&dir.path().join("merged.json"));
    assert_eq!(merged["configs"], report["configs"]);
    assert_eq!(merged["summaries"], report["summaries"]);
    // A shard twice is refused.
    let out = karel(&["eval", "merge", &at("s1.json"), &at("s1.json")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than one report"));

    // Saved in chunks of 4 tasks: the same records.
    let part = at("part.json");
    run(&["--json", &part, "--save-every", "4"]);
    let chunked = read_json(std::path::Path::new(&part));
    assert_eq!(chunked["configs"], report["configs"]);
    assert_eq!(chunked["complete"], true);
    // An existing report is not overwritten without --resume.
    let mut args: Vec<&str> = vec!["eval"];
    args.extend(common.iter().map(String::as_str));
    args.extend(["--json", &part]);
    let out = karel(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    // Interrupted in the second chunk: the first configuration has all 6 tasks, the others the
    // first 4, one of them only 3 (a chunk cut short). Resuming completes exactly the records.
    let mut unfinished = chunked.clone();
    unfinished["complete"] = Value::Bool(false);
    for (n, config) in unfinished["configs"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let keep = match n {
            0 => 6,
            2 => 3,
            _ => 4,
        };
        config["records"].as_array_mut().unwrap().truncate(keep);
    }
    std::fs::write(&part, serde_json::to_string(&unfinished).unwrap()).unwrap();
    let out = karel(&["eval", "merge", &part]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unfinished"));
    let out = run(&["--json", &part, "--save-every", "4", "--resume"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 task(s) evaluated"));
    let resumed = read_json(std::path::Path::new(&part));
    assert_eq!(resumed["configs"], report["configs"]);
    assert_eq!(resumed["summaries"], report["summaries"]);
    assert_eq!(resumed["complete"], true);
    // Other settings are refused.
    let mut args: Vec<&str> = vec!["eval"];
    args.extend(common.iter().map(String::as_str));
    args.extend(["--json", &part, "--resume", "--merge"]);
    let out = karel(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("other settings"));

    // Another --limit: an unfinished evaluation with the first 4 tasks in every configuration
    // is cut to them (and finished as a 4-task evaluation), or extended back to all 6.
    let mut first_four = chunked.clone();
    first_four["complete"] = Value::Bool(false);
    for config in first_four["configs"].as_array_mut().unwrap() {
        config["records"].as_array_mut().unwrap().truncate(4);
    }
    let cut = at("cut.json");
    std::fs::write(&cut, serde_json::to_string(&first_four).unwrap()).unwrap();
    let out = run(&[
        "--json",
        &cut,
        "--save-every",
        "4",
        "--resume",
        "--limit",
        "4",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("now covers 4 tasks instead of 6"));
    let four = read_json(std::path::Path::new(&cut));
    assert_eq!(four["split_tasks"], 4);
    assert_eq!(four["complete"], true);
    assert_eq!(four["configs"], first_four["configs"]);
    // Cutting below recorded tasks would lose them: refused, the file untouched.
    let mut args: Vec<&str> = vec!["eval"];
    args.extend(common.iter().map(String::as_str));
    args.extend(["--json", &cut, "--resume", "--limit", "2"]);
    let out = karel(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--limit 4 or more"));
    assert_eq!(read_json(std::path::Path::new(&cut)), four);
    // Extended to the whole split: the same records as the uninterrupted run.
    let out = run(&["--json", &cut, "--save-every", "4", "--resume"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("now covers 6 tasks instead of 4"));
    let extended = read_json(std::path::Path::new(&cut));
    assert_eq!(extended["configs"], report["configs"]);
    assert_eq!(extended["summaries"], report["summaries"]);
}

/// `--compare-beam` adds one plain beam per debugger search without the rewrite stage, as wide
/// as that search's mean number of programs executed, and none for the rewrite stage's
/// searches (whose programs are mostly never decoded).
#[test]
fn compare_beam_matches_debugger_searches_only() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    six_tasks(&at("val.jsonl"), "7");
    let report = at("report.json");
    ok(&karel(&[
        "eval",
        "--data",
        &at("val.jsonl"),
        "--decode",
        "greedy",
        "--search",
        "best-first,best-first+rewrite",
        "--steps",
        "3",
        "--debugger-beam",
        "3",
        "--max-len",
        "30",
        "--max-ops",
        "30",
        "--rewrite-radius",
        "1",
        "--rewrite-budget",
        "2000",
        "--compare-beam",
        "--json",
        &report,
    ]));
    let report = read_json(std::path::Path::new(&report));
    let configs = report["configs"].as_array().unwrap();
    let names: Vec<&str> = configs
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let executed: Vec<f64> = configs[1]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["executed"].as_f64().unwrap())
        .collect();
    let width = (executed.iter().sum::<f64>() / executed.len() as f64)
        .round()
        .max(1.0);
    assert_eq!(
        names,
        [
            "greedy".to_string(),
            "greedy + best-first".to_string(),
            "greedy + best-first+rewrite".to_string(),
            format!("beam {width} (as many programs as greedy + best-first)"),
        ]
    );
    assert_eq!(configs[3]["records"].as_array().unwrap().len(), 6);
}

/// `karel synthesize TASK --explain` on the example task, with the built-in models.
#[test]
fn synthesize_one_task_explains_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let out = karel(&[
        "synthesize",
        "examples/task.json",
        "--explain",
        "--json",
        json.to_str().unwrap(),
    ]);
    ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("passes the 5 given examples: yes"), "{text}");
    assert!(text.contains("step 0: synthesizer candidate"), "{text}");
    let result = read_json(&json);
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["program"], result["program"]);
    assert_eq!(steps.last().unwrap()["passed"], 5);
    // A missing task is a clear error.
    let out = karel(&["synthesize", "examples/task.json", "--index", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no task 7"));
}

// ---------------------------------------------------------------------------------------------
// The rewrite stage.

use karel::data::mutate::{neighbourhood, MutatorConfig};
use karel::lang::Program;

/// The rewrite stage alone (no debugger calls) at `radius`, ranked by `ranking`.
fn rewrite_only(radius: usize, ranking: Ranking) -> SearchConfig {
    let rewrite = RewriteConfig {
        radius,
        limit: 1_000_000,
        budget: 1_000_000,
        ranking,
        simplify: 0,
    };
    SearchMethod::REWRITE.config(&SearchConfig::default(), rewrite)
}

/// Every candidate of a result that passes the given examples, and whether the returned
/// program does.
fn check_never_returns_a_failing_program(task: &Task, result: &SearchResult) {
    let given = task.given().len();
    if result.candidates.iter().any(|c| c.passed == given) {
        assert!(
            result.passes_given,
            "a passing program was found but not returned"
        );
        assert_eq!(task.score(&result.program).map(|s| s.0), Some(given));
    }
}

/// Every single mutation of a task's program (its whole radius-1 neighbourhood) is repaired by
/// the rewrite stage alone at radius 1 to a program that passes the given examples.
#[test]
fn the_rewrite_stage_repairs_every_single_mutation() {
    let mutator = MutatorConfig::default();
    let mut mutants = 0;
    for task in tasks(3) {
        let near = neighbourhood(&task.program, 1, &mutator, usize::MAX);
        assert!(near.complete);
        for (mutant, _) in &near.programs {
            let start = vec![mutant.tokens()];
            let search = TaskSearch::new(&task, rewrite_only(1, Ranking::Nearest), &start);
            let (result, requests) = drive(search, |_| unreachable!("no debugger calls"));
            assert!(requests.is_empty());
            assert!(result.passes_given, "{mutant} is not repaired");
            assert_eq!(result.ending, Ending::Solved);
            assert_eq!(result.calls, 0);
            check_never_returns_a_failing_program(&task, &result);
            mutants += 1;
        }
    }
    assert!(mutants > 300, "{mutants} mutants");
}

/// A solved search's answer is simplified: a passing start with a pair of turns that cancel out
/// becomes a shorter passing program, shown as simplified steps on its path; without
/// simplification the start is returned; the simplification's programs count as the stage's.
#[test]
fn a_solved_search_is_simplified() {
    for task in tasks(3) {
        let padded = with_suffix(&task.program.tokens(), &[Token::TurnLeft, Token::TurnRight]);
        let initial = vec![vec![padded.clone()]];
        let run = |simplify: usize| {
            let config = SearchMethod::REWRITE.config(
                &SearchConfig::default(),
                RewriteConfig {
                    simplify,
                    ..RewriteConfig::default()
                },
            );
            run_searches(Networks::default(), &[&task], &initial, &config, 4, |_| {})
                .0
                .remove(0)
        };
        let plain = run(0);
        assert_eq!(plain.program, padded);
        assert_eq!(plain.rewritten, 0);
        let simple = run(2);
        assert!(simple.passes_given);
        assert_eq!(simple.ending, Ending::Solved);
        assert!(simple.program.len() <= task.program.token_len());
        assert!(simple.rewritten > 0);
        check_never_returns_a_failing_program(&task, &simple);
        let steps = &simple.path[1..];
        assert!(!steps.is_empty());
        let mut previous = padded.len();
        for &id in steps {
            let c = &simple.candidates[id];
            assert!(c.simplified && (1..=2).contains(&c.rewrites));
            assert!(c.tokens.len() < previous);
            assert_eq!(task.score(&c.tokens).unwrap().0, task.given().len());
            previous = c.tokens.len();
        }
        assert_eq!(simple, run(2), "deterministic");
    }
}

/// A ranker that scores each program by a fixed rule, counting its calls.
struct ScriptedRanker<F: Fn(&[Token]) -> f64> {
    score: F,
    calls: std::cell::Cell<usize>,
}

impl<F: Fn(&[Token]) -> f64> Ranker for ScriptedRanker<F> {
    fn scores(&self, requests: &[RankRequest]) -> Vec<Vec<f64>> {
        self.calls.set(self.calls.get() + 1);
        requests
            .iter()
            .map(|r| r.programs.iter().map(|p| (self.score)(p)).collect())
            .collect()
    }
}

/// The passing programs the rewrite stage finds from `start`, in enumeration order.
fn passing_rewrites(task: &Task, start: &Program) -> Vec<Vec<Token>> {
    let given = task.given().len();
    neighbourhood(start, 1, &MutatorConfig::default(), usize::MAX)
        .programs
        .iter()
        .map(|(p, _)| p.tokens())
        .filter(|t| task.score(t).map(|s| s.0) == Some(given))
        .collect()
}

/// With the likelihood ranking the ranker's best program is returned; equal scores keep the
/// enumeration order, so that the first found is returned; the other rankings do not call the
/// ranker; results repeat exactly.
#[test]
fn rewrite_rankings_are_deterministic() {
    let task = tasks(1).remove(0);
    // A mutant whose repairs are several: the gold program with one more action at the end.
    let start = parse_tokens(&broken(&task), &ParseOptions::default()).unwrap();
    let passing = passing_rewrites(&task, &start);
    assert!(passing.len() > 1, "{} repairs", passing.len());
    let initial = vec![vec![start.tokens()]];
    let refs = [&task];
    let run = |ranking: Ranking, ranker: &dyn Ranker| {
        let networks = Networks {
            repairer: None,
            ranker: Some(ranker),
        };
        let config = rewrite_only(1, ranking);
        run_searches(networks, &refs, &initial, &config, 4, |_| {})
            .0
            .remove(0)
    };
    let flat = ScriptedRanker {
        score: |_: &[Token]| 0.0,
        calls: Default::default(),
    };
    let result = run(Ranking::Likelihood, &flat);
    assert_eq!(flat.calls.get(), 1);
    assert_eq!(result.program, passing[0], "ties keep the first found");
    assert_eq!(result, run(Ranking::Likelihood, &flat));
    let last = passing.last().unwrap().clone();
    let prefers_last = ScriptedRanker {
        score: |p: &[Token]| if p == last.as_slice() { 1.0 } else { 0.0 },
        calls: Default::default(),
    };
    assert_eq!(run(Ranking::Likelihood, &prefers_last).program, last);
    let nearest = run(Ranking::Nearest, &prefers_last);
    assert_eq!(nearest.program, passing[0]);
    let shortest = run(Ranking::Shortest, &prefers_last);
    let min_len = passing.iter().map(|p| p.len()).min().unwrap();
    assert_eq!(shortest.program.len(), min_len);
    assert_eq!(
        prefers_last.calls.get(),
        1,
        "only the likelihood ranking calls the ranker"
    );
    for result in [nearest, shortest] {
        check_never_returns_a_failing_program(&task, &result);
        assert!(result.passes_given);
    }
}

/// With the debugger and the rewrite stage: a debugger that never helps, a program two
/// rewrites away from a passing one. The stage finds it before the first call at radius 2; at
/// radius 1 it finds nothing, the calls are spent, and the search returns what best-first
/// returns without the stage; the stage's work stays within its budget.
#[test]
fn the_rewrite_stage_inside_best_first() {
    let task = tasks(1).remove(0);
    // The first program two rewrites from the gold one that fails and has no passing program
    // one rewrite away.
    let given = task.given().len();
    let wrong = neighbourhood(&task.program, 2, &MutatorConfig::default(), usize::MAX)
        .programs
        .into_iter()
        .filter(|(_, d)| *d == 2)
        .map(|(p, _)| p)
        .find(|p| {
            task.score(&p.tokens()).unwrap().0 < given && passing_rewrites(&task, p).is_empty()
        })
        .expect("a program two rewrites away")
        .tokens();
    let useless = |_: &[Token]| -> Vec<Vec<Token>> { vec![] };
    let with = |radius: usize, budget: usize| {
        let rewrite = RewriteConfig {
            radius,
            limit: budget,
            budget,
            ranking: Ranking::Nearest,
            simplify: 0,
        };
        let config = SearchMethod::with_rewrite(Strategy::BestFirst)
            .config(&config(Strategy::BestFirst, 3, false), rewrite);
        drive(
            TaskSearch::new(&task, config, std::slice::from_ref(&wrong)),
            useless,
        )
    };
    let (two, requests) = with(2, 10_000_000);
    assert!(requests.is_empty());
    assert!(two.passes_given);
    assert_eq!(two.ending, Ending::Solved);
    assert_eq!(two.candidates[two.path[1]].rewrites, 2);
    check_never_returns_a_failing_program(&task, &two);
    let plain = drive(
        TaskSearch::new(
            &task,
            config(Strategy::BestFirst, 3, false),
            std::slice::from_ref(&wrong),
        ),
        useless,
    )
    .0;
    let (one, _) = with(1, 10_000_000);
    assert!(!one.passes_given);
    assert_eq!(one.program, plain.program);
    assert_eq!(one.ending, plain.ending);
    let (cut, _) = with(2, 50);
    assert_eq!(cut.rewritten, 50);
}

/// The likelihood ranker scores a program as the synthesizer's beam search does: the sum of
/// its tokens' log-probabilities and the end's, whatever the other programs scored with it.
#[test]
fn likelihood_ranker_matches_the_beam_scores() {
    let b = CpuBackend::<f64>::new();
    let model = small_synthesizer();
    let tasks = tasks(3);
    let config = SynthesisConfig {
        beam: 4,
        max_len: 20,
        grammar: false,
    };
    let refs: Vec<&Task> = tasks.iter().collect();
    let given = || tasks.iter().flat_map(|t| t.given().iter());
    let inputs = grid_tensor(&b, given().map(|e| &e.input));
    let outputs = grid_tensor(&b, given().map(|e| &e.output));
    let beams = synthesis::beam_search(&b, &model, &inputs, &outputs, &config);
    let finished: Vec<Vec<_>> = beams
        .iter()
        .map(|beam| beam.iter().filter(|h| h.finished).collect())
        .collect();
    assert!(finished.iter().any(|f| !f.is_empty()));
    let requests: Vec<RankRequest> = refs
        .iter()
        .zip(&finished)
        .map(|(task, hs)| RankRequest {
            task,
            programs: hs.iter().map(|h| h.hypothesis.as_slice()).collect(),
        })
        .collect();
    for batch in [1, 3, 64] {
        let ranker = LikelihoodRanker {
            backend: &b,
            synthesizer: &model,
            batch,
        };
        let scores = ranker.scores(&requests);
        for (hs, scores) in finished.iter().zip(&scores) {
            assert_eq!(hs.len(), scores.len());
            for (h, &score) in hs.iter().zip(scores) {
                assert!(
                    (score - f64::from(h.log_prob)).abs() < 1e-4,
                    "{score} vs {}",
                    h.log_prob
                );
            }
        }
    }
}
