//! Which open files' readahead state (`f_ra`,
//! `pinlab_model::fs::readahead`) can still matter: the scenario knows what
//! each actor has left to run, so a file that no remaining statement can
//! read through — by a buffered read naming it, or by a fault in a mapping
//! made through it — has its state forgotten after every step. States that
//! differ only in such a dead window are one state; nothing they can do next
//! differs (the kernel keeps the window, but nothing consults it again).

use super::*;

/// The open files a statement of an actor with variables `vars` may read
/// through, and so consult the readahead state of: `None` for any file its
/// process holds or maps (it touches user memory, and may fault a file page
/// in, or hands open files on: `fork`, `send_fd`), `Some` of the one a
/// buffered `pread(fd, len, off)` names (none while `fd` is unbound: the
/// actor's own later `open` makes a new file), `Some(None)` for waits,
/// closes, truncation, writes of a tag, syncs, unmaps, advice (which reads
/// ahead without a window, `force_page_cache_ra`, and sets `ra_pages` and
/// `FMODE_RANDOM`, which are never forgotten) and the like.
fn read_ahead_through(call: &Call, vars: &Vars) -> Option<Option<usize>> {
    match call {
        Call::Munmap { .. }
        | Call::Mprotect { .. }
        | Call::Exit
        | Call::Wait { .. }
        | Call::IoUringSetup
        | Call::UnregisterBuffers { .. }
        | Call::DeregMr { .. }
        | Call::Pipe
        | Call::Open { .. }
        | Call::MemfdCreate { .. }
        | Call::Close { .. }
        | Call::Ftruncate { .. }
        | Call::Fallocate { .. }
        | Call::FileWrite { .. }
        | Call::Fsync { .. }
        | Call::Fadvise { .. }
        | Call::Readahead { .. }
        | Call::Sync
        | Call::DropCaches
        | Call::Lseek { .. }
        | Call::AddSeals { .. }
        | Call::GetSeals { .. }
        | Call::Kill { .. } => Some(None),
        Call::FileRead {
            fd: Arg::Var(slot, _),
            buf: None,
            ..
        } => match vars[*slot] {
            Some(Value::File(f)) => Some(Some(f)),
            // Bound later by the actor's own open or memfd_create: a new
            // open file (fork copies bound variables only).
            None => Some(None),
            _ => None,
        },
        _ => None,
    }
}

/// Forgets the readahead state (`f_ra`, pinlab_model::fs::readahead) of
/// every open file that nothing left to run can read through: no unfinished
/// actor's remaining statements ([`read_ahead_through`], from its current
/// one on) name it in a buffered read, or may fault a page in (or hand
/// files on) while its process — or the process a remote GUP of it names —
/// holds it or maps it (`vm_file`); and no mm
/// mapping it is mirrored by a device (`hmm_range_fault`) while a peer or
/// kernel thread is unfinished. Interleavings that differ only in a dead
/// file's readahead window are then one state; nothing they can do next
/// differs. Returns whether it forgot any.
pub(super) fn forget_unreadable_readahead(scn: &crate::bind::Scenario, s: &mut State) -> bool {
    if s.m.fs.files.iter().all(|f| f.ra == Default::default()) {
        return false;
    }
    use std::collections::BTreeSet;
    // Processes with an actor that may touch memory; files named by reads.
    let mut anything = BTreeSet::new();
    let mut named = BTreeSet::new();
    let mut devices = false;
    for (i, a) in s.actors.iter().enumerate() {
        if a.status == Status::Done {
            continue;
        }
        let rest = scn.actors[i].body.get(a.pc as usize..).unwrap_or(&[]);
        for op in rest {
            // get_user_pages_remote faults in another process's mm.
            if let Call::Gup {
                target: Some(t), ..
            } = op.call
            {
                anything.extend(s.actors[t].pid);
            }
        }
        let Some(pid) = a.pid else {
            devices = true;
            continue;
        };
        for op in rest {
            match read_ahead_through(&op.call, &a.vars) {
                Some(None) => {}
                Some(Some(f)) => {
                    named.insert(f);
                }
                None => {
                    anything.insert(pid);
                    break;
                }
            }
        }
    }
    let mirrored = |pid| {
        devices
            && s.m
                .notifiers
                .mirrors
                .iter()
                .any(|m| m.live && m.owner == pid)
    };
    // Open files a mapping that can still fault was made through.
    for (pid, p) in s.m.procs.iter().enumerate() {
        let pid = pid as pinlab_model::Pid;
        let Some(mm) = p.mm.as_ref() else { continue };
        if !anything.contains(&pid) && !mirrored(pid) {
            continue;
        }
        for v in mm.vmas.values() {
            if let pinlab_model::vm::Backing::File {
                vm_file: Some(f), ..
            } = v.backing
            {
                named.insert(f as usize);
            }
        }
    }
    let dead = |(i, f): &(usize, &pinlab_model::fs::OpenFile)| {
        f.ra != Default::default() && f.holders.is_disjoint(&anything) && !named.contains(i)
    };
    let dead: Vec<usize> =
        s.m.fs
            .files
            .iter()
            .enumerate()
            .filter(dead)
            .map(|(i, _)| i)
            .collect();
    if dead.is_empty() {
        return false;
    }
    let files = s.m.fs.files.make_mut();
    for i in dead {
        files[i].ra = Default::default();
    }
    true
}
