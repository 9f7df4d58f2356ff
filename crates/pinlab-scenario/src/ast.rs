//! Syntax tree of a scenario file.
//!
//! The tree is what the parser saw, with a [`Span`] (1-based line and column) on
//! every name the binding layer may need to reject. It holds no model types:
//! calls and flags are plain strings, checked when the scenario is bound to the
//! model. [`Expr`] has small helpers ([`Expr::as_int`], [`Expr::flag_names`]) and
//! prints back in source syntax.

use std::fmt;

use crate::lexer::{quote_char, quote_str};

/// A source position: 1-based line and column (columns count characters).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioFile {
    /// The name from the `scenario NAME` line.
    pub name: String,
    pub name_span: Span,
    pub title: Option<String>,
    pub cites: Vec<String>,
    /// The `setup { key = value }` entries, in source order.
    pub setup: Vec<SetupItem>,
    /// Every actor (process, child, peer, kthread), in source order.
    pub actors: Vec<Actor>,
    pub expects: Vec<Expect>,
}

impl ScenarioFile {
    /// The actor called `name`, if any.
    pub fn actor(&self, name: &str) -> Option<&Actor> {
        self.actors.iter().find(|a| a.name == name)
    }
}

/// One `key = value` line of the `setup` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupItem {
    pub key: String,
    pub value: Expr,
    /// Position of the key.
    pub span: Span,
}

/// What kind of actor a block declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    /// `process NAME { ... }`: an initial user process.
    Process,
    /// `child NAME of PARENT { ... }`: created by `fork(NAME)` in `PARENT`;
    /// `thread NAME of PARENT { ... }` (`thread` true): a thread of `PARENT`'s
    /// process, started by `pthread_create(NAME)` in `PARENT`.
    Child {
        parent: String,
        parent_span: Span,
        thread: bool,
    },
    /// `peer NAME { ... }`: a remote peer (e.g. an RDMA initiator on another host).
    Peer,
    /// `kthread NAME { ... }`: a kernel thread (flusher, reclaim ...).
    Kthread,
}

impl ActorKind {
    /// The keyword that declares this kind of actor.
    pub fn keyword(&self) -> &'static str {
        match self {
            ActorKind::Process => "process",
            ActorKind::Child { thread: false, .. } => "child",
            ActorKind::Child { thread: true, .. } => "thread",
            ActorKind::Peer => "peer",
            ActorKind::Kthread => "kthread",
        }
    }
}

/// An actor and its statement list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub kind: ActorKind,
    pub body: Vec<Stmt>,
    /// Position of the actor's name.
    pub span: Span,
}

/// One statement: `[bind =] call(args)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    /// The variable the result is bound to, with its position.
    pub bind: Option<(String, Span)>,
    pub call: String,
    pub call_span: Span,
    pub args: Vec<Expr>,
    /// Position of the statement's first token.
    pub span: Span,
}

/// An expression node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprKind {
    /// An integer, size suffixes already applied (`4K` is 4096).
    Int(u64),
    /// A symbolic content tag such as `'P'`.
    Char(char),
    Str(String),
    Bool(bool),
    /// A flag, constant or variable name.
    Ident(String),
    /// `actor.variable`, e.g. `parent.mr`.
    Field(String, String),
    /// A flag union `A|B|C`, flattened (never directly nests another `Or`).
    Or(Vec<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
}

/// An expression with the position of its first token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

impl Expr {
    /// The integer value, folding `+` and `*` over integer literals
    /// (`None` on overflow or when any operand is not an integer).
    pub fn as_int(&self) -> Option<u64> {
        match &self.kind {
            ExprKind::Int(v) => Some(*v),
            ExprKind::Add(a, b) => a.as_int()?.checked_add(b.as_int()?),
            ExprKind::Mul(a, b) => a.as_int()?.checked_mul(b.as_int()?),
            _ => None,
        }
    }

    /// Whether the expression is made of integer literals, `+` and `*` only
    /// (so that [`Expr::as_int`] returning `None` means it overflowed).
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            ExprKind::Int(_) => true,
            ExprKind::Add(a, b) | ExprKind::Mul(a, b) => a.is_constant() && b.is_constant(),
            _ => false,
        }
    }

    /// The flag names of an identifier or a union of identifiers
    /// (`PROT_READ|PROT_WRITE` gives `["PROT_READ", "PROT_WRITE"]`).
    pub fn flag_names(&self) -> Option<Vec<&str>> {
        match &self.kind {
            ExprKind::Ident(name) => Some(vec![name.as_str()]),
            ExprKind::Or(items) => items
                .iter()
                .map(|e| match &e.kind {
                    ExprKind::Ident(name) => Some(name.as_str()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// Binding strength: `|` < `+` < `*` < atoms.
    fn precedence(&self) -> u8 {
        match self.kind {
            ExprKind::Or(_) => 1,
            ExprKind::Add(..) => 2,
            ExprKind::Mul(..) => 3,
            _ => 4,
        }
    }

    /// Writes `self`, parenthesised if it binds more loosely than `min`.
    fn fmt_prec(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Int(v) => write!(f, "{v}"),
            ExprKind::Char(c) => f.write_str(&quote_char(*c)),
            ExprKind::Str(s) => f.write_str(&quote_str(s)),
            ExprKind::Bool(b) => write!(f, "{b}"),
            ExprKind::Ident(name) => f.write_str(name),
            ExprKind::Field(actor, var) => write!(f, "{actor}.{var}"),
            ExprKind::Or(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str("|")?;
                    }
                    e.fmt_prec(f, 2)?;
                }
                Ok(())
            }
            ExprKind::Add(a, b) => {
                a.fmt_prec(f, 2)?;
                f.write_str(" + ")?;
                b.fmt_prec(f, 3)
            }
            ExprKind::Mul(a, b) => {
                a.fmt_prec(f, 3)?;
                f.write_str(" * ")?;
                b.fmt_prec(f, 4)
            }
        }
    }
}

/// How an `expect` line relates the listed outcomes to the reachable set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectKind {
    /// `=`: the reachable outcomes are exactly these.
    Exactly,
    /// `includes`: each listed outcome is reachable.
    Includes,
    /// `excludes`: no listed outcome is reachable.
    Excludes,
}

impl fmt::Display for ExpectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExpectKind::Exactly => "=",
            ExpectKind::Includes => "includes",
            ExpectKind::Excludes => "excludes",
        })
    }
}

/// An outcome as written in an `expect` line: `OK`, `LOST`, `ERR(EFAULT)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeName {
    pub name: String,
    pub arg: Option<String>,
    pub span: Span,
}

impl fmt::Display for OutcomeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(arg) => write!(f, "{}({arg})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One `expect POLICY (=|includes|excludes) OUTCOME, ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The policy names joined by `+`, without blanks (`upstream+bounce_writeback`).
    pub policy: String,
    pub policy_span: Span,
    pub kind: ExpectKind,
    pub outcomes: Vec<OutcomeName>,
    /// Position of the `expect` keyword.
    pub span: Span,
}
