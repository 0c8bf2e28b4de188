//! The lexer: source text to vocabulary tokens with byte spans.
//!
//! Karel programs are token lists: every token is a whitespace-separated word (the reference
//! parser is fed `program.split()`). The lexer therefore cuts the source at whitespace first and
//! asks the logos automaton of [`Token`] to recognise each word as exactly one token. A word that
//! is not a whole token (`movemove`, `R=11`, `<s>`) is one lexical error spanning the whole word;
//! lexing goes on after it so that every bad word is reported at once.

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
    pub word: String,
    pub bytes: Range<usize>,
}

/// The whitespace-separated words of `source` with their byte ranges.
pub fn words(source: &str) -> impl Iterator<Item = (&str, Range<usize>)> {
    let mut rest = source.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = rest.peek() {
            if !c.is_whitespace() {
                break;
            }
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = rest.peek() {
            if c.is_whitespace() {
                break;
            }
            end = i + c.len_utf8();
            rest.next();
        }
        Some((&source[start..end], start..end))
    })
}

/// Lexes a whole source. Returns every token, or every unknown word if there is at least one.
pub fn lex(source: &str) -> Result<Vec<Lexeme>, Vec<UnknownWord>> {
    let mut lexemes = Vec::new();
    let mut unknown = Vec::new();
    for (word, bytes) in words(source) {
        match recognise(word) {
            Some(token) => lexemes.push(Lexeme { token, bytes }),
            None => unknown.push(UnknownWord {
                word: word.to_string(),
                bytes,
            }),
        }
    }
    if unknown.is_empty() {
        Ok(lexemes)
    } else {
        Err(unknown)
    }
}

/// The token that `word` spells out in full, if any.
fn recognise(word: &str) -> Option<Token> {
    let mut lexer = Token::lexer(word);
    match lexer.next() {
        Some(Ok(token)) if lexer.span().end == word.len() => Some(token),
        _ => None,
    }
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
    fn reports_every_unknown_word_with_its_span() {
        let errors = lex("DEF run m( movemove R=11 m) é").unwrap_err();
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
