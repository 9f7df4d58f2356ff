//! Outcome oracles: classify a finished (or stuck) run.
//!
//! `ERR(errno)` for every syscall or registration that failed; `OOPS` for any
//! BUG or WARN condition; `LEAK_OTHER` when a process saw (or still maps) data
//! meant for another process; `STALE` when a device read data older than the
//! owner's view; `LOST` when the last acknowledged write to a target is not what
//! its owner sees at the end (and what it sees is not someone else's data, which is
//! a leak instead); `HANG` when an actor is blocked forever in the kernel;
//! `STUCK` when the scenario's own synchronisation can never go on (a harness
//! deadlock, not a kernel outcome); `OK` when none apply.

use crate::errno::Errno;
use crate::fs::FsKind;
use crate::ghost::Target;
use crate::machine::Machine;
use crate::policy::Policy;
use crate::vm::Mapping;
use std::fmt;

/// One outcome label.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Outcome {
    /// Nothing went wrong.
    Ok,
    /// A syscall or registration failed (reported, not a bug).
    Err(Errno),
    /// A device read older data than the owner sees.
    Stale,
    /// Acknowledged data never reached the place its writer intended.
    Lost,
    /// Data meant for one process or file reached another.
    LeakOther,
    /// Filesystem state inconsistent.
    FsCorrupt,
    /// A kernel BUG or WARN condition.
    Oops,
    /// An actor blocked forever in the kernel (a wait no step can end).
    Hang,
    /// The scenario's own synchronisation can never go on: an actor waits for
    /// an actor that never runs or finishes, or a peer for a variable that is
    /// never set. A property of the scenario, not of the kernel.
    Stuck,
    /// Memory or space that cannot be reclaimed while a pin lasts.
    Dos,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("OK"),
            Outcome::Err(e) => write!(f, "ERR({e})"),
            Outcome::Stale => f.write_str("STALE"),
            Outcome::Lost => f.write_str("LOST"),
            Outcome::LeakOther => f.write_str("LEAK_OTHER"),
            Outcome::FsCorrupt => f.write_str("FS_CORRUPT"),
            Outcome::Oops => f.write_str("OOPS"),
            Outcome::Hang => f.write_str("HANG"),
            Outcome::Stuck => f.write_str("STUCK"),
            Outcome::Dos => f.write_str("DOS"),
        }
    }
}

impl Outcome {
    /// Parses `OK`, `ERR(EFAULT)`, `LOST`, ...
    pub fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "OK" => Outcome::Ok,
            "STALE" => Outcome::Stale,
            "LOST" => Outcome::Lost,
            "LEAK_OTHER" => Outcome::LeakOther,
            "FS_CORRUPT" => Outcome::FsCorrupt,
            "OOPS" => Outcome::Oops,
            "HANG" => Outcome::Hang,
            "STUCK" => Outcome::Stuck,
            "DOS" => Outcome::Dos,
            _ => {
                let e = s.strip_prefix("ERR(")?.strip_suffix(')')?;
                Outcome::Err(Errno::from_name(e)?)
            }
        })
    }
}

impl Machine {
    /// DOS, judged from the end state and the ghost's history: space or memory
    /// that a pin (or its flag) still keeps after its owner let go — a block of
    /// a file page that its owner truncated or punched away (and did not write
    /// or grow the file over again) still allocated; a page-cache folio whose
    /// `PG_dma_pinned` flag outlives every pin, so reclaim skips it forever.
    /// `[model assumption]` Only blocks count as held space: memory filesystems
    /// (tmpfs) have none, and their pages a hole gets again cannot be told from
    /// kept ones.
    fn dos_held(&self) -> Vec<String> {
        let mut v = Vec::new();
        for &(ino, idx) in self.ghost.released.iter() {
            let Some(i) = self.fs.inodes.get(ino as usize) else {
                continue;
            };
            // Space is blocks: a page-cache page the same index gets again
            // (a read of the hole) is not the released one.
            if i.blocks.contains_key(&idx) {
                v.push(format!(
                    "truncate/punch of {} returned 0 but the block of page {idx} stays allocated",
                    i.name
                ));
            }
        }
        for i in self.fs.inodes.iter() {
            for (&idx, &pfn) in &i.cache {
                if self.frames.get(pfn).is_some_and(|f| f.dma_pinned_flag)
                    && !self.gupexcl_pinned(pfn)
                {
                    v.push(format!(
                        "page {idx} of {} stays unreclaimable after unpin: PG_dma_pinned is never cleared",
                        i.name
                    ));
                }
            }
        }
        v
    }

    /// Judges the current state as the end of a run. Returns each outcome with
    /// the reasons behind it; `hung` names the actors blocked forever, if any.
    pub fn judge(&self, hung: &[String]) -> Vec<(Outcome, Vec<String>)> {
        self.judge_with(None, hung)
    }

    /// [`judge`](Self::judge) with the policy in force: file data is judged as a
    /// read of the file returns it after a final `sync` and `drop_caches` under
    /// that policy (a BUG or WARN that final writeback hits is an OOPS too).
    pub fn judge_with(
        &self,
        policy: Option<&Policy>,
        hung: &[String],
    ) -> Vec<(Outcome, Vec<String>)> {
        self.judge_end(policy, hung, &[])
    }

