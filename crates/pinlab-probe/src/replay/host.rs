//! The host settings a scenario's `setup` stands for, made true for its replay.
//!
//! The model's machine has a THP mode (`setup { thp = ... }`: the
//! `/sys/kernel/mm/transparent_hugepage/enabled` of the host, PMD-size folios
//! only), a `/dev/shm` tmpfs whose `huge=` option is `setup { shmem_huge = ...
//! }`, and an internal shm mount (memfd, shared anonymous memory) that never
//! gets huge folios. The replay makes the host agree before a scenario's traces
//! run, or skips them with the reason:
//!
//! * the THP mode is written to the scenario's (root; recorded in the probe's
//!   undo journal first and restored after the scenario, also after a signal or
//!   a killed run, see [`crate::journal`]); so is the default-size hugetlb
//!   pool ([`HugetlbPool`]) of a scenario that maps hugetlb memory, and a
//!   scenario with `swap = true` gets a private swapfile if the host has no
//!   swap on;
//! * `/dev/shm` paths go to a private tmpfs mounted with the scenario's
//!   `huge=` option (never the host's `/dev/shm` mount, whose options the probe
//!   does not change);
//! * multi-size THP (`hugepages-<size>kB/enabled`, 6.8) and huge shmem folios
//!   (`shmem_enabled`) the model does not have are not switched off (they are
//!   the host's, and a user may rely on them): a scenario whose anonymous
//!   mappings could get such folios is skipped, naming the setting.

use std::path::Path;

use pinlab_model::machine::{ShmemHuge, Thp};
use pinlab_scenario::bind::{Arg, Call, Scenario};

const THP: &str = "/sys/kernel/mm/transparent_hugepage";

/// The bracketed (selected) word of a sysfs choice file such as
/// `always [madvise] never`.
fn selected(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let a = s.find('[')?;
    let b = s[a..].find(']')?;
    Some(s[a + 1..a + b].to_string())
}

/// The sysfs word for the model's THP mode.
pub fn thp_word(t: Thp) -> &'static str {
    match t {
        Thp::Always => "always",
        Thp::Madvise => "madvise",
        Thp::Never => "never",
    }
}

/// The tmpfs `huge=` option for the model's `/dev/shm`.
pub fn shmem_huge_opt(h: ShmemHuge) -> &'static str {
    match h {
        ShmemHuge::Always => "huge=always",
        ShmemHuge::Never => "huge=never",
    }
}

/// Whether `scn` maps anonymous or shmem memory larger than one page (where a
/// host's multi-size THP or huge shmem folio could appear and the model's
/// order-0 pages would not).
fn maps_more_than_a_page(scn: &Scenario) -> bool {
    scn.actors
        .iter()
        .flat_map(|a| &a.body)
        .any(|o| match o.call {
            Call::Mmap { len, .. } | Call::MmapFile { len, .. } => {
                !matches!(len, Arg::Const(l) if l <= pinlab_model::vm::PAGE_SIZE)
            }
            _ => false,
        })
}

/// A host setting the model cannot stand for under `thp` (the mode the replay
/// sets), if `scn` could see it: a multi-size THP enabled for a size other
/// than the PMD size, the PMD size set apart from the global mode, or huge
/// folios for the internal shm mount.
pub fn conflict(scn: &Scenario, thp: Thp) -> Option<String> {
    conflict_in(Path::new(THP), scn, thp)
}

