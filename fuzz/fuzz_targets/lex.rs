//! Arbitrary bytes through the lexer and the parser: no panic; every token's bytes spell it;
//! every accepted program prints back to its own token list.
#![no_main]

use karel::lang;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    karel::fuzzing::check_source(source);
    let _ = lang::lexer::lex(source);
});
