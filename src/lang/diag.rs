//! Rendering of syntax errors as diagnostics (codespan-reporting): the file and line, the source
//! line with a caret under the offending token, and what the parser expected.
//!
//! Errors stay plain data ([`ParseError`]) until they reach the user; this is the one place that
//! turns them into text.

use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor, Config};

use super::parser::{ParseError, SyntaxError};

/// The diagnostic of one syntax error.
pub fn diagnostic(error: &SyntaxError) -> Diagnostic<()> {
    let mut diagnostic = Diagnostic::error()
        .with_message(error.kind.message())
        .with_labels(vec![
            Label::primary((), error.bytes.clone()).with_message(error.kind.label())
        ]);
    if let Some(note) = error.kind.expectation() {
        diagnostic = diagnostic.with_notes(vec![note]);
    }
    diagnostic
}

/// Longest source line shown under a diagnostic; an error on a longer line is reported with its
/// line and column only, so that the message stays short whatever the input.
pub const MAX_SHOWN_LINE: usize = 1000;

/// The short form of an error on a line too long to show: `None` when the line can be shown.
fn without_snippet(name: &str, source: &str, error: &SyntaxError) -> Option<String> {
    let at = error.bytes.start.min(source.len());
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[at..].find('\n').map_or(source.len(), |i| at + i);
    if line_end - line_start <= MAX_SHOWN_LINE {
        return None;
    }
    let line = 1 + source[..line_start].matches('\n').count();
    let column = 1 + source[line_start..at].chars().count();
    Some(format!(
        "error: {error}\n  --> {name}:{line}:{column} (a line of {} bytes, too long to show)\n",
        line_end - line_start
    ))
}

/// Renders every error of `error` against `source` (named `name`) as plain text.
pub fn render(name: &str, source: &str, error: &ParseError) -> String {
    let file = SimpleFile::new(name, source);
    let config = Config::default();
    let mut out = String::new();
    for e in &error.errors {
        if let Some(short) = without_snippet(name, source, e) {
            out.push_str(&short);
            continue;
        }
        if let Err(render_error) = term::emit_to_string(&mut out, &config, &file, &diagnostic(e)) {
            out.push_str(&format!(
                "error: {e} (could not render the source: {render_error})\n"
            ));
        }
    }
    out
}

/// Writes every error to standard error, in colour when it is a terminal.
pub fn emit_to_stderr(name: &str, source: &str, error: &ParseError) {
    let file = SimpleFile::new(name, source);
    let config = Config::default();
    let choice = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        termcolor::ColorChoice::Auto
    } else {
        termcolor::ColorChoice::Never
    };
    let stderr = termcolor::StandardStream::stderr(choice);
    let mut lock = stderr.lock();
    let styles = term::Styles::default();
    let mut writer = term::StylesWriter::new(&mut lock, &styles);
    for e in &error.errors {
        if let Some(short) = without_snippet(name, source, e) {
            eprint!("{short}");
            continue;
        }
        if term::emit_to_write_style(&mut writer, &config, &file, &diagnostic(e)).is_err() {
            eprintln!("error: {e}");
        }
    }
}
