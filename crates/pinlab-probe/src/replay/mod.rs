//! `pinlab probe --replay`: explored interleavings executed on the live kernel.
//!
//! For a scenario, a deterministic sample of its terminal traces (seeded random
//! walks over every interleaving, at granularity `atomic`: kernel-internal
//! sub-steps have no user-space counterpart) is taken under the release preset
//! of the running kernel (`upstream` if it has none). Each trace is executed on
//! the kernel with one real process per scenario process and child (children by
//! a real `fork`), and a coordinator that releases exactly one step at a time in
//! trace order ([`live`]), so the kernel runs the trace's interleaving. Every
//! step's result is compared with the model's prediction along the same trace,
//! and so is the trace's `nr_foll_pin_acquired` delta. A trace with a step that
//! has no faithful kernel counterpart in this version is `SKIP(reason)` (see
//! [`unsupported`] and docs/probe.md).

use std::collections::BTreeSet;

use pinlab_explore::{Model, SplitMix64};
use pinlab_model::Policy;
use pinlab_scenario::bind::{Arg, Call, Kind, Scenario};
use pinlab_scenario::model::{Action, Bound, Status};

mod host;
pub mod live;

/// One replayed trace.
#[derive(Debug, Clone)]
pub struct TraceResult {
    /// `scenario#k` (k-th sampled trace).
    pub name: String,
    /// The steps as `actor: statement`.
    pub steps: Vec<String>,
    /// The predicted end state (see [`end_view`]); on a pass, the kernel's too.
    pub end: Vec<String>,
    /// The verdict.
    pub verdict: crate::Verdict,
    /// For a failure: the first differing observation, both values.
    pub diff: Option<String>,
}

/// The policy whose predictions the running kernel should match: its release
/// preset (`vX.Y` of `uname -r`) if there is one, else `upstream`.
pub fn kernel_policy() -> Policy {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(['.', '-']);
    let name = match (it.next(), it.next()) {
        (Some(a), Some(b)) => format!("v{a}.{b}"),
        _ => String::new(),
    };
    Policy::preset(&name).unwrap_or_else(|| Policy::preset("upstream").expect("preset"))
}

/// Up to `n` distinct terminal traces of `scn` under `policy`: seeded random
/// walks (seed `fingerprint`-derived from the walk number), in order of first
/// appearance; at most `20 n` walks are tried.
pub fn sample_traces(scn: &Scenario, policy: &Policy, n: usize) -> Vec<Vec<Action>> {
    let model = Bound { scn, policy };
    let mut seen: BTreeSet<Vec<u16>> = BTreeSet::new();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for walk in 0..20 * n as u64 {
        if out.len() >= n {
            break;
        }
        let mut rng = SplitMix64::new(pinlab_explore::fingerprint(&(0x7265_706c_6179u64, walk)));
        let mut s = model.initial_state();
        let mut trace = Vec::new();
        loop {
            buf.clear();
            model.actions(&s, &mut buf);
            if buf.is_empty() || trace.len() > 10_000 {
                break;
            }
            let a = buf[rng.below(buf.len())];
            s = model.step(&s, &a);
            trace.push(a);
        }
        let key: Vec<u16> = trace.iter().map(|a| a.actor).collect();
        if seen.insert(key) {
            out.push(trace);
        }
    }
    out
}

