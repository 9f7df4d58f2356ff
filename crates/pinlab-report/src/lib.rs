//! Rendering of pinlab results: the scenario × policy matrix and counterexample
//! timelines, as text and HTML for people and as JSON for scripts.
//!
//! This crate does not depend on the model crates. The caller (the `pinlab`
//! binary) converts explorer results into the plain data structs defined here
//! ([`Matrix`], [`Cell`], [`Timeline`], ...) and picks a renderer:
//!
//! - [`render_text`] / [`render_timeline`]: human-readable text. Deterministic
//!   (the same input gives the same bytes), but the layout may change between
//!   versions; do not parse it.
//! - [`render_html`]: one self-contained HTML page (inline CSS, no JavaScript)
//!   with the matrix as a table and each timeline as an SVG swimlane.
//! - [`to_json`] / [`timeline_json`] (and the `*_string` variants that keep the
//!   contract's field order): a stable contract tagged `"schema_version": 1`.
//!   Fields are only ever added; renaming or removing one bumps the version.
#![forbid(unsafe_code)]

mod html;
mod json;
mod matrix;
mod text;
mod timeline;

pub use html::{render_html, render_html_with, ScenarioInfo, ACTION_CHARS, MAX_FOLIOS};
pub use json::{timeline_json, timeline_json_string, to_json, to_json_string, SCHEMA_VERSION};
pub use matrix::{Cell, Matrix, Verdict};
pub use text::{counts_line, render_text, MAX_WIDTH};
pub use timeline::{render_timeline, FolioView, Timeline, TraceStep, ACTION_WIDTH};
