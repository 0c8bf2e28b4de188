//! Arbitrary generator settings files: reading them never panics, and settings that pass
//! validation make valid tasks in bounded time.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(|text: &str| -> Corpus {
    if karel::fuzzing::check_generator_config(text) {
        Corpus::Keep
    } else {
        Corpus::Reject
    }
});