    /// The one place a finished or stuck run is judged (see the module docs):
    /// `hung` names the actors blocked forever in the kernel (HANG), `stuck`
    /// those blocked by the scenario's own synchronisation (STUCK).
    pub fn judge_end(
        &self,
        policy: Option<&Policy>,
        hung: &[String],
        stuck: &[String],
    ) -> Vec<(Outcome, Vec<String>)> {
        let mut out: Vec<(Outcome, Vec<String>)> = Vec::new();
        for e in self.ghost.errors.iter() {
            out.push((Outcome::Err(*e), vec![format!("a call failed with {e}")]));
        }
        // The end of a run: a final `sync` and `drop_caches` under the policy (on
        // a copy), unless a BUG already stopped the machine. Everything the
        // ghost observed there counts as much as what it observed during the run
        // (the observation sets only grow), so a scenario that syncs itself and
        // one that leaves it to the end are judged alike.
        let settled = match policy {
            Some(p) if !self.ghost.bug && self.fs.inodes.iter().any(|i| i.kind == FsKind::Ext4) => {
                let mut c = self.clone();
                c.sync_fs(p, None);
                if !c.ghost.bug {
                    c.drop_caches();
                }
                Some(c)
            }
            _ => None,
        };
        let view = settled.as_ref().unwrap_or(self);
        // After a kernel BUG (during the run or at the final sync) the page cache
        // dies with the machine: a file holds what its storage holds.
        let crashed = view.ghost.bug;
        let mut oops: Vec<String> = self.ghost.oops.iter().cloned().collect();
        for o in view.ghost.oops.difference(&self.ghost.oops) {
            oops.push(format!("{o} (at the final sync)"));
        }
        if !oops.is_empty() {
            out.push((Outcome::Oops, oops));
        }
        let dos = view.dos_held();
        if !dos.is_empty() {
            out.push((Outcome::Dos, dos));
        }
        if !view.ghost.fs_corrupt.is_empty() {
            out.push((
                Outcome::FsCorrupt,
                view.ghost.fs_corrupt.iter().cloned().collect(),
            ));
        }
        let mut leaks: Vec<String> = self.observation_texts(view.ghost.leaks.iter());
        for (pid, p) in self.procs.iter().enumerate() {
            let Some(mm) = &p.mm else { continue };
            let mapped = mm
                .ptes
                .keys()
                .copied()
                .chain(mm.pmds.keys().flat_map(|i| i * 512..(i + 1) * 512));
            for vpn in mapped {
                let Some(m) = mm.lookup(vpn) else { continue };
                let v = self.page_data(m.page_pfn());
                if !self.legit(pid as u32, v) {
                    leaks.push(format!(
                        "{} still maps {} at page {vpn:#x}",
                        p.name,
                        self.describe(v)
                    ));
                }
                if let Mapping::Pmd(..) = m {
                    // one report per PMD is enough
                    if vpn % 512 != 0 {
                        continue;
                    }
                }
            }
        }
        let mut lost = Vec::new();
        for (&t, &w) in self.ghost.last_write.iter() {
            let seen = match t {
                Target::File { ino, index } if crashed => view.stored_page_data(ino, index),
                Target::File { .. } => view.visible(t),
                Target::Private { .. } => self.visible(t),
            };
            if seen == Some(w) {
                continue;
            }
            let owner = match t {
                Target::Private { pid, .. } => pid,
                Target::File { .. } => {
                    lost.push(format!(
                        "{} never reached the file (a read returns {})",
                        self.describe(w),
                        seen.map_or("nothing".into(), |v| self.describe(v))
                    ));
                    continue;
                }
            };
            match seen {
                Some(v) if !self.legit(owner, v) => {}
                Some(v) => lost.push(format!(
                    "{} sees {} where the last acknowledged write was {}",
                    self.procs[owner as usize].name,
                    self.describe(v),
                    self.describe(w)
                )),
                None => lost.push(format!(
                    "{} was acknowledged after {} unmapped it",
                    self.describe(w),
                    self.procs[owner as usize].name
                )),
            }
        }
        if !view.ghost.stale.is_empty() {
            out.push((
                Outcome::Stale,
                self.observation_texts(view.ghost.stale.iter()),
            ));
        }
        if !lost.is_empty() {
            lost.sort();
            lost.dedup();
            out.push((Outcome::Lost, lost));
        }
        if !leaks.is_empty() {
            leaks.sort();
            leaks.dedup();
            out.push((Outcome::LeakOther, leaks));
        }
        if !hung.is_empty() {
            out.push((
                Outcome::Hang,
                hung.iter()
                    .map(|a| format!("{a} is blocked forever in the kernel"))
                    .collect(),
            ));
        }
        if !stuck.is_empty() {
            out.push((
                Outcome::Stuck,
                stuck
                    .iter()
                    .map(|a| format!("{a} waits for something the scenario never does"))
                    .collect(),
            ));
        }
        if out.is_empty() {
            out.push((Outcome::Ok, vec![]));
        }
        out.sort_by_key(|a| a.0.to_string());
        out
    }
}