/// Why the live replay cannot run the statement `call` of an actor of kind
/// `kind` faithfully, if it cannot.
pub fn unsupported(kind: Kind, call: &Call) -> Option<String> {
    use pinlab_model::dev::rdma::access::*;
    use pinlab_model::vm::mremap::{MREMAP_DONTUNMAP, MREMAP_FIXED};
    let why = |s: &str| Some(s.to_string());
    match (kind, call) {
        // The flusher's pass over the scenario's files: syncfs of the private
        // filesystem (submit and wait), run when its last model step comes.
        (Kind::Kthread, Call::Writeback | Call::Sync | Call::IoRingExitWork) => return None,
        (Kind::Kthread, _) => return why("kswapd's pass and drop_caches have no faithful user-space trigger yet (MADV_PAGEOUT/FADV_DONTNEED do not unmap and strip buffers the same way)"),
        _ => {}
    }
    match call {
        Call::Mmap { fixed: None, .. } => None,
        Call::Mremap { flags, .. } if flags & MREMAP_FIXED != 0 => {
            why("MREMAP_FIXED (a target address: the model's and the executor's address-space layouts differ)")
        }
        Call::Mremap { flags, .. } if flags & MREMAP_DONTUNMAP != 0 => None,
        Call::Mremap {
            old_len: Arg::Const(o),
            new_len: Arg::Const(n),
            ..
        } if n <= o => None,
        Call::Mremap { .. } => why("an mremap that may grow, without MREMAP_DONTUNMAP (whether it grows in place or moves depends on the address-space layout, which differs between the model and the executor)"),
        Call::PthreadCreate { .. }
        | Call::Mprotect { .. }
        | Call::Munmap { .. }
        | Call::Madvise { .. }
        | Call::Mlock { .. }
        | Call::Munlock { .. }
        | Call::Mincore { .. }
        | Call::Memset { .. }
        | Call::Load { .. }
        | Call::Fork { .. }
        | Call::Exit
        | Call::Wait { .. }
        | Call::IoUringSetup
        | Call::RegisterBuffers { .. }
        | Call::RegisterBuffersIov { .. }
        | Call::RegisterSparse { .. }
        | Call::UpdateBuffers { .. }
        | Call::UnregisterBuffers { .. }
        | Call::CloneBuffers { .. }
        | Call::ReadFixed { .. }
        | Call::WriteFixed { .. }
        | Call::DeregMr { .. }
        | Call::Pipe
        | Call::PipeRead { .. }
        | Call::RdmaWrite { .. }
        | Call::RdmaRead { .. } => None,
        Call::Open { path, .. }
            if path.starts_with("/mnt/pmem") || path.starts_with("/dev/dax") || path == "/dev/zero" =>
        {
            why("fs-dax, device dax and /dev/zero files (no pmem on this host; /dev/zero not mapped yet)")
        }
        Call::Open { .. }
        | Call::MemfdCreate { .. }
        | Call::AddSeals { .. }
        | Call::GetSeals { .. }
        | Call::Close { .. }
        | Call::MmapFile { .. }
        | Call::Ftruncate { .. }
        | Call::Fallocate { .. }
        | Call::FileWrite { .. }
        | Call::FileWriteBuf { .. }
        | Call::FileRead { .. }
        | Call::Fsync { .. }
        | Call::Fadvise { .. }
        | Call::Readahead { .. }
        | Call::Sync
        | Call::Lseek { .. } => None,
        Call::Vmsplice { nr_segs, .. } if *nr_segs <= 4096 => None,
        Call::Vmsplice { .. } => why("vmsplice of more than 4096 iovecs"),
        Call::RegMr { access, .. }
            if access & IBV_ACCESS_ON_DEMAND == 0
                && pinlab_model::Machine::ib_access_writable(*access) =>
        {
            // ib_umem_get and IORING_REGISTER_BUFFERS both pin with
            // pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM).
            None
        }
        Call::RegMr { .. } => {
            why("an ODP or read-only MR (io_uring registration always pins FOLL_WRITE)")
        }
        Call::Mlockall { .. } | Call::Munlockall => why("mlockall and munlockall (the executor's own code, heap and rings would be locked too, and MCL_FUTURE locks its later mappings: VmLck and RLIMIT_MEMLOCK would differ from the model's, which holds the scenario's mappings alone)"),
        other => Some(format!("no live mapping for `{}` yet", call_name(other))),
    }
}

/// The end view's `VmLck` part: shown only when the process has locked
/// memory (`mm->locked_vm`), so that views of scenarios without `mlock` stay
/// as they were.
pub(crate) fn vm_lck(kb: u64) -> String {
    if kb == 0 {
        String::new()
    } else {
        format!(", VmLck {kb} kB")
    }
}

fn call_name(c: &Call) -> String {
    let s = format!("{c:?}");
    s.split([' ', '{', '(']).next().unwrap_or("").to_string()
}

/// One step of the model's prediction.
#[derive(Debug, Clone)]
pub struct Predicted {
    /// Actor name.
    pub actor: String,
    /// The statement as written (with the sub-step, if any).
    pub text: String,
    /// Its result (`= ...`), if it has one.
    pub result: Option<String>,
    /// The statement's index in the actor's body.
    pub pc: usize,
    /// Whether the statement ended with this step (false for the inner steps
    /// of a statement the model splits where the kernel sleeps).
    pub ends: bool,
    /// A dead io_uring waits for the kworker's `io_ring_exit_work` after it.
    pub exit_pending: bool,
    /// `nr_foll_pin_released` after it (from the start of the trace).
    pub released: u64,
    /// For an `ibv_reg_mr` that pinned pages: what `ib_umem_get` charges to
    /// `pinned_vm` (its pages) and what the io_uring registration standing
    /// in for it is charged (`io_buffer_account_pin`: a large folio whole),
    /// in pages.
    pub mr_acct: Option<(u64, u64)>,
    /// A `POSIX_FADV_DONTNEED` that started writeback: whether the kernel
    /// then evicts those folios is up to the block device's timing.
    pub dontneed_writeback: bool,
    /// An `MADV_PAGEOUT` or `MADV_COLD` over ext4 page-cache pages mapped
    /// by PTEs: which pages a read fault's fault-around mapped is up to when
    /// its readahead I/O completed (the model completes it at once).
    pub file_lru_advice: bool,
}

