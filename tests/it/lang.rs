//! The front end: parse verdicts, options, error locations, and diagnostics (snapshots).

use karel::lang::{self, diag, ParseOptions, SyntaxErrorKind, Token};

/// Renders the diagnostics of a source that must not parse.
#[track_caller]
fn diagnostics(source: &str, options: &ParseOptions) -> String {
    match lang::parse_with(source, options) {
        Ok(parsed) => panic!("expected a syntax error, parsed {}", parsed.program),
        Err(error) => diag::render("program.karel", source, &error),
    }
}

#[test]
fn empty_bodies_follow_the_options() {
    let source = "DEF run m( WHILE c( frontIsClear c) w( w) IFELSE c( markersPresent c) i( move i) ELSE e( e) REPEAT R=3 r( r) m)";
    let program = lang::parse(source).unwrap();
    assert_eq!(program.to_string(), source);
    let error = lang::parse_with(source, &ParseOptions::strict()).unwrap_err();
    let openers: Vec<(Token, Option<u32>)> = error
        .errors
        .iter()
        .map(|e| match e.kind {
            SyntaxErrorKind::EmptyBody { opener } => (opener, e.token),
            ref other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        openers,
        [
            (Token::WOpen, Some(7)),
            (Token::EOpen, Some(17)),
            (Token::ROpen, Some(21))
        ]
    );
    assert!(lang::parse_with("DEF run m( m)", &ParseOptions::strict()).is_err());
    assert!(lang::parse("DEF run m( m)").is_ok());
}

#[test]
fn nesting_depth_is_bounded() {
    let nested = |depth: usize| {
        format!(
            "DEF run m( {} move {} m)",
            "REPEAT R=2 r( ".repeat(depth),
            "r) ".repeat(depth)
        )
    };
    let options = ParseOptions {
        max_depth: 10,
        ..ParseOptions::default()
    };
    assert_eq!(
        lang::parse_with(&nested(9), &options)
            .unwrap()
            .program
            .depth(),
        10
    );
    let error = lang::parse_with(&nested(10), &options).unwrap_err();
    assert_eq!(error.errors[0].kind, SyntaxErrorKind::TooDeep { limit: 10 });
    assert_eq!(error.errors[0].token, Some(3 + 3 * 9 + 2));
    // A very deep input is rejected before anything recursive sees it.
    assert!(lang::parse(&nested(100_000)).is_err());
    // The deepest accepted program parses, prints, compiles and runs on a small stack (worker
    // threads have less stack than the main thread).
    let deepest = nested(lang::DEFAULT_MAX_DEPTH - 1);
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let program = lang::parse(&deepest).unwrap();
            assert_eq!(lang::parse(&program.pretty()).unwrap(), program);
            let chunk = karel::vm::compile(&program);
            let world = karel::world::World::from_ascii("+--+\n|.>|\n+--+").unwrap();
            assert!(karel::vm::run(&chunk, &world, 1000).0.outcome() != karel::vm::Outcome::Ok);
        })
        .unwrap()
        .join()
        .unwrap();
    // Whatever the options say, nothing deeper than the hard limit is accepted, and a program at
    // that limit goes through every recursive pass on a 2 MiB stack (a test thread's).
    let unbounded = ParseOptions {
        max_depth: usize::MAX,
        ..ParseOptions::default()
    };
    let error = lang::parse_with(&nested(lang::MAX_DEPTH_LIMIT), &unbounded).unwrap_err();
    assert_eq!(
        error.errors[0].kind,
        SyntaxErrorKind::TooDeep {
            limit: lang::MAX_DEPTH_LIMIT
        }
    );
    let deepest = nested(lang::MAX_DEPTH_LIMIT - 1);
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let parsed = lang::parse_with(&deepest, &unbounded).unwrap();
            let program = parsed.program;
            assert_eq!(program.depth(), lang::MAX_DEPTH_LIMIT);
            assert_eq!(
                lang::parse_with(&program.pretty(), &unbounded)
                    .unwrap()
                    .program,
                program
            );
            assert_eq!(
                karel::lang::Layout::of(&program).token_len() as usize,
                program.token_len()
            );
            let chunk = karel::vm::compile(&program);
            let world = karel::world::World::from_ascii("+--+\n|.>|\n+--+").unwrap();
            let (strict, _) = karel::vm::run(&chunk, &world, 100_000);
            let mut interpreted = world.clone();
            let run = karel::vm::interpret(
                &program,
                &mut interpreted,
                &karel::vm::RunConfig::with_max_steps(100_000),
                &mut karel::vm::NoTrace,
            );
            assert_eq!(run, strict);
            drop(program);
        })
        .unwrap()
        .join()
        .unwrap();
    // A very long flat program is fine.
    let long = format!("DEF run m( {} m)", "move turnLeft ".repeat(100_000));
    assert_eq!(lang::parse(&long).unwrap().body.len(), 200_000);
}

