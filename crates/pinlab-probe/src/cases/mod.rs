//! The probe cases and their runner.
//!
//! A case runs `live` (real syscalls) and `model` (pinlab-model under
//! `upstream`), both returning an observation string of the same shape, and
//! passes when they are equal. `live` returns `Err(reason)` to skip. The runner
//! holds an exclusive lock so two probes never run at once, works in a private
//! temporary directory it removes afterwards, and checks that the pin counters
//! balance again after every case.

mod bias;
mod buftable;
mod clonebuf;
mod collapse;
mod fork;
mod ksm;
mod memlock;
mod model;
mod pageout;
mod register;
mod seals;
mod shmem_thp;
mod syscalls;
mod uffd;
mod visibility;

use crate::sys;
use crate::{CaseResult, Verdict};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// What a case needs from the environment.
pub struct Env {
    /// Running as root (pagemap PFNs, stat_refresh, nr_hugepages).
    pub root: bool,
    /// Private temporary directory on the root (ext4) filesystem.
    pub dir: PathBuf,
}

/// A case's live run: what the kernel showed, or why the case cannot run here.
pub type LiveFn = Box<dyn Fn(&Env) -> Result<String, String>>;

/// A probe case.
pub struct Case {
    /// Name, shared with a model conformance test.
    pub name: &'static str,
    /// Needs root (changes a system setting or reads PFNs).
    pub root: bool,
    /// The live run.
    pub live: LiveFn,
    /// The model's prediction.
    pub model: Box<dyn Fn(&Env) -> String>,
}

impl Case {
    /// One case.
    pub fn new(
        name: &'static str,
        root: bool,
        live: impl Fn(&Env) -> Result<String, String> + 'static,
        model: impl Fn(&Env) -> String + 'static,
    ) -> Case {
        Case {
            name,
            root,
            live: Box::new(live),
            model: Box::new(model),
        }
    }