/// Whether statement `call` of the process `pid` is `MADV_PAGEOUT` or
/// `MADV_COLD` of a range where PTEs map ext4 page-cache pages, in the state
/// before it runs ([`Predicted::file_lru_advice`]).
fn file_lru_advice(
    s: &pinlab_scenario::model::State,
    st: &pinlab_scenario::model::ActorState,
    call: &Call,
) -> bool {
    use pinlab_model::vm::uapi::{MADV_COLD, MADV_PAGEOUT};
    use pinlab_scenario::model::Value;
    let Call::Madvise { addr, len, advice } = *call else {
        return false;
    };
    if advice != MADV_PAGEOUT && advice != MADV_COLD {
        return false;
    }
    let val = |a: pinlab_scenario::bind::Arg| match a {
        pinlab_scenario::bind::Arg::Const(c) => Some(c),
        pinlab_scenario::bind::Arg::Var(slot, off) => match st.vars[slot] {
            Some(Value::Int(v)) => Some(v.wrapping_add(off)),
            _ => None,
        },
    };
    let (Some(pid), Some(addr), Some(len)) = (st.pid, val(addr), val(len)) else {
        return false;
    };
    let Some(mm) = s.m.mm(pid) else {
        return false;
    };
    let (first, last) = (addr / 4096, addr.saturating_add(len).div_ceil(4096));
    mm.ptes.range(first..last).any(|(_, p)| {
        s.m.frames.page_folio(p.pfn).is_some_and(|(h, _)| {
            matches!(
                s.m.frames.get(h).map(|f| f.kind),
                Some(pinlab_model::mem::FolioKind::File { ino, .. })
                    if s.m.fs.inodes[ino as usize].kind == pinlab_model::fs::FsKind::Ext4
            )
        })
    })
}

/// [`Predicted::mr_acct`] for the MR the model registered last, if `before`
/// MRs existed until this step.
fn mr_acct(m: &pinlab_model::Machine, before: usize) -> Option<(u64, u64)> {
    let mr = m.dev.mrs.get(before).filter(|_| m.dev.mrs.len() > before)?;
    let mut heads = std::collections::BTreeSet::new();
    let mut io_uring = 0;
    for &pfn in &mr.pages {
        match m.frames.page_folio(pfn) {
            Some((h, _)) if m.frames.get(h).is_some_and(|f| f.is_large()) => {
                if heads.insert(h) {
                    io_uring += m.frames.get(h).map_or(1, |f| f.nr_pages());
                }
            }
            _ => io_uring += 1,
        }
    }
    Some((mr.pages.len() as u64, io_uring))
}

/// The model's prediction along `trace`: each step, the trace's
/// (`nr_foll_pin_acquired`, `nr_foll_pin_released`) deltas, and the end view
/// ([`end_view`]).
pub fn predict(
    scn: &Scenario,
    policy: &Policy,
    trace: &[Action],
) -> (Vec<Predicted>, (u64, u64), Vec<String>) {
    let model = Bound { scn, policy };
    let mut s = model.initial_state();
    let mut out = Vec::new();
    for a in trace {
        let i = a.actor as usize;
        let pc = s.actors[i].pc as usize;
        let mrs = s.m.dev.mrs.len();
        let file_lru = file_lru_advice(&s, &s.actors[i], &scn.actors[i].body[pc].call);
        let info = model.exec(&mut s, i);
        let ends = s.actors[i].pc as usize != pc
            || s.actors[i].status != Status::Running
            || scn.actors[i].is_kworker();
        out.push(Predicted {
            actor: scn.actors[i].name.clone(),
            text: info.text,
            result: info.result,
            pc,
            ends,
            exit_pending: s.m.io_ring_exit_pending(),
            released: s.m.vmstat.nr_foll_pin_released,
            mr_acct: mr_acct(&s.m, mrs),
            dontneed_writeback: matches!(
                scn.actors[i].body[pc].call,
                Call::Fadvise {
                    advice: pinlab_model::fs::fadvise::POSIX_FADV_DONTNEED,
                    ..
                }
            ) && info.notes.iter().any(|n| n.starts_with("writeback of")),
            file_lru_advice: file_lru,
        });
    }
    let view = end_view(scn, policy, &s);
    let counters = (
        s.m.vmstat.nr_foll_pin_acquired,
        s.m.vmstat.nr_foll_pin_released,
    );
    (out, counters, view)
}

/// The length argument of the statements that bind mapping variable `slot`,
/// if they all give the same one: a variable rebound to mappings of different
/// lengths is left out of the end views (which of its lengths applies depends
/// on the interleaving, and reading past a mapping reaches whatever the
/// process mapped next to it — in the kernel, the executor's own memory too).
pub fn mapping_len(scn: &Scenario, slot: usize) -> Option<pinlab_scenario::bind::Arg> {
    let mut lens = scn
        .actors
        .iter()
        .flat_map(|a| &a.body)
        .filter(|o| o.bind == Some(slot))
        .filter_map(|o| match o.call {
            Call::Mmap { len, .. } | Call::MmapFile { len, .. } => Some(len),
            _ => None,
        });
    let first = lens.next()?;
    lens.all(|l| l == first).then_some(first)
}

/// The files a scenario opens by path, in order of first appearance.
pub fn file_paths(scn: &Scenario) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for o in scn.actors.iter().flat_map(|a| &a.body) {
        if let Call::Open { path, .. } = &o.call {
            if !v.contains(path) {
                v.push(path.clone());
            }
        }
    }
    v
}

