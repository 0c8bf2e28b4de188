//! The lexer: source text to vocabulary tokens with byte spans.
//!
//! Karel programs are token lists: every token is a whitespace-separated word (the reference
//! parser is fed `program.split()`). The logos automaton of [`Token`] recognises the tokens; a word
//! that is not exactly one token (`movemove`, `move)`, `R=11`, `<s>`) is one lexical error spanning
//! the whole word, and lexing goes on after it so that every bad word is reported at once.

use std::ops::Range;

use logos::Logos;

use super::token::Token;

/// A token and the bytes of the source it was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lexeme {
    pub token: Token,
    pub bytes: Range<usize>,
}

/// A word of the source that is not a token of the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    /// The word as messages show it: invisible characters escaped (`\u{feff}`), and a long word
    /// cut after [`SHOWN_CHARS`] characters (marked `…`), so that a message stays short whatever
    /// the input. `bytes` locates the whole word.
    pub word: String,
    pub bytes: Range<usize>,
}

/// Characters of an unknown word that messages show.
pub const SHOWN_CHARS: usize = 40;

/// A word as messages show it (see [`UnknownWord::word`]).
pub fn shown_word(word: &str) -> String {
    let mut shown = String::new();
    for (i, c) in word.chars().enumerate() {
        if i == SHOWN_CHARS {
            shown.push('…');
            break;
        }
        let invisible = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}');
        if invisible {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Lexes a whole source. Returns every token, or every unknown word if there is at least one.
///
/// The logos automaton runs once over the whole source, skipping whitespace; a token that is not
/// a whole word (glued to the text before or after it) or text that is no token marks its word
/// as unknown, and lexing resumes after that word.
pub fn lex(source: &str) -> Result<Vec<Lexeme>, Vec<UnknownWord>> {
    // Tokens are at least two bytes apart; the capacity is capped so that a long word that is no
    // token costs no memory beyond its own bytes.
    let mut lexemes = Vec::with_capacity((source.len() / 4).min(1 << 12));
    let mut unknown: Vec<UnknownWord> = Vec::new();
    let mut offset = 0;
    let mut lexer = Token::lexer(source);
    while let Some(item) = lexer.next() {
        let span = lexer.span();
        let (start, end) = (offset + span.start, offset + span.end);
        let starts_word = start == 0 || ends_with_whitespace(&source[..start]);
        let ends_word = end == source.len() || starts_with_whitespace(&source[end..]);
        match item {
            Ok(token) if starts_word && ends_word => lexemes.push(Lexeme {
                token,
                bytes: start..end,
            }),
            _ => {
                let (word, bytes) = word_around(source, start);
                let resume = bytes.end;
                unknown.push(UnknownWord {
                    word: shown_word(word),
                    bytes,
                });
                offset = resume;
                lexer = Token::lexer(&source[resume..]);
            }
        }
    }
    if unknown.is_empty() {
        Ok(lexemes)
    } else {
        Err(unknown)
    }
}

fn ends_with_whitespace(text: &str) -> bool {
    text.chars().next_back().is_some_and(char::is_whitespace)
}

fn starts_with_whitespace(text: &str) -> bool {
    text.chars().next().is_some_and(char::is_whitespace)
}

/// The whitespace-delimited word containing byte `at`.
fn word_around(source: &str, at: usize) -> (&str, Range<usize>) {
    let start = source[..at]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = source[at..]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(source.len(), |(i, _)| at + i);
    (&source[start..end], start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_any_whitespace() {
        let lexemes = lex("DEF\trun\n m(  move\r\nm)").unwrap();
        let tokens: Vec<Token> = lexemes.iter().map(|l| l.token).collect();
        assert_eq!(
            tokens,
            [
                Token::Def,
                Token::Run,
                Token::MOpen,
                Token::Move,
                Token::MClose
            ]
        );
        assert_eq!(lexemes[3].bytes, 13..17);
    }

    #[test]
    fn unknown_words_are_shown_short_and_visible() {
        let long = "x".repeat(1_000_000);
        let errors = lex(&format!("DEF {long} m)")).unwrap_err();
        assert_eq!(errors[0].word, format!("{}…", "x".repeat(SHOWN_CHARS)));
        assert_eq!(errors[0].bytes, 4..1_000_004);
        let errors = lex("\u{feff}DEF run").unwrap_err();
        assert_eq!(errors[0].word, "\\u{feff}DEF");
        assert_eq!(errors[0].bytes, 0..6);
    }

    #[test]
    fn reports_every_unknown_word_with_its_span() {
        let errors = lex("DEF run m( movemove R=11 m) é").unwrap_err();
        assert_eq!(lex("move)").unwrap_err()[0].word, "move)");
        assert_eq!(lex("x move").unwrap_err()[0].bytes, 0..1);
        assert_eq!(lex("move\u{a0}turnLeft").unwrap().len(), 2);
        let words: Vec<(&str, Range<usize>)> = errors
            .iter()
            .map(|e| (e.word.as_str(), e.bytes.clone()))
            .collect();
        assert_eq!(
            words,
            [("movemove", 11..19), ("R=11", 20..24), ("é", 28..30)]
        );
    }

    #[test]
    fn empty_source_has_no_tokens() {
        assert_eq!(lex(" \n\t").unwrap(), []);
    }
}
