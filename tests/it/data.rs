//! The data layer: file formats and their failures, the generator, the mutator and edit ops.

use std::path::Path;
use std::process::Command;

use karel::data::binary::BinaryDataset;
use karel::data::dataset::{self, Format, TaskWriter};
use karel::data::edits::{self, EditOp};
use karel::data::generate::{candidate, GenConfig};
use karel::data::mutate::{mutate_n, mutate_once, MutatorConfig};
use karel::data::pickle::PickleDataset;
use karel::data::repair::{self, RepairConfig};
use karel::data::{DataError, Task};
use karel::lang::{self, Token};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::data_path;
use crate::strategies;

fn fixture_tasks() -> Vec<Task> {
    dataset::read_all(&data_path("pickle/tasks.jsonl"), None, false)
        .unwrap()
        .0
}

fn karel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn sed_pickles_read_as_the_same_tasks() {
    let expected = fixture_tasks();
    assert_eq!(expected.len(), 12);
    for file in ["pickle/py2.pkl", "pickle/py3.pkl"] {
        let dataset = PickleDataset::open(&data_path(file)).unwrap();
        assert_eq!(dataset.len(), expected.len(), "{file}");
        for (i, task) in expected.iter().enumerate() {
            assert_eq!(&dataset.get(i).unwrap(), task, "{file}[{i}]");
        }
        assert!(matches!(dataset.get(12), Err(DataError::Record { .. })));
    }
    for task in &expected {
        task.replay().unwrap();
    }
}

#[test]
fn broken_pickles_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data_path("pickle/py2.pkl")).unwrap();
    let index = std::fs::read(data_path("pickle/py2.pkl.index")).unwrap();
    let truncated = dir.path().join("cut.pkl");
    std::fs::write(&truncated, &bytes[..bytes.len() - 50]).unwrap();
    std::fs::write(dir.path().join("cut.pkl.index"), &index).unwrap();
    let dataset = PickleDataset::open(&truncated).unwrap();
    let error = dataset.get(11).unwrap_err().to_string();
    assert!(
        error.contains("cut.pkl[11]") && error.contains("truncated"),
        "{error}"
    );
    std::fs::write(dir.path().join("cut.pkl.index"), &index[..20]).unwrap();
    assert!(matches!(
        PickleDataset::open(&truncated),
        Err(DataError::Format { .. })
    ));
}

#[test]
fn binary_format_round_trips_and_detects_damage() {
    let tasks = fixture_tasks();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.kds");
    let mut writer = TaskWriter::create(&path, Format::Binary).unwrap();
    for task in &tasks {
        writer.write(task).unwrap();
    }
    assert!(!path.exists(), "the file gets its name only when complete");
    writer.finish().unwrap();
    let dataset = BinaryDataset::open(&path).unwrap();
    assert_eq!(dataset.load_all().unwrap(), tasks);
    assert_eq!(dataset.get(5).unwrap(), tasks[5]);

    let bytes = std::fs::read(&path).unwrap();
    let damaged = dir.path().join("damaged.kds");
    let mut flipped = bytes.clone();
    flipped[100] ^= 0x40;
    std::fs::write(&damaged, &flipped).unwrap();
    let error = BinaryDataset::open(&damaged).err().unwrap().to_string();
    assert!(error.contains("checksum"), "{error}");
    std::fs::write(&damaged, &bytes[..bytes.len() - 30]).unwrap();
    let error = BinaryDataset::open(&damaged).err().unwrap().to_string();
    assert!(error.contains("truncated"), "{error}");
    std::fs::write(&damaged, b"not a dataset at all").unwrap();
    assert!(BinaryDataset::open(&damaged)
        .err()
        .unwrap()
        .to_string()
        .contains("magic"));
    // An unfinished file still yields its complete records.
    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let (partial, _, _) = karel::data::binary::scan_records(&damaged).unwrap();
    assert!(!partial.is_empty() && partial.len() < tasks.len());
    assert_eq!(partial[..], tasks[..partial.len()]);
}