/// [`conflict`] with the sysfs directory `dir` (tests use a fake one).
fn conflict_in(dir: &Path, scn: &Scenario, thp: Thp) -> Option<String> {
    if !maps_more_than_a_page(scn) {
        return None;
    }
    let pmd_kb = std::fs::read_to_string(dir.join("hpage_pmd_size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(2048, |b| b / 1024);
    let global_shmem = selected(&dir.join("shmem_enabled"));
    if let Some(g) = &global_shmem {
        if g != "never" && g != "deny" {
            return Some(format!(
                "{THP}/shmem_enabled is `{g}`: the model's memfd and shared anonymous memory get no huge folios (set it to never to replay)"
            ));
        }
    }
    let entries = std::fs::read_dir(dir).ok()?;
    let mut sizes: Vec<_> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("hugepages-"))
        .collect();
    sizes.sort();
    for name in sizes {
        let kb: Option<u64> = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse().ok());
        let Some(kb) = kb else { continue };
        let sub = dir.join(&name);
        if let Some(w) = selected(&sub.join("enabled")) {
            let ok = if kb == pmd_kb {
                w == "inherit" || w == thp_word(thp)
            } else {
                w == "never" || (w == "inherit" && thp == Thp::Never)
            };
            if !ok {
                return Some(format!(
                    "{THP}/{name}/enabled is `{w}`: the model has only PMD-size ({pmd_kb} kB) THPs, following the global mode (set it to {} to replay)",
                    if kb == pmd_kb { "inherit" } else { "never" }
                ));
            }
        }
        if let Some(w) = selected(&sub.join("shmem_enabled")) {
            let ok = w == "never" || (w == "inherit" && global_shmem.as_deref() != Some("always"));
            if !ok {
                return Some(format!(
                    "{THP}/{name}/shmem_enabled is `{w}`: the model's memfd and shared anonymous memory get no huge folios (set it to never to replay)"
                ));
            }
        }
    }
    None
}

/// The global THP mode set to the scenario's for the guard's life, then
/// restored (also after a signal or a killed run, see [`crate::journal`]).
pub struct ThpMode {
    entry: Option<crate::journal::Entry>,
}

impl ThpMode {
    /// Sets `/sys/kernel/mm/transparent_hugepage/enabled` to `t` (root), if it
    /// is not already; an error names why it could not. A kernel without
    /// THP behaves as `never`: that is an error only for a scenario that
    /// needs THPs (`thp = always`, or `MADV_HUGEPAGE` / `MADV_COLLAPSE` under
    /// `madvise`; [`needs_thp`]).
    pub fn set(t: Thp, needs_thp: bool) -> Result<ThpMode, String> {
        let path = Path::new(THP).join("enabled");
        let want = thp_word(t);
        let Some(old) = selected(&path) else {
            if !needs_thp {
                return Ok(ThpMode { entry: None });
            }
            return Err(format!(
                "{} unreadable: no transparent hugepages",
                path.display()
            ));
        };
        if old == want {
            return Ok(ThpMode { entry: None });
        }
        let entry = crate::journal::register(crate::journal::Undo::Write(path.clone(), old))
            .ok_or("probe undo journal full")?;
        let g = ThpMode { entry: Some(entry) };
        std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
        if selected(&path).as_deref() != Some(want) {
            return Err(format!("{} did not take `{want}`", path.display()));
        }
        Ok(g)
    }
}

impl Drop for ThpMode {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.undo();
        }
    }
}

/// The huge zero page switched off (`use_zero_page` 0) for the guard's life,
/// then restored (also after a signal or a killed run, see
/// [`crate::journal`]): the model has no huge zero page (`[model
/// assumption]`, docs/model.md) — a read fault in a THP-eligible range
/// allocates a THP, as the kernel does with that setting — where the kernel's
/// default maps the huge zero folio, which a later split turns into zero-page
/// PTEs and a write then into order-0 copies.
pub struct HugeZeroPage {
    entry: Option<crate::journal::Entry>,
}

impl HugeZeroPage {
    /// Writes 0 to `use_zero_page` (root) if it is not 0 already; a kernel
    /// without the file has no huge zero page.
    pub fn off() -> Result<HugeZeroPage, String> {
        let path = Path::new(THP).join("use_zero_page");
        let Ok(old) = std::fs::read_to_string(&path) else {
            return Ok(HugeZeroPage { entry: None });
        };
        let old = old.trim().to_string();
        if old == "0" {
            return Ok(HugeZeroPage { entry: None });
        }
        let entry = crate::journal::register(crate::journal::Undo::Write(path.clone(), old))
            .ok_or("probe undo journal full")?;
        let g = HugeZeroPage { entry: Some(entry) };
        std::fs::write(&path, "0").map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(g)
    }
}

