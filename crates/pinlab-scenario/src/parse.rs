//! Recursive-descent parser for scenario files.
//!
//! [`parse`] turns source text into a [`ScenarioFile`] or the first
//! [`ParseError`], formatted `FILE:LINE:COL: message` (usually
//! `expected X, found Y`). Newlines end header lines, setup entries and
//! statements (as does `;`); keywords are only recognised at the start of a
//! top-level item. After the whole file is read, `child X of P` parents are
//! checked. The parser never panics: nesting depth and integer sizes are bounded.

use std::collections::HashMap;
use std::fmt;

use crate::ast::{
    Actor, ActorKind, Expect, ExpectKind, Expr, ExprKind, OutcomeName, ScenarioFile, SetupItem,
    Span, Stmt,
};
use crate::lexer::{lex, Tok, Token};

/// A syntax or structure error, with the position it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses the scenario source `src`; `file` names it in error messages.
pub fn parse(file: &str, src: &str) -> Result<ScenarioFile, ParseError> {
    let mut p = Parser {
        file,
        toks: lex(src),
        pos: 0,
        depth: 0,
        operators: 0,
    };
    p.file_items()
}

/// Top-level item keywords, for messages.
const ITEMS: &str = "scenario, title, cite, setup, process, child, thread, peer, kthread or expect";

/// The words that start a top-level item.
const ITEM_KEYWORDS: [&str; 10] = [
    "scenario", "title", "cite", "setup", "process", "child", "thread", "peer", "kthread", "expect",
];

/// Deepest allowed nesting of parenthesised expressions.
const MAX_DEPTH: u32 = 64;

/// Most `+` and `*` operators in one expression (bounds the tree depth, so
/// printing and dropping an expression cannot overflow the stack).
const MAX_OPERATORS: u32 = 256;

struct Parser<'a> {
    file: &'a str,
    /// Never empty; the last token is `Eof` or `Error`.
    toks: Vec<Token>,
    pos: usize,
    /// Current parenthesis nesting depth in expressions.
    depth: u32,
    /// `+` and `*` operators seen in the current top-level expression.
    operators: u32,
}

type PResult<T> = Result<T, ParseError>;

