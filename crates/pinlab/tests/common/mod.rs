//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Runs the pinlab binary: (exit status, stdout, stderr).
pub fn pinlab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pinlab"))
        .args(args)
        .output()
        .expect("run pinlab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A private directory under the system's temporary directory, removed (with
/// everything in it) when the test ends, also when it fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `pinlab-<tag>-<pid>`, created.
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("pinlab-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the tests run as root.
pub fn root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Root and io_uring enabled: live replays on the kernel can run.
pub fn live() -> bool {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim() != "0")
        .unwrap_or(false);
    root() && !disabled
}
