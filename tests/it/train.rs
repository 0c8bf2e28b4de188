//! Training runs through the `karel` binary: exact resumption, clear errors for damaged
//! checkpoints and datasets, divergence, fine-tuning data, plots and model summaries.

use std::path::Path;
use std::process::{Command, Output};

use safetensors::SafeTensors;
use serde_json::Value;
use tempfile::TempDir;

fn karel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the karel binary runs")
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A temporary directory with small train and validation splits.
fn data() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    ok(&karel(&[
        "gen",
        "--splits",
        "train=24,val=6",
        "--format",
        "standard",
        "-o",
        out,
        "--seed",
        "3",
    ]));
    dir
}

fn path(dir: &TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_string()
}

/// The model and optimizer tensors of a checkpoint, by name.
fn tensors(file: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    out.sort();
    out
}

fn train_args<'a>(
    model: &'a str,
    d: &'a str,
    v: &'a str,
    out: &'a str,
    steps: &'a str,
) -> Vec<&'a str> {
    vec![
        "train",
        model,
        "--data",
        d,
        "--val",
        v,
        "--out",
        out,
        "--steps",
        steps,
        "--batch",
        "4",
        "--validate-every",
        "3",
        "--log-every",
        "1",
        "--checkpoint-every",
        "100",
        "--quiet",
    ]
}

/// Training 2 steps, stopping, and resuming to 4 gives the same model, optimizer state and
/// running statistics as 4 steps in one go (synthesizer with Adam; debugger with TraceEmbed's
/// batch normalisation and fresh mutants per step).
#[test]
fn resumed_runs_equal_uninterrupted_runs() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    for model in ["synthesizer", "debugger"] {
        let whole = path(&dir, &format!("{model}-whole"));
        let parts = path(&dir, &format!("{model}-parts"));
        ok(&karel(&train_args(model, &d, &v, &whole, "4")));
        ok(&karel(&train_args(model, &d, &v, &parts, "2")));
        let mut resume = train_args(model, &d, &v, &parts, "4");
        resume.push("--resume");
        ok(&karel(&resume));
        let a = tensors(&Path::new(&whole).join("checkpoint.safetensors"));
        let b = tensors(&Path::new(&parts).join("checkpoint.safetensors"));
        assert_eq!(a.len(), b.len());
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(ta == tb, "{model}: tensor {na} differs after resuming");
        }
        if model == "debugger" {
            assert!(a.iter().any(|(n, _)| n.ends_with("running_mean")));
        }
        // The metrics logs agree on every training loss.
        let losses = |run: &str| -> Vec<(u64, f64)> {
            std::fs::read_to_string(Path::new(run).join("metrics.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|r| r["split"] == "train")
                .map(|r| (r["step"].as_u64().unwrap(), r["loss"].as_f64().unwrap()))
                .collect()
        };
        assert_eq!(losses(&whole), losses(&parts));
        assert_eq!(losses(&whole).len(), 4);
    }
}

/// A resumed run keeps its own settings: options left out take the run's values, options given
/// with other values are refused by name, and a length already reached is refused.
#[test]
fn resuming_with_other_settings_is_refused() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    let run = path(&dir, "run");
    let mut first = train_args("synthesizer", &d, &v, &run, "2");
    first.extend(["--val-size", "3"]);
    ok(&karel(&first));
    for (flag, value) in [
        ("--val-size", "5"),
        ("--batch", "8"),
        ("--lr", "0.5"),
        ("--seed", "9"),
    ] {
        let mut resume = train_args("synthesizer", &d, &v, &run, "3");
        resume.extend(["--resume", flag, value]);
        let output = karel(&resume);
        assert_eq!(output.status.code(), Some(2), "{flag}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(flag.trim_start_matches("--").replace('-', "_").as_str())
                || stderr(&output).contains(flag),
            "{}",
            stderr(&output)
        );
    }
    let mut other_data = train_args("synthesizer", &v, &v, &run, "3");
    other_data.push("--resume");
    let output = karel(&other_data);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("data"), "{}", stderr(&output));
    let mut done = train_args("synthesizer", &d, &v, &run, "2");
    done.push("--resume");
    let output = karel(&done);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("nothing to train"),
        "{}",
        stderr(&output)
    );
    // Left out, --val-size keeps the run's 3: validation is unchanged after resuming.
    let mut resume = train_args("synthesizer", &d, &v, &run, "3");
    resume.push("--resume");
    ok(&karel(&resume));
    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&run).join("settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["val_size"], 3);
}

