#![forbid(unsafe_code)]
//! The pinlab scenario language.
//!
//! A scenario file names actors (processes, forked children, remote peers,
//! kernel threads), the statements each one runs, the machine setup, and the
//! outcomes expected under each pinning policy. [`parse()`] turns the text into an
//! [`ast::ScenarioFile`] or a [`ParseError`] with file, line and column;
//! [`bind::bind`] checks it against the model's vocabulary; [`model::Bound`]
//! makes it an explorable model; [`run`] explores matrix cells and renders
//! timelines; [`builtin`] holds the built-in scenarios. The language reference
//! is `docs/scenarios.md`.

pub mod ast;
pub mod bind;
pub mod builtin;
pub mod history;
mod lexer;
pub mod model;
pub mod parse;
pub mod run;
pub mod scale;
pub mod trace;
pub mod view;

pub use bind::{load, Scenario};
pub use parse::{parse, ParseError};
pub use run::{run_cell, run_cell_with, timeline, timeline_full, verdict, CellRun, Explorer};
