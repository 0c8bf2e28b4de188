//! A pushdown automaton over the vocabulary that accepts exactly the token lists the parser
//! accepts (`DEF run m( … m)`, with the same empty-body and nesting rules). A decoder uses it to
//! mask the tokens that cannot continue a program: [`ProgramPda::allowed`] is the set of tokens
//! after which some completion still parses, within a length limit if one is given.
//!
//! The grammar is LL(1), so the automaton keeps a stack of pending grammar symbols (top last) and
//! decides every token by looking at the top; the nullable statement lists are skipped over when
//! the next token cannot start a statement.

use super::parser::ParseOptions;
use super::token::{Token, VOCAB_SIZE};

/// A set of tokens, as a bit set over vocabulary ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TokenSet(u64);

impl TokenSet {
    pub const EMPTY: TokenSet = TokenSet(0);

    pub fn contains(self, token: Token) -> bool {
        self.0 >> token.id() & 1 == 1
    }

    pub fn insert(&mut self, token: Token) {
        self.0 |= 1 << token.id();
    }

    fn union(self, other: TokenSet) -> TokenSet {
        TokenSet(self.0 | other.0)
    }

    fn of(tokens: &[Token]) -> TokenSet {
        let mut set = TokenSet::EMPTY;
        for &t in tokens {
            set.insert(t);
        }
        set
    }

    /// The tokens of the set, in vocabulary order.
    pub fn tokens(self) -> impl Iterator<Item = Token> {
        Token::ALL.into_iter().filter(move |&t| self.contains(t))
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A pending grammar symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Symbol {
    Token(Token),
    /// A block body: zero or more statements, one or more in strict mode.
    Body,
    /// Zero or more statements.
    Statements,
    /// `atom` or `not c( atom c)`.
    Condition,
    Atom,
    /// `R=2` … `R=10`.
    Count,
}

const ACTIONS: [Token; 5] = [
    Token::Move,
    Token::TurnLeft,
    Token::TurnRight,
    Token::PickMarker,
    Token::PutMarker,
];
const ATOMS: [Token; 5] = [
    Token::FrontIsClear,
    Token::LeftIsClear,
    Token::RightIsClear,
    Token::MarkersPresent,
    Token::NoMarkersPresent,
];
const COUNTS: [Token; 9] = [
    Token::R2,
    Token::R3,
    Token::R4,
    Token::R5,
    Token::R6,
    Token::R7,
    Token::R8,
    Token::R9,
    Token::R10,
];

fn statement_starts() -> TokenSet {
    TokenSet::of(&ACTIONS).union(TokenSet::of(&[
        Token::If,
        Token::IfElse,
        Token::While,
        Token::Repeat,
    ]))
}

fn is_opener(token: Token) -> bool {
    matches!(
        token,
        Token::MOpen | Token::IOpen | Token::EOpen | Token::WOpen | Token::ROpen
    )
}

/// The automaton's state after a prefix of tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramPda {
    stack: Vec<Symbol>,
    /// Open body brackets (`m(`, `i(`, `e(`, `w(`, `r(`), as the parser counts nesting.
    depth: usize,
    max_depth: usize,
    nonempty_bodies: bool,
    /// Tokens consumed.
    length: usize,
}

impl Default for ProgramPda {
    fn default() -> Self {
        ProgramPda::new(&ParseOptions::default())
    }
}

impl ProgramPda {
    /// The state before the first token, for programs that `options` accepts.
    pub fn new(options: &ParseOptions) -> ProgramPda {
        ProgramPda {
            stack: vec![
                Symbol::Token(Token::MClose),
                Symbol::Body,
                Symbol::Token(Token::MOpen),
                Symbol::Token(Token::Run),
                Symbol::Token(Token::Def),
            ],
            depth: 0,
            max_depth: options.max_depth.min(super::parser::MAX_DEPTH_LIMIT),
            nonempty_bodies: !options.allow_empty_bodies,
            length: 0,
        }
    }