/// The end state as both sides describe it: for each started, living process
/// (actor order), what a load of each of its mapping variables' whole range
/// reads (`gone` if it cannot: unmapped, never inherited, beyond EOF, or — on
/// the kernel — its addresses reused by a later mapping); then each file's
/// contents as a new reader
/// sees them (`absent`, `empty`).
pub fn end_view(scn: &Scenario, policy: &Policy, s: &pinlab_scenario::model::State) -> Vec<String> {
    use pinlab_scenario::bind::Arg;
    use pinlab_scenario::model::Value;
    let mut out = Vec::new();
    for (i, a) in scn.actors.iter().enumerate() {
        if !matches!(a.kind, Kind::Process | Kind::Child { thread: false, .. }) {
            continue;
        }
        let st = &s.actors[i];
        let Some(pid) = st
            .pid
            .filter(|&p| st.status != Status::NotStarted && s.m.alive(p))
        else {
            continue;
        };
        let (pinned, locked) = s.m.mm(pid).map_or((0, 0), |m| (m.pinned_vm, m.locked_vm));
        out.push(format!(
            "{}: VmPin {} kB{}",
            a.name,
            pinned * 4,
            vm_lck(locked * 4)
        ));
        for slot in 0..scn.vars.len() {
            let (Some(Value::Int(addr)), Some(len)) = (st.vars[slot], mapping_len(scn, slot))
            else {
                continue;
            };
            let len = match len {
                Arg::Const(c) => c,
                Arg::Var(v, off) => match st.vars[v] {
                    Some(Value::Int(x)) => x.wrapping_add(off),
                    _ => continue,
                },
            };
            let mut m = s.m.clone();
            let desc = match m.cpu_load(policy, pid, addr, len) {
                Ok(vs) => pinlab_scenario::model::describe_all(&m, &vs),
                Err(_) => "gone".into(),
            };
            out.push(format!("{}: {} = {desc}", a.name, scn.vars[slot]));
        }
    }
    for path in file_paths(scn) {
        let desc = match s.m.fs.inodes.iter().position(|i| i.name == path) {
            None => "absent".to_string(),
            Some(ino) => {
                let pages = s.m.fs.inodes[ino]
                    .i_size
                    .div_ceil(pinlab_model::vm::PAGE_SIZE);
                if pages == 0 {
                    "empty".into()
                } else {
                    let vs: Vec<_> = (0..pages)
                        .map(|i| s.m.file_page_data(ino as u32, i).unwrap_or(0))
                        .collect();
                    pinlab_scenario::model::describe_all(&s.m, &vs)
                }
            }
        };
        out.push(format!("file {path}: {desc}"));
    }
    // What reached the disk of the ext4 files: the block map and the block
    // device, not the page cache (read live through FIEMAP, without writeback).
    for path in file_paths(scn) {
        if path.starts_with("/dev/shm/") {
            continue;
        }
        let Some(ino) = s.m.fs.inodes.iter().position(|i| i.name == path) else {
            continue;
        };
        let inode = &s.m.fs.inodes[ino];
        let pages = inode.i_size.div_ceil(pinlab_model::vm::PAGE_SIZE);
        if pages == 0 {
            continue;
        }
        let vs: Vec<_> = (0..pages)
            .map(|i| {
                inode
                    .blocks
                    .get(&i)
                    .and_then(|b| s.m.fs.bdev.data.get(b).copied())
                    .unwrap_or(0)
            })
            .collect();
        out.push(format!(
            "disk {path}: {}",
            pinlab_scenario::model::describe_all(&s.m, &vs)
        ));
    }
    out
}

