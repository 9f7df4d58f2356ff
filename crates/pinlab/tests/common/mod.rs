//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::PathBuf;

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
