//! The `karel` binary, end to end.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::read_jsonl_gz;

fn karel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the karel binary runs")
}

fn karel_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the karel binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn every_command_has_help() {
    for command in [
        "check", "fmt", "disasm", "run", "render", "exec", "gen", "data", "mutate", "edits",
    ] {
        let output = karel(&[command, "--help"]);
        assert!(output.status.success(), "{command}");
        assert!(stdout(&output).contains("Usage: karel"), "{command}");
    }
    for command in [
        "convert",
        "stats",
        "show",
        "mutation-bench",
        "repair-examples",
    ] {
        let output = karel(&["data", command, "--help"]);
        assert!(output.status.success(), "data {command}");
    }
    assert!(karel(&["--help"]).status.success());
    assert_eq!(karel(&["no-such-command"]).status.code(), Some(2));
}

/// The commands with a long help show it with `--help` (before, the variants' one-line doc
/// comments replaced it), and keep their one-line summary for `-h`.
#[test]
fn long_help_is_shown() {
    for (command, long) in [
        ("exec", "Response: {\"status\""),
        (
            "gen",
            "Programs that crash or time out on their inputs are redrawn",
        ),
        ("edits", "With --apply, TGT is an op stream"),
        ("synthesize", "the answer is then simplified (--simplify)"),
        ("eval", "--shard i/n evaluates every n-th task"),
    ] {
        // Words, whatever the wrapping of the help text.
        let words = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let full = words(stdout(&karel(&[command, "--help"])));
        assert!(full.contains(long), "{command} --help: {full}");
        let short = words(stdout(&karel(&[command, "-h"])));
        assert!(!short.contains(long), "{command} -h: {short}");
    }
}

#[test]
fn check_reports_ok_or_diagnostics() {
    let output = karel(&["check", "examples/harvest.karel"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output),
        "examples/harvest.karel: ok (37 tokens, 9 statements, nesting depth 3)\n"
    );
    let output = karel_with_stdin(&["check", "-"], "DEF run m( move i) m)");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("unexpected `i)`") && err.contains("<stdin>:1:17"),
        "{err}"
    );
    let output = karel_with_stdin(&["check", "--strict", "-"], "DEF run m( m)");
    assert_eq!(output.status.code(), Some(1));
    assert!(karel(&["check", "no/such/file"]).status.code() == Some(1));
}

