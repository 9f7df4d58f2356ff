//! The memory bound: the process's resident set size, read from
//! `/proc/self/statm`, and the default bound (half of the memory available when
//! the run starts). Where `/proc` is missing (not Linux) there is no reading and
//! no default bound.

use std::fs;

/// Bytes per page assumed for `statm` (x86-64, arm64 with 4 KiB pages).
const PAGE: u64 = 4096;

/// Resident set size of this process in bytes (`/proc/self/statm`, second field).
pub fn rss_bytes() -> Option<u64> {
    let s = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn mem_available() -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The default memory bound: half of `MemAvailable` (so a run never pushes the
/// machine into swap or the OOM killer), or none if it cannot be read.
pub fn default_max_memory() -> Option<u64> {
    mem_available().map(|b| b / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn readings_are_plausible() {
        let rss = rss_bytes().expect("statm");
        assert!(rss > 0);
        assert!(default_max_memory().expect("meminfo") > 0);
    }
}
