//! The `karel` binary against hostile input, table-driven: every command that reads a file gets
//! every class of bad file (empty, garbage, not UTF-8, a byte-order mark, the wrong JSON, cut
//! JSON, oversized, missing, a folder); every option that sizes work gets values out of range;
//! conflicting options and outputs into missing folders are refused before any work. Each case
//! must end within its time limit with exit status 1 or 2 and a message naming the input, never a
//! panic, and no case may leave a half-written file behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one case may run (the debug binary, on a loaded machine).
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// What a case must end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Exit status 1 (bad input) or 2 (usage error).
    Refused,
    /// Exit status 2: a usage error.
    Usage,
    /// Exit status 0 (hostile but acceptable input, such as a byte-order mark).
    Accepted,
}

struct Case {
    name: String,
    args: Vec<String>,
    stdin: Vec<u8>,
    expect: Expect,
    /// Text stderr must contain (the input's name, or what is wrong with it).
    mentions: Vec<String>,
}

impl Case {
    fn new(name: impl Into<String>, args: &[&str], expect: Expect) -> Case {
        Case {
            name: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            stdin: Vec::new(),
            expect,
            mentions: Vec::new(),
        }
    }

    fn mentioning(mut self, text: &str) -> Case {
        self.mentions.push(text.to_string());
        self
    }

    fn stdin(mut self, bytes: &[u8]) -> Case {
        self.stdin = bytes.to_vec();
        self
    }
}

