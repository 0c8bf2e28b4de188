//! Arbitrary ASTs printed in both forms and parsed back must come back unchanged.
#![no_main]

use karel::lang::Program;
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|program: Program| -> Corpus {
    if karel::fuzzing::check_round_trip(&program) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