#[test]
fn malformed_standard_records_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(data_path("pickle/tasks.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    // The first example's output as a grid object says other markers than its tensor string.
    let other_output_grid = {
        let mut record: serde_json::Value = serde_json::from_str(first).unwrap();
        let grid = &mut record["examples"][0]["outgrid_json"];
        assert_ne!(grid["markers"], "");
        grid["markers"] = serde_json::json!("");
        record.to_string()
    };
    let cases = [
        ("not json", "expected"),
        (r#"{"guid": "x", "examples": []}"#, "program_tokens"),
        (
            r#"{"program_tokens": "DEF run", "examples": []}"#,
            "invalid type",
        ),
        (
            r#"{"program_tokens": ["DEF", "run", "m(", "movex", "m)"], "examples": []}"#,
            "unknown token",
        ),
        (&first.replacen(":1.0", ":0.5", 1), "only 1.0"),
        (
            &first.replacen(
                "\"inpgrid_tensor\":\"",
                "\"inpgrid_tensor\":\"99999:1.0 ",
                1,
            ),
            "out of range",
        ),
        // Fields that say a thing twice must agree.
        (
            &first.replacen(
                "\"program_json\":{\"run\":[",
                "\"program_json\":{\"run\":[{\"type\":\"move\"},",
                1,
            ),
            "different programs",
        ),
        (&other_output_grid, "different worlds"),
        (
            &first.replacen("\"markers\":\"", "\"markers\":\"8:2:1 ", 1),
            "listed twice",
        ),
    ];
    for (line, message) in cases {
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, format!("{first}\n\n{line}\n{first}\n")).unwrap();
        let results: Vec<_> = dataset::open(&path, None).unwrap().collect();
        assert_eq!(results.len(), 3, "blank lines are not records");
        let error = results[1].as_ref().unwrap_err().to_string();
        assert!(
            error.contains("bad.jsonl:3") && error.contains(message),
            "{error}"
        );
        assert!(dataset::read_all(&path, None, false).is_err());
        let (tasks, skipped) = dataset::read_all(&path, None, true).unwrap();
        assert_eq!((tasks.len(), skipped), (2, 1));
    }
}

#[test]
fn generation_is_reproducible_across_threads_splits_and_interruptions() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (threads, name) in [("1", "a.kds"), ("2", "b.kds")] {
        let o = karel(&[
            "gen",
            "--count",
            "300",
            "--seed",
            "5",
            "-o",
            &out(name),
            "--threads",
            threads,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(
        std::fs::read(out("a.kds")).unwrap(),
        std::fs::read(out("b.kds")).unwrap()
    );

    // Interrupted after 120 tasks, then resumed: the same file as in one go.
    let o = karel(&[
        "gen",
        "--count",
        "300",
        "--seed",
        "5",
        "-o",
        &out("c.kds"),
        "--stop-after",
        "120",
    ]);
    assert!(o.status.success());
    assert!(!Path::new(&out("c.kds")).exists());
    // Starting again without --resume would discard the interrupted run: refused.
    let again = [
        "gen",
        "--count",
        "300",
        "--seed",
        "5",
        "-o",
        &out("c.kds"),
        "--stop-after",
        "120",
    ];
    let o = karel(&again);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    assert!(Path::new(&format!("{}.partial", out("c.kds"))).exists());
    let o = karel(&[
        "gen",
        "--count",
        "300",
        "--seed",
        "6",
        "-o",
        &out("c.kds"),
        "--resume",
    ]);
    assert!(!o.status.success(), "resuming with another seed is refused");
    let o = karel(&[
        "gen",
        "--count",
        "300",
        "--seed",
        "5",
        "-o",
        &out("c.kds"),
        "--resume",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out("a.kds")).unwrap(),
        std::fs::read(out("c.kds")).unwrap()
    );

    // Splits never share a program; shards partition the programs.
    let o = karel(&[
        "gen",
        "--splits",
        "train=200,val=50,test=50",
        "--seed",
        "5",
        "-o",
        &out("splits"),
    ]);
    assert!(o.status.success());
    let split = |name: &str| {
        BinaryDataset::open(&dir.path().join("splits").join(name))
            .unwrap()
            .load_all()
            .unwrap()
    };
    let (train, val, test) = (split("train.kds"), split("val.kds"), split("test.kds"));
    assert_eq!((train.len(), val.len(), test.len()), (200, 50, 50));
    let mut programs: Vec<_> = train
        .iter()
        .chain(&val)
        .chain(&test)
        .map(|t| t.program.clone())
        .collect();
    programs.sort();
    programs.dedup();
    assert_eq!(programs.len(), 300);
    // The splits hold the tasks of a single run of the same size, dealt out among them.
    let all = BinaryDataset::open(Path::new(&out("a.kds")))
        .unwrap()
        .load_all()
        .unwrap();
    let mut everything: Vec<_> = all.iter().map(|t| t.program.clone()).collect();
    everything.sort();
    assert_eq!(programs, everything);
    let o = karel(&[
        "gen",
        "--count",
        "100",
        "--seed",
        "5",
        "--shard",
        "0/2",
        "-o",
        &out("s0.jsonl"),
    ]);
    assert!(o.status.success());
    let o = karel(&[
        "gen",
        "--count",
        "100",
        "--seed",
        "5",
        "--shard",
        "1/2",
        "-o",
        &out("s1.jsonl"),
    ]);
    assert!(o.status.success());
    let s0 = dataset::read_all(Path::new(&out("s0.jsonl")), None, false)
        .unwrap()
        .0;
    let s1 = dataset::read_all(Path::new(&out("s1.jsonl")), None, false)
        .unwrap()
        .0;
    assert!(s0.iter().all(|a| s1.iter().all(|b| a.program != b.program)));
    for task in s0.iter().chain(&s1).chain(&all) {
        task.replay().unwrap();
        assert!(task.examples.iter().any(|e| e.input != e.output));
    }
}

#[test]
fn mutation_bench_and_repair_examples() {
    let tasks = fixture_tasks();
    for task in &tasks {
        for k in 1..=5 {
            let item = repair::bench_item(task, k, &MutatorConfig::default()).unwrap();
            assert_eq!(item.operators.len(), k);
            assert_ne!(item.mutant, task.program);
            // Deterministic per guid.
            assert_eq!(
                repair::bench_item(task, k, &MutatorConfig::default())
                    .unwrap()
                    .mutant,
                item.mutant
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let example =
            repair::repair_example(task, None, &RepairConfig::default(), &mut rng).unwrap();
        assert!((1..=3).contains(&example.operators.len()));
        assert_eq!(example.traces.len(), 5);
        let ops: Vec<EditOp> = example.teacher.targets.clone();
        assert_eq!(
            edits::apply(&example.mutant.tokens(), ops),
            task.program.tokens()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.jsonl");
    let o = karel(&[
        "data",
        "mutation-bench",
        "tests/data/pickle/tasks.jsonl",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 12 * 5);
    // The benchmark file is a standard dataset with extra fields.
    assert_eq!(dataset::read_all(&out, None, false).unwrap().0.len(), 60);
}

#[test]
fn edits_jsonl_reproduces_reference_alignments() {
    let records = crate::common::read_jsonl_gz("reference-editops.jsonl.gz");
    let input: String = records[..200]
        .iter()
        .map(|r| {
            serde_json::json!({"source": r["source"], "target": r["target"]}).to_string() + "\n"
        })
        .collect::<String>()
        + "{\"source\": \"movex\", \"target\": \"\"}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(["edits", "--jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 201);
    for (record, line) in records[..200].iter().zip(&lines) {
        assert_eq!(record["editops"], line["editops"]);
        assert!(line["ops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|op| EditOp::parse(op.as_str().unwrap()).is_some()));
    }
    assert!(lines[200]["error"]
        .as_str()
        .unwrap()
        .contains("unknown token"));
}

#[test]
fn edits_command_matches_the_library() {
    let o = karel(&["edits", "DEF run m( move m)", "DEF run m( turnLeft move m)"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("distance: 1") && out.contains("INSERT[turnLeft]"),
        "{out}"
    );
    let o = karel(&[
        "edits",
        "--apply",
        "DEF run m( move m)",
        "KEEP KEEP KEEP INSERT[turnLeft] KEEP KEEP",
    ]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        "DEF run m( turnLeft move m)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutants_parse_differ_and_never_repeat(program in strategies::program(), seed in any::<u64>(), n in 1usize..=5) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for compat in [false, true] {
            let config = MutatorConfig { compat_original: compat };
            let (_, once) = mutate_once(&program, &mut rng, &config).unwrap();
            prop_assert_eq!(lang::parse(&once.to_string()).ok(), Some(once.clone()));
            if !compat {
                prop_assert_ne!(&once, &program);
            }
            let chain = mutate_n(&program, n, &mut rng, &config).unwrap();
            prop_assert_eq!(chain.len(), n);
            let mut seen = vec![program.clone()];
            for (_, mutant) in chain {
                prop_assert_eq!(lang::parse(&mutant.to_string()).ok(), Some(mutant.clone()));
                if !(compat && n == 1) {
                    prop_assert!(!seen.contains(&mutant));
                }
                seen.push(mutant);
            }
        }
    }

    #[test]
    fn op_streams_rebuild_the_target(
        a in prop::collection::vec(0u8..43, 0..40),
        b in prop::collection::vec(0u8..43, 0..40),
    ) {
        let source: Vec<Token> = a.iter().map(|&i| Token::from_id(i).unwrap()).collect();
        let target: Vec<Token> = b.iter().map(|&i| Token::from_id(i).unwrap()).collect();
        let stream = edits::op_stream(&source, &target);
        let ops: Vec<EditOp> = stream.iter().map(|s| s.op).collect();
        prop_assert_eq!(edits::apply(&source, ops.iter().copied()), target.clone());
        let changes = ops.iter().filter(|op| **op != EditOp::Keep).count();
        prop_assert_eq!(changes, edits::distance(&source, &target));
        // Positions never go backwards, and every source position is consumed once.
        prop_assert!(stream.windows(2).all(|w| w[0].position <= w[1].position));
        prop_assert_eq!(ops.iter().filter(|op| op.advances_pointer()).count(), source.len());
        for step in &stream {
            prop_assert!(edits::allowed(step.op, step.position, source.len()));
        }
    }

    #[test]
    fn generated_tasks_replay(seed in any::<u64>(), index in any::<u64>()) {
        if let Some(task) = candidate(&GenConfig::new(), seed, index) {
            prop_assert!(task.replay().is_ok());
            let mut line = Vec::new();
            karel::data::jsonl::write_tasks([&task], &mut line).unwrap();
            let text = String::from_utf8(line).unwrap();
            prop_assert_eq!(karel::data::jsonl::parse_task(text.trim(), &lang::ParseOptions::strict()).unwrap(), task.clone());
            let mut bytes = Vec::new();
            karel::data::binary::encode_task(&task, &mut bytes);
            prop_assert_eq!(karel::data::binary::decode_task(&bytes).unwrap(), task);
        }
    }
}