    /// Tokens consumed so far.
    pub fn len(&self) -> usize {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Whether the tokens so far form a whole program.
    pub fn is_complete(&self) -> bool {
        self.stack.is_empty()
    }

    /// The tokens that can come next, ignoring length: `</S>` once the program is complete.
    pub fn next_tokens(&self) -> TokenSet {
        let mut set = TokenSet::EMPTY;
        for &symbol in self.stack.iter().rev() {
            match symbol {
                Symbol::Token(t) => {
                    if !is_opener(t) || self.depth < self.max_depth {
                        set.insert(t);
                    }
                    return set;
                }
                Symbol::Statements => set = set.union(statement_starts()),
                Symbol::Body if !self.nonempty_bodies => set = set.union(statement_starts()),
                Symbol::Body => return set.union(statement_starts()),
                Symbol::Condition => {
                    return set
                        .union(TokenSet::of(&ATOMS))
                        .union(TokenSet::of(&[Token::Not]))
                }
                Symbol::Atom => return set.union(TokenSet::of(&ATOMS)),
                Symbol::Count => return set.union(TokenSet::of(&COUNTS)),
            }
        }
        set.insert(Token::End);
        set
    }

    /// The tokens after which a program can still be completed with at most `max_len` tokens in
    /// all (`None`: no limit). `</S>` is in the set once the program is complete.
    pub fn allowed(&self, max_len: Option<usize>) -> TokenSet {
        let candidates = self.next_tokens();
        let Some(limit) = max_len else {
            return candidates;
        };
        let mut set = TokenSet::EMPTY;
        for token in candidates.tokens() {
            if token == Token::End {
                set.insert(token);
                continue;
            }
            let mut next = self.clone();
            if next.push(token) && next.length + next.min_completion() <= limit {
                set.insert(token);
            }
        }
        set
    }

    /// The fewest tokens that complete the program.
    pub fn min_completion(&self) -> usize {
        self.stack
            .iter()
            .map(|symbol| match symbol {
                Symbol::Statements => 0,
                Symbol::Body => self.nonempty_bodies as usize,
                _ => 1,
            })
            .sum()
    }

    /// Consumes `token`; returns false (leaving the state unchanged) if the grammar does not
    /// allow it here. `</S>` is accepted only after a complete program and changes nothing.
    pub fn push(&mut self, token: Token) -> bool {
        if token == Token::End {
            return self.is_complete();
        }
        if !self.next_tokens().contains(token) {
            return false;
        }
        loop {
            let top = self.stack.pop().expect("an allowed token has a symbol");
            match top {
                Symbol::Token(t) => {
                    debug_assert_eq!(t, token);
                    break;
                }
                Symbol::Statements | Symbol::Body if statement_starts().contains(token) => {
                    self.stack.push(Symbol::Statements);
                    self.open_statement(token);
                    break;
                }
                Symbol::Statements | Symbol::Body => {}
                Symbol::Condition if token == Token::Not => {
                    self.stack.extend([
                        Symbol::Token(Token::CClose),
                        Symbol::Atom,
                        Symbol::Token(Token::COpen),
                    ]);
                    break;
                }
                Symbol::Condition | Symbol::Atom | Symbol::Count => break,
            }
        }
        if is_opener(token) {
            self.depth += 1;
        } else if matches!(
            token,
            Token::MClose | Token::IClose | Token::EClose | Token::WClose | Token::RClose
        ) {
            self.depth -= 1;
        }
        self.length += 1;
        true
    }

    /// Pushes what follows the first token of a statement.
    fn open_statement(&mut self, first: Token) {
        use Symbol::{Body, Condition, Count, Token as T};
        let rest: &[Symbol] = match first {
            Token::If => &[
                T(Token::IClose),
                Body,
                T(Token::IOpen),
                T(Token::CClose),
                Condition,
                T(Token::COpen),
            ],
            Token::IfElse => &[
                T(Token::EClose),
                Body,
                T(Token::EOpen),
                T(Token::Else),
                T(Token::IClose),
                Body,
                T(Token::IOpen),
                T(Token::CClose),
                Condition,
                T(Token::COpen),
            ],
            Token::While => &[
                T(Token::WClose),
                Body,
                T(Token::WOpen),
                T(Token::CClose),
                Condition,
                T(Token::COpen),
            ],
            Token::Repeat => &[T(Token::RClose), Body, T(Token::ROpen), Count],
            _ => &[],
        };
        self.stack.extend_from_slice(rest);
    }

    /// Consumes every token of `tokens`; false at the first one the grammar rejects.
    pub fn push_all(&mut self, tokens: &[Token]) -> bool {
        tokens.iter().all(|&t| self.push(t))
    }
}

/// Checks at compile time that a token set fits the vocabulary.
const _: () = assert!(VOCAB_SIZE <= 64);
