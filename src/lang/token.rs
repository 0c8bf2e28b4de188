//! The Karel vocabulary: the 43 tokens of the reference `word.vocab`, with their model ids.
//!
//! `Token` is at the same time the lexer's token type (derived with logos), the parser's terminal
//! type, and the vocabulary the neural models read and write: `Token::id` is the row of the
//! embedding table and `Token::from_id` its inverse. The ids are those of the original
//! `word.vocab` and must never change, or trained checkpoints stop meaning anything.
//!
//! The four special tokens (`<S>`, `</S>`, `<UNK>`, `|||`) are part of the vocabulary and are lexed,
//! but no program may contain them: the parser rejects them as it rejects any misplaced token.

use std::fmt;

use logos::Logos;

/// One token of the Karel vocabulary. The discriminant is the vocabulary id.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[logos(skip r"\s+")]
#[repr(u8)]
pub enum Token {
    #[token("<S>")]
    Start = 0,
    #[token("</S>")]
    End = 1,
    #[token("<UNK>")]
    Unknown = 2,
    #[token("|||")]
    Separator = 3,
    #[token("move")]
    Move = 4,
    #[token("c(")]
    COpen = 5,
    #[token("c)")]
    CClose = 6,
    #[token("putMarker")]
    PutMarker = 7,
    #[token("DEF")]
    Def = 8,
    #[token("m)")]
    MClose = 9,
    #[token("m(")]
    MOpen = 10,
    #[token("run")]
    Run = 11,
    #[token("pickMarker")]
    PickMarker = 12,
    #[token("turnLeft")]
    TurnLeft = 13,
    #[token("i)")]
    IClose = 14,
    #[token("i(")]
    IOpen = 15,
    #[token("turnRight")]
    TurnRight = 16,
    #[token("REPEAT")]
    Repeat = 17,
    #[token("r(")]
    ROpen = 18,
    #[token("r)")]
    RClose = 19,
    #[token("w)")]
    WClose = 20,
    #[token("w(")]
    WOpen = 21,
    #[token("WHILE")]
    While = 22,
    #[token("e)")]
    EClose = 23,
    #[token("IFELSE")]
    IfElse = 24,
    #[token("e(")]
    EOpen = 25,
    #[token("ELSE")]
    Else = 26,
    #[token("IF")]
    If = 27,
    #[token("leftIsClear")]
    LeftIsClear = 28,
    #[token("rightIsClear")]
    RightIsClear = 29,
    #[token("frontIsClear")]
    FrontIsClear = 30,
    #[token("markersPresent")]
    MarkersPresent = 31,
    #[token("noMarkersPresent")]
    NoMarkersPresent = 32,
    #[token("not")]
    Not = 33,
    #[token("R=5")]
    R5 = 34,
    #[token("R=2")]
    R2 = 35,
    #[token("R=4")]
    R4 = 36,
    #[token("R=3")]
    R3 = 37,
    #[token("R=6")]
    R6 = 38,
    #[token("R=7")]
    R7 = 39,
    #[token("R=8")]
    R8 = 40,
    #[token("R=9")]
    R9 = 41,
    #[token("R=10")]
    R10 = 42,
}

/// Number of tokens in the vocabulary.
pub const VOCAB_SIZE: usize = 43;

impl Token {
    /// Every token, indexed by its vocabulary id.
    pub const ALL: [Token; VOCAB_SIZE] = [
        Token::Start,
        Token::End,
        Token::Unknown,
        Token::Separator,
        Token::Move,
        Token::COpen,
        Token::CClose,
        Token::PutMarker,
        Token::Def,
        Token::MClose,
        Token::MOpen,
        Token::Run,
        Token::PickMarker,
        Token::TurnLeft,
        Token::IClose,
        Token::IOpen,
        Token::TurnRight,
        Token::Repeat,
        Token::ROpen,
        Token::RClose,
        Token::WClose,
        Token::WOpen,
        Token::While,
        Token::EClose,
        Token::IfElse,
        Token::EOpen,
        Token::Else,
        Token::If,
        Token::LeftIsClear,
        Token::RightIsClear,
        Token::FrontIsClear,
        Token::MarkersPresent,
        Token::NoMarkersPresent,
        Token::Not,
        Token::R5,
        Token::R2,
        Token::R4,
        Token::R3,
        Token::R6,
        Token::R7,
        Token::R8,
        Token::R9,
        Token::R10,
    ];

