//! The Karel language: vocabulary, lexer, parser, AST, token layout, printers and diagnostics.
//!
//! Source text flows `lexer` (logos) → `parser` (LALRPOP, `grammar/karel.lalrpop`) → [`Program`].
//! The AST holds no spans; [`Layout`] gives the token positions of every statement and the
//! parser's [`SourceMap`] their bytes. [`Program::tokens`], its `Display` and [`Program::pretty`]
//! print it back, and `parse(print(p)) == p` for every program. [`ProgramPda`] accepts the same
//! token lists one token at a time, for grammar-constrained decoding.

pub mod ast;
pub mod diag;
pub mod layout;
pub mod lexer;
pub mod parser;
pub mod pda;
pub mod printer;
pub mod token;

pub use ast::{Action, Atom, BlockKind, Cond, NodeId, Program, RepeatCount, Stmt};
pub use layout::{Layout, NodeLayout, TokenSpan};
pub use parser::{
    parse, parse_program, parse_tokens, parse_with, ParseError, ParseOptions, Parsed, SourceMap,
    SyntaxError, SyntaxErrorKind, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT,
};
pub use pda::{ProgramPda, TokenSet};
pub use token::{Token, VOCAB_SIZE};