#[test]
fn damaged_inputs_are_clear_errors() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    let run = path(&dir, "run");
    ok(&karel(&train_args("synthesizer", &d, &v, &run, "1")));
    // Starting over an existing run is refused.
    let again = karel(&train_args("synthesizer", &d, &v, &run, "1"));
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    // Resuming a debugger run from a synthesizer checkpoint is refused.
    let mut wrong = train_args("debugger", &d, &v, &run, "2");
    wrong.push("--resume");
    let out = karel(&wrong);
    assert!(
        stderr(&out).contains("holds a synthesizer"),
        "{}",
        stderr(&out)
    );
    // A truncated checkpoint.
    let checkpoint = Path::new(&run).join("checkpoint.safetensors");
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();
    let mut resume = train_args("synthesizer", &d, &v, &run, "2");
    resume.push("--resume");
    let out = karel(&resume);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("truncated or corrupted"),
        "{}",
        stderr(&out)
    );
    // A malformed dataset line names its file and line.
    let bad = path(&dir, "bad.jsonl");
    let mut text = std::fs::read_to_string(&d).unwrap();
    text.push_str("{\"guid\": \"x\", \"program_tokens\": [\"DEF\"\n");
    std::fs::write(&bad, text).unwrap();
    let out = karel(&train_args(
        "synthesizer",
        &bad,
        &v,
        &path(&dir, "run2"),
        "1",
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.jsonl:25"), "{}", stderr(&out));
    // A task with too few examples for the models.
    let short = path(&dir, "short.jsonl");
    let first = std::fs::read_to_string(&d).unwrap();
    let mut record: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    record["examples"].as_array_mut().unwrap().truncate(3);
    std::fs::write(&short, format!("{record}\n")).unwrap();
    let out = karel(&train_args(
        "synthesizer",
        &short,
        &v,
        &path(&dir, "run3"),
        "1",
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has 3 examples"), "{}", stderr(&out));
}

/// A learning rate that blows the weights up stops the run with a clear message, and the last
/// checkpoint written before stays loadable.
#[test]
fn divergence_stops_and_keeps_the_last_checkpoint() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    let run = path(&dir, "run");
    let mut args = train_args("synthesizer", &d, &v, &run, "50");
    let every = args
        .iter()
        .position(|a| *a == "--checkpoint-every")
        .unwrap();
    args[every + 1] = "1";
    args.extend(["--optimizer", "sgd", "--lr", "1e30", "--clip", "0"]);
    let out = karel(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("training diverged at step"),
        "{}",
        stderr(&out)
    );
    let checkpoint = Path::new(&run).join("checkpoint.safetensors");
    let bytes = std::fs::read(&checkpoint).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensors().len() > 10);
}

/// Pre-training, a fine-tuning file of wrong programs, fine-tuning from the pre-trained
/// checkpoint, the mutation benchmark, and the plot of both runs.
#[test]
fn debugger_pipeline() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    let pre = path(&dir, "pre");
    let mut args = train_args("debugger", &d, &v, &pre, "2");
    args.push("--no-trace-embed");
    ok(&karel(&args));
    // Fine-tuning records: mutants of the validation programs stand in for wrong programs.
    let bench = path(&dir, "bench.jsonl");
    ok(&karel(&[
        "data",
        "mutation-bench",
        &v,
        "-o",
        &bench,
        "--max-k",
        "1",
    ]));
    let records: String = std::fs::read_to_string(&bench)
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: Value = serde_json::from_str(l).unwrap();
            r["source_tokens"] = r["mutant_tokens"].clone();
            format!("{r}\n")
        })
        .collect();
    let wrong = path(&dir, "wrong.jsonl");
    std::fs::write(&wrong, records).unwrap();
    let fine = path(&dir, "fine");
    let init = format!("{pre}/checkpoint.safetensors");
    let mut args = train_args("debugger", &wrong, &wrong, &fine, "2");
    args.extend(["--stage", "finetune", "--init", &init]);
    ok(&karel(&args));
    let metadata = std::fs::read_to_string(Path::new(&fine).join("settings.json")).unwrap();
    assert!(metadata.contains("\"finetune\""));
    // A task file is not fine-tuning data.
    let fine2 = path(&dir, "fine2");
    let mut args = train_args("debugger", &d, &v, &fine2, "1");
    args.extend(["--stage", "finetune"]);
    let out = karel(&args);
    assert!(stderr(&out).contains("source_tokens"), "{}", stderr(&out));
    // The mutation benchmark table.
    let report = path(&dir, "bench.json");
    let table = path(&dir, "bench.md");
    let out = karel(&[
        "eval",
        "--data",
        &v,
        "--debugger",
        &format!("{fine}/checkpoint.safetensors"),
        "--mutation-bench",
        "--max-k",
        "2",
        "--max-ops",
        "7",
        "--json",
        &report,
        "--markdown",
        &table,
    ]);
    ok(&out);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["mutation_bench"].as_array().unwrap().len(), 2);
    assert_eq!(report["mutation_bench"][0]["items"], 6);
    assert_eq!(report["max_ops"], 7);
    assert_eq!(report["debugger"], format!("{fine}/checkpoint.safetensors"));
    assert_eq!(report["trace_steps"], 250);
    let markdown = std::fs::read_to_string(&table).unwrap();
    assert_eq!(markdown, String::from_utf8(out.stdout.clone()).unwrap());
    assert!(
        markdown.contains("| 1 | 6 |") && markdown.contains("| 2 |"),
        "{markdown}"
    );
    // Curves of both runs.
    let svg = path(&dir, "curves.svg");
    ok(&karel(&["plot", &pre, &fine, "-o", &svg]));
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg"));
    assert!(picture.contains("pre train") && picture.contains("fine val"));
}