    /// The vocabulary id of this token (its row in the models' embedding tables).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The token with vocabulary id `id`, if there is one.
    pub fn from_id(id: u8) -> Option<Token> {
        Token::ALL.get(id as usize).copied()
    }

    /// The canonical text of the token, as it appears in programs and in `word.vocab`.
    pub const fn text(self) -> &'static str {
        match self {
            Token::Start => "<S>",
            Token::End => "</S>",
            Token::Unknown => "<UNK>",
            Token::Separator => "|||",
            Token::Move => "move",
            Token::COpen => "c(",
            Token::CClose => "c)",
            Token::PutMarker => "putMarker",
            Token::Def => "DEF",
            Token::MClose => "m)",
            Token::MOpen => "m(",
            Token::Run => "run",
            Token::PickMarker => "pickMarker",
            Token::TurnLeft => "turnLeft",
            Token::IClose => "i)",
            Token::IOpen => "i(",
            Token::TurnRight => "turnRight",
            Token::Repeat => "REPEAT",
            Token::ROpen => "r(",
            Token::RClose => "r)",
            Token::WClose => "w)",
            Token::WOpen => "w(",
            Token::While => "WHILE",
            Token::EClose => "e)",
            Token::IfElse => "IFELSE",
            Token::EOpen => "e(",
            Token::Else => "ELSE",
            Token::If => "IF",
            Token::LeftIsClear => "leftIsClear",
            Token::RightIsClear => "rightIsClear",
            Token::FrontIsClear => "frontIsClear",
            Token::MarkersPresent => "markersPresent",
            Token::NoMarkersPresent => "noMarkersPresent",
            Token::Not => "not",
            Token::R5 => "R=5",
            Token::R2 => "R=2",
            Token::R4 => "R=4",
            Token::R3 => "R=3",
            Token::R6 => "R=6",
            Token::R7 => "R=7",
            Token::R8 => "R=8",
            Token::R9 => "R=9",
            Token::R10 => "R=10",
        }
    }

    /// The token whose canonical text is exactly `text`.
    pub fn from_text(text: &str) -> Option<Token> {
        let mut lexer = Token::lexer(text);
        match lexer.next() {
            Some(Ok(token)) if lexer.span() == (0..text.len()) => Some(token),
            _ => None,
        }
    }

    /// `true` for `<S>`, `</S>`, `<UNK>` and `|||`, which belong to the vocabulary but never to a
    /// program.
    pub const fn is_special(self) -> bool {
        (self as u8) < 4
    }

    /// The iteration count of a `R=n` token.
    pub const fn repeat_count(self) -> Option<u8> {
        match self {
            Token::R2 => Some(2),
            Token::R3 => Some(3),
            Token::R4 => Some(4),
            Token::R5 => Some(5),
            Token::R6 => Some(6),
            Token::R7 => Some(7),
            Token::R8 => Some(8),
            Token::R9 => Some(9),
            Token::R10 => Some(10),
            _ => None,
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Renders a token sequence in the canonical one-line form (tokens separated by one space).
pub fn tokens_to_string(tokens: &[Token]) -> String {
    let mut out = String::with_capacity(tokens.len() * 8);
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(token.text());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_text_and_lexer_agree() {
        for (id, token) in Token::ALL.iter().enumerate() {
            assert_eq!(token.id() as usize, id);
            assert_eq!(Token::from_id(id as u8), Some(*token));
            assert_eq!(Token::from_text(token.text()), Some(*token), "{token:?}");
        }
        assert_eq!(Token::from_id(43), None);
        assert_eq!(Token::from_text("R=1"), None);
        assert_eq!(Token::from_text("R=11"), None);
        assert_eq!(Token::from_text("movemove"), None);
        assert_eq!(Token::from_text("<s>"), None);
    }
}