impl Drop for HugeZeroPage {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.undo();
        }
    }
}

/// Whether `scn` can get a THP: `thp = always`, or `madvise` with a
/// `MADV_HUGEPAGE` or `MADV_COLLAPSE` in some statement.
pub fn needs_thp(scn: &Scenario) -> bool {
    use pinlab_model::vm::uapi::{MADV_COLLAPSE, MADV_HUGEPAGE};
    match scn.cfg.thp {
        Thp::Always => true,
        Thp::Never => false,
        Thp::Madvise => scn.actors.iter().flat_map(|a| &a.body).any(|o| {
            matches!(o.call, Call::Madvise { advice, .. } if advice == MADV_HUGEPAGE || advice == MADV_COLLAPSE)
        }),
    }
}

/// Whether `scn` maps or creates hugetlb memory (`MAP_HUGETLB`,
/// `memfd_create(MFD_HUGETLB)`).
pub fn uses_hugetlb(scn: &Scenario) -> bool {
    scn.actors
        .iter()
        .flat_map(|a| &a.body)
        .any(|o| match o.call {
            Call::Mmap { flags, .. } => flags & pinlab_model::vm::uapi::MAP_HUGETLB != 0,
            Call::MemfdCreate { hugetlb, .. } => hugetlb,
            _ => false,
        })
}

/// Whether the host has a swap device or file on (`/proc/swaps` lists one).
pub fn swap_active() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1)
}

/// A `/proc/meminfo` field (in pages or kB, as the kernel prints it).
use crate::sys::meminfo;

/// The default-size hugetlb pool set to exactly `n` free pages for the
/// guard's life, then restored (also after a signal or a killed run, see
/// [`crate::journal`]). Refused when the host's pool has pages in use,
/// reserved or surplus (they are someone else's: the model's pool would not
/// match), or when the default huge page size is not the model's 2 MiB.
pub struct HugetlbPool {
    entry: Option<crate::journal::Entry>,
}

impl HugetlbPool {
    /// Sets `/proc/sys/vm/nr_hugepages` to `n` (root).
    pub fn set(n: u64) -> Result<HugetlbPool, String> {
        const PATH: &str = "/proc/sys/vm/nr_hugepages";
        if meminfo("Hugepagesize") != Some(2048) {
            return Err("the default huge page size is not 2048 kB (the model's)".into());
        }
        let total = crate::sys::hugetlb_pool_unused()?;
        // The kernel would take what it can: never more than half of what the
        // host has available.
        let available = meminfo("MemAvailable").unwrap_or(0);
        if n > total && (n - total).saturating_mul(2048) > available / 2 {
            return Err(format!(
                "a pool of {n} huge pages ({} MiB) would take more than half of the host's available memory ({} MiB)",
                n.saturating_mul(2),
                available / 1024
            ));
        }
        let mut g = HugetlbPool { entry: None };
        if total == n {
            return Ok(g);
        }
        let entry =
            crate::journal::register(crate::journal::Undo::Write(PATH.into(), total.to_string()))
                .ok_or("probe undo journal full")?;
        g.entry = Some(entry);
        std::fs::write(PATH, n.to_string()).map_err(|e| format!("{PATH}: {e}"))?;
        let got = meminfo("HugePages_Free").unwrap_or(0);
        if got != n {
            return Err(format!("the pool took {got} free pages, not {n}"));
        }
        Ok(g)
    }
}

impl Drop for HugetlbPool {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            e.undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scn(len: &str) -> Scenario {
        let text = format!(
            "scenario t\nprocess p {{\n    b = mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n}}\n"
        );
        pinlab_scenario::load("t.scn", &text).expect("scenario")
    }

