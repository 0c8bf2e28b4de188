//! Replays the inputs kept in `fuzz/regressions/<target>/` through the fuzz targets' oracles
//! (`karel::fuzzing`). Inputs that made a target fail are added there, named after what they
//! found, and stay as regression tests; the folders also hold a sample of each target's corpus.

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use karel::fuzzing::{self, RunCase};
use karel::lang::Program;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no inputs", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn lex_inputs() {
    for (_, bytes) in inputs("lex") {
        if let Ok(source) = std::str::from_utf8(&bytes) {
            fuzzing::check_source(source);
        }
    }
}

#[test]
fn parse_roundtrip_inputs() {
    let mut in_scope = 0;
    for (path, bytes) in inputs("parse_roundtrip") {
        let program = Program::arbitrary_take_rest(Unstructured::new(&bytes))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        in_scope += fuzzing::check_round_trip(&program) as usize;
    }
    assert!(in_scope > 0);
}

#[test]
fn compile_run_inputs() {
    let mut in_scope = 0;
    for (path, bytes) in inputs("compile_run") {
        let case = RunCase::arbitrary_take_rest(Unstructured::new(&bytes))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        in_scope += fuzzing::check_run(&case) as usize;
    }
    assert!(in_scope > 0);
}

#[test]
fn exec_request_inputs() {
    for (_, bytes) in inputs("exec_request") {
        fuzzing::check_exec_line(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn gen_config_inputs() {
    let mut in_scope = 0;
    for (path, bytes) in inputs("gen_config") {
        let text =
            std::str::from_utf8(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        in_scope += fuzzing::check_generator_config(text) as usize;
    }
    assert!(in_scope > 0);
}
