//! The probe cases and their runner.
//!
//! A case runs `live` (real syscalls) and `model` (pinlab-model under
//! `upstream`), both returning an observation string of the same shape, and
//! passes when they are equal. `live` returns `Err(reason)` to skip. The runner
//! holds an exclusive lock so two probes never run at once, works in a private
//! temporary directory it removes afterwards, and checks that the pin counters
//! balance again after every case.

mod collapse;
mod fork;
mod ksm;
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
    v
}

struct Lock(std::fs::File);

impl Lock {
    fn take() -> Result<Lock, String> {
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

/// Runs the cases whose names contain one of `filters` (all if empty).
pub fn run(filters: &[String]) -> Result<Vec<CaseResult>, String> {
    let _lock = Lock::take()?;
    sys::install_restore_on_signal();
    let dir = std::env::temp_dir().join(format!("pinlab-probe-{}", sys::getpid()));
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
            let model = (c.model)(&env);
            match (c.live)(&env) {
                Ok(live) => {
                    let verdict = if live == model {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    };
                    CaseResult {
                        name: c.name.into(),
                        live: Some(live),
                        model: Some(model),
                        verdict,
                    }
                }
                Err(why) => CaseResult {
                    name: c.name.into(),
                    live: None,
                    model: Some(model),
                    verdict: Verdict::Skip(why),
                },
            }
        };
        // Every pin a case took must be gone (io_uring releases asynchronously).
        if let Ok((a, _)) = sys::pin_counters() {
            sys::wait_balanced(a);
        }
        out.push(r);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}