/// Runs `case` in `dir`; returns a description of what went wrong, if anything.
fn run_case(dir: &Path, case: &Case) -> Option<String> {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_karel"))
        .args(&case.args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the karel binary runs");
    let mut stdin = child.stdin.take().expect("piped");
    let input = case.stdin.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    // Read the pipes on threads so that a large output cannot block the child.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut bytes);
        bytes
    });
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if started.elapsed() > TIME_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Some(format!("still running after {TIME_LIMIT:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let _ = writer.join();
    let _ = out_reader.join();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    if stderr.contains("panicked") || stderr.contains("stack backtrace") {
        return Some(format!("panicked: {stderr}"));
    }
    let code = status.code();
    let ok = match case.expect {
        Expect::Refused => matches!(code, Some(1 | 2)),
        Expect::Usage => code == Some(2),
        Expect::Accepted => code == Some(0),
    };
    if !ok {
        return Some(format!(
            "exit status {code:?}, expected {:?}; stderr: {}",
            case.expect,
            excerpt(&stderr)
        ));
    }
    for text in &case.mentions {
        if !stderr.contains(text.as_str()) {
            return Some(format!(
                "stderr does not mention `{text}`: {}",
                excerpt(&stderr)
            ));
        }
    }
    None
}

fn excerpt(text: &str) -> String {
    text.chars().take(600).collect()
}

/// A bad input file: its name and its bytes (`None`: the path does not exist; a folder for
/// `Some` of an empty name is made by the caller).
struct BadFile {
    class: &'static str,
    path: &'static str,
    /// What the message must say besides the file's name.
    says: Option<&'static str>,
}

const BAD_FILES: [BadFile; 10] = [
    BadFile {
        class: "empty",
        path: "empty.txt",
        says: None,
    },
    BadFile {
        class: "blank",
        path: "blank.txt",
        says: None,
    },
    BadFile {
        class: "garbage",
        path: "garbage.txt",
        says: None,
    },
    BadFile {
        class: "not UTF-8",
        path: "latin1.txt",
        says: Some("UTF-8"),
    },
    BadFile {
        class: "byte-order mark and garbage",
        path: "bom.txt",
        says: None,
    },
    BadFile {
        class: "wrong JSON",
        path: "array.json",
        says: None,
    },
    BadFile {
        class: "cut JSON",
        path: "cut.json",
        says: None,
    },
    BadFile {
        class: "oversized",
        path: "huge.txt",
        says: None,
    },
    BadFile {
        class: "missing",
        path: "missing/none.txt",
        says: None,
    },
    BadFile {
        class: "folder",
        path: "folder",
        says: None,
    },
];

/// Writes the bad files and the good inputs the cases use.
fn fixtures(dir: &Path) {
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("empty.txt", b"");
    write("blank.txt", b"\n  \n\t\n");
    write("garbage.txt", b"}{ ][ \x00\x01 ~~~ \n%%%\n");
    write("latin1.txt", b"\n\n\xe9t\xe9 \xff\n");
    write("bom.txt", b"\xef\xbb\xbf}{ garbage\n");
    write("array.json", b"[1, 2, 3]\n");
    write(
        "cut.json",
        b"{\"guid\": \"a\", \"program_tokens\": [\"DEF\",\n",
    );
    write("huge.txt", &vec![b'x'; 4 << 20]);
    std::fs::create_dir_all(dir.join("folder")).unwrap();
    write("good.karel", b"DEF run m( move turnLeft m)\n");
    write("bom.karel", b"\xef\xbb\xbfDEF run m( move m)\n");
    write("good.world", b"+------+\n|.>. . |\n|. . . |\n+------+\n");
    let task = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/task.json"))
        .expect("examples/task.json");
    write("good.jsonl", &task);
    // A dataset whose second record has a byte that is not UTF-8.
    let mut bad_line = task.clone();
    if let Some(at) = bad_line.iter().position(|&b| b == b'g') {
        bad_line[at] = 0xff;
    }
    let mut mixed = task.clone();
    if !mixed.ends_with(b"\n") {
        mixed.push(b'\n');
    }
    mixed.extend_from_slice(&bad_line);
    write("mixed.jsonl", &mixed);
}

/// Every command that reads a file, with `{}` where the file goes.
const READERS: &[&[&str]] = &[
    &["check", "{}"],
    &["fmt", "{}"],
    &["disasm", "{}"],
    &["run", "{}", "good.world"],
    &["run", "good.karel", "{}"],
    &["render", "{}"],
    &["mutate", "{}"],
    &["data", "stats", "{}"],
    &["data", "convert", "{}", "out-convert.kds"],
    &["data", "show", "{}"],
    &["data", "mutation-bench", "{}", "-o", "out-bench.jsonl"],
    &["data", "repair-examples", "{}", "-o", "out-repair.jsonl"],
    &["data", "stats", "good.jsonl", "--compare", "{}"],
    &[
        "gen",
        "--count",
        "2",
        "-o",
        "out-gen.jsonl",
        "--config",
        "{}",
    ],
    &[
        "train",
        "synthesizer",
        "--data",
        "{}",
        "--val",
        "good.jsonl",
        "--out",
        "run-a",
        "--quiet",
    ],
    &[
        "train",
        "synthesizer",
        "--data",
        "good.jsonl",
        "--val",
        "{}",
        "--out",
        "run-b",
        "--quiet",
    ],
    &[
        "train", "debugger", "--stage", "finetune", "--data", "{}", "--val", "{}", "--out",
        "run-c", "--quiet",
    ],
    &["synthesize", "{}"],
    &["synthesize", "--data", "{}"],
    &["eval", "--data", "{}"],
    &["eval", "merge", "{}"],
    &["plot", "{}", "-o", "out-plot.svg"],
    &["synthesize", "good.jsonl", "--synthesizer", "{}"],
    &["model", "export", "{}", "-o", "out-model.safetensors"],
];

/// Readers for which an empty or blank file is acceptable input.
fn accepts_empty(args: &[&str]) -> bool {
    // Statistics and conversions of no tasks are well defined; a program list may be empty.
    matches!(args, ["data", "convert", ..]) || args.contains(&"--compare")
}

fn file_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for reader in READERS {
        for bad in &BAD_FILES {
            let args: Vec<&str> = reader
                .iter()
                .map(|a| if *a == "{}" { bad.path } else { a })
                .collect();
            let empty = matches!(bad.class, "empty" | "blank");
            let expect = if empty && accepts_empty(reader) {
                Expect::Accepted
            } else {
                Expect::Refused
            };
            let mut case = Case::new(
                format!("{} on a {} file", reader.join(" "), bad.class),
                &args,
                expect,
            );
            if expect == Expect::Refused {
                case = case.mentioning(bad.path);
                // Checkpoints are binary: no text encoding to complain of.
                let binary = reader.contains(&"--synthesizer") || reader.contains(&"export");
                if let Some(says) = bad.says.filter(|_| !binary) {
                    case = case.mentioning(says);
                }
            }
            cases.push(case);
        }
    }
    cases
}