    fn fake(files: &[(&str, &str)]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for (p, v) in files {
            let f = d.0.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, v).unwrap();
        }
        d
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "pinlab-host-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const QUIET: &[(&str, &str)] = &[
        ("hpage_pmd_size", "2097152\n"),
        (
            "shmem_enabled",
            "always within_size advise [never] deny force\n",
        ),
        (
            "hugepages-2048kB/enabled",
            "always [inherit] madvise never\n",
        ),
        (
            "hugepages-2048kB/shmem_enabled",
            "always [inherit] within_size advise never\n",
        ),
        ("hugepages-64kB/enabled", "always inherit madvise [never]\n"),
        (
            "hugepages-64kB/shmem_enabled",
            "always inherit within_size advise [never]\n",
        ),
    ];

    #[test]
    fn a_host_with_pmd_thp_only_has_no_conflict() {
        let d = fake(QUIET);
        assert_eq!(conflict_in(&d.0, &scn("2M"), Thp::Always), None);
        assert_eq!(conflict_in(&d.0, &scn("2M"), Thp::Never), None);
    }

    #[test]
    fn an_enabled_mthp_size_skips_a_scenario_with_large_mappings_only() {
        let mut files = QUIET.to_vec();
        files[4] = ("hugepages-64kB/enabled", "always inherit [madvise] never\n");
        let d = fake(&files);
        let why = conflict_in(&d.0, &scn("2M"), Thp::Madvise).expect("a conflict");
        assert!(why.contains("hugepages-64kB/enabled is `madvise`"), "{why}");
        assert_eq!(conflict_in(&d.0, &scn("4K"), Thp::Madvise), None);
    }

    #[test]
    fn an_inheriting_mthp_size_conflicts_unless_thp_is_never() {
        let mut files = QUIET.to_vec();
        files[4] = ("hugepages-64kB/enabled", "always [inherit] madvise never\n");
        let d = fake(&files);
        assert!(conflict_in(&d.0, &scn("8K"), Thp::Always).is_some());
        assert_eq!(conflict_in(&d.0, &scn("8K"), Thp::Never), None);
    }

    #[test]
    fn the_pmd_size_set_apart_from_the_global_mode_conflicts() {
        let mut files = QUIET.to_vec();
        files[2] = (
            "hugepages-2048kB/enabled",
            "always inherit madvise [never]\n",
        );
        let d = fake(&files);
        assert!(conflict_in(&d.0, &scn("2M"), Thp::Always).is_some());
        assert_eq!(conflict_in(&d.0, &scn("2M"), Thp::Never), None);
    }

    #[test]
    fn huge_internal_shmem_conflicts() {
        let mut files = QUIET.to_vec();
        files[1] = (
            "shmem_enabled",
            "always [within_size] advise never deny force\n",
        );
        let d = fake(&files);
        let why = conflict_in(&d.0, &scn("2M"), Thp::Never).expect("a conflict");
        assert!(why.contains("shmem_enabled is `within_size`"), "{why}");
    }

    #[test]
    fn a_scenario_needs_thps_under_always_or_when_it_asks_for_them() {
        let with = |setup: &str, body: &str| {
            let text = format!(
                "scenario t\n{setup}\nprocess p {{\n    b = mmap(NULL, 2M, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n{body}}}\n"
            );
            pinlab_scenario::load("t.scn", &text).expect("scenario")
        };
        assert!(needs_thp(&with("setup { thp = always }", "")));
        assert!(!needs_thp(&with("", "")));
        assert!(needs_thp(&with("", "    madvise(b, 2M, MADV_HUGEPAGE)\n")));
        assert!(!needs_thp(&with(
            "setup { thp = never }",
            "    madvise(b, 2M, MADV_HUGEPAGE)\n"
        )));
    }

    #[test]
    fn the_selected_word_is_the_bracketed_one() {
        let d = fake(&[("enabled", "always [madvise] never\n")]);
        assert_eq!(selected(&d.0.join("enabled")).as_deref(), Some("madvise"));
        assert_eq!(selected(&d.0.join("missing")), None);
    }
}