/// The first statement of `trace` the live replay cannot run, as a reason.
pub fn trace_unsupported(scn: &Scenario, trace: &[Action], pred: &[Predicted]) -> Option<String> {
    // The model places the processes' pages in the scenario's zone; on the
    // host they come from wherever the page allocator finds them (ZONE_NORMAL
    // on a host booted without movablecore= or CMA), so a FOLL_LONGTERM pin
    // would not migrate them as the model predicts.
    use pinlab_model::mem::Zone;
    let zone = match scn.cfg.user_zone {
        Zone::Normal => None,
        Zone::Movable => Some("ZONE_MOVABLE"),
        Zone::Cma => Some("MIGRATE_CMA"),
        Zone::Device => Some("ZONE_DEVICE"),
    };
    if let Some(zone) = zone {
        return Some(format!(
            "setup {{ user_zone = {zone} }}: user space cannot make the host's page allocator place the scenario's pages there, so a FOLL_LONGTERM pin would not migrate them as the model predicts"
        ));
    }
    if let Some(limit) = scn.cfg.memlock {
        let mr = scn
            .actors
            .iter()
            .flat_map(|a| &a.body)
            .any(|op| matches!(op.call, Call::RegMr { .. }));
        if mr {
            return Some(format!(
                "setup {{ memlock = {limit} }} with an MR: the io_uring registration standing in for it is charged to the user's locked_vm, with its ring's own pages, where ib_umem_get charges the mm's pinned_vm"
            ));
        }
    }
    // ib_umem_release unpins a writable MR dirty; the io_uring unregister
    // standing in for it unpins clean. Only reclaim of lazily freed memory
    // tells the two apart.
    let calls = || scn.actors.iter().flat_map(|a| &a.body).map(|op| &op.call);
    if calls().any(|c| matches!(c, Call::RegMr { .. }))
        && calls().any(|c| {
            matches!(c, Call::Madvise { advice, .. } if *advice == pinlab_model::vm::uapi::MADV_FREE)
        })
    {
        return Some(
            "an MR with MADV_FREE: ib_umem_release unpins a writable MR's pages dirty, which keeps lazily freed ones from reclaim; the io_uring unregister standing in for it unpins them clean".to_string(),
        );
    }
    // POSIX_FADV_DONTNEED starts writeback and invalidates twice, the second
    // time after lru_add_drain_all: a folio whose write-back completed by
    // then is evicted (one fuzzed trace in 120 on 6.18), otherwise it stays
    // (the model's choice, docs/model.md).
    if pred.iter().any(|p| p.file_lru_advice) {
        return Some(
            "MADV_PAGEOUT or MADV_COLD of mapped ext4 page-cache pages: what they reclaim or split is what the range maps, and which pages a read fault's fault-around maps depends on when its readahead I/O completes (the model completes it at once)".to_string(),
        );
    }
    if pred.iter().any(|p| p.dontneed_writeback) {
        return Some(
            "POSIX_FADV_DONTNEED over dirty pages: the kernel evicts them only if their writeback completes before its second invalidation pass, which the block device's timing decides".to_string(),
        );
    }
    // Where each child was forked, and the buffer-table changes so far
    // (trace position, process), for stale_buffer_table.
    let mut forked_at = vec![None; scn.actors.len()];
    let mut table_changes: Vec<(usize, usize)> = Vec::new();
    for (k, (a, p)) in trace.iter().zip(pred).enumerate() {
        let prog = &scn.actors[a.actor as usize];
        let op = &prog.body[p.pc];
        match op.call {
            Call::Fork { child } => {
                forked_at[child].get_or_insert(k);
            }
            Call::RegisterBuffers { .. }
            | Call::RegisterBuffersIov { .. }
            | Call::RegisterSparse { .. }
            | Call::UpdateBuffers { .. }
            | Call::UnregisterBuffers { .. }
            | Call::CloneBuffers { .. } => {
                table_changes.push((k, process_of(scn, a.actor as usize)));
            }
            Call::ReadFixed { .. } | Call::WriteFixed { .. } => {
                let me = process_of(scn, a.actor as usize);
                if let Some(&(_, other)) = table_changes
                    .iter()
                    .find(|&&(j, b)| !table_change_seen(scn, &forked_at, me, b, j))
                {
                    return Some(format!(
                        "{} `{}`: {} changed a ring's buffer table where this process's executor does not see it (each executor tracks the tables its own process registered, and those its parent had at the fork): it would hand the kernel another buffer address than the model's",
                        prog.name, op.text, scn.actors[other].name
                    ));
                }
            }
            _ => {}
        }
        if let Some((umem, io_uring)) = p.mr_acct.filter(|(u, i)| u != i) {
            return Some(format!(
                "{} `{}`: the MR covers part of a large folio: ib_umem_get charges its {umem} pages to pinned_vm, the io_uring registration standing in for it {io_uring} (io_buffer_account_pin charges a large folio whole)",
                prog.name, op.text
            ));
        }
        if let Some(why) = unsupported(prog.kind, &op.call) {
            return Some(format!("{} `{}`: {why}", prog.name, op.text));
        }
        // A direct I/O at a misaligned position or length that the model
        // fails -EINVAL moves no data: its errno is compared. (A buffer
        // inside a page is not: 6.18 pins the pages it spans before the block
        // layer refuses it, and the model's buffers are whole pages.)
        let einval = p.result.as_deref() == Some("= -EINVAL") && !sub_page_buffer(&op.call);
        if let Some(n) = sub_page(&op.call).filter(|_| !einval) {
            return Some(format!(
                "{} `{}`: {n:#x} is not a whole number of pages; the model's data, file sizes and transfer counts are whole pages (docs/model.md, model assumptions)",
                prog.name, op.text
            ));
        }
        // The kernel's kworker frees a dead ring on its own schedule: the
        // replay can wait for it, but not hold it back while others run.
        if p.exit_pending
            && trace
                .get(k + 1)
                .is_none_or(|b| !scn.actors[b.actor as usize].is_kworker())
        {
            return Some(format!(
                "{} `{}` leaves a ring for the kworker's io_ring_exit_work, and the trace runs another step first; the kernel's kworker may run before it, which user space cannot prevent",
                prog.name, op.text
            ));
        }
        // The inner steps of a statement the model splits run as the one
        // system call when they are consecutive (nobody runs in between).
        if !p.ends && trace.get(k + 1).is_none_or(|b| b.actor != a.actor) {
            return Some(format!(
                "{} `{}` runs in several model steps (the kernel sleeps inside it: direct I/O, writeback, a device fault or a DAX wait); its inner timing cannot be driven from user space",
                prog.name, op.text
            ));
        }
    }
    None
}

/// The actor whose process `actor` runs in: itself, or for a thread the
/// process it was started in.
fn process_of(scn: &Scenario, mut actor: usize) -> usize {
    while let Kind::Child {
        parent,
        thread: true,
    } = scn.actors[actor].kind
    {
        actor = parent;
    }
    actor
}