/// Values out of range, options that conflict, and impossible settings.
fn option_cases() -> Vec<Case> {
    use Expect::Usage;
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "synthesizer",
            "--data",
            "good.jsonl",
            "--val",
            "good.jsonl",
            "--out",
            "run-options",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let mut cases = vec![
        Case::new("exec -j 0", &["exec", "-j", "0", "good.karel"], Usage),
        Case::new(
            "exec -j 100000",
            &["exec", "-j", "100000", "good.karel"],
            Usage,
        ),
        Case::new(
            "gen --threads 100000",
            &["gen", "--count", "1", "-o", "x.jsonl", "-j", "100000"],
            Usage,
        ),
        Case::new(
            "check --max-depth 0",
            &["check", "--max-depth", "0", "good.karel"],
            Usage,
        ),
        Case::new(
            "check --max-depth 10000000",
            &["check", "--max-depth", "10000000", "good.karel"],
            Usage,
        ),
        Case::new(
            "run --max-steps -1",
            &["run", "good.karel", "good.world", "--max-steps", "-1"],
            Usage,
        ),
        Case::new("run with both inputs on stdin", &["run", "-", "-"], Usage)
            .stdin(b"DEF run m( move m)"),
        Case::new("mutate -n 0", &["mutate", "good.karel", "-n", "0"], Usage),
        Case::new(
            "mutate -n 100000",
            &["mutate", "good.karel", "-n", "100000"],
            Usage,
        ),
        Case::new(
            "mutate --count 0",
            &["mutate", "good.karel", "--count", "0"],
            Usage,
        ),
        Case::new(
            "mutate --radius 4",
            &["mutate", "good.karel", "--radius", "4"],
            Usage,
        ),
        Case::new(
            "mutate --radius with --limit 0",
            &["mutate", "good.karel", "--radius", "1", "--limit", "0"],
            Usage,
        ),
        Case::new(
            "mutate --radius with --count",
            &["mutate", "good.karel", "--radius", "1", "--count", "5"],
            Usage,
        ),
        Case::new(
            "gen with --count and --splits",
            &["gen", "--count", "1", "--splits", "a=1", "-o", "x"],
            Usage,
        ),
        Case::new(
            "gen with a split named twice",
            &["gen", "--splits", "train=5,train=5", "-o", "splits"],
            Usage,
        )
        .mentioning("train"),
        Case::new(
            "gen with a bad split name",
            &["gen", "--splits", "../x=5", "-o", "splits"],
            Usage,
        ),
        Case::new(
            "data mutation-bench --max-k 0",
            &[
                "data",
                "mutation-bench",
                "good.jsonl",
                "-o",
                "b.jsonl",
                "--max-k",
                "0",
            ],
            Usage,
        ),
        Case::new(
            "eval --max-k without --mutation-bench",
            &["eval", "--data", "good.jsonl", "--max-k", "2"],
            Usage,
        ),
        Case::new(
            "eval --compare-beam with the rewrite stage only",
            &["eval", "--data", "good.jsonl", "--compare-beam"],
            Usage,
        )
        .mentioning("--compare-beam"),
        Case::new(
            "eval --compare-beam with the rewrite stage alone",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--compare-beam",
                "--search",
                "rewrite,greedy+rewrite",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --synthesizer",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--synthesizer",
                "x.safetensors",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --beam",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--beam",
                "4",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --decode",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--decode",
                "greedy",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --search",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--search",
                "best-first",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --steps",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--steps",
                "5",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --compare-beam",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--compare-beam",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --merge",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--merge",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --rewrite-radius",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--rewrite-radius",
                "1",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --rewrite-limit",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--rewrite-limit",
                "10",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --rewrite-budget",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--rewrite-budget",
                "10",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --resume",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--json",
                "r.json",
                "--resume",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --rank",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--rank",
                "shortest",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --shard",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--shard",
                "0/2",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --save-every",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--save-every",
                "4",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --plot",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--plot",
                "p.svg",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --grammar",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--grammar",
            ],
            Usage,
        ),
        Case::new(
            "eval --mutation-bench with --max-len",
            &[
                "eval",
                "--data",
                "good.jsonl",
                "--mutation-bench",
                "--max-len",
                "20",
            ],
            Usage,
        ),
        Case::new(
            "data repair-examples --n-dist -1",
            &[
                "data",
                "repair-examples",
                "good.jsonl",
                "-o",
                "r.jsonl",
                "--n-dist=-1,2",
            ],
            Usage,
        ),
        Case::new(
            "fmt --write --check",
            &["fmt", "--write", "--check", "good.karel"],
            Usage,
        ),
        Case::new(
            "edits --apply past the source",
            &["edits", "--apply", "move", "KEEP KEEP KEEP"],
            Expect::Refused,
        )
        .mentioning("op 2"),
        Case::new(
            "edits --apply deleting everything",
            &[
                "edits",
                "--apply",
                "DEF run m( move m)",
                "DELETE DELETE DELETE DELETE DELETE",
            ],
            Expect::Refused,
        )
        .mentioning("empty"),
        Case::new(
            "edits --apply leaving no program",
            &["edits", "--apply", "DEF run m( move m)", "KEEP DELETE"],
            Expect::Refused,
        )
        .mentioning("not a program"),
    ];
    for (flag, value) in [
        ("--batch", "0"),
        ("--batch", "100000"),
        ("--lr", "0"),
        ("--lr", "-1"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--clip", "-5"),
        ("--clip", "nan"),
        ("--steps", "0"),
        ("--val-size", "0"),
        ("--decay-rate", "0"),
        ("--decay-every", "0"),
        ("--checkpoint-every", "0"),
        ("--validate-every", "0"),
        ("--log-every", "0"),
    ] {
        let mut case = Case::new(format!("train {flag} {value}"), &[], Usage).mentioning(flag);
        case.args = train(&[flag, value]);
        cases.push(case);
    }
    for (flag, value) in [
        ("--beam", "0"),
        ("--beam", "100000"),
        ("--debugger-beam", "0"),
        ("--debugger-beam", "100000"),
        ("--max-len", "0"),
        ("--max-ops", "0"),
        ("--trace-steps", "0"),
        ("--trace-steps", "100000000"),
        ("--batch", "0"),
        ("--steps", "1000000000"),
        ("--rewrite-radius", "0"),
        ("--rewrite-radius", "4"),
        ("--rewrite-limit", "0"),
        ("--rewrite-budget", "0"),
        ("--rewrite-budget", "2000001"),
        ("--rank", "longest"),
    ] {
        cases.push(
            Case::new(
                format!("synthesize {flag} {value}"),
                &["synthesize", "good.jsonl", flag, value],
                Usage,
            )
            .mentioning(flag),
        );
    }
    for (flag, value) in [
        ("--limit", "0"),
        ("--save-every", "0"),
        ("--max-k", "100"),
        ("--steps", "1,1000000000"),
        ("--shard", "3/2"),
    ] {
        cases.push(
            Case::new(
                format!("eval {flag} {value}"),
                &["eval", "--data", "good.jsonl", flag, value],
                Usage,
            )
            .mentioning(flag),
        );
    }
    // Options `synthesize --data` would otherwise ignore: the search's and the beam's.
    for flag in [
        "--search",
        "--decode",
        "--steps",
        "--beam",
        "--debugger-beam",
        "--max-ops",
        "--trace-steps",
        "--rewrite-radius",
        "--rewrite-limit",
        "--rewrite-budget",
        "--rank",
    ] {
        let value = match flag {
            "--search" => "greedy",
            "--decode" => "beam",
            "--rank" => "nearest",
            "--rewrite-radius" => "1",
            _ => "5",
        };
        cases.push(
            Case::new(
                format!("synthesize --data with {flag}"),
                &["synthesize", "--data", "good.jsonl", flag, value],
                Usage,
            )
            .mentioning(flag),
        );
    }
    cases.push(
        Case::new(
            "synthesize --data with --debugger",
            &[
                "synthesize",
                "--data",
                "good.jsonl",
                "--debugger",
                "good.jsonl",
            ],
            Usage,
        )
        .mentioning("--debugger"),
    );
    cases.push(
        Case::new(
            "synthesize --data with --merge",
            &["synthesize", "--data", "good.jsonl", "--merge"],
            Usage,
        )
        .mentioning("--merge"),
    );
    // Generator settings that are impossible or would never finish.
    for (name, config) in [
        ("no steps", r#"{"max_steps": 0}"#),
        (
            "an empty token range",
            r#"{"program": {"min_tokens": 50, "max_tokens": 10}}"#,
        ),
        ("worlds too large", r#"{"world": {"max_size": 40}}"#),
        (
            "a negative probability",
            r#"{"program": {"not_prob": -0.5}}"#,
        ),
        (
            "zero weights",
            r#"{"program": {"action_weights": [0, 0, 0, 0, 0]}}"#,
        ),
        ("no input tries", r#"{"input_tries": 0}"#),
        ("an unknown field", r#"{"max_step": 10}"#),
        ("a field of the wrong type", r#"{"max_steps": "many"}"#),
        ("programs that all time out", r#"{"max_steps": 1}"#),
        (
            "programs longer than the sampler makes",
            r#"{"program": {"min_tokens": 900, "max_tokens": 1000}}"#,
        ),
    ] {
        let file = format!("config-{}.json", name.replace(' ', "-"));
        cases.push(
            Case::new(
                format!("gen with {name}"),
                &[
                    "gen",
                    "--count",
                    "5",
                    "-o",
                    "out-config.jsonl",
                    "--config",
                    &file,
                ],
                Expect::Refused,
            )
            .stdin(config.as_bytes()),
        );
    }
    cases
}

/// Outputs into a folder that does not exist: refused before any work, naming the path.
fn output_cases() -> Vec<Case> {
    let missing = "missing/out";
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "gen -o",
            vec!["gen", "--count", "2", "-o", "missing/out.jsonl"],
        ),
        (
            "data convert",
            vec!["data", "convert", "good.jsonl", "missing/out.kds"],
        ),
        (
            "data mutation-bench -o",
            vec![
                "data",
                "mutation-bench",
                "good.jsonl",
                "-o",
                "missing/out.jsonl",
            ],
        ),
        (
            "data repair-examples -o",
            vec![
                "data",
                "repair-examples",
                "good.jsonl",
                "-o",
                "missing/out.jsonl",
            ],
        ),
        (
            "data stats --plot",
            vec![
                "data",
                "stats",
                "good.jsonl",
                "--compare",
                "good.karel",
                "--plot",
                "missing/out.svg",
            ],
        ),
        (
            "plot -o",
            vec!["plot", "good.jsonl", "-o", "missing/out.svg"],
        ),
        (
            "eval --plot",
            vec!["eval", "--data", "good.jsonl", "--plot", "missing/out.svg"],
        ),
        (
            "eval --json",
            vec!["eval", "--data", "good.jsonl", "--json", "missing/out.json"],
        ),
        (
            "eval --markdown",
            vec![
                "eval",
                "--data",
                "good.jsonl",
                "--markdown",
                "missing/out.md",
            ],
        ),
        (
            "synthesize --json",
            vec!["synthesize", "good.jsonl", "--json", "missing/out.json"],
        ),
        (
            "synthesize --wrong-out",
            vec![
                "synthesize",
                "--data",
                "good.jsonl",
                "--wrong-out",
                "missing/out.jsonl",
            ],
        ),
        (
            "run --svg",
            vec![
                "run",
                "good.karel",
                "good.world",
                "--svg",
                "missing/out.svg",
            ],
        ),
        (
            "render --svg",
            vec!["render", "good.world", "--svg", "missing/out.svg"],
        ),
        (
            "gen -o a folder",
            vec!["gen", "--count", "2", "-o", "folder"],
        ),
    ]
    .into_iter()
    .map(|(name, args)| (name, args.into_iter().map(str::to_string).collect()))
    .collect();
    cases
        .into_iter()
        .map(|(name, args)| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mention = args
                .iter()
                .find(|a| a.starts_with("missing/") || **a == "folder")
                .map_or(missing, |a| a);
            Case::new(
                format!("{name} into a missing folder"),
                &args,
                Expect::Refused,
            )
            .mentioning(mention)
        })
        .collect()
}

/// A program that finishes after about two million events.
const NESTED_REPEATS: &str =
    "DEF run m( REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( \
    REPEAT R=10 r( REPEAT R=10 r( turnLeft r) r) r) r) r) r) m)";

/// Inputs that are unusual but valid.
fn accepted_cases() -> Vec<Case> {
    vec![
        Case::new(
            "check with a byte-order mark",
            &["check", "bom.karel"],
            Expect::Accepted,
        ),
        Case::new(
            "run with a byte-order mark",
            &["run", "bom.karel", "good.world"],
            Expect::Accepted,
        ),
        Case::new(
            "data stats --skip-invalid skips a line that is not UTF-8",
            &["data", "stats", "mixed.jsonl", "--skip-invalid"],
            Expect::Accepted,
        ),
        Case::new(
            "data stats names the line that is not UTF-8",
            &["data", "stats", "mixed.jsonl"],
            Expect::Refused,
        )
        .mentioning("mixed.jsonl:2")
        .mentioning("UTF-8"),
        Case::new(
            "a traced run whose trace would be too long",
            &[
                "run",
                "-",
                "good.world",
                "--trace",
                "--max-steps",
                "200000000",
            ],
            Expect::Refused,
        )
        .stdin(NESTED_REPEATS.as_bytes())
        .mentioning("limit"),
    ]
}

#[test]
fn hostile_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let mut cases = file_cases();
    cases.extend(option_cases());
    cases.extend(output_cases());
    cases.extend(accepted_cases());
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        // Generator settings come from a file named in the case, written from its stdin.
        if let Some(config) = case
            .args
            .iter()
            .skip_while(|a| *a != "--config")
            .nth(1)
            .filter(|_| !case.stdin.is_empty())
        {
            std::fs::write(dir.path().join(config), &case.stdin).unwrap();
        }
        if let Some(problem) = run_case(dir.path(), case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    let leftovers = half_written(dir.path());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        leftovers.is_empty(),
        "files left half-written: {leftovers:?}"
    );
}

/// Temporary and partial files below `dir`.
fn half_written(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".partial")
                || name.ends_with(".state")
                || name.contains(".tmp-")
            {
                found.push(path);
            }
        }
    }
    found
}

