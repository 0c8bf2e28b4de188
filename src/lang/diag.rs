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

/// Renders every error of `error` against `source` (named `name`) as plain text.
pub fn render(name: &str, source: &str, error: &ParseError) -> String {
    let file = SimpleFile::new(name, source);
    let config = Config::default();
    let mut out = String::new();
    for e in &error.errors {
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
        if term::emit_to_write_style(&mut writer, &config, &file, &diagnostic(e)).is_err() {
            eprintln!("error: {e}");
        }
    }
}