/// Whether the executor of process `me` knows a buffer-table change that
/// process `b` made at trace position `j`: its own, or one an ancestor made
/// before the fork that led to `me` (the executor's memory was copied then).
fn table_change_seen(
    scn: &Scenario,
    forked_at: &[Option<usize>],
    me: usize,
    b: usize,
    j: usize,
) -> bool {
    let mut x = me;
    loop {
        if x == b {
            return true;
        }
        let Kind::Child { parent, .. } = scn.actors[x].kind else {
            return false;
        };
        let p = process_of(scn, parent);
        if p == b {
            return forked_at[x].is_some_and(|f| f > j);
        }
        x = p;
    }
}

/// A length or file offset of `call` that is not a whole number of pages,
/// if there is one: the model counts data, file sizes and transfers in pages
/// (`[model assumption]`), the kernel in bytes. Mapping lengths (`mmap`,
/// `munmap`, ...) and CPU accesses round the same way on both sides, and the
/// replay compares the first byte of each page, so only the calls whose byte
/// counts the kernel reports or keeps (file sizes, transfer counts, a fixed
/// buffer's length, `O_DIRECT` alignment) are checked.
fn sub_page(call: &Call) -> Option<u64> {
    let args: Vec<Arg> = match call {
        Call::FileWrite { len, off, .. } => [Some(*len), *off].into_iter().flatten().collect(),
        Call::FileWriteBuf { buf, len, off, .. } => [Some(*buf), Some(*len), *off]
            .into_iter()
            .flatten()
            .collect(),
        Call::FileRead { buf, len, off, .. } => [*buf, Some(*len), Some(*off)]
            .into_iter()
            .flatten()
            .collect(),
        // Buffers handed to the kernel for DMA or a pipe: their start too (a
        // buffer starting inside a page moves bytes the model keeps per page).
        Call::Vmsplice { addr, len, .. }
        | Call::RegisterBuffers { addr, len, .. }
        | Call::RegMr { addr, len, .. } => vec![*addr, *len],
        Call::RegisterBuffersIov { iovs, .. } | Call::UpdateBuffers { iovs, .. } => {
            iovs.iter().flat_map(|&(a, l)| [a, l]).collect()
        }
        Call::ReadFixed { off, len, .. } | Call::WriteFixed { off, len, .. } => vec![*off, *len],
        Call::Ftruncate { len, .. } => vec![*len],
        Call::Fallocate { off, len, .. } => vec![*off, *len],
        Call::Lseek { off, .. } => vec![*off],
        _ => return None,
    };
    args.into_iter().find_map(|a| match a {
        Arg::Const(c) | Arg::Var(_, c) if c % pinlab_model::vm::PAGE_SIZE != 0 => Some(c),
        _ => None,
    })
}

/// Whether the user buffer of a file read or write starts inside a page.
fn sub_page_buffer(call: &Call) -> bool {
    let buf = match call {
        Call::FileWriteBuf { buf, .. } | Call::FileRead { buf: Some(buf), .. } => *buf,
        _ => return false,
    };
    matches!(buf, Arg::Const(c) | Arg::Var(_, c) if c % pinlab_model::vm::PAGE_SIZE != 0)
}

/// Handle-returning statements: their values (addresses, pids, ids, descriptors)
/// differ between the model and the kernel, so only success or the errno is
/// compared.
fn normalize(call: &Call, r: &Option<String>) -> Option<String> {
    let handle = matches!(
        call,
        Call::Mmap { .. }
            | Call::Mremap { .. }
            | Call::Fork { .. }
            | Call::PthreadCreate { .. }
            | Call::IoUringSetup
            | Call::RegMr { .. }
            | Call::Pipe
            | Call::Open { .. }
            | Call::MemfdCreate { .. }
            | Call::MmapFile { .. }
    );
    match r {
        Some(s) if handle && !s.starts_with("= -") => Some("= <handle>".into()),
        // The remote side sees a completion status; why there was no MR
        // (never registered, or its process died) is the model's comment.
        Some(s) if matches!(call, Call::RdmaWrite { .. } | Call::RdmaRead { .. }) => {
            Some(s.trim_end_matches(" (no MR)").to_string())
        }
        // A split statement's last step carries its sub-step in brackets
        // (`= 4096 [DIO: unpin_user_pages_dirty_lock]`): the value is before.
        Some(s) => Some(s.split(" [").next().unwrap_or(s).to_string()),
        None => None,
    }
}

/// Whether a scenario opens files.
fn uses_files(scn: &Scenario) -> bool {
    scn.actors
        .iter()
        .flat_map(|a| &a.body)
        .any(|o| matches!(o.call, Call::Open { .. } | Call::MemfdCreate { .. }))
}

/// Compares one live run with the prediction: the first difference, if any.
fn compare(
    scn: &Scenario,
    trace: &[Action],
    pred: &[Predicted],
    live: &[Option<String>],
) -> Option<String> {
    for (i, (a, l)) in trace.iter().zip(live).enumerate() {
        if !pred[i].ends {
            // An inner step: the system call runs at the statement's last step.
            continue;
        }
        let call = &scn.actors[a.actor as usize].body[pred[i].pc].call;
        if matches!(call, Call::Writeback) {
            // The flusher pass has no return value to compare.
            continue;
        }
        let (m, l) = (normalize(call, &pred[i].result), normalize(call, l));
        if m != l {
            return Some(format!(
                "step {} {}: `{}`: model {} / kernel {}",
                i + 1,
                pred[i].actor,
                pred[i].text,
                m.as_deref().unwrap_or("(no result)"),
                l.as_deref().unwrap_or("(no result)")
            ));
        }
    }
    None
}

