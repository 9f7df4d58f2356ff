//! Tokeniser for the scenario language.
//!
//! [`lex`] turns the source into a flat token list ending in [`Tok::Eof`]. Newlines
//! are tokens (they end statements); blanks, tabs, `\r` and `#` comments are
//! skipped. The first lexical error (unknown character, unterminated literal,
//! integer overflow ...) becomes a final [`Tok::Error`] token instead of aborting
//! at once, so the parser reports whichever error comes first in the source.
//! Columns count characters, not bytes, starting at 1; a tab is one column.

use crate::ast::Span;

/// One token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// `[A-Za-z_][A-Za-z0-9_-]*`: keywords, identifiers and dashed names alike.
    Word(String),
    /// An integer literal; `text` is the source spelling (for messages).
    Int {
        value: u64,
        text: String,
    },
    Char(char),
    Str(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Eq,
    Pipe,
    Plus,
    Star,
    Dot,
    Semi,
    Newline,
    Eof,
    /// A lexical error; always the last token.
    Error(String),
}

/// A token and the position of its first character.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Tok {
    /// How the token is named in "found ..." messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) if w.contains('-') => format!("name \"{w}\""),
            Tok::Word(w) => format!("identifier \"{w}\""),
            Tok::Int { text, .. } => format!("integer {text}"),
            Tok::Char(c) => format!("character {}", quote_char(*c)),
            Tok::Str(s) => {
                let mut short: String = s.chars().take(24).collect();
                if short.len() < s.len() {
                    short.push_str("...");
                }
                format!("string {}", quote_str(&short))
            }
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Eq => "'='".into(),
            Tok::Pipe => "'|'".into(),
            Tok::Plus => "'+'".into(),
            Tok::Star => "'*'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Semi => "';'".into(),
            Tok::Newline => "newline".into(),
            Tok::Eof => "end of file".into(),
            Tok::Error(msg) => msg.clone(),
        }
    }
}

/// `'c'` with `\'` and `\\` escaped, as written in source.
pub(crate) fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '\\' => "'\\\\'".into(),
        c => format!("'{c}'"),
    }
}

/// `"s"` with `\"` and `\\` escaped, as written in source.
pub(crate) fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    out: Vec<Token>,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.pos + 1).copied()
    }

    fn span(&self) -> Span {
        Span {
            line: self.line,
            col: self.col,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn push(&mut self, tok: Tok, span: Span) {
        self.out.push(Token { tok, span });
    }

    /// Lexes one token; `Err` is a lexical error message at the given span.
    fn next_token(&mut self) -> Result<bool, (String, Span)> {
        // Skip blanks and comments.
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let start = self.span();
        let Some(c) = self.peek() else {
            self.push(Tok::Eof, start);
            return Ok(false);
        };
        let punct = match c {
            '\n' => Some(Tok::Newline),
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '=' => Some(Tok::Eq),
            '|' => Some(Tok::Pipe),
            '+' => Some(Tok::Plus),
            '*' => Some(Tok::Star),
            '.' => Some(Tok::Dot),
            ';' => Some(Tok::Semi),
            _ => None,
        };
        if let Some(tok) = punct {
            self.bump();
            self.push(tok, start);
            return Ok(true);
        }
        let tok = if is_word_start(c) {
            let mut w = String::new();
            while let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
                w.push(c);
                self.bump();
            }
            Tok::Word(w)
        } else if c.is_ascii_digit() {
            self.int(start)?
        } else if c == '"' {
            Tok::Str(self.string(start)?)
        } else if c == '\'' {
            Tok::Char(self.char_lit(start)?)
        } else {
            let shown = if c.is_control() || c.is_whitespace() {
                format!("{:?}", c)
            } else {
                format!("'{c}'")
            };
            return Err((format!("unknown character {shown}"), start));
        };
        self.push(tok, start);
        Ok(true)
    }

    fn int(&mut self, start: Span) -> Result<Tok, (String, Span)> {
        let overflow = || ("integer literal out of range".to_string(), start);
        let mut text = String::new();
        let (radix, digits_start) = if self.peek() == Some('0') && self.peek2() == Some('x') {
            text.push_str("0x");
            self.bump();
            self.bump();
            (16, 2)
        } else {
            (10, 0)
        };
        while let Some(c) = self.peek().filter(|c| c.is_digit(radix)) {
            text.push(c);
            self.bump();
        }
        if text.len() == digits_start {
            return Err(("expected hex digits after '0x'".into(), start));
        }
        let mut value =
            u64::from_str_radix(&text[digits_start..], radix).map_err(|_| overflow())?;
        let mult: u64 = match self.peek() {
            Some('K') => 1 << 10,
            Some('M') => 1 << 20,
            Some('G') => 1 << 30,
            _ => 1,
        };
        if mult != 1 {
            text.extend(self.bump());
            value = value.checked_mul(mult).ok_or_else(overflow)?;
        }
        if let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
            return Err((
                format!(
                    "invalid integer literal: unexpected '{c}' after {text} \
                     (size suffixes are K, M and G)"
                ),
                start,
            ));
        }
        Ok(Tok::Int { value, text })
    }

    fn string(&mut self, start: Span) -> Result<String, (String, Span)> {
        self.bump(); // opening quote
        let mut s = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    return Err(("unterminated string literal".into(), start));
                }
                Some('"') => {
                    self.bump();
                    return Ok(s);
                }
                Some('\\') => {
                    let at = self.span();
                    self.bump();
                    match self.peek() {
                        Some(c @ ('"' | '\\')) => {
                            s.push(c);
                            self.bump();
                        }
                        None | Some('\n') => {
                            return Err(("unterminated string literal".into(), start));
                        }
                        Some(c) => {
                            return Err((
                                format!(
                                    "unknown escape '\\{c}' in string (only \\\" and \\\\ are allowed)"
                                ),
                                at,
                            ));
                        }
                    }
                }
                Some(c) => {
                    s.push(c);
                    self.bump();
                }
            }
        }
    }

    fn char_lit(&mut self, start: Span) -> Result<char, (String, Span)> {
        let unterminated = || ("unterminated character literal".to_string(), start);
        self.bump(); // opening quote
        let c = match self.peek() {
            None | Some('\n') => return Err(unterminated()),
            Some('\'') => return Err(("empty character literal".into(), start)),
            Some('\\') => {
                self.bump();
                match self.peek() {
                    Some(c @ ('\'' | '\\')) => c,
                    None | Some('\n') => return Err(unterminated()),
                    Some(c) => {
                        return Err((
                            format!(
                                "unknown escape '\\{c}' in character literal (only \\' and \\\\ are allowed)"
                            ),
                            start,
                        ))
                    }
                }
            }
            Some(c) => c,
        };
        self.bump();
        if self.peek() != Some('\'') {
            return Err((
                "unterminated character literal (a character literal holds exactly one character)"
                    .into(),
                start,
            ));
        }
        self.bump();
        Ok(c)
    }
}

/// Tokenises `src`. The result always ends in [`Tok::Eof`] or [`Tok::Error`].
pub(crate) fn lex(src: &str) -> Vec<Token> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut lx = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        out: Vec::new(),
    };
    loop {
        match lx.next_token() {
            Ok(true) => {}
            Ok(false) => break,
            Err((msg, span)) => {
                lx.push(Tok::Error(msg), span);
                break;
            }
        }
    }
    lx.out
}
