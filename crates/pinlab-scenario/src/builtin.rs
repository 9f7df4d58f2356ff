//! The built-in scenarios, embedded from `scenarios/*.scn` at build time.

use crate::bind::{load, Scenario};
use crate::parse::ParseError;

/// A built-in scenario file.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Scenario name.
    pub name: &'static str,
    /// Path relative to the repository root.
    pub file: &'static str,
    /// File contents.
    pub text: &'static str,
}

macro_rules! builtins {
    ($($name:literal),* $(,)?) => {
        /// Every built-in scenario, in matrix order.
        pub const BUILTINS: &[Builtin] = &[$(Builtin {
            name: $name,
            file: concat!("scenarios/", $name, ".scn"),
            text: include_str!(concat!("../../../scenarios/", $name, ".scn")),
        }),*];
    };
}

builtins!(
    "fork-after-pin",
    "fork-after-pin-dontfork",
    "fork-after-iouring-pin",
    "gup-fast-vs-fork",
    "vmsplice-cow-leak",
    "ro-pin-cow",
    "pin-get-mix",
    "bias-false-positive",
    "rdma-pagecache-truncate",
    "rdma-pagecache-punch",
    "rdma-pagecache-writeback",
    "dio-truncate-race",
    "dio-write-fork",
    "madv-free-dio-read",
    "gupexcl-two-pinners",
    "unpin-dirty-vs-writeback",
    "pwrite-race-write-at-eof",
    "rdma-fsdax-truncate",
    "dio-fsdax-truncate",
    "mr-passed-owner-exits",
    "lease-release-while-pinned",
    "devdax-mr",
    "lease-holder-layout-change",
    "odp-munmap",
    "odp-truncate",
    "odp-writeback",
    "odp-fork",
    "odp-fsdax-truncate",
    "odp-driver-missing-retry",
);

/// Loads a built-in scenario by name.
pub fn builtin(name: &str) -> Option<Result<Scenario, ParseError>> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .map(|b| load(b.file, b.text))
}

/// Loads every built-in scenario.
pub fn all() -> Result<Vec<Scenario>, ParseError> {
    BUILTINS.iter().map(|b| load(b.file, b.text)).collect()
}