impl Parser<'_> {
    // ---- token helpers -------------------------------------------------

    fn peek(&self) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.pos.min(last)]
    }

    fn tok(&self) -> &Tok {
        &self.peek().tok
    }

    fn span(&self) -> Span {
        self.peek().span
    }

    /// Consumes and returns the current token (the final token is never passed).
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> Option<Span> {
        if self.tok() == tok {
            Some(self.bump().span)
        } else {
            None
        }
    }

    fn error_at(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: span.line,
            col: span.col,
            message: message.into(),
        }
    }

    /// `"expected WHAT, found <current token>"` at the current token; a lexical
    /// error token reports its own message instead.
    fn unexpected(&self, what: &str) -> ParseError {
        let t = self.peek();
        match &t.tok {
            Tok::Error(msg) => self.error_at(t.span, msg.clone()),
            Tok::Word(w) if w.contains('-') && what_wants_ident(what) => self.error_at(
                t.span,
                format!(
                    "expected {what}, found {} ('-' is only allowed in scenario, \
                     actor and policy names)",
                    t.tok.describe()
                ),
            ),
            tok => self.error_at(t.span, format!("expected {what}, found {}", tok.describe())),
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> PResult<Span> {
        self.eat(tok).ok_or_else(|| self.unexpected(what))
    }

    /// A NAME: `[A-Za-z_][A-Za-z0-9_-]*`.
    fn name(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.tok() {
            Tok::Word(w) => {
                let w = w.clone();
                Ok((w, self.bump().span))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// An IDENT: a NAME without dashes.
    fn ident(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.tok() {
            Tok::Word(w) if !w.contains('-') => {
                let w = w.clone();
                Ok((w, self.bump().span))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.tok(), Tok::Word(w) if w == word)
    }

    /// Whether the current token looks like the start of a top-level item
    /// (a keyword not followed by `(` or `=`): a block's `}` is probably missing.
    fn at_item_keyword(&self) -> bool {
        let Tok::Word(w) = self.tok() else {
            return false;
        };
        let next = self.toks.get(self.pos + 1).map(|t| &t.tok);
        ITEM_KEYWORDS.contains(&w.as_str()) && !matches!(next, Some(Tok::LParen | Tok::Eq))
    }

    fn at_terminator(&self) -> bool {
        matches!(self.tok(), Tok::Newline | Tok::Semi | Tok::Eof)
    }

    fn skip_terminators(&mut self) {
        while matches!(self.tok(), Tok::Newline | Tok::Semi) {
            self.bump();
        }
    }

    /// Requires the end of a line (newline, `;` or end of file) after `after`.
    fn end_of_line(&mut self, after: &str) -> PResult<()> {
        if self.at_terminator() {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(&format!("end of line after {after}")))
        }
    }

    // ---- items ---------------------------------------------------------

    fn file_items(&mut self) -> PResult<ScenarioFile> {
        let mut name: Option<(String, Span)> = None;
        let mut title: Option<String> = None;
        let mut setup: Option<Vec<SetupItem>> = None;
        let mut cites = Vec::new();
        let mut actors: Vec<Actor> = Vec::new();
        let mut expects = Vec::new();
        let mut exact: HashMap<String, Span> = HashMap::new();

        loop {
            self.skip_terminators();
            let (kw, kw_span) = match self.tok() {
                Tok::Eof => break,
                Tok::Word(w) => (w.clone(), self.span()),
                _ => return Err(self.unexpected(&format!("a top-level item ({ITEMS})"))),
            };
            match kw.as_str() {
                "scenario" => {
                    if let Some((_, first)) = &name {
                        return Err(self.error_at(
                            kw_span,
                            format!("duplicate 'scenario' line (first at {first})"),
                        ));
                    }
                    self.bump();
                    name = Some(self.name("scenario name after 'scenario'")?);
                    self.end_of_line("the scenario name")?;
                }
                "title" => {
                    if title.is_some() {
                        return Err(self.error_at(kw_span, "duplicate 'title' line"));
                    }
                    self.bump();
                    title = Some(self.string("title string after 'title'")?);
                    self.end_of_line("the title")?;
                }
                "cite" => {
                    self.bump();
                    cites.push(self.string("citation string after 'cite'")?);
                    self.end_of_line("the citation")?;
                }
                "setup" => {
                    if setup.is_some() {
                        return Err(self.error_at(kw_span, "duplicate 'setup' block"));
                    }
                    self.bump();
                    setup = Some(self.setup_block()?);
                    self.end_of_line("the setup block")?;
                }
                "process" | "child" | "thread" | "peer" | "kthread" => {
                    self.bump();
                    let actor = self.actor(&kw)?;
                    if let Some(first) = actors.iter().find(|a| a.name == actor.name) {
                        return Err(self.error_at(
                            actor.span,
                            format!(
                                "duplicate actor name \"{}\" (first declared as {} at {})",
                                actor.name,
                                first.kind.keyword(),
                                first.span
                            ),
                        ));
                    }
                    actors.push(actor);
                    self.end_of_line("the closing '}'")?;
                }
                "expect" => {
                    self.bump();
                    let e = self.expect_line(kw_span)?;
                    if e.kind == ExpectKind::Exactly {
                        if let Some(first) = exact.get(&e.policy) {
                            return Err(self.error_at(
                                e.policy_span,
                                format!(
                                    "duplicate exact expectation for policy {} (first at {first})",
                                    e.policy
                                ),
                            ));
                        }
                        exact.insert(e.policy.clone(), e.policy_span);
                    }
                    expects.push(e);
                    self.end_of_line("the outcome list")?;
                }
                _ => return Err(self.unexpected(&format!("a top-level item ({ITEMS})"))),
            }
        }

        let Some((name, name_span)) = name else {
            return Err(self.error_at(
                Span { line: 1, col: 1 },
                "missing required 'scenario NAME' line",
            ));
        };
        check_parents(&actors).map_err(|(span, msg)| self.error_at(span, msg))?;
        Ok(ScenarioFile {
            name,
            name_span,
            title,
            cites,
            setup: setup.unwrap_or_default(),
            actors,
            expects,
        })
    }

    fn string(&mut self, what: &str) -> PResult<String> {
        match self.tok() {
            Tok::Str(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `'{' (IDENT '=' expr)* '}'` after the `setup` keyword.
    fn setup_block(&mut self) -> PResult<Vec<SetupItem>> {
        let open = self.expect(&Tok::LBrace, "'{' after 'setup'")?;
        let mut items: Vec<SetupItem> = Vec::new();
        loop {
            self.skip_terminators();
            if self.eat(&Tok::RBrace).is_some() {
                return Ok(items);
            }
            if matches!(self.tok(), Tok::Eof) || self.at_item_keyword() {
                return Err(self.unclosed("setup block", open));
            }
            let (key, span) = self.ident("setup key or '}'")?;
            if let Some(first) = items.iter().find(|i| i.key == key) {
                return Err(self.error_at(
                    span,
                    format!("duplicate setup key \"{key}\" (first at {})", first.span),
                ));
            }
            self.expect(&Tok::Eq, &format!("'=' after setup key \"{key}\""))?;
            let value = self.expr()?;
            self.stmt_end("setup entry")?;
            items.push(SetupItem { key, value, span });
        }
    }

    /// After a statement or setup entry: newline, `;`, or a (not consumed) `}`.
    fn stmt_end(&mut self, what: &str) -> PResult<()> {
        match self.tok() {
            Tok::Newline | Tok::Semi => {
                self.bump();
                Ok(())
            }
            Tok::RBrace => Ok(()),
            _ => Err(self.unexpected(&format!("newline, ';' or '}}' after {what}"))),
        }
    }

    /// The error for a block still open at end of file.
    fn unclosed(&self, what: &str, open: Span) -> ParseError {
        self.unexpected(&format!("'}}' closing the {what} opened at {open}"))
    }

    /// An actor block, after its keyword.
    fn actor(&mut self, kw: &str) -> PResult<Actor> {
        let (name, span) = self.name(&format!("actor name after '{kw}'"))?;
        let kind = match kw {
            "process" => ActorKind::Process,
            "peer" => ActorKind::Peer,
            "kthread" => ActorKind::Kthread,
            _ => {
                if !self.at_word("of") {
                    return Err(self.unexpected(&format!("'of' after '{kw} {name}'")));
                }
                self.bump();
                let (parent, parent_span) =
                    self.name(&format!("parent process name after '{kw} {name} of'"))?;
                ActorKind::Child {
                    parent,
                    parent_span,
                    thread: kw == "thread",
                }
            }
        };
        let open = self.expect(
            &Tok::LBrace,
            &format!("'{{' opening the body of {kw} {name}"),
        )?;
        let mut body = Vec::new();
        loop {
            self.skip_terminators();
            if self.eat(&Tok::RBrace).is_some() {
                break;
            }
            if matches!(self.tok(), Tok::Eof) || self.at_item_keyword() {
                return Err(self.unclosed(&format!("body of {kw} {name}"), open));
            }
            body.push(self.stmt()?);
            self.stmt_end("statement")?;
        }
        Ok(Actor {
            name,
            kind,
            body,
            span,
        })
    }

    /// `[IDENT '='] IDENT '(' [expr (',' expr)*] ')'`.
    fn stmt(&mut self) -> PResult<Stmt> {
        let span = self.span();
        let (first, first_span) = self.ident("statement or '}'")?;
        let (bind, call, call_span) = if self.eat(&Tok::Eq).is_some() {
            let (call, call_span) = self.ident(&format!("call after '{first} ='"))?;
            (Some((first, first_span)), call, call_span)
        } else {
            (None, first, first_span)
        };
        self.expect(&Tok::LParen, &format!("'(' after \"{call}\""))?;
        let mut args = Vec::new();
        if self.eat(&Tok::RParen).is_none() {
            if !starts_expr(self.tok()) {
                return Err(self.unexpected("argument or ')'"));
            }
            loop {
                args.push(self.expr()?);
                if self.eat(&Tok::RParen).is_some() {
                    break;
                }
                self.expect(&Tok::Comma, "')' or ',' after argument")?;
                if !starts_expr(self.tok()) {
                    return Err(self.unexpected("argument after ','"));
                }
            }
        }
        Ok(Stmt {
            bind,
            call,
            call_span,
            args,
            span,
        })
    }

    /// `POLICY ('=' | 'includes' | 'excludes') OUTCOME (',' OUTCOME)*` after `expect`.
    /// A policy name; a release `vX.Y` lexes as a word, a dot and an integer.
    fn policy_name(&mut self, what: &str) -> PResult<(String, Span)> {
        let (mut name, span) = self.name(what)?;
        if self.tok() == &Tok::Dot {
            self.bump();
            match self.tok().clone() {
                Tok::Int { text, .. } => {
                    self.bump();
                    name.push('.');
                    name.push_str(&text);
                }
                _ => return Err(self.unexpected(&format!("a minor version after '{name}.'"))),
            }
        }
        Ok((name, span))
    }

    fn expect_line(&mut self, span: Span) -> PResult<Expect> {
        let (mut policy, policy_span) = self.policy_name("policy name after 'expect'")?;
        while self.eat(&Tok::Plus).is_some() {
            let (more, _) = self.policy_name("policy name after '+'")?;
            policy.push('+');
            policy.push_str(&more);
        }
        let kind = match self.tok() {
            Tok::Eq => ExpectKind::Exactly,
            Tok::Word(w) if w == "includes" => ExpectKind::Includes,
            Tok::Word(w) if w == "excludes" => ExpectKind::Excludes,
            _ => {
                return Err(self.unexpected(&format!(
                    "'=', 'includes' or 'excludes' after policy {policy}"
                )))
            }
        };
        self.bump();
        let mut outcomes = vec![self.outcome(&format!("outcome after '{kind}'"))?];
        while self.eat(&Tok::Comma).is_some() {
            outcomes.push(self.outcome("outcome after ','")?);
        }
        Ok(Expect {
            policy,
            policy_span,
            kind,
            outcomes,
            span,
        })
    }

    /// `IDENT [ '(' IDENT ')' ]`.
    fn outcome(&mut self, what: &str) -> PResult<OutcomeName> {
        let (name, span) = self.ident(what)?;
        let arg = if self.eat(&Tok::LParen).is_some() {
            let (arg, _) =
                self.ident(&format!("argument of outcome {name}, e.g. {name}(EFAULT)"))?;
            self.expect(&Tok::RParen, &format!("')' after outcome {name}({arg}"))?;
            Some(arg)
        } else {
            None
        };
        Ok(OutcomeName { name, arg, span })
    }

    // ---- expressions ---------------------------------------------------

    /// A whole expression (an argument or a setup value).
    fn expr(&mut self) -> PResult<Expr> {
        self.operators = 0;
        self.union()
    }

    /// Counts one `+` or `*` against [`MAX_OPERATORS`].
    fn count_operator(&mut self, at: Span) -> PResult<()> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(self.error_at(
                at,
                format!("expression too long (more than {MAX_OPERATORS} '+' and '*' operators)"),
            ));
        }
        Ok(())
    }

    /// `sum ('|' sum)*`, flattened into one `Or`.
    fn union(&mut self) -> PResult<Expr> {
        let first = self.sum()?;
        if !matches!(self.tok(), Tok::Pipe) {
            return Ok(first);
        }
        let span = first.span;
        let mut items = Vec::new();
        let mut push = |e: Expr| match e.kind {
            ExprKind::Or(inner) => items.extend(inner),
            _ => items.push(e),
        };
        push(first);
        while self.eat(&Tok::Pipe).is_some() {
            push(self.sum()?);
        }
        Ok(Expr {
            kind: ExprKind::Or(items),
            span,
        })
    }

    /// `product ('+' product)*`, left-associative.
    fn sum(&mut self) -> PResult<Expr> {
        let mut e = self.product()?;
        while let Some(at) = self.eat(&Tok::Plus) {
            self.count_operator(at)?;
            let rhs = self.product()?;
            let span = e.span;
            e = Expr {
                kind: ExprKind::Add(Box::new(e), Box::new(rhs)),
                span,
            };
        }
        Ok(e)
    }

    /// `atom ('*' atom)*`, left-associative.
    fn product(&mut self) -> PResult<Expr> {
        let mut e = self.atom()?;
        while let Some(at) = self.eat(&Tok::Star) {
            self.count_operator(at)?;
            let rhs = self.atom()?;
            let span = e.span;
            e = Expr {
                kind: ExprKind::Mul(Box::new(e), Box::new(rhs)),
                span,
            };
        }
        Ok(e)
    }

    fn atom(&mut self) -> PResult<Expr> {
        let span = self.span();
        let kind = match self.tok().clone() {
            Tok::Int { value, .. } => ExprKind::Int(value),
            Tok::Char(c) => ExprKind::Char(c),
            Tok::Str(s) => ExprKind::Str(s),
            Tok::Word(w) if !w.contains('-') => {
                self.bump();
                if w == "true" || w == "false" {
                    return Ok(Expr {
                        kind: ExprKind::Bool(w == "true"),
                        span,
                    });
                }
                if self.eat(&Tok::Dot).is_some() {
                    let (field, _) = self.ident(&format!("variable name after '{w}.'"))?;
                    return Ok(Expr {
                        kind: ExprKind::Field(w, field),
                        span,
                    });
                }
                return Ok(Expr {
                    kind: ExprKind::Ident(w),
                    span,
                });
            }
            Tok::LParen => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.error_at(
                        span,
                        format!("expression nested too deeply (more than {MAX_DEPTH} parentheses)"),
                    ));
                }
                self.bump();
                self.depth += 1;
                let inner = self.union();
                self.depth -= 1;
                let inner = inner?;
                self.expect(&Tok::RParen, "')' closing the parenthesised expression")?;
                return Ok(inner);
            }
            _ => return Err(self.unexpected("expression")),
        };
        self.bump();
        Ok(Expr { kind, span })
    }
}

/// Whether `what` (an expectation) asks for an identifier, so a dashed name
/// deserves the hint that dashes are not allowed there.
fn what_wants_ident(what: &str) -> bool {
    !what.contains("actor name")
        && !what.contains("scenario name")
        && !what.contains("policy name")
        && !what.contains("parent process name")
}

/// Whether `tok` can start an expression.
fn starts_expr(tok: &Tok) -> bool {
    match tok {
        Tok::Int { .. } | Tok::Char(_) | Tok::Str(_) | Tok::LParen => true,
        Tok::Word(w) => !w.contains('-'),
        _ => false,
    }
}

/// Checks every `child X of P`: `P` is a declared process, child or thread
/// (a thread that forks), every `thread X of P`: `P` is a process or child,
/// and the `of` chain leads to a process (no cycle).
fn check_parents(actors: &[Actor]) -> Result<(), (Span, String)> {
    let find = |name: &str| actors.iter().find(|a| a.name == name);
    let children = actors.iter().filter_map(|a| match &a.kind {
        ActorKind::Child {
            parent,
            parent_span,
            ..
        } => Some((a, parent, *parent_span)),
        _ => None,
    });
    for (actor, parent, span) in children.clone() {
        match find(parent).map(|p| &p.kind) {
            None => {
                return Err((
                    span,
                    format!(
                        "unknown parent \"{parent}\" of {} {}: no process or child of that name",
                        actor.kind.keyword(),
                        actor.name
                    ),
                ))
            }
            // A thread may fork (the child copies the whole process), but a
            // thread's threads are its process's: `thread b of <process>`.
            Some(ActorKind::Child {
                thread: true,
                parent: up,
                ..
            }) if matches!(actor.kind, ActorKind::Child { thread: true, .. }) => {
                return Err((
                    span,
                    format!(
                        "parent \"{parent}\" of thread {} is a thread; only a process or child can create threads (a thread's threads belong to its process: `thread {} of {up}`)",
                        actor.name, actor.name
                    ),
                ))
            }
            Some(k @ (ActorKind::Peer | ActorKind::Kthread)) => {
                return Err((
                    span,
                    format!(
                        "parent \"{parent}\" of {} {} is a {}; only a process, child or thread can fork, and only a process or child can create threads",
                        actor.kind.keyword(),
                        actor.name,
                        k.keyword()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    // Every parent exists and is a process or child: follow each chain upwards;
    // more steps than there are actors means a cycle.
    for (actor, parent, span) in children {
        let mut cur = parent;
        let mut steps = 0;
        while let Some(ActorKind::Child { parent: up, .. }) = find(cur).map(|a| &a.kind) {
            steps += 1;
            if steps > actors.len() {
                return Err((
                    span,
                    format!(
                        "child {} does not descend from any process: its 'of' chain is a cycle",
                        actor.name
                    ),
                ));
            }
            cur = up;
        }
    }
    Ok(())
}
