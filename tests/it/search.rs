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