#[test]
fn model_summary_prints_paper_counts() {
    let out = karel(&["model", "summary", "--preset", "paper", "--json"]);
    ok(&out);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["synthesizer"]["total"], 12_446_592);
    assert_eq!(summary["debugger"]["total"], 21_990_016);
    assert_eq!(summary["debugger_no_trace_embed"]["total"], 15_908_736);
}

/// The synthesizer's wrong programs become fine-tuning records that parse and fail a given
/// example.
#[test]
fn synthesize_writes_wrong_programs() {
    let dir = data();
    let (d, v) = (path(&dir, "train.jsonl"), path(&dir, "val.jsonl"));
    let run = path(&dir, "run");
    ok(&karel(&train_args("synthesizer", &d, &v, &run, "1")));
    let wrong = path(&dir, "wrong.jsonl");
    let out = karel(&[
        "synthesize",
        "--data",
        &d,
        "--synthesizer",
        &format!("{run}/checkpoint.safetensors"),
        "--wrong-out",
        &wrong,
    ]);
    ok(&out);
    let message = stderr(&out);
    assert!(message.contains("24 tasks"), "{message}");
    let lines = std::fs::read_to_string(&wrong).unwrap();
    assert!(
        message.contains(&format!("wrote {} records", lines.lines().count())),
        "{message}"
    );
    for line in lines.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let tokens: Vec<&str> = record["source_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let program = tokens.join(" ");
        assert!(karel::lang::parse(&program).is_ok(), "{program}");
    }
}
