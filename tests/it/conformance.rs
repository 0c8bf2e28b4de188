//! Conformance with the reference Python parser and interpreter (`karel-for-synthesis` 1.4.0):
//! every record of the corpora in `tests/data/` must be reproduced exactly.

use karel::lang::{self, ParseOptions};
use karel::vm::{self, EventValue, Outcome, Stop, DEFAULT_MAX_STEPS};
use karel::world::World;
use serde_json::{json, Value};

use crate::common::read_jsonl_gz;

/// Events in the corpus' form: `[type, first, last, cond_value, success]`.
fn events_value(events: &[vm::Event]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| {
                let value = match e.value {
                    None => Value::Null,
                    Some(EventValue::Cond(b)) => json!(b),
                    Some(EventValue::Remaining(n)) => json!(n),
                };
                json!([e.kind.name(), e.span.first, e.span.last, value, e.success])
            })
            .collect(),
    )
}

#[test]
fn every_reference_run_is_reproduced() {
    let records = read_jsonl_gz("reference-runs.jsonl.gz");
    assert_eq!(records.len(), 5000);
    let mut failures = Vec::new();
    let (mut with_events, mut ok_runs) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let program = lang::parse(record["program"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        let indices: Vec<u64> = serde_json::from_value(record["input"].clone()).unwrap();
        let input = World::from_indices(indices).unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(
            input
                .to_indices()
                .iter()
                .map(|&x| x as u64)
                .collect::<Vec<_>>(),
            serde_json::from_value::<Vec<u64>>(record["input"].clone()).unwrap(),
            "record {i}: the input world does not round-trip"
        );
        let chunk = vm::compile(&program);

        // Strict run: status, error kind and output world.
        let (execution, output) = vm::run(&chunk, &input, DEFAULT_MAX_STEPS);
        let actual = match execution.outcome() {
            Outcome::Ok => json!({"status": "ok", "output": output.to_indices()}),
            Outcome::Crash(_) => json!({"status": "error", "error": "crash"}),
            Outcome::Timeout => json!({"status": "error", "error": "timeout"}),
        };
        let mut expected = json!({"status": record["status"]});
        for key in ["error", "output"] {
            if let Some(v) = record.get(key) {
                expected[key] = v.clone();
            }
        }
        if actual != expected {
            failures.push(format!(
                "record {i} strict run: expected {expected}, got {actual}"
            ));
            continue;
        }
        ok_runs += (record["status"] == "ok") as usize;

        // Traced run: the corpus holds the events unless the traced run timed out.
        let traced = vm::run_with_trace(&chunk, &input, DEFAULT_MAX_STEPS);
        assert_eq!(
            traced.execution.outcome(),
            execution.outcome(),
            "record {i}"
        );
        match record.get("events") {
            Some(events) => {
                with_events += 1;
                if traced.execution.stop == Stop::TimedOut {
                    failures.push(format!("record {i}: the traced run timed out"));
                } else if events_value(traced.trace.events()) != *events {
                    failures.push(format!(
                        "record {i} events: expected {events}, got {}",
                        events_value(traced.trace.events())
                    ));
                }
            }
            None => {
                if traced.execution.stop != Stop::TimedOut {
                    failures.push(format!(
                        "record {i}: the corpus has no events (its traced run timed out), ours stopped with {:?}",
                        traced.execution.stop
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} records differ:\n{}",
        failures.len(),
        records.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    assert_eq!((with_events, ok_runs), (4131, 2204));
}

#[test]
fn every_reference_parse_verdict_is_reproduced() {
    let records = read_jsonl_gz("reference-parses.jsonl.gz");
    assert_eq!(records.len(), 3000);
    let mut failures = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let tokens = record["tokens"].as_str().unwrap();
        let valid = record["valid"].as_bool().unwrap();
        match (lang::parse_with(tokens, &ParseOptions::default()), valid) {
            (Ok(parsed), true) => {
                // The canonical printing is the input token list itself.
                let printed = parsed.program.to_string();
                let normalised = tokens.split_whitespace().collect::<Vec<_>>().join(" ");
                if printed != normalised {
                    failures.push(format!("record {i}: printed as {printed}"));
                }
            }
            (Err(_), false) => {}
            (Ok(_), false) => failures.push(format!(
                "record {i}: accepted, the reference rejects: {tokens}"
            )),
            (Err(e), true) => failures.push(format!(
                "record {i}: rejected ({e}), the reference accepts: {tokens}"
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} records differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_reference_edit_alignment_is_reproduced() {
    use karel::data::edits::{self, LevOp};
    use karel::lang::Token;

    let records = read_jsonl_gz("reference-editops.jsonl.gz");
    assert_eq!(records.len(), 3000);
    let tokens = |text: &str| -> Vec<Token> {
        text.split_whitespace()
            .map(|w| Token::from_text(w).unwrap_or_else(|| panic!("{w}")))
            .collect()
    };
    let mut failures = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let (source, target) = (
            tokens(record["source"].as_str().unwrap()),
            tokens(record["target"].as_str().unwrap()),
        );
        let expected: Vec<(LevOp, usize, usize)> = record["editops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    LevOp::from_name(e[0].as_str().unwrap()).unwrap(),
                    e[1].as_u64().unwrap() as usize,
                    e[2].as_u64().unwrap() as usize,
                )
            })
            .collect();
        let actual: Vec<(LevOp, usize, usize)> = edits::editops(&source, &target)
            .iter()
            .map(|e| (e.op, e.src, e.dst))
            .collect();
        if actual != expected {
            failures.push(format!("record {i}: expected {expected:?}, got {actual:?}"));
        }
        // The op stream rebuilds the target.
        let ops = edits::op_stream(&source, &target).into_iter().map(|p| p.op);
        assert_eq!(edits::apply(&source, ops), target, "record {i}");
    }
    assert!(
        failures.is_empty(),
        "{} records differ:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
}