/// `karel exec`: each hostile line gets its own error answer, the stream goes on, and earlier
/// answers are written.
#[test]
fn exec_answers_every_hostile_line() {
    let map = "+----+\\n|.>. |\\n+----+";
    let long_word = "x".repeat(1 << 20);
    let lines: Vec<(String, &str)> = vec![
        (
            format!(r#"{{"program": "DEF run m( move m)", "input": "{map}"}}"#),
            "ok",
        ),
        (String::new(), "invalid_input"),
        ("garbage".to_string(), "invalid_input"),
        ("[]".to_string(), "invalid_input"),
        ("null".to_string(), "invalid_input"),
        (
            r#"{"program": 5, "input": []}"#.to_string(),
            "invalid_input",
        ),
        (
            r#"{"program": "DEF run m( move m)"}"#.to_string(),
            "invalid_input",
        ),
        (
            r#"{"program": "DEF run m( move m)", "input": null}"#.to_string(),
            "invalid_input",
        ),
        (
            r#"{"program": "DEF run m( move m)", "input": [-1]}"#.to_string(),
            "invalid_input",
        ),
        (
            r#"{"program": "DEF run m( move m)", "input": [99999]}"#.to_string(),
            "invalid_input",
        ),
        (
            format!(r#"{{"program": "DEF run m( move m)", "input": "{map}", "max_steps": -1}}"#),
            "invalid_input",
        ),
        (
            format!(r#"{{"program": "DEF run m( move m)", "input": "{map}", "extra": 1}}"#),
            "invalid_input",
        ),
        (
            format!(r#"{{"program": "DEF run m( {long_word} m)", "input": "{map}"}}"#),
            "syntax_error",
        ),
        (
            format!(
                r#"{{"program": "DEF run m( WHILE c( noMarkersPresent c) w( turnLeft w) m)", "input": "{map}", "trace": true, "max_steps": 50000000}}"#
            ),
            "error",
        ),
        (
            format!(
                r#"{{"program": "{NESTED_REPEATS}", "input": "{map}", "trace": true, "max_steps": 4000000}}"#
            ),
            "invalid_input",
        ),
        (
            format!(r#"{{"program": "DEF run m( turnLeft m)", "input": "{map}"}}"#),
            "ok",
        ),
    ];
    let mut input: Vec<u8> = Vec::new();
    for (line, _) in &lines {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    // A line that is not UTF-8.
    input.extend_from_slice(b"{\"program\": \"\xff\"}\n");
    let output = Command::new(env!("CARGO_BIN_EXE_karel"))
        .arg("exec")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            let mut stdin = child.stdin.take().expect("piped");
            let writer = std::thread::spawn(move || stdin.write_all(&input));
            let output = child.wait_with_output();
            let _ = writer.join();
            output
        })
        .expect("the karel binary runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        excerpt(&String::from_utf8_lossy(&output.stderr))
    );
    let answers: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), lines.len() + 1);
    for ((line, status), answer) in lines.iter().zip(&answers) {
        assert_eq!(answer["status"], *status, "{}: {answer}", excerpt(line));
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.len() < 1000, "a long message: {}", excerpt(message));
    }
    assert_eq!(answers[lines.len()]["status"], "invalid_input");
    assert!(answers[lines.len()]["message"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // The huge step limit's trace is the timeout heuristic's one event.
    let traced = &answers[13];
    assert_eq!(traced["error"], "timeout");
    assert_eq!(traced["events"].as_array().unwrap().len(), 1);
}
