//! Arbitrary `karel exec` request lines: every line gets one short JSON answer with a known
//! status, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    karel::fuzzing::check_exec_line(line);
});
