//! Arbitrary programs on arbitrary worlds under a step budget: the VM never panics and agrees
//! with the AST-walking interpreter on the outcome, the final world and the trace.
#![no_main]

use karel::fuzzing::RunCase;
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|case: RunCase| -> Corpus {
    if karel::fuzzing::check_run(&case) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