    /// One case per row `(name, variant)` of a module's table.
    pub fn table<V: Copy + 'static>(
        rows: &[(&'static str, V)],
        root: fn(V) -> bool,
        live: fn(V, &Env) -> Result<String, String>,
        model: fn(V, &Env) -> String,
    ) -> Vec<Case> {
        rows.iter()
            .map(|&(name, v)| Case::new(name, root(v), move |e| live(v, e), move |e| model(v, e)))
            .collect()
    }
}

/// Reads the pin counters and our VmPin as `what: acq+N rel+N VmPin K kB`,
/// counted from the moment the meter was made.
pub(crate) fn pin_meter(pid: i32) -> Result<impl Fn(&str) -> Result<String, String>, String> {
    let (a0, r0) = sys::pin_counters().map_err(|e| e.to_string())?;
    Ok(move |what: &str| {
        let (a, r) = sys::pin_counters().map_err(|e| e.to_string())?;
        let vm = sys::vm_pin_kb(pid).map_err(|e| e.to_string())?;
        Ok(format!(
            "{what}: acq+{} rel+{} VmPin {vm} kB",
            a - a0,
            r - r0
        ))
    })
}

/// Every case.
pub fn all() -> Vec<Case> {
    let mut v = register::cases();
    v.extend(fork::cases());
    v.extend(visibility::cases());
    v.extend(syscalls::cases());
    v.extend(seals::cases());
    v.extend(uffd::cases());
    v.extend(collapse::cases());
    v.extend(ksm::cases());
    v.extend(pageout::cases());
    v.extend(shmem_thp::cases());
    v.extend(bias::cases());
    v.extend(memlock::cases());
    v.extend(buftable::cases());
    v.extend(clonebuf::cases());
    v
}

pub(crate) struct Lock(std::fs::File);

impl Lock {
    pub(crate) fn take() -> Result<Lock, String> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/pinlab-probe.lock")
            .map_err(|e| format!("/tmp/pinlab-probe.lock: {e}"))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err("another pinlab probe is running (/tmp/pinlab-probe.lock is held)".into());
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: unlocking our own descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Runs case `c` on the live kernel and compares with the model. The cases
/// read global counters (`/proc/vmstat`), so another process pinning pages or
/// splitting THPs at the same time shows up in them. A failing case is
/// therefore run again (up to [`RETRIES`] times): it passes if a run agrees
/// with the model; if the runs disagree with each other, or the counters move
/// while nothing of the probe runs ([`host_noise`]), the case is skipped as
/// `host busy` instead of failed. A case fails only when the kernel
/// consistently disagrees with the model on a quiet host.
fn run_live(c: &Case, env: &Env) -> CaseResult {
    let model = (c.model)(env);
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..=RETRIES {
        match (c.live)(env) {
            Ok(live) if live == model => {
                return CaseResult {
                    name: c.name.into(),
                    live: Some(live),
                    model: Some(model),
                    verdict: Verdict::Pass,
                }
            }
            Ok(live) => {
                if let Ok((a, _)) = sys::pin_counters() {
                    sys::wait_balanced(a);
                }
                seen.push(live);
            }
            Err(why) => {
                return CaseResult {
                    name: c.name.into(),
                    live: None,
                    model: Some(model),
                    verdict: Verdict::Skip(why),
                }
            }
        }
    }
    let live = seen.last().cloned();
    let unstable = seen.windows(2).any(|w| w[0] != w[1]);
    let verdict = match (unstable, host_noise()) {
        (_, Some(noise)) => Verdict::Skip(format!("host busy: {noise}")),
        (true, None) => Verdict::Skip(format!(
            "host busy: {} runs of the case gave different results",
            seen.len()
        )),
        (false, None) => Verdict::Fail,
    };
    CaseResult {
        name: c.name.into(),
        live,
        model: Some(model),
        verdict,
    }
}

/// Times a failing case is run again before it counts as failed.
const RETRIES: usize = 2;

/// The global counters the cases compare, read over an idle window (nothing of
/// the probe runs): a description of what moved, if anything did — foreign
/// pins, THP splits, migrations or collapses by other processes.
pub(crate) fn host_noise() -> Option<String> {
    const FIELDS: [&str; 7] = [
        "nr_foll_pin_acquired",
        "nr_foll_pin_released",
        "thp_split_pmd",
        "thp_split_page",
        "pgmigrate_success",
        "thp_collapse_alloc",
        "pswpout",
    ];
    let read = || -> Vec<Option<u64>> { FIELDS.iter().map(|f| sys::vmstat(f).ok()).collect() };
    let before = read();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = read();
    let moved: Vec<String> = FIELDS
        .iter()
        .zip(before.iter().zip(&after))
        .filter_map(|(f, (b, a))| match (b, a) {
            (Some(b), Some(a)) if a != b => Some(format!("{f} +{} in 200 ms", a.wrapping_sub(*b))),
            _ => None,
        })
        .collect();
    (!moved.is_empty()).then(|| moved.join(", "))
}

/// Runs the cases whose names contain one of `filters` (all if empty).
pub fn run(filters: &[String]) -> Result<Vec<CaseResult>, String> {
    let _lock = Lock::take()?;
    // Undo what a killed earlier run left behind (its journal), then record
    // every change of this run before making it.
    for what in crate::journal::recover() {
        eprintln!("pinlab probe: an interrupted earlier run left the host changed: {what}");
    }
    crate::journal::install_signal_handler();
    let dir = std::env::temp_dir().join(format!("pinlab-probe-{}", sys::getpid()));
    let dir_entry = crate::journal::register(crate::journal::Undo::RemoveTree(dir.clone()))
        .ok_or("probe undo journal full")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let env = Env {
        root: sys::is_root(),
        dir: dir.clone(),
    };
    let mut out = Vec::new();
    for c in all() {
        if !filters.is_empty() && !filters.iter().any(|f| c.name.contains(f.as_str())) {
            continue;
        }
        let r = if c.root && !env.root {
            CaseResult {
                name: c.name.into(),
                live: None,
                model: None,
                verdict: Verdict::Skip("needs root".into()),
            }
        } else if sys::pin_counters().is_err() {
            CaseResult {
                name: c.name.into(),
                live: None,
                model: None,
                verdict: Verdict::Skip(
                    "/proc/sys/vm/stat_refresh or nr_foll_pin_* unavailable (needs root)".into(),
                ),
            }
        } else {
            run_live(&c, &env)
        };
        // Every pin a case took must be gone (io_uring releases asynchronously).
        if let Ok((a, _)) = sys::pin_counters() {
            sys::wait_balanced(a);
        }
        out.push(r);
    }
    let _ = std::fs::remove_dir_all(&dir);
    dir_entry.undo();
    crate::journal::close();
    Ok(out)
}
