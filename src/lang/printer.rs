//! Printers: the canonical token list, its one-line text, and an indented multi-line form.
//!
//! Both text forms parse back to the same program (`parse(print(p)) == p`): the grammar is
//! whitespace-insensitive and every token is represented in the AST.
//!
//! The indented form puts each statement on its own line, opens blocks at the end of the line of
//! their header and closes them on a line of their own:
//!
//! ```text
//! DEF run m(
//!   WHILE c( frontIsClear c) w(
//!     move
//!   w)
//!   IFELSE c( markersPresent c) i(
//!     pickMarker
//!   i) ELSE e(
//!     putMarker
//!   e)
//! m)
//! ```
//!
//! An empty body stays on the header's line (`WHILE c( frontIsClear c) w( w)`).

use std::fmt::{self, Write};

use super::ast::{Cond, Program, Stmt};
use super::token::Token;

/// Appends the tokens of a condition.
fn cond_tokens(cond: Cond, out: &mut Vec<Token>) {
    if cond.negated {
        out.extend([Token::Not, Token::COpen, cond.atom.token(), Token::CClose]);
    } else {
        out.push(cond.atom.token());
    }
}

fn body_tokens(body: &[Stmt], out: &mut Vec<Token>) {
    for stmt in body {
        stmt_tokens(stmt, out);
    }
}

/// Appends the tokens of a statement.
pub fn stmt_tokens(stmt: &Stmt, out: &mut Vec<Token>) {
    match stmt {
        Stmt::Action(action) => out.push(action.token()),
        Stmt::If { cond, body } => {
            out.extend([Token::If, Token::COpen]);
            cond_tokens(*cond, out);
            out.extend([Token::CClose, Token::IOpen]);
            body_tokens(body, out);
            out.push(Token::IClose);
        }
        Stmt::IfElse {
            cond,
            then_body,
            else_body,
        } => {
            out.extend([Token::IfElse, Token::COpen]);
            cond_tokens(*cond, out);
            out.extend([Token::CClose, Token::IOpen]);
            body_tokens(then_body, out);
            out.extend([Token::IClose, Token::Else, Token::EOpen]);
            body_tokens(else_body, out);
            out.push(Token::EClose);
        }
        Stmt::While { cond, body } => {
            out.extend([Token::While, Token::COpen]);
            cond_tokens(*cond, out);
            out.extend([Token::CClose, Token::WOpen]);
            body_tokens(body, out);
            out.push(Token::WClose);
        }
        Stmt::Repeat { count, body } => {
            out.extend([Token::Repeat, count.token(), Token::ROpen]);
            body_tokens(body, out);
            out.push(Token::RClose);
        }
    }
}

impl Program {
    /// The canonical token list of the program.
    pub fn tokens(&self) -> Vec<Token> {
        let mut out = Vec::with_capacity(self.token_len());
        out.extend([Token::Def, Token::Run, Token::MOpen]);
        body_tokens(&self.body, &mut out);
        out.push(Token::MClose);
        out
    }

    /// The indented multi-line form (see the module documentation), ending with a newline.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        out.push_str("DEF run m(");
        pretty_body(&self.body, 1, &mut out);
        out.push_str("m)\n");
        out
    }
}

/// The canonical one-line form: the tokens separated by single spaces.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.tokens().into_iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            f.write_str(token.text())?;
        }
        Ok(())
    }
}

/// Writes a body after its opening bracket: inline ` ` when empty, else one indented line per
/// statement followed by the indentation of the closing bracket.
fn pretty_body(body: &[Stmt], indent: usize, out: &mut String) {
    if body.is_empty() {
        out.push(' ');
        return;
    }
    out.push('\n');
    for stmt in body {
        push_indent(indent, out);
        pretty_stmt(stmt, indent, out);
        out.push('\n');
    }
    push_indent(indent - 1, out);
}

fn push_indent(indent: usize, out: &mut String) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn pretty_stmt(stmt: &Stmt, indent: usize, out: &mut String) {
    // `write!` into a String cannot fail.
    let _ = match stmt {
        Stmt::Action(action) => write!(out, "{}", action.name()),
        Stmt::If { cond, body } => {
            let _ = write!(out, "IF c( {cond} c) i(");
            pretty_body(body, indent + 1, out);
            write!(out, "i)")
        }
        Stmt::IfElse {
            cond,
            then_body,
            else_body,
        } => {
            let _ = write!(out, "IFELSE c( {cond} c) i(");
            pretty_body(then_body, indent + 1, out);
            out.push_str("i) ELSE e(");
            pretty_body(else_body, indent + 1, out);
            write!(out, "e)")
        }
        Stmt::While { cond, body } => {
            let _ = write!(out, "WHILE c( {cond} c) w(");
            pretty_body(body, indent + 1, out);
            write!(out, "w)")
        }
        Stmt::Repeat { count, body } => {
            let _ = write!(out, "REPEAT {} r(", count.token());
            pretty_body(body, indent + 1, out);
            write!(out, "r)")
        }
    };
}