#[test]
fn fmt_prints_checks_and_rewrites() {
    let output = karel(&["fmt", "--tokens", "examples/harvest.karel"]);
    assert_eq!(
        stdout(&output),
        "DEF run m( WHILE c( frontIsClear c) w( WHILE c( markersPresent c) w( pickMarker w) move w) REPEAT R=2 r( turnLeft r) IFELSE c( not c( markersPresent c) c) i( putMarker i) ELSE e( pickMarker e) m)\n"
    );
    assert!(karel(&["fmt", "--check", "examples/harvest.karel"])
        .status
        .success());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.karel");
    std::fs::write(&path, "DEF run m( REPEAT R=2 r( move ) m)").unwrap();
    // A file that does not parse is left alone.
    assert_eq!(
        karel(&["fmt", "--write", path.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    std::fs::write(&path, "DEF   run m( REPEAT R=2 r( move r) m)").unwrap();
    assert_eq!(
        karel(&["fmt", "--check", path.to_str().unwrap()])
            .status
            .code(),
        Some(1)
    );
    assert!(karel(&["fmt", "--write", path.to_str().unwrap()])
        .status
        .success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "DEF run m(\n  REPEAT R=2 r(\n    move\n  r)\nm)\n"
    );
    assert!(karel(&["fmt", "--check", path.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn run_prints_outcome_trace_and_world() {
    let output = karel(&[
        "run",
        "examples/harvest.karel",
        "examples/harvest.world",
        "--trace",
    ]);
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));

    let output = karel(&["run", "examples/crash.karel", "examples/harvest.world"]);
    assert_eq!(output.status.code(), Some(3));
    let out = stdout(&output);
    assert!(
        out.contains("outcome: crash: `pickMarker` failed at token 8"),
        "{out}"
    );
    assert!(out.contains("examples/crash.karel:1:41"), "{out}");

    let output = karel(&[
        "run",
        "examples/harvest.karel",
        "examples/harvest.world",
        "--max-steps",
        "5",
    ]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stdout(&output).contains("outcome: timeout"));

    let output = karel(&["run", "examples/harvest.karel", "examples/harvest.karel"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is not a valid world"));
}

#[test]
fn render_converts_between_formats() {
    let dir = tempfile::tempdir().unwrap();
    let ascii = stdout(&karel(&["render", "examples/harvest.world"]));
    assert_eq!(
        ascii,
        std::fs::read_to_string("examples/harvest.world").unwrap()
    );
    for format in ["indices", "tensor", "json"] {
        let encoded = stdout(&karel(&[
            "render",
            "examples/harvest.world",
            "--to",
            format,
        ]));
        let path = dir.path().join(format);
        std::fs::write(&path, &encoded).unwrap();
        let back = stdout(&karel(&["render", path.to_str().unwrap()]));
        assert_eq!(back, ascii, "{format}: {encoded}");
    }
    let svg = dir.path().join("world.svg");
    assert!(karel(&[
        "render",
        "examples/harvest.world",
        "--svg",
        svg.to_str().unwrap()
    ])
    .status
    .success());
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert!(Path::new(&svg).exists());
}

#[test]
fn exec_answers_each_line_in_order() {
    let input = [
        json!({"program": "DEF run m( move m)", "input": "+----+\n|.>. |\n+----+\n"}).to_string(),
        "not json".to_string(),
        String::new(),
        json!({"program": "DEF run m( movex m)", "input": "+--+\n|.>|\n+--+"}).to_string(),
        json!({"program": "DEF run m( move m)", "input": [1]}).to_string(),
        json!({"program": "DEF run m( move m)", "input": "+--+\n|.>|\n+--+", "trace": true}).to_string(),
        json!({"program": "DEF run m( WHILE c( not c( frontIsClear c) c) w( w) m)", "input": "+--+\n|.>|\n+--+", "max_steps": 10}).to_string(),
        json!({"program": "DEF run m( m)", "input": "+--+\n|.>|\n+--+", "extra": 1}).to_string(),
    ]
    .join("\n");
    let output = karel_with_stdin(&["exec"], &input);
    assert!(output.status.success());
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "ok",
            "invalid_input",
            "invalid_input",
            "syntax_error",
            "invalid_input",
            "error",
            "error",
            "invalid_input"
        ]
    );
    assert_eq!(lines[0]["output"], "+----+\n|. .>|\n+----+\n");
    assert_eq!(lines[5]["error"], "crash");
    assert_eq!(lines[5]["events"], json!([["move", 3, 3, null, false]]));
    assert_eq!(lines[6]["error"], "timeout");
    assert!(lines[3]["message"]
        .as_str()
        .unwrap()
        .contains("unknown token `movex`"));
}

#[test]
fn exec_reproduces_the_reference_corpus() {
    let records = read_jsonl_gz("reference-runs.jsonl.gz");
    let requests: String = records
        .iter()
        .map(|r| {
            json!({"program": r["program"], "input": r["input"], "trace": true}).to_string() + "\n"
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(&path, requests).unwrap();
    let output = karel(&["exec", path.to_str().unwrap(), "--threads", "2"]);
    assert!(output.status.success());
    let responses: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(responses.len(), records.len());
    for (i, (record, response)) in records.iter().zip(&responses).enumerate() {
        for key in ["status", "error", "output"] {
            assert_eq!(record.get(key), response.get(key), "record {i}: {key}");
        }
        if let Some(events) = record.get("events") {
            assert_eq!(Some(events), response.get("events"), "record {i}: events");
        }
    }
}