/// Replays up to `max` sampled traces of each scenario under `policy`.
pub fn run(scns: &[Scenario], policy: &Policy, max: usize) -> Result<Vec<TraceResult>, String> {
    let _lock = crate::cases::Lock::take()?;
    for what in crate::journal::recover() {
        eprintln!("pinlab probe: an interrupted earlier run left the host changed: {what}");
    }
    crate::journal::install_signal_handler();
    let dir = std::env::temp_dir().join(format!("pinlab-replay-{}", crate::sys::getpid()));
    let dir_entry = crate::journal::register(crate::journal::Undo::RemoveTree(dir.clone()))
        .ok_or("probe undo journal full")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let root = crate::sys::is_root() && crate::sys::pin_counters().is_ok();
    // A private ext4 for the scenarios' files, and private tmpfs mounts (one
    // per `huge=` option the scenarios ask for) standing for /dev/shm; each
    // trace gets fresh directories in both.
    let ext4 = (root && scns.iter().any(uses_files))
        .then(|| crate::sys::LoopFs::new(&dir, "ext4", 64 << 20));
    let mut shm_mounts: Vec<(
        pinlab_model::ShmemHuge,
        Result<crate::sys::TmpfsMount, String>,
    )> = Vec::new();
    let mut n = 0;
    let mut out = Vec::new();
    for scn in scns {
        let mut scn = scn.clone();
        scn.fine = false;
        let eff = policy.with_switches(&scn.driver_bugs);
        // The host's THP mode made the scenario's for its traces (restored
        // when `_thp` drops), or the reason its traces are skipped.
        let (_thp, host_skip) = if root {
            match host::ThpMode::set(scn.cfg.thp, host::needs_thp(&scn)) {
                Ok(g) => (Some(g), host::conflict(&scn, scn.cfg.thp)),
                Err(e) => (
                    None,
                    Some(format!("THP mode `{}`: {e}", host::thp_word(scn.cfg.thp))),
                ),
            }
        } else {
            (None, None)
        };
        // No huge zero page while a scenario that can get THPs replays (the
        // model has none), restored when `_zero` drops.
        let (_zero, host_skip) = match (root, host_skip) {
            (true, None) if host::needs_thp(&scn) => match host::HugeZeroPage::off() {
                Ok(g) => (Some(g), None),
                Err(e) => (None, Some(format!("huge zero page: {e}"))),
            },
            (_, skip) => (None, skip),
        };
        // The hugetlb pool made exactly the scenario's (the model's pool has
        // `nr_hugepages` free pages and no others), restored when `_pool` drops.
        let (_pool, host_skip) = match (root, host_skip) {
            (true, None) if host::uses_hugetlb(&scn) => {
                match host::HugetlbPool::set(scn.cfg.nr_hugepages) {
                    Ok(g) => (Some(g), None),
                    Err(e) => (
                        None,
                        Some(format!("hugetlb pool of {}: {e}", scn.cfg.nr_hugepages)),
                    ),
                }
            }
            (_, skip) => (None, skip),
        };
        // A swap device for `setup { swap = true }` (a private swapfile,
        // swapped off and removed afterwards) unless the host has one.
        let (_swap, host_skip) = match (root, host_skip) {
            (true, None) if scn.cfg.swap && !host::swap_active() => {
                match crate::sys::Swapfile::new(&dir.join("pinlab-replay.swap"), 64 << 20) {
                    Ok(g) => (Some(g), None),
                    Err(e) => (None, Some(format!("swap: {e}"))),
                }
            }
            (_, skip) => (None, skip),
        };
        let huge = scn.cfg.shmem_huge;
        if root && uses_files(&scn) && !shm_mounts.iter().any(|(h, _)| *h == huge) {
            let opt = host::shmem_huge_opt(huge);
            let name = format!("shm-{}", opt.trim_start_matches("huge="));
            shm_mounts.push((
                huge,
                crate::sys::TmpfsMount::new(&dir, &name, &format!("{opt},size=256m")),
            ));
        }
        let shm = shm_mounts.iter().find(|(h, _)| *h == huge).map(|(_, m)| m);
        for (k, trace) in sample_traces(&scn, &eff, max).into_iter().enumerate() {
            let (pred, (acq, rel), view) = predict(&scn, &eff, &trace);
            let steps: Vec<String> = pred
                .iter()
                .map(|p| format!("{}: {}", p.actor, p.text))
                .collect();
            let name = format!("{}#{}", scn.name, k + 1);
            let result = |verdict, diff| TraceResult {
                name: name.clone(),
                steps: steps.clone(),
                end: view.clone(),
                verdict,
                diff,
            };
            let skip = |why: String| result(crate::Verdict::Skip(why), None);
            if !root {
                out.push(skip(
                    "needs root (nr_foll_pin_* via /proc/sys/vm/stat_refresh)".into(),
                ));
                continue;
            }
            if let Some(why) = trace_unsupported(&scn, &trace, &pred) {
                out.push(skip(why));
                continue;
            }
            if let Some(why) = &host_skip {
                out.push(skip(why.clone()));
                continue;
            }
            n += 1;
            // `setup { memlock }`: the executors drop to an unused user (a new
            // one per trace, so no earlier trace's charges count) under the
            // limit, and own the trace's directories.
            let user = scn.cfg.memlock.map(|m| {
                let uid = 45_000 + (crate::sys::getpid() as u32 % 1000) * 100 + (n as u32 % 100);
                (uid, m)
            });
            let files = match (&ext4, uses_files(&scn), shm) {
                (_, false, _) if user.is_some() => {
                    // The unprivileged executors' payload and scratch files.
                    let d = dir.join(format!("u{n}"));
                    let f = live::Files {
                        root: d.clone(),
                        shm: d,
                        image: None,
                        user,
                    };
                    if let Err(e) = make_dirs(&f) {
                        out.push(skip(format!("trace directories: {e}")));
                        continue;
                    }
                    f
                }
                (_, false, _) => live::Files {
                    root: dir.clone(),
                    shm: dir.clone(),
                    image: None,
                    user: None,
                },
                (_, true, Some(Err(e))) => {
                    out.push(skip(format!("no private tmpfs for /dev/shm: {e}")));
                    continue;
                }
                (Some(Ok(fs)), true, Some(Ok(shm))) => {
                    let f = live::Files {
                        root: fs.dir.join(format!("t{n}")),
                        shm: shm.dir.join(format!("t{n}")),
                        image: Some(fs.img.clone()),
                        user,
                    };
                    if let Err(e) = make_dirs(&f) {
                        out.push(skip(format!("trace directories: {e}")));
                        continue;
                    }
                    f
                }
                (Some(Err(e)), true, _) => {
                    out.push(skip(format!("no private ext4: {e}")));
                    continue;
                }
                (_, true, _) => {
                    out.push(skip("no private ext4".into()));
                    continue;
                }
            };
            // A run that differs only in the pin counters is run again; if the
            // host is busy (foreign pins), the trace is skipped, not failed.
            let mut verdict = crate::Verdict::Fail;
            let mut diff = None;
            for attempt in 0..2 {
                // The second run starts from empty trace directories: the
                // first one's files would change what `open` finds.
                if attempt > 0 && files.image.is_some() {
                    if let Err(e) = fresh_dirs(&files) {
                        verdict = crate::Verdict::Skip(format!("trace directories: {e}"));
                        break;
                    }
                }
                let (live, (live_acq, live_rel), live_view) =
                    match live::run(&scn, &trace, &pred, &files, rel) {
                        Ok(x) => x,
                        Err(e) => {
                            verdict = crate::Verdict::Skip(e);
                            break;
                        }
                    };
                diff = compare(&scn, &trace, &pred, &live).or_else(|| {
                    view.iter()
                        .zip(live_view.iter().map(Some).chain(std::iter::repeat(None)))
                        .find(|(m, l)| Some(*m) != *l)
                        .map(|(m, l)| {
                            format!(
                                "end state: model `{m}` / kernel `{}`",
                                l.map_or("(nothing)", |s| s.as_str())
                            )
                        })
                        .or_else(|| {
                            (live_view.len() > view.len()).then(|| {
                                format!(
                                    "end state: model (nothing) / kernel `{}`",
                                    live_view[view.len()]
                                )
                            })
                        })
                });
                if diff.is_some() {
                    verdict = crate::Verdict::Fail;
                    break;
                }
                if live_acq == acq && live_rel == rel {
                    verdict = crate::Verdict::Pass;
                    break;
                }
                diff = Some(if live_acq != acq {
                    format!(
                        "nr_foll_pin_acquired over the trace: model +{acq} / kernel +{live_acq}"
                    )
                } else {
                    format!(
                        "nr_foll_pin_released over the trace: model +{rel} / kernel +{live_rel}"
                    )
                });
                if let Some(noise) = crate::cases::host_noise() {
                    verdict = crate::Verdict::Skip(format!("host busy: {noise}"));
                    break;
                }
            }
            let diff = if matches!(verdict, crate::Verdict::Fail) {
                diff
            } else {
                None
            };
            out.push(result(verdict, diff));
        }
    }
    drop(shm_mounts);
    drop(ext4);
    let _ = std::fs::remove_dir_all(&dir);
    dir_entry.undo();
    crate::journal::close();
    Ok(out)
}

/// Empties a trace's directories on the private ext4 and tmpfs (for a rerun).
fn fresh_dirs(f: &live::Files) -> std::io::Result<()> {
    for d in [&f.root, &f.shm] {
        std::fs::remove_dir_all(d)?;
    }
    make_dirs(f)
}

/// Creates a trace's directories, owned by the unprivileged user its executors
/// run as (`setup { memlock }`), if any.
fn make_dirs(f: &live::Files) -> std::io::Result<()> {
    for d in [&f.root, &f.shm] {
        std::fs::create_dir_all(d)?;
        if let Some((uid, _)) = f.user {
            std::os::unix::fs::chown(d, Some(uid), Some(uid))?;
        }
    }
    Ok(())
}
