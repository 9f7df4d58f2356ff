//! pinlab-probe: the model's conformance cases run against the live kernel.
//!
//! Each `Case` has the name of a model conformance case and two sides that
//! produce the same kind of observation string (vmstat deltas, an errno, whether
//! a PFN changed, what data became visible): `live` does it with real syscalls on
//! the running kernel, `model` computes it with `pinlab-model` under the
//! `upstream` policy. They PASS when the strings are equal. The probe touches only
//! what it creates (a private temporary directory, its own mappings, rings and
//! memfds), restores every system setting it changes (hugetlb pool size), releases
//! every pin, and skips a case — with the reason — when a facility or privilege
//! is missing. This is the only crate that uses `unsafe` (raw syscalls).

#[cfg(target_os = "linux")]
pub mod cases;
#[cfg(target_os = "linux")]
pub mod journal;
#[cfg(target_os = "linux")]
pub mod replay;
pub mod sys;

/// The verdict of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Live and model agree.
    Pass,
    /// They disagree.
    Fail,
    /// The case could not run here.
    Skip(String),
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name (shared with the model conformance test).
    pub name: String,
    /// What the live kernel showed.
    pub live: Option<String>,
    /// What the model predicts under `upstream`.
    pub model: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Whether the probe can run on this system.
pub fn supported() -> bool {
    cfg!(target_os = "linux")
}

/// Runs every case whose name contains one of `filters` (all if empty).
#[cfg(target_os = "linux")]
pub fn run(filters: &[String]) -> Result<Vec<CaseResult>, String> {
    cases::run(filters)
}

/// Runs every case whose name contains one of `filters` (all if empty).
#[cfg(not(target_os = "linux"))]
pub fn run(_filters: &[String]) -> Result<Vec<CaseResult>, String> {
    Err("pinlab probe is only supported on Linux".into())
}

/// Names of all cases.
#[cfg(target_os = "linux")]
pub fn case_names() -> Vec<&'static str> {
    cases::all().iter().map(|c| c.name).collect()
}

/// Names of all cases.
#[cfg(not(target_os = "linux"))]
pub fn case_names() -> Vec<&'static str> {
    Vec::new()
}