#[test]
fn errors_point_at_the_offending_token() {
    let source = "DEF run m( move i) m)";
    let error = lang::parse(source).unwrap_err();
    assert_eq!(error.errors.len(), 1);
    assert_eq!(error.errors[0].token, Some(4));
    assert_eq!(&source[error.errors[0].bytes.clone()], "i)");
    assert!(
        error
            .to_string()
            .starts_with("unexpected `i)` at token 4; expected a statement or `m)`"),
        "{error}"
    );
}

#[test]
fn special_tokens_are_lexed_but_never_parsed() {
    for special in ["<S>", "</S>", "<UNK>", "|||"] {
        let source = format!("DEF run m( {special} m)");
        let error = lang::parse(&source).unwrap_err();
        assert!(error.to_string().contains("special token"), "{error}");
    }
}

#[test]
fn diagnostic_snapshots() {
    let cases = [
        (
            "unknown_words",
            "DEF run m(\n  movee\n  turnLeft R=11\nm)\n",
        ),
        (
            "unexpected_token",
            "DEF run m(\n  WHILE c( frontIsClear c) w(\n    move\n  i)\nm)\n",
        ),
        (
            "bad_condition",
            "DEF run m( IF c( move c) i( turnLeft i) m)",
        ),
        ("unexpected_end", "DEF run m(\n  REPEAT R=3 r(\n    move\n"),
        ("trailing_tokens", "DEF run m( move m) move"),
        ("missing_repeat_count", "DEF run m( REPEAT r( move r) m)"),
        (
            "not_of_not",
            "DEF run m( IF c( not c( not c( frontIsClear c) c) c) i( move i) m)",
        ),
        ("empty_source", ""),
    ];
    for (name, source) in cases {
        insta::assert_snapshot!(name, diagnostics(source, &ParseOptions::default()), source);
    }
    insta::assert_snapshot!(
        "strict_empty_bodies",
        diagnostics(
            "DEF run m(\n  WHILE c( frontIsClear c) w( w)\n  IF c( markersPresent c) i( i)\nm)",
            &ParseOptions::strict()
        )
    );
    let deep = format!(
        "DEF run m( {}move{} m)",
        "WHILE c( frontIsClear c) w( ".repeat(3),
        " w)".repeat(3)
    );
    insta::assert_snapshot!(
        "too_deep",
        diagnostics(
            &deep,
            &ParseOptions {
                max_depth: 3,
                ..ParseOptions::default()
            }
        )
    );
}

#[test]
fn pretty_form_snapshot() {
    let program = lang::parse(
        "DEF run m( WHILE c( frontIsClear c) w( IFELSE c( not c( markersPresent c) c) i( putMarker i) ELSE e( e) move w) REPEAT R=4 r( turnLeft IF c( rightIsClear c) i( i) r) m)",
    )
    .unwrap();
    insta::assert_snapshot!(program.pretty());
    assert_eq!(lang::parse(&program.pretty()).unwrap(), program);
    assert_eq!(lang::Program::default().pretty(), "DEF run m( m)\n");
}
